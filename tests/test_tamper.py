"""The static tamper scan and the recheck's definition extraction, on code snippets."""

from __future__ import annotations

import gc
import sys
import threading

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from hw_utils.grading.recheck import definitions_only, replay_notebook
from hw_utils.grading.tamper import flags_from, protected_names, scan_sources

HOSTILE = {
    "input transformer": (
        "ip = get_ipython()\nip.input_transformers_post.append(lambda lines: [])",
        "ipython_hook",
    ),
    "event hook": ("get_ipython().events.register('pre_run_cell', f)", "ipython_hook"),
    "custom exception handler": (
        "from IPython import get_ipython as g\ng().set_custom_exc((Exception,), h)",
        "ipython_hook",
    ),
    "patched allclose": ("import torch\ntorch.allclose = lambda *a, **k: True", "monkeypatch"),
    "patched checks": (
        "from hw_utils import checks as c\nc.assert_close = lambda *a, **k: None",
        "monkeypatch",
    ),
    "setattr on numpy": ("import numpy as np\nsetattr(np, 'allclose', f)", "monkeypatch"),
    "tensor dunder": ("import torch\ntorch.Tensor.__eq__ = f", "monkeypatch"),
    "display hook": ("import sys\nsys.displayhook = lambda v: print(4.0)", "monkeypatch"),
    "sys.modules": ("import sys\nsys.modules['hw_utils.checks'] = fake", "monkeypatch"),
    "via sys.modules": (
        "import sys\nsys.modules['hw_utils.checks'].assert_close = f",
        "monkeypatch",
    ),
    "builtins": ("__builtins__.print = f", "monkeypatch"),
    "exit": ("import os\nos._exit(0)", "process"),
    "signal": ("import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)", "process"),
    "subprocess": ("import subprocess\nsubprocess.run(['ls'])", "process"),
    "exec": ("exec('x = 1')", "dynamic_code"),
    "frames": ("import sys\nf = sys._getframe(1)", "introspection"),
    "database": ("import sqlite3\nsqlite3.connect('x.db')", "database"),
    "gradebook path": ("p = '../../gradebook.db'", "database"),
    "absolute write": ("open('/tmp/x.txt', 'w').write('1')", "file_write"),
    "climb out": ("import os\nos.remove('../source/expected.pt')", "file_write"),
    "IPython imported": (
        "import IPython as ip\nshell = getattr(ip, 'get_' + 'ipython')()",
        "ipython_hook",
    ),
    "shell attribute by a computed name": (
        "s = get_ipython()\nhooks = getattr(s, 'input_transformers_' + 'post')",
        "obfuscation",
    ),
    "builtins by a computed name": (
        "import builtins\ng = getattr(builtins, 'get_' + n)",
        "obfuscation",
    ),
    "vars of the checks": (
        "from hw_utils import checks as c\n_ = vars(c).update(assert_close=f)",
        "monkeypatch",
    ),
    "__dict__ of torch": ("import torch\nd = torch.__dict__\nd['allclose'] = f", "monkeypatch"),
    "lying tensor": (
        "class T(torch.Tensor):\n    @classmethod\n"
        "    def __torch_function__(cls, *a):\n        pass",
        "special_method",
    ),
    "lying number": (
        "class N(float):\n    def __ne__(self, other):\n        return False",
        "special_method",
    ),
    "as_subclass": ("y = x.as_subclass(T)", "special_method"),
    "executed cells": ("print([c for c in In if 'HIDDEN' in c])", "history"),
    "numbered input": ("print(_i12)", "history"),
    "__main__": ("import __main__\nprint(__main__.In)", "history"),
}

HONEST = [
    "import torch\nimport torch.nn as nn\nimport torch.nn.functional as F",
    "class MyConv2d(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
    "        self.weight = nn.Parameter(torch.zeros(2))",
    "torch.backends.cudnn.deterministic = True\ntorch.manual_seed(0)",
    "%matplotlib inline\n!pip install tqdm\nimport os\nos.makedirs('results', exist_ok=True)",
    "with open('results/run.json', 'w') as f:\n    f.write('{}')",
    "model.fc = nn.Linear(4, 2)\nx.data = x.data * 2",
    "def f(:\n    broken syntax is not tampering",
    "def init_weights(model, scheme):\n    fill = getattr(nn.init, f'{scheme}_normal_')",
    "class Images(torch.utils.data.Dataset):\n    def __len__(self):\n        return 3\n"
    "    def __getitem__(self, i):\n        return i\n    def __iter__(self):\n        yield 1",
    "from IPython.display import display, Markdown\nfrom IPython import display as d",
    "for _i in range(3):\n    _ = _i",
]


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_code_is_flagged(name):
    source, kind = HOSTILE[name]
    assert f"static:{kind}" in flags_from(scan_sources([(0, source)]))


def test_honest_code_is_not_flagged():
    assert flags_from(scan_sources(list(enumerate(HONEST)))) == []


def test_imports_carry_over_between_cells():
    cells = [(0, "import torch as T"), (1, "T.equal = lambda a, b: True")]
    assert flags_from(scan_sources(cells)) == ["static:monkeypatch"]


def test_definitions_only_keeps_definitions_and_drops_side_effects():
    source = (
        "import torch\n"
        "torch.allclose = lambda *a: True\n"
        "SIZE = 3\n"
        "def f(x):\n    return x + SIZE\n"
        "print(f(1))\n"
        "get_ipython().input_transformers_post.append(g)\n"
        "%matplotlib inline"
    )
    kept = definitions_only(source)
    assert "import torch" in kept and "SIZE = 3" in kept and "def f(x)" in kept
    assert "allclose" not in kept and "print" not in kept and "get_ipython" not in kept


def test_replay_keeps_locked_cells_whole_and_stops_after_the_last_test():
    def cell(source, **nbgrader):
        c = new_code_cell(source)
        if nbgrader:
            c.metadata["nbgrader"] = {"grade_id": nbgrader.pop("id"), **nbgrader}
        return c

    nb = new_notebook(
        cells=[
            cell("import math\nprint('setup')"),
            cell("def f():\n    return 1\nf.patched = True", id="f", solution=True, grade=False),
            cell("assert f() == 1\nprint('t')", id="test_f", grade=True, locked=True, points=1),
            cell("slow_experiment()"),
        ]
    )
    nb.cells[1].metadata["tags"] = []
    replay = replay_notebook(nbformat.from_dict(nb))
    sources = [c.source for c in replay.cells]
    assert sources == ["import math", "def f():\n    return 1", "assert f() == 1\nprint('t')"]

    # recheck-skip drops an experiment cell, but never a test cell (a student can tag it).
    for index in (0, 2):
        nb.cells[index].metadata["tags"] = ["recheck-skip"]
    sources = [c.source for c in replay_notebook(nbformat.from_dict(nb)).cells]
    assert sources == ["def f():\n    return 1", "assert f() == 1\nprint('t')"]


def test_redefining_a_test_helper_is_flagged_and_dropped_from_the_recheck():
    locked = ["import torch\nimport torch.nn.functional as F\ndef check(x):\n    assert x"]
    tests = ["check(f(torch.ones(1)))\nF.relu"]
    protected = protected_names(locked, tests)
    assert set(protected) == {"check", "torch", "F"}
    student = "import torch\nfrom torch.nn import functional as F\ndef check(x):\n    pass"
    assert flags_from(scan_sources([(0, student)], protected)) == ["static:shadowing"]
    kept = definitions_only(student, protected)
    assert "def check" not in kept and "import torch" in kept and "functional as F" in kept
    assert flags_from(scan_sources([(0, "import numpy as torch")], protected)) == [
        "static:shadowing"
    ]
    assert flags_from(scan_sources([(0, "a, (check, *b) = 1, (2, 3)")], protected)) == [
        "static:shadowing"
    ]
    patch = "import torch\ntorch.ones = None\ncheck.x = 1\nF[0] = 2"
    assert "static:shadowing" not in flags_from(scan_sources([(0, patch)], protected))


def test_grading_threads_scan_at_the_same_time():
    """Grading jobs are threads; CPython 3.11's ast.parse fails at random when two threads parse
    at once (gh-106905). Frequent garbage collections that run Python code make thread switches
    inside a parse likely, so without the scan's lock this fails within a few parses."""
    cell = "\n".join(
        f"def f{i}(x):\n    return [y for y in range(x) if y and {{'a': (1, [2, {{3}}])}}]"
        for i in range(200)
    )
    failures: list[BaseException] = []

    def scan_repeatedly() -> None:
        for _ in range(30):
            try:
                scan_sources([(0, cell)])
            except Exception as error:  # any failure of a scan is the finding
                failures.append(error)

    def busy_callback(*_) -> None:  # Python code in every collection: a chance to switch
        sum(range(50))

    threshold, interval = gc.get_threshold(), sys.getswitchinterval()
    gc.callbacks.append(busy_callback)
    gc.set_threshold(5)
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=scan_repeatedly) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        gc.callbacks.remove(busy_callback)
        gc.set_threshold(*threshold)
        sys.setswitchinterval(interval)
    assert not failures, failures[:1]
