"""The static scan of the student's cells (what the grading boundary cannot decide), on snippets."""

from __future__ import annotations

import threading

import pytest

from hw_utils.grading.tamper import (
    assignment_references,
    defined_names,
    flags_from,
    scan_sources,
)
from hw_utils.references import all_references

REFERENCES = {
    "hw_utils.training.fit": "fit",
    "hw_utils.training.train_epoch": "train_epoch",
    "hw_utils.data.random_flip_crop": "augment_batch",
}

HOSTILE = {
    # course references of the graded functions
    "imported reference": ("from hw_utils.training import fit", "reference"),
    "reference by attribute": (
        "import hw_utils.training\nr = hw_utils.training.train_epoch(m, l, f, o, 'cpu')",
        "reference",
    ),
    "reference by module alias": ("import hw_utils.training as T\nT.fit(m)", "reference"),
    "reference by alias chain": (
        "from hw_utils import training as t\nf = t.fit\ng = f\ndef fit(*a):\n    return g(*a)",
        "reference",
    ),
    "reference in a re-export": (
        "from hw_utils.data import random_flip_crop as aug\ndef augment_batch(x, generator=None):"
        "\n    return aug(x, generator=generator)",
        "reference",
    ),
    "reference by getattr": ("import hw_utils.training as t\nf = getattr(t, 'fit')", "reference"),
    "hw_utils by a computed name": (
        "import hw_utils.training as t\nf = getattr(t, 'f' + 'it')",
        "reference",
    ),
    # magics and shell escapes
    "shell escape": ("!cat /etc/passwd", "magic"),
    "run magic": ("%run other.py", "magic"),
    "bash cell": ("%%bash\nls /", "magic"),
    "magic written out": ("get_ipython().run_line_magic('load', 'x.py')", "magic"),
    "magic by a computed name": ("get_ipython().run_line_magic(name, 'x')", "magic"),
    "patch hidden in a timed cell": ("%%time\nimport torch\ntorch.allclose = f", "patch"),
    # changing what the probes run on
    "input transformer": (
        "ip = get_ipython()\nip.input_transformers_post.append(lambda lines: [])",
        "patch",
    ),
    "event hook": ("get_ipython().events.register('pre_run_cell', f)", "patch"),
    "shell from IPython": (
        "from IPython import get_ipython as g\ng().set_custom_exc((Exception,), h)",
        "patch",
    ),
    "patched torch": ("import torch\ntorch.allclose = lambda *a, **k: True", "patch"),
    "patched probe": (
        "from hw_utils.probes import common\ncommon.module_state = lambda *a, **k: {}",
        "patch",
    ),
    "code swapped through an alias": (
        "from hw_utils.probes import common\nm = common.module_state\nm.__code__ = g.__code__",
        "patch",
    ),
    "setattr on a module": ("import numpy as np\nsetattr(np, 'allclose', f)", "patch"),
    "tensor dunder": ("import torch\ntorch.Tensor.__eq__ = f", "patch"),
    "display hook": ("import sys\nsys.displayhook = lambda v: print(4.0)", "patch"),
    "sys.modules": ("import sys\nsys.modules['hw_utils.probes'] = fake", "patch"),
    "vars of a module": ("import torch\n_ = vars(torch).update(allclose=f)", "patch"),
    "__dict__ of torch": ("import torch\nd = torch.__dict__\nd['allclose'] = f", "patch"),
    # ... and without naming the target
    "setattr under another name": (
        "from hw_utils.probes import common\ns = setattr\ns(common, 'module_state', f)",
        "patch",
    ),
    "setattr in a partial": (
        "import functools\nfrom hw_utils.probes import common\n"
        "functools.partial(setattr, common)('module_state', f)",
        "patch",
    ),
    "object.__setattr__": ("object.__setattr__(m, 'x', f)", "patch"),
    "code swapped on every live function": (
        "import gc\nfor o in gc.get_objects():\n    if getattr(o, '__name__', '') == 'x':\n"
        "        o.__code__ = f.__code__",
        "patch",
    ),
    "frames of the caller": (
        "import sys\ndef f(x):\n    sys._getframe(1).f_globals['respond'] = g",
        "patch",
    ),
    "traceback frames": (
        "try:\n    1 / 0\nexcept Exception as e:\n    e.__traceback__.tb_frame.f_back",
        "patch",
    ),
    "__builtins__": ("__builtins__['setattr'](m, 'x', f)", "patch"),
    "builtins by a computed name": (
        "import builtins\ng = getattr(builtins, 'set' + 'attr')",
        "patch",
    ),
    "sys.modules read": ("import sys\nm = sys.modules['hw_utils.probes.common']", "patch"),
    "package path": ("import hw_utils\nhw_utils.__path__.insert(0, '/tmp/fake')", "patch"),
    "default argument with a side effect": (
        "import torch\ndef f(x, _=torch.__dict__.update(allclose=g)):\n    return x",
        "patch",
    ),
    # process and signal tricks, hidden code
    "exit": ("import os\nos._exit(0)", "process"),
    "signal": ("import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)", "process"),
    "subprocess": ("import subprocess\nsubprocess.run(['ls'])", "process"),
    "socket": ("import socket\nsocket.create_connection(('1.2.3.4', 80))", "process"),
    "exec": ("exec('x = 1')", "dynamic_code"),
    "unpickling": ("import pickle\nf = pickle.loads(blob)", "dynamic_code"),
    "torch.load of code": (
        "import torch\nm = torch.load('m.pt', weights_only=False)",
        "dynamic_code",
    ),
    "dynamic import": ("import importlib\nm = importlib.import_module('os')", "dynamic_code"),
}

HONEST = {
    "timed cell": "%%time\nresult = conv2d_forward(x, w)",
    "timeit": "%timeit conv2d_forward(x, w)",
    "matplotlib": "%matplotlib inline\nimport matplotlib.pyplot as plt",
    "captured output": "%%capture out\nprint('hi')",
    "display": (
        "from IPython.display import display, clear_output, Markdown\ndisplay(Markdown('x'))"
    ),
    "clear_output": "import IPython.display\nIPython.display.clear_output(wait=True)",
    "tqdm": "from tqdm.auto import tqdm\nfor i in tqdm(range(3)):\n    print(i)",
    "decorators": (
        "import functools\n@functools.lru_cache(maxsize=None)\ndef size(n):\n    return n + 1"
    ),
    "helpers and numpy": (
        "import numpy as np\ndef _pad(x, p):\n    return np.pad(x, p)\n"
        "def f(x):\n    return _pad(x, 1)"
    ),
    "torch settings": (
        "import torch\ntorch.manual_seed(0)\ntorch.backends.cudnn.benchmark = True\n"
        "torch.set_num_threads(1)"
    ),
    "init by a computed name": (
        "from torch import nn\ndef init(w, scheme):\n    getattr(nn.init, scheme + '_')(w)"
    ),
    "torch.load of weights": "import torch\nstate = torch.load('w.pt', weights_only=True)",
    "own attributes": (
        "class Layer:\n    def __init__(self):\n        setattr(self, 'w', 1)\n        self.b = 2"
    ),
    "reference trainer in an experiment": (
        "from hw_utils.training import fit as course_fit, EpochResult\n"
        "history = course_fit(model, train, val, loss, opt, 3, 'cpu')"
    ),
    "prints": "for i in range(1000):\n    print(i, end=' ')",
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_code_is_flagged(name):
    source, kind = HOSTILE[name]
    assert f"static:{kind}" in flags_from(scan_sources([(0, source)], REFERENCES)), name


@pytest.mark.parametrize("name", list(HONEST))
def test_honest_code_is_not_flagged(name):
    references = {k: v for k, v in REFERENCES.items() if v != "fit"}  # not graded here
    if name == "reference trainer in an experiment":
        assert scan_sources([(0, HONEST[name])], references) == []
    else:
        assert scan_sources([(0, HONEST[name])], REFERENCES) == [], name


def test_aliases_carry_from_cell_to_cell():
    cells = [(3, "import hw_utils.training as T"), (7, "def fit(*a):\n    return T.fit(*a)")]
    findings = scan_sources(cells, REFERENCES)
    assert [(f.cell, f.kind) for f in findings] == [(7, "reference")]
    assert "hw_utils.training.fit, the course's fit" in findings[0].detail


def test_unparsable_cells_are_skipped():
    assert scan_sources([(0, "def broken(:\n")], REFERENCES) == []


def test_defined_names_of_a_stub():
    stub = (
        "def conv2d_forward(x, w):\n    raise NotImplementedError\n\nclass MyConv2d:\n    pass\n"
        "lenet_shapes = None"
    )
    assert defined_names(stub) == {"conv2d_forward", "MyConv2d", "lenet_shapes"}


def test_course_references_are_found_under_every_export():
    references = all_references()
    assert references["hw_utils.training.fit"] == "fit"
    assert references["hw_utils.data.random_flip_crop"] == "augment_batch"
    assert references["hw_utils.data.augment.random_flip_crop"] == "augment_batch"
    assert assignment_references({"fit"}, references) == {
        path: name for path, name in references.items() if name == "fit"
    }


def test_the_scan_is_safe_with_parallel_grading_jobs():
    # CPython 3.11's ast.parse fails at random when two threads parse at once (gh-106905).
    source = "\n".join(f"def f{i}(x):\n    return [y for y in range({i})]" for i in range(400))
    errors = []

    def scan():
        try:
            for _ in range(5):
                scan_sources([(0, source)], REFERENCES)
        except Exception as error:
            errors.append(error)

    threads = [threading.Thread(target=scan) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
