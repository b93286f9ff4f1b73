"""Every assignment of the manifest: course check, nbval on the source notebook, grading contract.

The grading contract: each sample submission in samples/<assignment>/ (the source solution, the
untouched release, the buggy ones) is autograded with real nbgrader in the sandbox and must earn
exactly the points written in its file, cell by cell.
"""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, scratch_course
from test_grading_fixture import require_bwrap

from hw_utils.grading.batch import grade_batch
from hw_utils.grading.cells import source_notebook
from hw_utils.grading.check import check_course
from hw_utils.grading.samples import expected_scores, load_samples, materialise, scores_match
from hw_utils.manifest import load_manifest

MANIFEST = load_manifest(REPO)


def test_rounded_expectations_match_the_exact_total_and_a_lost_case_does_not():
    # hw5's sample_decays_swapped: partial credits of 12/7, 2/3 and 4/3 points, written with the
    # 6 significant digits of cells.csv
    exact = 4 + 12 / 7 + 2 / 3 + 12 / 7 + 4 / 3
    written = 4 + 1.71429 + 0.666667 + 1.71429 + 1.33333
    assert abs(exact - written) > 1e-6
    assert scores_match(exact, written)
    assert not scores_match(exact - 1 / 7, written), "a lost case worth 1/7 point"


def test_course_check_passes_on_the_repository():
    assert check_course(REPO) == []


@pytest.mark.parametrize("assignment_id", list(MANIFEST))
def test_source_notebook_matches_its_stored_outputs(assignment_id, tmp_path):
    assignment = MANIFEST[assignment_id]
    work = Path(shutil.copytree(REPO / "source" / assignment_id, tmp_path / assignment_id))
    notebooks = [
        work / source_notebook(REPO, assignment_id, nb).name for nb in assignment.notebooks
    ]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--nbval",
            "--nbval-current-env",
            "-p",
            "no:cacheprovider",
            f"--nbval-cell-timeout={2 * assignment.limits.cell_timeout_s}",
            "-q",
            *map(str, notebooks),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-2000:]


@pytest.mark.grading
@pytest.mark.parametrize("assignment_id", list(MANIFEST))
def test_grading_contract(assignment_id, tmp_path):
    require_bwrap()
    course = scratch_course(tmp_path / "course")
    assignment = MANIFEST[assignment_id]
    samples = load_samples(course, assignment_id)
    assert {"sample_full", "sample_blank"} <= {s.student_id for s in samples}
    assert len(samples) >= 5, "bundle buggy samples that each lose the points meant to catch them"
    for sample in samples:
        materialise(sample, course, assignment, tmp_path / "submissions")
    report = grade_batch(
        course, assignment_id, tmp_path / "submissions", tmp_path / "out", jobs=2, log=print
    )
    rows = {row.student_id: row for row in report.rows}
    with open(tmp_path / "out" / "cells.csv") as f:
        got: dict[str, dict[str, float]] = {}
        for row in csv.DictReader(f):
            if row["pending"] != "manual":
                got.setdefault(row["student_id"], {})[row["grade_id"]] = float(row["score"])
    failures = []
    for sample in samples:
        row = rows[sample.student_id]
        assert row.status in ("graded", "needs_manual_grade"), row
        assert row.flags == (), f"honest submissions are never flagged: {row}"
        expected = expected_scores(sample, course, assignment)
        wrong = {
            cell: (got[sample.student_id].get(cell), points)
            for cell, points in expected.items()
            if got[sample.student_id].get(cell) != points
        }
        if wrong:
            failures.append(f"{sample.student_id} ({sample.description}): got/expected {wrong}")
        elif not scores_match(row.score, sum(expected.values())):  # what course demo compares
            failures.append(f"{sample.student_id}: total {row.score} != {sum(expected.values())}")
    assert not failures, "\n".join(failures)
    assert rows["sample_blank"].score == 0
