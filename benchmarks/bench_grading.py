"""Grading time per submission for a batch mixing honest and hostile hw1 submissions.

    .venv/bin/python benchmarks/bench_grading.py [--jobs 2]

Builds the red-team batch of tests/red_team.py (the hw1 samples full, blank and one buggy, plus
every attack), grades it with `course grade` in the sandbox in a scratch copy of the course, and
prints seconds per submission (wall clock of the batch / submissions) and the slowest rows.
Nothing is asserted: timings depend on the machine.
"""

from __future__ import annotations

import argparse
import socket
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from conftest import scratch_course  # noqa: E402
from red_team import ASSIGNMENT, BASE_SAMPLE, write_attacks  # noqa: E402

from hw_utils.grading.batch import grade_batch  # noqa: E402
from hw_utils.grading.samples import load_samples, materialise  # noqa: E402
from hw_utils.manifest import get_assignment  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-grading-") as scratch:
        root = Path(scratch)
        course = scratch_course(root / "course")
        assignment = get_assignment(course, ASSIGNMENT)
        samples = {s.student_id: s for s in load_samples(course, ASSIGNMENT)}
        for student in ("sample_full", "sample_blank", BASE_SAMPLE):
            materialise(samples[student], course, assignment, root / "submissions")
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            base = root / "submissions" / BASE_SAMPLE / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
            write_attacks(base, root / "submissions", listener.getsockname()[1])
            started = time.monotonic()
            report = grade_batch(
                course,
                ASSIGNMENT,
                root / "submissions",
                root / "out",
                jobs=args.jobs,
                log=lambda _: None,
            )
            elapsed = time.monotonic() - started
    rows = sorted(report.rows, key=lambda r: -r.seconds)
    print(
        f"{len(rows)} submissions ({ASSIGNMENT}), --jobs {args.jobs}: {elapsed:.0f} s in all, "
        f"{elapsed / len(rows):.1f} s per submission (wall clock)"
    )
    print(
        f"per-submission job time: median {rows[len(rows) // 2].seconds:.1f} s, "
        f"slowest {rows[0].seconds:.1f} s ({rows[0].student_id}, {rows[0].status})"
    )
    for row in rows[:5]:
        print(f"  {row.student_id:<36} {row.seconds:6.1f} s  {row.status}")


if __name__ == "__main__":
    main()
