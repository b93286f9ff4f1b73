"""Autograde one submission in a throwaway course with real ``nbgrader autograde``.

Everything a grading run needs travels as bytes (:class:`GradingTask` in, :class:`SubmissionResult`
out), so the same function runs in a thread, a process or on a Dask worker. Inside, a scratch
course is unpacked from the trusted bundle (config, manifest entry, assets, a template gradebook
of this assignment only), the submission is copied in, nbgrader autogrades it (student cells in
the sandboxed student kernel, tests in the checker kernel: see
:class:`hw_utils.grading.nbgrader_plugins.BoundaryExecute`), the student's cells are scanned for
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
import time
from pathlib import Path
from typing import NamedTuple

import nbformat
from nbgrader.api import Gradebook, MissingEntry

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


class GradingTask(NamedTuple):
    assignment: Assignment
    student_id: str
    notebooks: dict[str, bytes]
    flags: tuple[str, ...]
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


def register_assignment(copy: Path, assignment: Assignment, db_url: str) -> None:
    """Record the assignment (notebooks, cells, hidden tests) in the gradebook at ``db_url``."""
    run_nbgrader(
        [
            "generate_assignment",
            assignment.id,
            "--force",
            f"--db={db_url}",
            f"--CourseDirectory.release_directory={copy / 'release'}",
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


def grade_submission(task: GradingTask) -> SubmissionResult:
    """Autograde one submission; never raises: every failure becomes a status and a message."""
    started = time.monotonic()
    assignment, student = task.assignment, task.student_id
    with tempfile.TemporaryDirectory(prefix=f"grade-{student}-") as scratch:
        course = Path(scratch) / "course"
        with tarfile.open(fileobj=io.BytesIO(task.bundle), mode="r:gz") as tar:
            tar.extractall(course, filter="data")
        template_db = course / "gradebook.db"

        def finish(status, cells, message="", autograded=None, flags=()):
            return SubmissionResult(
                student,
                status,
                (*task.flags, *flags),
                tuple(cells),
                autograded or {},
                message,
                round(time.monotonic() - started, 2),
            )

        if not task.notebooks:
            return finish(MISSING, scores_from_gradebook(template_db, assignment, None))
        problem = _unreadable(task.notebooks)
        if problem:
            return finish(UNREADABLE, scores_from_gradebook(template_db, assignment, None), problem)

        submitted = course / "submitted" / student / assignment.id
        submitted.mkdir(parents=True)
        for name, content in task.notebooks.items():
            (submitted / f"{name}.ipynb").write_bytes(content)

        limits = assignment.limits
        checker_dir = course / "source" / assignment.id  # the trusted assets (maybe none)
        checker_dir.mkdir(parents=True, exist_ok=True)
        status_file = Path(scratch) / "execution.json"
        sandbox = prepare(task.policy, assignment, Path(scratch), status_file)
        args = [
            "autograde",
            assignment.id,
            f"--student={student}",
            "--force",
            f"--BoundaryExecute.timeout={limits.cell_timeout_s}",
            f"--BoundaryExecute.checker_dir={checker_dir}",
            f"--LimitOutput.max_lines={limits.output_max_lines}",
            *sandbox.args,
        ]
        try:
            run = run_nbgrader(
                args,
                course,
                timeout=limits.notebook_timeout_s + STARTUP_MARGIN_S,
                env=sandbox.env,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return finish(
                TIMEOUT,
                scores_from_gradebook(template_db, assignment, None),
                f"grading took longer than {limits.notebook_timeout_s + STARTUP_MARGIN_S} s and "
                "was stopped; no cell scores were saved",
            )
        finally:
            if sandbox.cgroup is not None:
                sandbox.cgroup.remove()
        autograded_dir = course / "autograded" / student / assignment.id
        outputs = (
            {p.name: p.read_bytes() for p in sorted(autograded_dir.glob("*.ipynb"))}
            if autograded_dir.is_dir()
            else {}
        )
        execution = json.loads(status_file.read_text()) if status_file.exists() else {}
        log_tail = "\n".join(run.stdout.strip().splitlines()[-20:])
        if run.returncode != 0 or not outputs:
            return finish(
                ERROR,
                scores_from_gradebook(template_db, assignment, None),
                f"nbgrader autograde failed (exit {run.returncode}):\n{log_tail}",
            )
        return finish(
            execution.get("status", GRADED),
            scores_from_gradebook(template_db, assignment, student),
            execution.get("message", ""),
            outputs,
            (*execution.get("flags", ()), *static_flags(template_db, assignment, outputs)),
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
