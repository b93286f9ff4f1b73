"""``course demo``: the instructor cycle on the bundled sample submissions.

For every assignment of the manifest (or the ones named): build the release, write its sample
submissions as a student would hand them in, grade them with ``course grade`` into the course
gradebook, and print the grade table beside the scores the samples are expected to earn. By
default a representative set per assignment (the full solution, the untouched release, and the
buggy samples that together lose the most different test cells, :data:`BUGGY_PER_ASSIGNMENT` of
them); ``all_samples`` grades every one. Assignments are graded ``jobs`` at a time.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from hw_utils.grading.batch import BatchReport, format_table, grade_batch
from hw_utils.grading.build import build_release
from hw_utils.grading.gradebook import default_db_url
from hw_utils.grading.samples import Sample, expected_scores, load_samples, materialise
from hw_utils.manifest import Assignment, ManifestError, get_assignment, load_manifest

BUGGY_PER_ASSIGNMENT = 2
KEPT = ("sample_full", "sample_blank")


def representative(
    samples: list[Sample], course_root: Path, assignment: Assignment
) -> list[Sample]:
    """Full, blank, and greedily the buggy samples that add the most test cells losing points."""
    chosen = [s for s in samples if s.student_id in KEPT]
    buggy = [s for s in samples if s.student_id not in KEPT]
    lost = {s.student_id: set(s.expected) for s in buggy}
    covered: set[str] = set()
    for _ in range(min(BUGGY_PER_ASSIGNMENT, len(buggy))):
        best = max(buggy, key=lambda s: (len(lost[s.student_id] - covered), s.student_id))
        buggy.remove(best)
        covered |= lost[best.student_id]
        chosen.append(best)
    return chosen


def _demo_one(
    course_root: Path,
    out_dir: Path,
    assignment_id: str,
    all_samples: bool,
    sandbox: bool,
    threads: int,
) -> tuple[BatchReport, dict[str, float], str]:
    """Build, write the samples, grade; returns the report, the expectations and what it
    printed (kept, so that assignments graded at once do not interleave their lines)."""
    lines: list[str] = []
    assignment = get_assignment(course_root, assignment_id)
    samples = load_samples(course_root, assignment_id)
    if not samples:
        raise ManifestError(f"No sample submissions in samples/{assignment_id}/.")
    if not all_samples:
        samples = representative(samples, course_root, assignment)
    build_release(course_root, assignment)
    lines.append(f"built release/{assignment_id}/")
    submissions = Path(out_dir) / "submissions" / assignment_id
    expected = {}
    for sample in samples:
        materialise(sample, course_root, assignment, submissions)
        expected[sample.student_id] = sum(expected_scores(sample, course_root, assignment).values())
    report = grade_batch(
        course_root,
        assignment_id,
        submissions,
        Path(out_dir) / assignment_id,
        jobs=1,
        sandbox=sandbox,
        log=lines.append,
        threads=threads,
    )
    lines += ["", format_table(report, expected), ""]
    lines.append(
        f"grades: {report.out_dir / 'grades.csv'}   feedback: {report.out_dir / 'feedback'}"
    )
    lines.append(f"({len(samples)} samples in {report.seconds:g} s)\n")
    return report, expected, "\n".join(lines) + "\n"


def run_demo(
    course_root: Path,
    out_dir: Path,
    assignment_ids: list[str] | None = None,
    *,
    jobs: int = 1,
    sandbox: bool = True,
    all_samples: bool = False,
) -> list[tuple[BatchReport, dict[str, float]]]:
    """Build, grade and report each assignment; returns the reports with expected scores."""
    course_root = Path(course_root).resolve()
    ids = assignment_ids or list(load_manifest(course_root))
    if not ids:
        raise ManifestError(f"No assignments in {course_root / 'assignments'}: nothing to demo.")
    for assignment_id in ids:
        get_assignment(course_root, assignment_id)  # unknown ids fail before any work
    print(
        f"course demo: {len(ids)} assignment(s), {'every' if all_samples else 'a representative'}"
        f" sample set, {jobs} at a time, into {default_db_url(course_root)}",
        flush=True,
    )
    results = []
    threads = max(1, (os.cpu_count() or 1) // max(1, jobs))  # the cores shared by the batches
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = [
            pool.submit(_demo_one, course_root, out_dir, a, all_samples, sandbox, threads)
            for a in ids
        ]
        for future in futures:
            report, expected, printed = future.result()
            print(printed, end="", flush=True)
            results.append((report, expected))
    return results
