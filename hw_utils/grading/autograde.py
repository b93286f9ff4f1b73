"""Autograde a group of submissions in a throwaway course with real ``nbgrader autograde``.

Everything a grading run needs travels as bytes (:class:`GradingTask` in, a list of
:class:`SubmissionResult` out), so the same function runs in a thread, a process or on a Dask
worker. Inside, a scratch course is unpacked from the trusted bundle (config, manifest entry,
assets, a template gradebook of this assignment only), the submissions are copied in, one nbgrader
process autogrades them one after the other (each student's cells in its own sandboxed kernel,
the tests in one checker kernel kept warm for the group: see
:class:`hw_utils.grading.nbgrader_plugins.BoundaryExecute`), the students' cells are scanned for
what the boundary cannot decide (:mod:`hw_utils.grading.tamper`), and the per-cell scores are read
back from the throwaway gradebook. The caller merges them into the real one.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import NamedTuple

import nbformat
from nbgrader.api import Gradebook, MissingEntry

from hw_utils.grading.fresh_gradebook import ensure_sqlite_gradebook
from hw_utils.grading.nbgrader_cli import run_nbgrader
from hw_utils.grading.nbgrader_plugins import STUDENT, cell_roles
from hw_utils.grading.sandbox import SandboxPolicy, prepare
from hw_utils.grading.tamper import (
    assignment_references,
    defined_names,
    flags_from,
    scan_sources,
)
from hw_utils.manifest import Assignment
from hw_utils.references import all_references

# Status values, in grades.csv and SubmissionResult.status.
GRADED = "graded"
MISSING = "missing"
UNREADABLE = "unreadable"
TIMEOUT = "timeout"
KERNEL_DIED = "kernel_died"
ERROR = "error"

STARTUP_MARGIN_S = 60


class CellScore(NamedTuple):
    """One graded cell of one submission; ``score`` is ``None`` while it awaits a manual grade."""

    notebook: str
    grade_id: str
    score: float | None
    max_score: float
    needs_manual_grade: bool


class SubmittedWork(NamedTuple):
    """What one student handed in: notebook name (without .ipynb) -> bytes."""

    student_id: str
    notebooks: dict[str, bytes]
    flags: tuple[str, ...]


class GradingTask(NamedTuple):
    """A group of submissions graded by one nbgrader process."""

    assignment: Assignment
    submissions: tuple[SubmittedWork, ...]
    bundle: bytes
    policy: SandboxPolicy


class SubmissionResult(NamedTuple):
    student_id: str
    status: str
    flags: tuple[str, ...]
    cells: tuple[CellScore, ...]
    autograded: dict[str, bytes]
    message: str
    seconds: float


def trusted_copy(course_root: Path, assignment: Assignment, scratch: Path) -> Path:
    """A minimal course folder for grading ``assignment``: nbgrader_config.py, its manifest entry
    and its source folder; returned path is ``scratch/course``."""
    course_root, copy = Path(course_root), Path(scratch) / "course"
    if copy.exists():
        shutil.rmtree(copy)
    (copy / "assignments").mkdir(parents=True)
    shutil.copy(course_root / "nbgrader_config.py", copy)
    shutil.copy(course_root / "assignments" / f"{assignment.id}.toml", copy / "assignments")
    shutil.copytree(course_root / "source" / assignment.id, copy / "source" / assignment.id)
    return copy


def register_assignment(
    copy: Path, assignment: Assignment, db_url: str, release_dir: Path | None = None
) -> None:
    """Record the assignment (notebooks, cells, hidden tests) in the gradebook at ``db_url``;
    nbgrader also writes a release into ``release_dir`` (default: ``copy/release``), which two
    registrations running at once must not share."""
    ensure_sqlite_gradebook(db_url)
    run_nbgrader(
        [
            "generate_assignment",
            assignment.id,
            "--force",
            f"--db={db_url}",
            f"--CourseDirectory.release_directory={release_dir or copy / 'release'}",
        ],
        copy,
    )


def make_bundle(copy: Path, assignment: Assignment) -> bytes:
    """The trusted files a grading run needs, as a tar: the :func:`trusted_copy` without its
    source notebooks, plus a template gradebook holding only this assignment."""
    template = copy / "gradebook.db"
    template.unlink(missing_ok=True)
    register_assignment(copy, assignment, f"sqlite:///{template}")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path in sorted(copy.rglob("*")):
            relative = path.relative_to(copy)
            if relative.parts[0] == "release" or not path.is_file():
                continue
            if relative.parts[0] == "source" and path.suffix == ".ipynb":
                continue
            tar.add(path, arcname=str(relative))
    return buffer.getvalue()


def scores_from_gradebook(
    db_path: Path, assignment: Assignment, student_id: str | None
) -> list[CellScore]:
    """Per-cell scores of ``student_id`` (or, with ``None``, every cell at zero)."""
    cells = []
    with Gradebook(f"sqlite:///{db_path}") as gb:
        for notebook in gb.find_assignment(assignment.id).notebooks:
            for cell in notebook.grade_cells:
                if student_id is None:
                    cells.append(CellScore(notebook.name, cell.name, 0.0, cell.max_score, False))
                    continue
                try:
                    grade = gb.find_grade(cell.name, notebook.name, assignment.id, student_id)
                except MissingEntry:
                    cells.append(CellScore(notebook.name, cell.name, 0.0, cell.max_score, False))
                    continue
                manual = grade.needs_manual_grade
                score = grade.manual_score if grade.manual_score is not None else grade.auto_score
                cells.append(
                    CellScore(
                        notebook.name,
                        cell.name,
                        None if (manual and score is None) else float(score or 0.0),
                        float(cell.max_score),
                        bool(manual),
                    )
                )
    return cells


def _unreadable(notebooks: dict[str, bytes]) -> str | None:
    for name, content in notebooks.items():
        try:
            nbformat.validate(nbformat.reads(content.decode("utf-8"), as_version=4))
        except Exception as exc:
            return f"{name}.ipynb is not a readable notebook ({type(exc).__name__}: {exc})"[:500]
    return None


def grade_group(task: GradingTask) -> list[SubmissionResult]:
    """Autograde every submission of ``task``; never raises: every failure becomes a status
    and a message of the submissions it concerns."""
    assignment = task.assignment
    with tempfile.TemporaryDirectory(prefix="grade-") as scratch:
        course = Path(scratch) / "course"
        with tarfile.open(fileobj=io.BytesIO(task.bundle), mode="r:gz") as tar:
            tar.extractall(course, filter="data")
        template_db = course / "gradebook.db"
        zero = scores_from_gradebook(template_db, assignment, None)
        results: dict[str, SubmissionResult] = {}

        def result(work, status, cells, message="", autograded=None, flags=(), seconds=0.0):
            results[work.student_id] = SubmissionResult(
                work.student_id,
                status,
                (*work.flags, *flags),
                tuple(cells),
                autograded or {},
                message,
                round(seconds, 2),
            )

        to_grade = []
        for work in task.submissions:
            problem = _unreadable(work.notebooks) if work.notebooks else None
            if not work.notebooks:
                result(work, MISSING, zero)
            elif problem:
                result(work, UNREADABLE, zero, problem)
            else:
                folder = course / "submitted" / work.student_id / assignment.id
                folder.mkdir(parents=True)
                for name, content in work.notebooks.items():
                    (folder / f"{name}.ipynb").write_bytes(content)
                to_grade.append(work)
        if to_grade:
            _autograde(course, task, to_grade, Path(scratch), result)
    return [results[work.student_id] for work in task.submissions]


def _autograde(course: Path, task: GradingTask, works: list, scratch: Path, result) -> None:
    assignment, limits = task.assignment, task.assignment.limits
    template_db = course / "gradebook.db"
    checker_dir = course / "source" / assignment.id  # the trusted assets (maybe none)
    checker_dir.mkdir(parents=True, exist_ok=True)
    status_dir = scratch / "status"
    status_dir.mkdir()
    sandbox = prepare(task.policy, assignment, scratch, status_dir)
    budget = len(works) * (limits.notebook_timeout_s + STARTUP_MARGIN_S)
    args = [  # no --student: the scratch course holds exactly these students
        "autograde",
        assignment.id,
        "--force",
        # the group's own template gradebook, whatever db_url the course's config names (the
        # team's server is merged into afterwards, by the trusted side)
        f"--db=sqlite:///{template_db}",
        f"--BoundaryExecute.timeout={limits.cell_timeout_s}",
        f"--BoundaryExecute.checker_dir={checker_dir}",
        f"--LimitOutput.max_lines={limits.output_max_lines}",
        *sandbox.args,
    ]
    log_tail = ""
    try:
        run = run_nbgrader(args, course, timeout=budget, env=sandbox.env, check=False)
        log_tail = "\n".join(run.stdout.strip().splitlines()[-20:])
        failure = f"nbgrader autograde failed (exit {run.returncode}):\n{log_tail}"
    except subprocess.TimeoutExpired:
        failure = f"grading took longer than {budget} s and was stopped; no cell scores were saved"
    finally:
        sandbox.cleanup()
    for work in works:
        autograded_dir = course / "autograded" / work.student_id / assignment.id
        outputs = (
            {p.name: p.read_bytes() for p in sorted(autograded_dir.glob("*.ipynb"))}
            if autograded_dir.is_dir()
            else {}
        )
        status_file = status_dir / f"{work.student_id}.json"
        execution = json.loads(status_file.read_text()) if status_file.exists() else {}
        seconds = float(execution.get("seconds", 0.0))
        if not outputs or "seconds" not in execution:
            zero = scores_from_gradebook(template_db, assignment, None)
            status = TIMEOUT if "longer than" in failure else ERROR
            result(work, status, zero, failure, seconds=seconds)
            continue
        result(
            work,
            execution.get("status", GRADED),
            scores_from_gradebook(template_db, assignment, work.student_id),
            execution.get("message", ""),
            outputs,
            (*execution.get("flags", ()), *static_flags(template_db, assignment, outputs)),
            seconds,
        )


def static_flags(db_path: Path, assignment: Assignment, autograded: dict[str, bytes]) -> list[str]:
    """Flags of the static scan of every student cell (cells the gradebook does not know as the
    instructor's), with this assignment's course references (see :mod:`hw_utils.references`)."""
    db_url = f"sqlite:///{db_path}"
    graded: set[str] = set()
    with Gradebook(db_url) as gb:
        for notebook in gb.find_assignment(assignment.id).notebooks:
            for cell in notebook.source_cells:
                if cell.name in {c.name for c in notebook.solution_cells}:
                    graded |= defined_names(cell.source)
    references = assignment_references(graded, all_references())
    flags: list[str] = []
    for name, content in autograded.items():
        nb = nbformat.reads(content.decode("utf-8"), as_version=4)
        roles = cell_roles(db_url, Path(name).stem, assignment.id)
        student_cells = [
            (index, cell.source)
            for index, cell in enumerate(nb.cells)
            if cell.cell_type == "code"
            and roles.get(cell.metadata.get("nbgrader", {}).get("grade_id"), STUDENT) == STUDENT
        ]
        flags += flags_from(scan_sources(student_cells, references))
    return sorted(set(flags))
