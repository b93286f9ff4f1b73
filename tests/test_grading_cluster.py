"""The same grading code on a Dask cluster (a local one here): identical scores."""

from __future__ import annotations

import pytest
from test_grading_fixture import ASSIGNMENT, require_bwrap

from hw_utils.grading.batch import grade_batch
from hw_utils.grading.samples import expected_scores, load_samples, materialise
from hw_utils.manifest import get_assignment

pytestmark = pytest.mark.grading


def test_batch_on_a_local_dask_cluster_matches_the_samples(fixture_course, tmp_path):
    require_bwrap()
    distributed = pytest.importorskip("distributed")
    assignment = get_assignment(fixture_course, ASSIGNMENT)
    samples = load_samples(fixture_course, ASSIGNMENT)
    for sample in samples:
        materialise(sample, fixture_course, assignment, tmp_path / "submissions")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        report = grade_batch(
            fixture_course,
            ASSIGNMENT,
            tmp_path / "submissions",
            tmp_path / "out",
            scheduler=cluster.scheduler_address,
            log=lambda _: None,
        )
    scores = {row.student_id: row.score for row in report.rows}
    for sample in samples:
        expected = sum(expected_scores(sample, fixture_course, assignment).values())
        assert scores[sample.student_id] == expected, sample.student_id
