"""The course gradebook (nbgrader's SQLite database): merging sandboxed results, reading scores.

Only trusted code writes here: results come back from the throwaway gradebooks of the grading
runs as plain values and are copied cell by cell. Manual grades already entered by a grader are
kept when a submission is graded again.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import NamedTuple

from nbgrader.api import Gradebook, MissingEntry
from sqlalchemy.exc import SAWarning

from hw_utils.grading.autograde import CellScore, SubmissionResult


def default_db_url(course_root: Path) -> str:
    return f"sqlite:///{Path(course_root).resolve() / 'gradebook.db'}"


def merge_result(db_url: str, assignment_id: str, result: SubmissionResult) -> None:
    """Write one submission's autograde scores into the gradebook (creating student and
    submission rows as needed)."""
    with Gradebook(db_url) as gb, warnings.catch_warnings():
        # nbgrader's add_submission trips a harmless SQLAlchemy autoflush warning.
        warnings.simplefilter("ignore", SAWarning)
        gb.update_or_create_student(result.student_id)
        try:
            gb.find_submission(assignment_id, result.student_id)
        except MissingEntry:
            gb.add_submission(assignment_id, result.student_id)
        for cell in result.cells:
            grade = gb.find_grade(cell.grade_id, cell.notebook, assignment_id, result.student_id)
            if cell.needs_manual_grade:
                grade.auto_score = None
                grade.needs_manual_grade = grade.manual_score is None
            else:
                grade.auto_score = cell.score
                grade.needs_manual_grade = False
        gb.db.commit()


class StudentScores(NamedTuple):
    score: float
    max_score: float
    needs_manual_grade: bool
    cells: tuple[CellScore, ...]


def read_scores(db_url: str, assignment_id: str, student_id: str) -> StudentScores | None:
    """The student's current scores (manual grades included), or ``None`` without a submission."""
    with Gradebook(db_url) as gb:
        try:
            submission = gb.find_submission(assignment_id, student_id)
        except MissingEntry:
            return None
        cells = []
        for notebook in submission.notebooks:
            for grade in notebook.grades:
                pending = bool(grade.needs_manual_grade)
                cells.append(
                    CellScore(
                        notebook.name,
                        grade.name,
                        None if pending else float(grade.score),
                        float(grade.max_score),
                        pending,
                    )
                )
        return StudentScores(
            float(submission.score),
            float(submission.max_score),
            bool(submission.needs_manual_grade),
            tuple(cells),
        )
