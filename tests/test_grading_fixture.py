"""The grading pipeline end to end with real nbgrader, on a tiny fixture assignment.

One batch mixes the fixture's sample submissions with the awkward ones a real class hands in
(renamed, malformed, empty, a kernel that dies, a test cell deleted or re-flagged, an output
flood, a warning on stderr). Every row must come out with the right status and exactly the points
earned, the submissions must be untouched and the feedback must not show hidden tests.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from conftest import make_fixture_course
from nbgrader.api import Gradebook

from hw_utils.grading.batch import grade_batch
from hw_utils.grading.samples import expected_scores, load_samples, materialise
from hw_utils.manifest import get_assignment

pytestmark = pytest.mark.grading

ASSIGNMENT = "hw9_fixture"


def require_bwrap() -> None:
    if shutil.which("bwrap") is None:
        if os.environ.get("CI"):
            pytest.fail("bubblewrap is required in CI: apt-get install bubblewrap")
        pytest.skip("bubblewrap (bwrap) is not installed: sudo apt-get install bubblewrap")


def _write(folder: Path, nb, name: str = f"{ASSIGNMENT}.ipynb") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, folder / name)


def _full(course: Path, submissions: Path):
    return nbformat.read(submissions / "sample_full" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", 4)


def _cell(nb, grade_id: str):
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def _digest(folder: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        h.update(str(path.relative_to(folder)).encode())
        if path.is_file():
            h.update(path.read_bytes())
    return h.hexdigest()


def odd_submissions(course: Path, submissions: Path) -> dict[str, dict]:
    """Write the awkward submissions; returns student -> expected outcome."""
    full = _full(course, submissions)

    _write(submissions / "renamed" / ASSIGNMENT, full, "my homework (1).ipynb")
    (submissions / "renamed" / ASSIGNMENT / "timestamp.txt").write_text("2026-11-20 10:00:00")
    (submissions / "malformed" / ASSIGNMENT).mkdir(parents=True)
    (submissions / "malformed" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").write_text('{"cells": [')
    (submissions / "empty").mkdir()

    dies = nbformat.from_dict(json.loads(nbformat.writes(full)))
    _cell(dies, "mean").source = "import os\nos._exit(3)"
    _write(submissions / "dies" / ASSIGNMENT, dies)

    flipped = nbformat.from_dict(json.loads(nbformat.writes(full)))
    _cell(flipped, "add").source = "def add(a, b):\n    return a - b"
    test = _cell(flipped, "test_add")
    test.source = "pass"
    test.metadata["nbgrader"]["grade"] = False
    _write(submissions / "flipped" / ASSIGNMENT, flipped)

    deleted = nbformat.from_dict(json.loads(nbformat.writes(full)))
    _cell(deleted, "add").source = "def add(a, b):\n    return a - b"
    deleted.cells.remove(_cell(deleted, "test_add"))
    _write(submissions / "deleted" / ASSIGNMENT, deleted)

    flood = nbformat.from_dict(json.loads(nbformat.writes(full)))
    spam = nbformat.v4.new_code_cell("for i in range(300_000):\n    print('x' * 20)")
    flood.cells.insert(2, spam)
    _write(submissions / "flood" / ASSIGNMENT, flood)

    hangs = nbformat.from_dict(json.loads(nbformat.writes(full)))
    _cell(
        hangs, "mean"
    ).source = "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass"
    _write(submissions / "hangs" / ASSIGNMENT, hangs)

    warns = nbformat.from_dict(json.loads(nbformat.writes(full)))
    _cell(
        warns, "add"
    ).source = "import warnings\n\ndef add(a, b):\n    warnings.warn('adding')\n    return a + b"
    _write(submissions / "warns" / ASSIGNMENT, warns)

    active = nbformat.from_dict(json.loads(nbformat.writes(full)))
    script = "<script>alert(1)</script><img src=x onerror=alert(2)>"
    active.cells.insert(
        2,
        nbformat.v4.new_code_cell(
            f"from IPython.display import HTML, Javascript, display\n"
            f"display(HTML({script!r}))\ndisplay(Javascript('alert(3)'))"
        ),
    )
    _cell(active, "answer_empty_mean").source = f"It divides by zero. {script}"
    _write(submissions / "active" / ASSIGNMENT, active)

    return {
        "active": {"status": "needs_manual_grade", "score": 7},
        "renamed": {"status": "needs_manual_grade", "score": 7, "flag": "renamed_notebook"},
        "malformed": {"status": "unreadable", "score": 0},
        "empty": {"status": "missing", "score": 0},
        "dies": {"status": "kernel_died", "score": 3, "flag": "static:process"},
        "flipped": {"status": "needs_manual_grade", "score": 4, "flag": "metadata_changed"},
        "deleted": {"status": "needs_manual_grade", "score": 4},
        "hangs": {"status": "timeout", "score": 3, "flag": "static:process"},
        "flood": {"status": "needs_manual_grade", "score": 7, "flag": "output_truncated"},
        "warns": {"status": "needs_manual_grade", "score": 7},
    }


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    require_bwrap()
    root = tmp_path_factory.mktemp("grading")
    course = make_fixture_course(root / "course")
    assignment = get_assignment(course, ASSIGNMENT)
    submissions = root / "submissions"
    samples = load_samples(course, ASSIGNMENT)
    for sample in samples:
        materialise(sample, course, assignment, submissions)
    odd = odd_submissions(course, submissions)
    before = _digest(submissions)
    report = grade_batch(course, ASSIGNMENT, submissions, root / "out", jobs=2, log=lambda _: None)
    return {
        "course": course,
        "assignment": assignment,
        "samples": samples,
        "odd": odd,
        "report": report,
        "rows": {row.student_id: row for row in report.rows},
        "submissions": submissions,
        "digest_before": before,
        "out": root / "out",
    }


def _cells_csv(out: Path) -> dict[str, dict[str, str]]:
    table: dict[str, dict[str, str]] = {}
    with open(out / "cells.csv") as f:
        for row in csv.DictReader(f):
            table.setdefault(row["student_id"], {})[row["grade_id"]] = row["score"]
    return table


def test_every_sample_earns_exactly_its_expected_cell_scores(batch):
    cells = _cells_csv(batch["out"])
    for sample in batch["samples"]:
        expected = expected_scores(sample, batch["course"], batch["assignment"])
        got = {grade_id: float(cells[sample.student_id][grade_id]) for grade_id in expected}
        assert got == expected, sample.student_id
        assert batch["rows"][sample.student_id].flags == (), "honest submissions are never flagged"


def test_awkward_submissions_get_a_status_and_exactly_the_points_earned(batch):
    for student, outcome in batch["odd"].items():
        row = batch["rows"][student]
        assert (row.status, row.score) == (outcome["status"], outcome["score"]), (student, row)
        if "flag" in outcome:
            assert any(f.startswith(outcome["flag"]) for f in row.flags), (student, row.flags)
        else:
            assert not any(f.startswith("static:") for f in row.flags), row


def test_failures_explain_themselves(batch):
    rows = batch["rows"]
    assert "not a readable notebook" in rows["malformed"].message
    assert "no notebook" in rows["empty"].message
    assert "kernel died" in rows["dies"].message
    assert "ignored the interrupt" in rows["hangs"].message


def test_every_student_has_a_row_and_max_score(batch):
    expected_students = {s.student_id for s in batch["samples"]} | set(batch["odd"])
    assert set(batch["rows"]) == expected_students
    with open(batch["out"] / "grades.csv") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == [
        "student_id",
        "score",
        "max_score",
        "status",
        "flags",
        "message",
        "seconds",
    ]
    assert {r["student_id"] for r in rows} == expected_students
    assert {r["max_score"] for r in rows} == {"10"}


def test_exchange_files_follow_the_autograded_notebook(batch):
    graded = batch["course"] / "autograded" / "renamed" / ASSIGNMENT
    assert (graded / "timestamp.txt").read_text() == "2026-11-20 10:00:00"


def test_submissions_are_never_modified(batch):
    assert _digest(batch["submissions"]) == batch["digest_before"]


def test_feedback_exists_and_hides_hidden_tests(batch):
    feedback = batch["out"] / "feedback"
    graded = [s for s, r in batch["rows"].items() if r.status not in ("missing", "unreadable")]
    for student in graded:
        html = (feedback / student / f"{ASSIGNMENT}.html").read_text()
        assert "BEGIN HIDDEN TESTS" not in html
        assert "-2.5" not in html and "9.0" not in html, student


def test_what_graders_and_students_see_is_never_active_content(batch):
    graded = batch["course"] / "autograded" / "active" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    feedback = batch["out"] / "feedback" / "active" / f"{ASSIGNMENT}.html"
    notebook = nbformat.read(graded, 4)
    outputs = json.dumps([cell.get("outputs", []) for cell in notebook.cells])
    answer = next(c.source for c in notebook.cells if "It divides by zero." in c.source)
    assert "alert(3)" not in outputs, "no JavaScript output is kept"
    # the code cell's source may say <script>: formgrader and the feedback show it as text
    for text in (outputs, answer, feedback.read_text()):
        assert "<script>alert(1)" not in text
        assert not re.search(r"<img[^>]*onerror", text)


def test_gradebook_holds_the_scores_and_nbgrader_export_reads_them(batch):
    course = batch["course"]
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        assert gb.find_submission(ASSIGNMENT, "sample_full").score == 7
        assert gb.find_submission(ASSIGNMENT, "sample_bug_mean").score == 4
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    subprocess.run(
        [sys.executable, "-m", "nbgrader", "export", "--to=export.csv"],
        cwd=course,
        env=env,
        check=True,
        capture_output=True,
    )
    with open(course / "export.csv") as f:
        exported = {r["student_id"]: float(r["raw_score"]) for r in csv.DictReader(f)}
    assert exported["sample_full"] == 7
    assert exported["dies"] == 3


def test_regrading_keeps_a_manual_grade(batch, tmp_path):
    course = batch["course"]
    db = f"sqlite:///{course / 'gradebook.db'}"
    with Gradebook(db) as gb:
        grade = gb.find_grade("answer_empty_mean", ASSIGNMENT, ASSIGNMENT, "sample_full")
        grade.manual_score = 2.5
        gb.db.commit()
    again = tmp_path / "again"
    shutil.copytree(batch["submissions"] / "sample_full", again / "sample_full")
    report = grade_batch(course, ASSIGNMENT, again, tmp_path / "out", log=lambda _: None)
    (row,) = report.rows
    assert (row.score, row.status) == (9.5, "graded")
