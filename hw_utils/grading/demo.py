"""``course demo``: the instructor cycle on the bundled sample submissions.

For every assignment of the manifest (or the ones named): build the release, write its sample
submissions (full, blank, buggy) as a student would hand them in, grade them with
``course grade`` into the course gradebook, and print the grade table beside the scores the
samples are expected to earn.
"""

from __future__ import annotations

from pathlib import Path

from hw_utils.grading.batch import BatchReport, format_table, grade_batch
from hw_utils.grading.build import build_release
from hw_utils.grading.samples import expected_scores, load_samples, materialise
from hw_utils.manifest import ManifestError, get_assignment, load_manifest


def run_demo(
    course_root: Path,
    out_dir: Path,
    assignment_ids: list[str] | None = None,
    *,
    jobs: int = 1,
    sandbox: bool = True,
) -> list[tuple[BatchReport, dict[str, float]]]:
    """Build, grade and report each assignment; returns the reports with expected scores."""
    course_root = Path(course_root).resolve()
    ids = assignment_ids or list(load_manifest(course_root))
    if not ids:
        raise ManifestError(f"No assignments in {course_root / 'assignments'}: nothing to demo.")
    results = []
    for assignment_id in ids:
        assignment = get_assignment(course_root, assignment_id)
        samples = load_samples(course_root, assignment_id)
        if not samples:
            raise ManifestError(f"No sample submissions in samples/{assignment_id}/.")
        print(f"Building release/{assignment_id}/ ...", flush=True)
        build_release(course_root, assignment)
        submissions = Path(out_dir) / "submissions" / assignment_id
        expected = {}
        for sample in samples:
            materialise(sample, course_root, assignment, submissions)
            expected[sample.student_id] = sum(
                expected_scores(sample, course_root, assignment).values()
            )
        report = grade_batch(
            course_root,
            assignment_id,
            submissions,
            Path(out_dir) / assignment_id,
            jobs=jobs,
            sandbox=sandbox,
        )
        print()
        print(format_table(report, expected))
        print(
            f"\ngrades: {report.out_dir / 'grades.csv'}   feedback: {report.out_dir / 'feedback'}"
        )
        print(f"gradebook: {course_root / 'gradebook.db'}  ({report.seconds:g} s)\n")
        results.append((report, expected))
    return results
