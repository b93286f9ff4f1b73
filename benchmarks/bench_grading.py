"""What the grading boundary and the sandbox cost: `course grade` against plain nbgrader.

    .venv/bin/python benchmarks/bench_grading.py [--assignment hw1_convolution] [--samples 8]

Takes the first sample submissions of an assignment and grades them twice on this machine:

1. plain nbgrader, as a course without this package would: `nbgrader autograde` (one kernel
   per notebook, tests in the student's process, no sandbox) then `nbgrader generate_feedback`;
2. `course grade` with the sandbox and the boundary (student cells in a sandboxed kernel, tests
   in a checker kernel), which also renders the feedback, with --jobs 1 (like plain nbgrader,
   one notebook at a time) and with one job per core.

It prints the wall-clock seconds per submission and the ratio `course grade / plain` (goal: at
most 1.3 with --jobs 1). Nothing is asserted: timings depend on the machine and its load (run it
on an idle machine).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from conftest import scratch_course  # noqa: E402

from hw_utils.grading.batch import grade_batch  # noqa: E402
from hw_utils.grading.nbgrader_cli import nbgrader_env  # noqa: E402
from hw_utils.grading.samples import load_samples, materialise  # noqa: E402
from hw_utils.manifest import get_assignment  # noqa: E402

PLAIN_CONFIG = """\
c = get_config()
c.CourseDirectory.course_id = "plain"
c.CourseDirectory.root = {root!r}
c.Execute.timeout = {timeout}
"""


def plain_nbgrader(root: Path, assignment_id: str, count: int) -> float:
    """Seconds of plain `nbgrader autograde` + `generate_feedback` on ``count`` samples."""
    course = scratch_course(root / "plain")
    assignment = get_assignment(course, assignment_id)
    (course / "nbgrader_config.py").write_text(
        PLAIN_CONFIG.format(root=str(course), timeout=assignment.limits.cell_timeout_s)
    )
    env = nbgrader_env({"HW_PROFILE": "ci"})

    def nbgrader(*args: str) -> None:
        subprocess.run(
            [sys.executable, "-m", "nbgrader", *args],
            cwd=course,
            env=env,
            check=True,
            capture_output=True,
        )

    nbgrader("generate_assignment", assignment_id, "--force")
    for sample in load_samples(course, assignment_id)[:count]:
        materialise(sample, course, assignment, course / "submitted")
    started = time.monotonic()
    nbgrader("autograde", assignment_id, "--force")
    nbgrader("generate_feedback", assignment_id, "--force")
    return time.monotonic() - started


def course_grade(root: Path, assignment_id: str, count: int, jobs: int) -> float:
    """Seconds of `course grade` (sandbox, boundary, feedback) on the same samples."""
    course = scratch_course(root / f"course-{jobs}")
    assignment = get_assignment(course, assignment_id)
    submissions = root / f"submissions-{jobs}"
    for sample in load_samples(course, assignment_id)[:count]:
        materialise(sample, course, assignment, submissions)
    started = time.monotonic()
    grade_batch(
        course, assignment_id, submissions, root / f"out-{jobs}", jobs=jobs, log=lambda _: None
    )
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assignment", default="hw1_convolution")
    parser.add_argument("--samples", type=int, default=8)
    args = parser.parse_args()
    os.environ["HW_PROFILE"] = "ci"
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="bench-grading-") as scratch:
        root = Path(scratch)
        plain = plain_nbgrader(root, args.assignment, args.samples)
        ours = course_grade(root, args.assignment, args.samples, jobs=1)
        parallel = course_grade(root, args.assignment, args.samples, jobs=cores)
        shutil.rmtree(root, ignore_errors=True)
    n = args.samples
    print(f"{args.assignment}, {n} sample submissions, {cores} cores")
    rows = [
        ("plain nbgrader autograde + generate_feedback", plain),
        ("course grade --jobs 1 (sandbox, boundary)", ours),
        (f"course grade --jobs {cores}", parallel),
    ]
    for label, seconds in rows:
        print(f"  {label:<46} {seconds / n:6.1f} s per submission")
    print(
        f"  {'cost ratio course grade / plain (--jobs 1)':<46} {ours / plain:6.2f}  (goal <= 1.3)"
    )


if __name__ == "__main__":
    main()
