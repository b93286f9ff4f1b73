"""Reading nbgrader cell metadata and the solution / hidden-test regions of source notebooks."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.notebooknode import NotebookNode

BEGIN_SOLUTION = "### BEGIN SOLUTION"
END_SOLUTION = "### END SOLUTION"
BEGIN_HIDDEN = "### BEGIN HIDDEN TESTS"
END_HIDDEN = "### END HIDDEN TESTS"
MARKERS = (BEGIN_SOLUTION, END_SOLUTION, BEGIN_HIDDEN, END_HIDDEN)


def nbgrader_metadata(cell: NotebookNode) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {}) or {}


def grade_id(cell: NotebookNode) -> str | None:
    return nbgrader_metadata(cell).get("grade_id")


def is_solution(cell: NotebookNode) -> bool:
    return bool(nbgrader_metadata(cell).get("solution"))


def is_graded(cell: NotebookNode) -> bool:
    return bool(nbgrader_metadata(cell).get("grade"))


def is_test(cell: NotebookNode) -> bool:
    """An autograded test cell: graded code that is not itself an answer."""
    return cell.cell_type == "code" and is_graded(cell) and not is_solution(cell)


def is_manual_answer(cell: NotebookNode) -> bool:
    """A cell graded by hand: graded and written by the student."""
    return is_graded(cell) and is_solution(cell)


def points(cell: NotebookNode) -> float:
    return float(nbgrader_metadata(cell).get("points", 0) or 0)


def regions(source: str, begin: str, end: str) -> list[str]:
    """The texts between ``begin`` and ``end`` marker lines (markers excluded)."""
    found, current = [], None
    for line in source.split("\n"):
        if begin in line:
            current = []
        elif end in line and current is not None:
            found.append("\n".join(current))
            current = None
        elif current is not None:
            current.append(line)
    return found


def strip_solution_markers(source: str) -> str:
    """The solution as a student would write it: the source without its marker lines."""
    return "\n".join(
        line
        for line in source.split("\n")
        if BEGIN_SOLUTION not in line and END_SOLUTION not in line
    )


def read_notebook(path: Path) -> NotebookNode:
    return nbformat.read(str(path), as_version=4)


def source_notebook(course_root: Path, assignment_id: str, notebook: str) -> Path:
    return Path(course_root) / "source" / assignment_id / f"{notebook}.ipynb"


def release_notebook(course_root: Path, assignment_id: str, notebook: str) -> Path:
    return Path(course_root) / "release" / assignment_id / f"{notebook}.ipynb"
