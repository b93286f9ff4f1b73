"""How long ``course report`` and ``course similarity`` take on a class of 200.

    .venv/bin/python benchmarks/bench_reports.py [--assignment hw1_convolution] [--students 200]

Writes a synthetic graded batch of the assignment into a scratch copy of the course
(``tests/synthetic_batch.py``: gradebook, autograded notebooks, grades.csv; a few planted copies),
then times the two commands as an instructor runs them, each in its own process. Goals on the
2-core machine: report within 30 s, similarity within 2 minutes. Nothing is asserted: timings
depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]  # this checkout's hw_utils and test helpers

from conftest import scratch_course  # noqa: E402
from synthetic_batch import make_batch  # noqa: E402


def timed(command: list[str], cwd: Path) -> tuple[float, str]:
    """Wall-clock seconds of ``course <command>`` in ``cwd``, and its output."""
    env = dict(os.environ, PYTHONPATH=str(REPO), MPLBACKEND="Agg")
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "hw_utils", *command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return time.monotonic() - started, done.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--assignment", default="hw1_convolution")
    parser.add_argument("--students", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-reports-") as scratch:
        course = scratch_course(Path(scratch) / "course")
        started = time.monotonic()
        batch = make_batch(course, args.assignment, args.students, copies=5)
        print(
            f"synthetic batch: {args.students} submissions of {args.assignment}, "
            f"{len(batch.copies)} planted copies ({time.monotonic() - started:.0f} s to write)"
        )
        seconds, output = timed(
            ["report", args.assignment, "--grades", str(batch.grades_dir)], course
        )
        print(f"course report {args.assignment}: {seconds:.1f} s (goal: 30 s)\n  {output}")
        seconds, output = timed(["report", "--all"], course)
        print(f"course report --all: {seconds:.1f} s\n  {output}")
        seconds, output = timed(["similarity", args.assignment], course)
        print(f"course similarity {args.assignment}: {seconds:.1f} s (goal: 120 s)\n  {output}")


if __name__ == "__main__":
    main()
