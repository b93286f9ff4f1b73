"""The grading boundary (hw_utils.boundary): what crosses, and the same behaviour on both sides.

Data rules are tested directly; the local side runs in a real kernel (a notebook executed by
nbclient); the remote side is a checker kernel calling a student kernel over Jupyter's protocol.
"""

from __future__ import annotations

import io
import os
import pickle
import textwrap
from typing import NamedTuple

import nbformat
import numpy as np
import pytest
import torch
from jupyter_client.manager import start_new_kernel
from nbclient import NotebookClient

from hw_utils.boundary import data as D
from hw_utils.training import EpochResult


class _Local(NamedTuple):
    a: int
    b: float


# ---- data --------------------------------------------------------------------------------


def test_plain_values_cross_as_copies():
    weight = torch.nn.Parameter(torch.ones(2, 3))
    value = {"t": weight * 2, "size": torch.Size([2, 3]), "kind": torch.float64, "n": (1, 2.5)}
    crossed = D.decode(D.encode(D.to_data(value)))
    assert type(crossed["t"]) is torch.Tensor and not crossed["t"].requires_grad
    assert torch.equal(crossed["t"], torch.full((2, 3), 2.0))
    assert crossed["size"] == torch.Size([2, 3]) and crossed["kind"] is torch.float64
    assert crossed["n"] == (1, 2.5)
    original = torch.zeros(3)
    copy = D.to_data(original)
    copy += 1
    assert torch.equal(original, torch.zeros(3)), "to_data must copy tensors"


def test_hw_utils_namedtuples_come_back_as_themselves_others_as_tuples():
    crossed = D.decode(D.encode(D.to_data([EpochResult(0.5, 80.0), _Local(1, 2.0)])))
    assert isinstance(crossed[0], EpochResult) and crossed[0].accuracy == 80.0
    assert type(crossed[1]) is tuple and crossed[1] == (1, 2.0)


def test_numpy_scalars_become_numbers_and_arrays_are_refused():
    assert D.to_data(np.float64(2.5)) == 2.5 and type(D.to_data(np.int64(3))) is int
    with pytest.raises(D.NotDataError, match=r"numpy\.ndarray"):
        D.to_data(np.zeros(3), "the value returned by f")


@pytest.mark.parametrize(
    ("value", "match"),
    [
        (torch.nn.Linear(2, 2), "torch.Linear"),
        (torch.zeros(2).as_subclass(type("Sneaky", (torch.Tensor,), {})), "subclass"),
        ((x for x in range(3)), "generator"),
        ({object(): 1}, "key of type object"),
        ({"__hw_record__": 1}, "key of type str"),
        ({1, 2}, "is a set"),
    ],
)
def test_objects_are_refused_with_their_type(value, match):
    with pytest.raises(D.NotDataError, match=match):
        D.to_data(value)


def test_too_large_and_too_deep_are_refused():
    nested: list = []
    for _ in range(40):
        nested = [nested]
    with pytest.raises(D.NotDataError, match="nested"):
        D.to_data(nested)
    with pytest.raises(D.NotDataError, match="too large"):
        D.to_data(torch.zeros(D.MAX_BYTES // 4 + 1))


def test_decode_never_builds_an_arbitrary_object():
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    buffer = io.BytesIO()
    torch.save({"x": Evil()}, buffer)
    with pytest.raises(D.NotDataError):
        D.decode(buffer.getvalue())
    with pytest.raises(D.NotDataError):
        D.decode(pickle.dumps(Evil()))


def test_errors_cross_as_the_nearest_builtin():
    class Mine(ValueError):
        pass

    error = D.error_from_data(D.error_to_data(Mine("bad\x1b[2J size")), {})
    assert type(error) is ValueError and "(Mine) bad?[2J size" in str(error)
    assert type(D.error_from_data(D.error_to_data(NotImplementedError("stub")), {})) is (
        NotImplementedError
    )
    weird = D.error_from_data({"classes": ["x.Y"], "type": "Y", "message": "m"}, {})
    assert type(weird) is RuntimeError and str(weird) == "Y: m"
    assert isinstance(D.error_from_data("garbage", {}), D.BoundaryError)


# ---- the same test on both sides --------------------------------------------------------

STUDENT_CODE = textwrap.dedent(
    """
    import torch
    from torch import nn

    def scale(x, k=2):
        print("student print")
        x *= 100  # mutates its argument: the test's copy must not change
        return x / 100 * k

    def helper(n):
        return n + 1

    def uses_helper(n):
        return helper(n) * 10

    def uses_conv(x, w):
        return torch.nn.functional.conv2d(x, w)

    def fails(n):
        raise ValueError(f"n={n} is not allowed")

    def returns_layer():
        return nn.Linear(2, 2)

    class Layer(nn.Module):
        def __init__(self, n):
            super().__init__()
            self.weight = nn.Parameter(torch.randn(n, n))
            self.bias = None

        def forward(self, x):
            return x @ self.weight

    table = {"conv1": (8, 28, 44)}
    """
)

TEST_CODE = textwrap.dedent(
    """
    import torch
    from hw_utils.boundary import NotDataError, ForbiddenCallError, student
    from hw_utils.probes import common

    results = {}
    x = torch.ones(3)
    results["scale"] = student.scale(x, k=3).tolist()
    results["x unchanged"] = x.tolist()
    results["value"] = student.value("table")
    results["name"] = student.scale.__name__
    with student.standing_in(helper=abs):
        results["standing_in"] = student.uses_helper(-5)
    results["after"] = student.uses_helper(-5)
    with student.forbidding("torch.nn.functional.conv2d", reason="write it yourself"):
        try:
            student.uses_conv(torch.ones(1, 1, 2, 2), torch.ones(1, 1, 1, 1))
        except ForbiddenCallError as error:
            results["forbidden"] = str(error)
    results["allowed again"] = student.uses_conv(
        torch.ones(1, 1, 2, 2), torch.ones(1, 1, 1, 1)
    ).shape
    try:
        student.fails(3)
    except ValueError as error:
        results["error"] = str(error)
    try:
        student.returns_layer()
    except NotDataError as error:
        results["not data"] = str(error)
    state = student.run(common.module_state, student.Layer, (2,), {}, seed=0)
    results["probe"] = (state["class"], state["parameter_classes"], state["attributes"]["bias"])
    try:
        student.missing(1)
    except NameError as error:
        results["missing"] = str(error)
    """
)

EXPECTED = {
    "scale": [3.0, 3.0, 3.0],
    "x unchanged": [1.0, 1.0, 1.0],
    "value": {"conv1": (8, 28, 44)},
    "name": "scale",
    "standing_in": 50,
    "after": -40,
    "allowed again": torch.Size([1, 1, 2, 2]),
    "error": "n=3 is not allowed",
    "probe": ("Layer", {"weight": "Parameter"}, None),
}


def _check(results: dict) -> None:
    for key, value in EXPECTED.items():
        assert results[key] == value, key
    assert "torch.nn.functional.conv2d was called" in results["forbidden"]
    assert "write it yourself" in results["forbidden"]
    assert "returned by returns_layer is a torch.Linear" in results["not data"]
    assert "'missing' is not defined" in results["missing"]


def _run(kc, code: str) -> None:
    reply = kc.execute_interactive(code, timeout=60)
    assert reply["content"]["status"] == "ok", reply["content"]


def _get(kc, expression: str):
    reply = kc.execute_interactive("", user_expressions={"r": expression}, timeout=60)
    return eval(reply["content"]["user_expressions"]["r"]["data"]["text/plain"], {"torch": torch})


def test_one_kernel_no_boundary(tmp_path):
    cells = [STUDENT_CODE, TEST_CODE, "results"]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    NotebookClient(nb, timeout=60, resources={"metadata": {"path": str(tmp_path)}}).execute()
    _check(eval(nb.cells[2].outputs[0]["data"]["text/plain"], {"torch": torch}))
    printed = "".join(o.get("text", "") for o in nb.cells[1].outputs)
    assert "student print" in printed, "without a boundary the student's prints show"


@pytest.fixture
def two_kernels():
    student_km, student_kc = start_new_kernel(kernel_name="python3")
    _run(student_kc, "import hw_utils.boundary.serve")  # as the setup cell of a notebook would
    env = {**os.environ, "HW_BOUNDARY_CHECKER": "1"}
    checker_km, checker_kc = start_new_kernel(kernel_name="python3", env=env)
    _run(
        checker_kc,
        f"import hw_utils.boundary\nhw_utils.boundary.connect({student_km.connection_file!r}, 4)",
    )
    yield student_kc, checker_kc, student_km
    for km, kc in ((checker_km, checker_kc), (student_km, student_kc)):
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def test_checker_kernel_calls_the_student_kernel(two_kernels):
    student_kc, checker_kc, _ = two_kernels
    _run(student_kc, STUDENT_CODE)
    outputs: list = []
    reply = checker_kc.execute_interactive(
        TEST_CODE, timeout=60, output_hook=lambda m: outputs.append(m)
    )
    assert reply["content"]["status"] == "ok", reply["content"]
    _check(_get(checker_kc, "results"))
    printed = "".join(m["content"].get("text", "") for m in outputs)
    assert "student print" not in printed, "the student's prints never reach the checker"
    # Nothing of the student's exists in the checker; nothing of the test in the student.
    assert _get(checker_kc, "'scale' in globals() or 'Layer' in globals()") is False
    assert _get(student_kc, "'results' in globals() or 'TEST_CODE' in globals()") is False


def test_endless_student_code_is_interrupted_then_the_kernel_is_lost(two_kernels):
    student_kc, checker_kc, _ = two_kernels
    _run(
        student_kc,
        "import signal, time\n"
        "def slow():\n    while True: time.sleep(0.01)\n"
        "def stubborn():\n    signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
        "    while True: pass\n"
        "def fine():\n    return 7",
    )
    _run(
        checker_kc,
        textwrap.dedent(
            """
            import time
            from hw_utils.boundary import StudentTimeout, StudentUnavailable, student
            seen = []
            for name in ("slow", "fine", "stubborn", "fine"):
                start = time.monotonic()
                try:
                    seen.append((name, student[name]()))
                except (StudentTimeout, StudentUnavailable) as error:
                    seen.append((name, type(error).__name__, time.monotonic() - start))
            """
        ),
    )
    seen = _get(checker_kc, "seen")
    assert seen[0][:2] == ("slow", "StudentTimeout") and 4 <= seen[0][2] < 30, seen[0]
    assert seen[1] == ("fine", 7), "an interrupted kernel answers the next call"
    assert seen[2][:2] == ("stubborn", "StudentTimeout")
    assert seen[3][:2] == ("fine", "StudentUnavailable"), "ignored interrupt: kernel is lost"
    assert seen[3][2] < 0.1, "later calls fail at once"


def test_a_dead_student_kernel_fails_the_call(two_kernels):
    student_kc, checker_kc, _ = two_kernels
    _run(student_kc, "import os\ndef die():\n    os._exit(1)")
    _run(
        checker_kc,
        "from hw_utils.boundary import StudentUnavailable, student\n"
        "try:\n    student.die()\nexcept StudentUnavailable as error:\n    why = str(error)",
    )
    assert "died" in _get(checker_kc, "why")
