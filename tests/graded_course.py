"""One real grading run of the fixture assignment, shared by the report, similarity and browser
tests of a session: ``course grade`` (sandbox and boundary on) over the fixture's samples and a
few crafted submissions. The tests build on what grading produced (gradebook, grades.csv,
autograded notebooks), never on the fixture's cells.

Crafted submissions (each the full sample unless said otherwise):

- ``ada``: adds a cell with her own loop implementations of three hw1 functions
  (``fixtures/similarity/original.py``);
- ``ben``: adds ada's code with every variable renamed and the functions reordered
  (``renamed.py``);
- ``cy``: adds an independent correct implementation (``independent.py``);
- ``eve``: hands in the release notebook untouched, like ``sample_blank`` (a blank pair);
- ``fay``: hands in the full sample under another file name (flagged ``renamed_notebook``).
"""

from __future__ import annotations

import copy
import os
import shutil
from pathlib import Path
from typing import NamedTuple

import nbformat
import pytest
from conftest import make_fixture_course

from hw_utils.grading import cells as C
from hw_utils.grading.batch import grade_batch
from hw_utils.grading.samples import load_samples, materialise
from hw_utils.grading.sandbox import SandboxUnavailableError, require_bwrap
from hw_utils.manifest import Assignment, get_assignment

ASSIGNMENT = "hw9_fixture"
SAMPLES = Path(__file__).resolve().parent / "fixtures" / "similarity"
ADDED = {"ada": "original", "ben": "renamed", "cy": "independent"}
BLANK = ("sample_blank", "eve")


class GradedCourse(NamedTuple):
    course: Path
    assignment: Assignment
    grades_dir: Path
    students: tuple[str, ...]


def sample_code(name: str) -> str:
    """``fixtures/similarity/<name>.py``."""
    return (SAMPLES / f"{name}.py").read_text()


def _require_bwrap() -> None:
    try:
        require_bwrap()
    except SandboxUnavailableError as error:
        if os.environ.get("CI"):
            pytest.fail(f"{error} (CI must run the grading tests)")
        pytest.skip(str(error))


def _write(folder: Path, notebook, name: str = f"{ASSIGNMENT}.ipynb") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, folder / name)


def _crafted(course: Path, submissions: Path) -> None:
    full = nbformat.read(submissions / "sample_full" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", 4)
    for student, sample in ADDED.items():
        notebook = copy.deepcopy(full)
        notebook.cells.append(nbformat.v4.new_code_cell(sample_code(sample)))
        _write(submissions / student / ASSIGNMENT, notebook)
    release = C.read_notebook(C.release_notebook(course, ASSIGNMENT, ASSIGNMENT))
    _write(submissions / "eve" / ASSIGNMENT, release)
    _write(submissions / "fay" / ASSIGNMENT, full, "homework final.ipynb")


def graded_course(tmp_path_factory: pytest.TempPathFactory) -> GradedCourse:
    """The graded fixture course of this test session (graded on the first call)."""
    _require_bwrap()
    root = tmp_path_factory.getbasetemp() / "graded-fixture-course"
    course, grades = root / "course", root / "graded"
    if not (root / "done").exists():
        shutil.rmtree(root, ignore_errors=True)
        make_fixture_course(course)
        assignment = get_assignment(course, ASSIGNMENT)
        submissions = root / "submissions"
        for sample in load_samples(course, ASSIGNMENT):
            materialise(sample, course, assignment, submissions)
        _crafted(course, submissions)
        grade_batch(course, ASSIGNMENT, submissions, grades, jobs=2, log=lambda _: None)
        (root / "done").touch()
    students = tuple(sorted(p.name for p in (root / "submissions").iterdir()))
    return GradedCourse(course, get_assignment(course, ASSIGNMENT), grades, students)
