"""Scratch copies of the course for the browser tests, and the notebooks a student would have.

Nothing here writes into the repository: the course is copied, and students' notebooks are made
from the committed release with :func:`hw_utils.grading.samples.materialise`.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

from conftest import REPO

from hw_utils.grading import cells as C
from hw_utils.grading.samples import Sample, load_samples, materialise
from hw_utils.manifest import Assignment, load_manifest

STUB = re.compile(r'raise NotImplementedError\("([\w.]+): replace this line with your code"\)')
STUB_ERROR = re.compile(r"NotImplementedError: ([\w.]+): replace this line with your code\s*$")
"""The last line of the error an untouched stub raises, as a notebook shows it."""
# A test cell that stops on an error (an untouched stub, a check that raises) shows IPython's
# traceback: a few frames (the test line, the test helpers, the stub's `raise`) of a few context
# lines each, then the message; a traceback through library internals or a printed tensor is
# much longer.
MAX_ERROR_LINES = 60

REAL_ASSIGNMENTS = list(load_manifest(REPO))


def sample(course: Path, assignment_id: str, name: str) -> Sample:
    """``samples/<assignment_id>/<name>.toml``."""
    for found in load_samples(course, assignment_id):
        if found.student_id == f"sample_{name}":
            return found
    raise AssertionError(f"samples/{assignment_id}/{name}.toml is missing")


def partly_wrong_sample(course: Path, assignment_id: str) -> Sample:
    """The buggy sample that loses points in the fewest test cells (then by name): one small
    mistake in an otherwise solved notebook."""
    buggy = [s for s in load_samples(course, assignment_id) if s.base == "solution" and s.expected]
    if not buggy:
        raise AssertionError(f"samples/{assignment_id}/ has no buggy sample to validate")
    return min(buggy, key=lambda s: (len(s.expected), s.student_id))


def write_work(course: Path, assignment: Assignment, work: Sample, folder: Path) -> None:
    """Write the notebooks of ``work`` (a sample) into ``folder``, as the student would have
    them after working."""
    with tempfile.TemporaryDirectory() as scratch:
        written = materialise(work, course, assignment, Path(scratch)) / assignment.id
        for notebook in assignment.notebooks:
            shutil.copy(written / f"{notebook}.ipynb", folder / f"{notebook}.ipynb")


def student_folder(course: Path, assignment: Assignment, work: Sample | None, dest: Path) -> Path:
    """``dest``: the released folder of ``assignment`` (notebooks and assets) as a student has it,
    its notebooks holding ``work`` (``None``: untouched)."""
    shutil.copytree(course / "release" / assignment.id, dest)
    if work is not None:
        write_work(course, assignment, work, dest)
    return dest


def stub_names(notebook) -> set[str]:
    """Names in the release's stubs: ``conv2d_forward``, ``MyConv2d.__init__``, ..."""
    return {m.group(1) for cell in notebook.cells for m in STUB.finditer(cell.source)}


def solution_ids(notebook) -> list[str]:
    return [C.grade_id(c) for c in notebook.cells if c.cell_type == "code" and C.is_solution(c)]


def graded_tests(notebook) -> dict[int, object]:
    """Index -> cell of every autograded test cell."""
    return {i: c for i, c in enumerate(notebook.cells) if C.is_test(c)}


def assert_each_test_stops_on_a_named_stub(notebook, shown: dict[int, list[str]]) -> None:
    """``shown``: the errors each test cell of an untouched release shows (index -> texts, cell
    by cell after Run All stopped). Each test cell shows exactly one, a stub's
    NotImplementedError naming a function of the release, in a few lines; every solution cell's
    function is named by some test cell."""
    stubs, named = stub_names(notebook), set()
    for index, errors in shown.items():
        assert len(errors) == 1, f"test cell {index} shows {len(errors)} errors:\n{errors}"
        message = STUB_ERROR.search(errors[0])
        assert message and message.group(1) in stubs, (
            f"test cell {index} of the untouched release fails with something other than a "
            f"stub's NotImplementedError:\n{errors[0][-2000:]}"
        )
        assert len(errors[0].splitlines()) <= MAX_ERROR_LINES and "tensor(" not in errors[0], (
            f"test cell {index} shows a wall of text for an untouched stub:\n{errors[0]}"
        )
        named.add(message.group(1))
    unnamed = [f for f in solution_ids(notebook) if not any(n.split(".")[0] == f for n in named)]
    assert not unnamed, f"no test cell of the untouched release names the stub of {unnamed}"
