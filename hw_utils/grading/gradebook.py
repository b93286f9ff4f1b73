"""The course gradebook: merging sandboxed results, reading scores, sharing it with a team.

The gradebook is nbgrader's database: SQLite in the course folder by default, or any database
named in ``nbgrader_config.py`` (``c.CourseDirectory.db_url``) or with ``--db``, e.g. a PostgreSQL
server that a team of graders shares. Only trusted code writes here: results come back from the
throwaway gradebooks of the grading runs as plain values and are copied cell by cell. Manual
grades already entered by a grader are kept when a submission is graded again. Several
``course grade`` runs may write at once (two assignments, or two halves of a class): writes wait
for each other (SQLite's busy timeout, a lock file in the course folder) and a write that
collides with another one is tried again.
"""

from __future__ import annotations

import contextlib
import fcntl
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple, TypeVar

from nbgrader.api import Gradebook, InvalidEntry, MissingEntry
from sqlalchemy.exc import DBAPIError, SAWarning

from hw_utils.grading.autograde import CellScore, SubmissionResult
from hw_utils.grading.nbgrader_cli import NbgraderError

T = TypeVar("T")
SQLITE_BUSY_S = 120  # how long an SQLite writer waits for another one
RETRIES = 6


def normalize_db_url(url: str) -> str:
    """``postgresql://...`` with the driver this package installs (psycopg 3); others as given."""
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def default_db_url(course_root: Path) -> str:
    """The course's gradebook: ``c.CourseDirectory.db_url`` of its nbgrader_config.py if set,
    else ``gradebook.db`` in the course folder (with a busy timeout for concurrent runs)."""
    from traitlets.config.loader import PyFileConfigLoader

    course_root = Path(course_root).resolve()
    config = PyFileConfigLoader("nbgrader_config.py", path=str(course_root)).load_config()
    configured = config.get("CourseDirectory", {}).get("db_url")
    if configured:
        return normalize_db_url(str(configured))
    return f"sqlite:///{course_root / 'gradebook.db'}?timeout={SQLITE_BUSY_S}"


@contextlib.contextmanager
def gradebook_lock(course_root: Path) -> Iterator[None]:
    """Serialise the writes of the ``course grade`` runs of one course folder."""
    with open(Path(course_root) / ".gradebook.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def retried(write: Callable[[], T]) -> T:
    """``write()``, again after a short wait when it collided with another writer (a locked
    SQLite file, a row another run created at the same moment)."""
    for attempt in range(RETRIES):
        try:
            return write()
        except (DBAPIError, InvalidEntry, NbgraderError):
            if attempt == RETRIES - 1:
                raise
            time.sleep(0.2 * 2**attempt)
    raise AssertionError("unreachable")


def merge_result(db_url: str, assignment_id: str, result: SubmissionResult) -> None:
    """Write one submission's autograde scores into the gradebook (creating student and
    submission rows as needed)."""
    retried(lambda: _merge(db_url, assignment_id, result))


def _merge(db_url: str, assignment_id: str, result: SubmissionResult) -> None:
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
