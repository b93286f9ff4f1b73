"""``course grade``: grade a batch of submissions of one assignment, safely and completely.

1. find the submissions (folder or LMS zip), copying nothing back and modifying nothing;
2. build the trusted bundle and record the assignment in the course gradebook;
3. autograde the submissions in groups, each group in a throwaway course with one nbgrader
   process, each student's notebook in its own sandboxed kernel (threads, or Dask workers);
4. merge the scores into the course gradebook, put the autograded notebooks where formgrader
   finds them, render feedback with nbgrader (hidden tests stripped);
5. write ``grades.csv`` (one row per student, a status that says why when something went
   wrong, the seconds its notebook ran), ``cells.csv`` (per-cell detail) and
   ``feedback/<student>/`` into the output folder.
"""

from __future__ import annotations

import csv
import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import as_completed as as_completed_futures
from pathlib import Path
from typing import NamedTuple

from hw_utils.grading import autograde as A
from hw_utils.grading.gradebook import (
    default_db_url,
    gradebook_lock,
    merge_result,
    normalize_db_url,
    read_scores,
    retried,
)
from hw_utils.grading.limits import probe as probe_limits
from hw_utils.grading.nbgrader_cli import run_nbgrader
from hw_utils.grading.samples import scores_match
from hw_utils.grading.sandbox import SandboxPolicy, require_bwrap
from hw_utils.grading.submissions import Submission, discover
from hw_utils.manifest import Assignment, get_assignment
from hw_utils.references import all_references

NEEDS_MANUAL_GRADE = "needs_manual_grade"
EXCHANGE_FILES = ("timestamp.txt", "submission_secret.txt")


class GradeRow(NamedTuple):
    """One line of grades.csv."""

    student_id: str
    score: float
    max_score: float
    status: str
    flags: tuple[str, ...]
    message: str
    seconds: float


class BatchReport(NamedTuple):
    assignment_id: str
    rows: list[GradeRow]
    out_dir: Path
    seconds: float


# Submissions graded by one nbgrader process (and one warm checker kernel): larger groups save
# process starts, smaller ones keep the jobs busy to the end and report progress sooner.
GROUP_SIZE = 6


def _work(submission: Submission) -> A.SubmittedWork:
    notebooks = (
        {}
        if submission.problem
        else {name: path.read_bytes() for name, path in submission.notebooks.items()}
    )
    return A.SubmittedWork(submission.student_id, notebooks, submission.flags)


def group_sizes(count: int, jobs: int) -> list[int]:
    """Sizes of the groups ``count`` submissions are graded in: at most :data:`GROUP_SIZE` each,
    as many groups as a multiple of ``jobs``, sizes differing by one at most, so that the jobs
    finish together (19 submissions on 2 jobs: 5, 5, 5, 4, not 6, 6, 6, 1)."""
    if count == 0:
        return []
    jobs = max(1, jobs)
    groups = min(count, jobs * math.ceil(count / (jobs * GROUP_SIZE)))
    size, larger = divmod(count, groups)
    return [size + 1] * larger + [size] * (groups - larger)


def _tasks(assignment: Assignment, found: list[Submission], bundle: bytes, policy, jobs: int):
    works = [_work(s) for s in found]
    tasks, start = [], 0
    for size in group_sizes(len(works), jobs):
        tasks.append(A.GradingTask(assignment, tuple(works[start : start + size]), bundle, policy))
        start += size
    return tasks


def _run_all(
    tasks: list[A.GradingTask], jobs: int, scheduler: str | None, fallback: Callable
) -> Iterator[A.SubmissionResult]:
    """Results group by group in completion order; a task that fails outside grade_group (a
    lost Dask worker) yields ``fallback(task, error)`` instead of stopping the batch."""
    if scheduler:
        from dask.distributed import Client, as_completed

        with Client(scheduler) as client:
            futures = {client.submit(A.grade_group, t, pure=False): t for t in tasks}
            for future in as_completed(futures):
                try:
                    yield from future.result()
                except Exception as error:
                    yield from fallback(futures[future], error)
        return
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = {pool.submit(A.grade_group, t): t for t in tasks}
        for future in as_completed_futures(futures):
            try:
                yield from future.result()
            except Exception as error:
                yield from fallback(futures[future], error)


def _write_feedback(
    copy: Path,
    course_root: Path,
    assignment_id: str,
    db_url: str,
    students: list[str],
    out_dir: Path,
    jobs: int = 1,
) -> None:
    """Render the feedback of this run's students with nbgrader in the trusted copy (so that
    runs at the same time never render each other's students), ``jobs`` nbgrader processes at
    once, each on its share of the students; then copy it to the course's ``feedback/`` and to
    ``out_dir``."""
    shares = [students[k :: max(1, jobs)] for k in range(max(1, jobs))]
    shares = [share for share in shares if share]

    def render(share: list[str]) -> None:
        others = ",".join(s for s in students if s not in share)
        exclude = [f"--CourseDirectory.student_id_exclude={others}"] if others else []
        run_nbgrader(
            ["generate_feedback", assignment_id, "--force", f"--db={db_url}", *exclude],
            copy,
            check=False,
        )

    with ThreadPoolExecutor(max_workers=max(1, len(shares))) as pool:
        list(pool.map(render, shares))
    for student in students:
        rendered = copy / "feedback" / student / assignment_id
        if rendered.is_dir():
            for target in (
                out_dir / "feedback" / student,
                course_root / rendered.relative_to(copy),
            ):
                shutil.rmtree(target, ignore_errors=True)
                shutil.copytree(rendered, target)


def _write_csv(out_dir: Path, rows: list[GradeRow], db_url: str, assignment_id: str) -> None:
    with open(out_dir / "grades.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(
            ["student_id", "score", "max_score", "status", "flags", "message", "seconds"]
        )
        for r in rows:
            writer.writerow(
                [
                    r.student_id,
                    f"{r.score:g}",
                    f"{r.max_score:g}",
                    r.status,
                    ";".join(r.flags),
                    r.message.replace("\n", " ")[:300],
                    f"{r.seconds:.1f}",
                ]
            )
    with open(out_dir / "cells.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["student_id", "notebook", "grade_id", "score", "max_score", "pending"])
        for r in rows:
            scores = read_scores(db_url, assignment_id, r.student_id)
            for cell in scores.cells if scores else ():
                score = "" if cell.score is None else f"{cell.score:g}"
                writer.writerow(
                    [
                        r.student_id,
                        cell.notebook,
                        cell.grade_id,
                        score,
                        f"{cell.max_score:g}",
                        "manual" if cell.needs_manual_grade else "",
                    ]
                )


def grade_batch(
    course_root: Path,
    assignment_id: str,
    submissions: Path,
    out_dir: Path,
    *,
    db_url: str | None = None,
    jobs: int = 1,
    scheduler: str | None = None,
    sandbox: bool = True,
    log: Callable[[str], None] = print,
    threads: int | None = None,
) -> BatchReport:
    """Grade every submission at ``submissions`` and write the reports into ``out_dir``.
    ``threads``: math threads per kernel (default: the cores shared by ``jobs``; less when
    other batches run at the same time, since oversubscribed PyTorch threads crawl)."""
    started = time.monotonic()
    course_root = Path(course_root).resolve()
    assignment = get_assignment(course_root, assignment_id)
    if sandbox:
        require_bwrap()
    db_url = normalize_db_url(db_url) if db_url else default_db_url(course_root)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    # Jobs share the cores: more math threads than cores per job only thrash.
    threads = threads or max(1, (os.cpu_count() or 1) // max(1, jobs))
    support = probe_limits() if sandbox else None
    policy = SandboxPolicy(enabled=sandbox, threads=threads, limits=support)
    if support is not None:
        log(f"limits: {support.describe()}")

    with tempfile.TemporaryDirectory(prefix="course-grade-") as scratch:
        found = discover(Path(submissions), assignment, Path(scratch))
        log(f"{assignment_id}: {len(found)} submission(s) in {submissions}")
        copy = A.trusted_copy(course_root, assignment, Path(scratch))

        def register() -> None:
            with gradebook_lock(course_root):
                retried(
                    lambda: A.register_assignment(
                        copy, assignment, db_url, Path(scratch) / "registered-release"
                    )
                )

        # At once: two nbgrader processes of a few seconds each (the course gradebook's record
        # of the assignment, and the template gradebook that goes into the bundle), and the
        # imports of the static scan's course references (seconds, once per process).
        with ThreadPoolExecutor(max_workers=2) as pool:
            registered = pool.submit(register)
            pool.submit(all_references)
            bundle = A.make_bundle(copy, assignment)
            registered.result()
        zero = A.scores_from_gradebook(copy / "gradebook.db", assignment, None)

        def fallback(task: A.GradingTask, error: Exception) -> list[A.SubmissionResult]:
            message = f"grading job failed: {type(error).__name__}: {error}"
            return [
                A.SubmissionResult(
                    work.student_id, A.ERROR, work.flags, tuple(zero), {}, message, 0
                )
                for work in task.submissions
            ]

        problems = {s.student_id: s.problem for s in found if s.problem}
        folders = {
            s.student_id: next(iter(s.notebooks.values())).parent for s in found if s.notebooks
        }
        tasks = _tasks(assignment, found, bundle, policy, jobs)
        width = max((len(s.student_id) for s in found), default=0)
        rows: list[GradeRow] = []
        for result in _run_all(tasks, jobs, scheduler, fallback):
            with gradebook_lock(course_root):
                merge_result(db_url, assignment_id, result)
            for root in (course_root, copy):  # formgrader's copy, and the one feedback uses
                target = root / "autograded" / result.student_id / assignment_id
                shutil.rmtree(target, ignore_errors=True)
                if result.autograded:
                    target.mkdir(parents=True)
                    for name, content in result.autograded.items():
                        (target / name).write_bytes(content)
                    # nbgrader's release_feedback needs the exchange's files of the submission.
                    for name in EXCHANGE_FILES:
                        source = folders.get(result.student_id, Path("/nonexistent")) / name
                        if source.is_file() and not source.is_symlink():
                            shutil.copyfile(source, target / name)
            scores = read_scores(db_url, assignment_id, result.student_id)
            status = result.status
            if status == A.GRADED and scores.needs_manual_grade:
                status = NEEDS_MANUAL_GRADE
            message = problems.get(result.student_id) or result.message
            row = GradeRow(
                result.student_id,
                scores.score,
                scores.max_score,
                status,
                result.flags,
                message,
                result.seconds,
            )
            rows.append(row)
            log(
                f"  {row.student_id:<{width}} {row.score:>6g} / {row.max_score:g}  {row.status}"
                f"{'  [' + ';'.join(row.flags) + ']' if row.flags else ''}  ({row.seconds:.1f} s)"
            )

        rows.sort(key=lambda r: r.student_id)
        students = [r.student_id for r in rows]
        _write_feedback(copy, course_root, assignment_id, db_url, students, out_dir, jobs)
    _write_csv(out_dir, rows, db_url, assignment_id)
    return BatchReport(assignment_id, rows, out_dir, round(time.monotonic() - started, 1))


def format_table(report: BatchReport, expected: dict[str, float] | None = None) -> str:
    """The grade table as text; with ``expected`` (student -> autograded points) a check column."""
    width = max([len("student"), *(len(r.student_id) for r in report.rows)])
    columns = [("student", width, "<"), ("score", 6, ">"), ("max", 4, ">"), ("status", 18, "<")]
    if expected:
        columns.append(("expected", 12, "<"))
    columns.append(("flags", 0, "<"))

    def line(values) -> str:
        return "  ".join(
            f"{v:{align}{w}}" for v, (_, w, align) in zip(values, columns, strict=True)
        )

    lines = [report.assignment_id, line([c[0] for c in columns])]
    lines.append("-" * len(lines[-1]))
    for r in report.rows:
        values = [r.student_id, f"{r.score:g}", f"{r.max_score:g}", r.status]
        if expected:
            want = expected.get(r.student_id)
            ok = want is not None and scores_match(r.score, want)
            values.append("" if want is None else f"{want:g} {'ok' if ok else 'MISMATCH'}")
        values.append(";".join(r.flags))
        lines.append(line(values).rstrip())
    return "\n".join(lines)
