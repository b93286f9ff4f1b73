"""What ``course grade`` left behind, read back for the reports: the gradebook's scores (manual
grades included), the rows of ``grades.csv`` (status, flags, seconds) and the autograded
notebooks. Every missing piece is a :class:`GradingOutputError` that says what to run.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import NamedTuple

from nbgrader.api import (
    Assignment,
    BaseCell,
    Grade,
    Gradebook,
    Notebook,
    Student,
    SubmittedAssignment,
    SubmittedNotebook,
)
from sqlalchemy.engine import make_url

from hw_utils.grading.gradebook import default_db_url
from hw_utils.manifest import Assignment as ManifestAssignment


class GradingOutputError(ValueError):
    """What a report reads is missing or empty; the message names the file and the fix."""


class CellResult(NamedTuple):
    """One graded cell of one submission; ``score`` is ``None`` while a manual grade is due."""

    notebook: str
    grade_id: str
    score: float | None
    max_score: float


class StudentResult(NamedTuple):
    """One student's submission of one assignment, as the gradebook has it now."""

    student_id: str
    score: float
    max_score: float
    needs_manual_grade: bool
    cells: tuple[CellResult, ...]


class BatchRow(NamedTuple):
    """One row of ``grades.csv``; ``seconds`` is ``None`` in a grades.csv without that column."""

    student_id: str
    status: str
    flags: tuple[str, ...]
    message: str
    seconds: float | None


def gradebook_url(course_root: Path, db_url: str | None = None) -> str:
    """The gradebook's URL; for SQLite, the file must exist (opening it would create it)."""
    url = db_url or default_db_url(course_root)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and not Path(parsed.database or "").is_file():
        raise GradingOutputError(
            f"No gradebook at {parsed.database}: grade first "
            "(course grade <assignment> --submissions ... --out ...), or pass --db with the "
            "gradebook's URL."
        )
    return url


def _never_graded(assignment_id: str, db_url: str) -> GradingOutputError:
    return GradingOutputError(
        f"{assignment_id} has no graded submissions in the gradebook ({db_url}): grade it first "
        f"with course grade {assignment_id} --submissions <folder-or-zip> --out <folder>."
    )


def read_results(db_url: str, assignment_id: str) -> list[StudentResult]:
    """Every submission of the assignment in the gradebook, by student id (one query: nbgrader's
    objects would load each grade's maximum separately)."""
    with Gradebook(db_url) as gb:
        rows = (
            gb.db.query(
                Student.id,
                Notebook.name,
                BaseCell.name,
                Grade.score,
                Grade.max_score,
                Grade.needs_manual_grade,
            )
            .select_from(Grade)
            .join(BaseCell, Grade.cell_id == BaseCell.id)
            .join(SubmittedNotebook, Grade.notebook_id == SubmittedNotebook.id)
            .join(Notebook, SubmittedNotebook.notebook_id == Notebook.id)
            .join(SubmittedAssignment, SubmittedNotebook.assignment_id == SubmittedAssignment.id)
            .join(Assignment, SubmittedAssignment.assignment_id == Assignment.id)
            .join(Student, SubmittedAssignment.student_id == Student.id)
            .filter(Assignment.name == assignment_id)
            .all()
        )
    cells: dict[str, list[CellResult]] = {}
    for student, notebook, grade_id, score, max_score, pending in rows:
        score = None if pending else float(score)
        cells.setdefault(student, []).append(
            CellResult(notebook, grade_id, score, float(max_score))
        )
    if not cells:
        raise _never_graded(assignment_id, db_url)
    return [
        StudentResult(
            student,
            sum(c.score for c in found if c.score is not None),
            sum(c.max_score for c in found),
            any(c.score is None for c in found),
            tuple(found),
        )
        for student, found in sorted(cells.items())
    ]


def read_course(
    db_url: str, assignments: list[ManifestAssignment]
) -> tuple[list[ManifestAssignment], dict[str, float], dict[str, dict[str, float]]]:
    """The graded assignments (course order), their maximum points, and per student the score
    of each assignment the student has a submission of."""
    with Gradebook(db_url) as gb:
        rows = (
            gb.db.query(
                Assignment.name, Assignment.max_score, Student.id, SubmittedAssignment.score
            )
            .select_from(SubmittedAssignment)
            .join(Assignment, SubmittedAssignment.assignment_id == Assignment.id)
            .join(Student, SubmittedAssignment.student_id == Student.id)
            .all()
        )
    maxima, scores = {}, {}
    for assignment_id, max_score, student, score in rows:
        maxima[assignment_id] = float(max_score)
        scores.setdefault(student, {})[assignment_id] = float(score)
    graded = [a for a in assignments if a.id in maxima]
    if not graded:
        names = ", ".join(a.id for a in assignments) or "none"
        raise GradingOutputError(
            f"No assignment has graded submissions in the gradebook ({db_url}; assignments of "
            f"the manifest: {names}): grade one first with course grade <assignment> "
            "--submissions <folder-or-zip> --out <folder>."
        )
    known = {a.id for a in graded}
    maxima = {a.id: maxima[a.id] for a in graded}
    return (
        graded,
        maxima,
        {
            student: {a: v for a, v in found.items() if a in known}
            for student, found in scores.items()
            if known & set(found)
        },
    )


def read_grades_csv(folder: Path) -> dict[str, BatchRow]:
    """The rows of ``<folder>/grades.csv`` (the ``--out`` folder of ``course grade``)."""
    path = Path(folder) / "grades.csv"
    if not path.is_file():
        raise GradingOutputError(
            f"No grades.csv in {folder}: pass --grades the folder that course grade --out wrote."
        )
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        missing = {"student_id", "status", "flags", "message"} - set(reader.fieldnames or ())
        if missing:
            raise GradingOutputError(
                f"{path} is not a grades.csv of course grade (no {', '.join(sorted(missing))} "
                "column): pass --grades the folder that course grade --out wrote."
            )
        rows = {
            r["student_id"]: BatchRow(
                r["student_id"],
                r["status"],
                tuple(f for f in r["flags"].split(";") if f),
                r["message"],
                float(r["seconds"]) if r.get("seconds") not in (None, "") else None,
            )
            for r in reader
        }
    if not rows:
        raise GradingOutputError(
            f"{path} lists no submissions (an empty batch): grade a folder that holds "
            "submissions, then report on that run's folder."
        )
    return rows


def autograded_folder(course_root: Path, student_id: str, assignment_id: str) -> Path:
    """Where ``course grade`` put the student's autograded notebooks (formgrader reads them)."""
    return Path(course_root) / "autograded" / student_id / assignment_id


def autograded_students(course_root: Path, assignment_id: str) -> list[str]:
    """Students with autograded notebooks of the assignment, sorted."""
    root = Path(course_root) / "autograded"
    if not root.is_dir():
        return []
    return sorted(
        folder.name for folder in root.iterdir() if any((folder / assignment_id).glob("*.ipynb"))
    )


def read_autograded(
    course_root: Path, student_id: str, assignment_id: str, notebook: str
) -> dict | None:
    """The student's autograded notebook as JSON, or ``None`` when there is none (a missing or
    unreadable submission)."""
    path = autograded_folder(course_root, student_id, assignment_id) / f"{notebook}.ipynb"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None
