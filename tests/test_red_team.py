"""Red team: a batch mixing honest and hostile hw1 submissions (issue: secure autograding).

The batch must complete; honest students (full, blank, buggy) keep their exact scores with no
flag; no hostile submission gets points it did not earn without a flag (most get none at all;
the few that also fool the recheck are caught by the static scan); the course files and
submissions are untouched; nothing reaches the network; no hidden test is readable from inside
the sandbox or shown in any feedback page.
"""

from __future__ import annotations

import hashlib
import html
import re
import socket
from pathlib import Path

import nbformat
import pytest
from conftest import COURSE_FILES, hidden_test_lines, scratch_course
from red_team import ASSIGNMENT, ATTACKS, BASE_SAMPLE, write_attacks
from test_assignments import MANIFEST
from test_grading_fixture import require_bwrap

from hw_utils.grading.batch import grade_batch
from hw_utils.grading.samples import expected_scores, load_samples, materialise

pytestmark = [
    pytest.mark.grading,
    pytest.mark.skipif(ASSIGNMENT not in MANIFEST, reason="hw1_convolution is not in the manifest"),
]
HONEST = ("sample_full", "sample_blank", BASE_SAMPLE)


def _digest(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for root in paths:
        for path in sorted([root, *root.rglob("*")] if root.is_dir() else [root]):
            h.update(str(path).encode())
            if path.is_file():
                h.update(path.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def red_team(tmp_path_factory):
    require_bwrap()
    root = tmp_path_factory.mktemp("red_team")
    course = scratch_course(root / "course")
    assignment = MANIFEST[ASSIGNMENT]
    samples = {s.student_id: s for s in load_samples(course, ASSIGNMENT)}
    submissions = root / "submissions"
    for student in HONEST:
        materialise(samples[student], course, assignment, submissions)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.setblocking(False)
    base = submissions / BASE_SAMPLE / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    attacks = write_attacks(base, submissions, listener.getsockname()[1])
    protected = [course / name for name in COURSE_FILES] + [submissions]
    before = _digest(protected)
    report = grade_batch(course, ASSIGNMENT, submissions, root / "out", jobs=2, log=print)
    try:
        listener.accept()
        reached = True
    except BlockingIOError:
        reached = False
    listener.close()
    return {
        "course": course,
        "assignment": assignment,
        "samples": samples,
        "attacks": attacks,
        "rows": {row.student_id: row for row in report.rows},
        "out": root / "out",
        "unchanged": _digest(protected) == before,
        "network_reached": reached,
    }


def _output_text(course: Path, student: str) -> str:
    nb = nbformat.read(course / "autograded" / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", 4)
    return "\n".join(
        output.get("text", "") for cell in nb.cells for output in cell.get("outputs", [])
    )


def test_honest_students_keep_their_exact_scores_and_no_flags(red_team):
    for student in HONEST:
        sample = red_team["samples"][student]
        expected = sum(expected_scores(sample, red_team["course"], red_team["assignment"]).values())
        row = red_team["rows"][student]
        assert (row.score, row.flags) == (expected, ()), row


@pytest.mark.parametrize("attack", [f"attack_{name}" for name in ATTACKS])
def test_attack_earns_nothing_and_is_reported(red_team, attack):
    spec = red_team["attacks"][attack]
    row = red_team["rows"][attack]
    base = red_team["rows"][BASE_SAMPLE].score
    if spec.expected == "base":
        assert row.score <= base, row  # no unearned point
    elif spec.expected != "flagged":  # "flagged": any score, but the flags below must be there
        assert row.score == spec.expected, row  # cells before the attack keep their points
    assert row.status in spec.status, row
    for flag in spec.flags:
        assert any(f.startswith(flag) for f in row.flags), (flag, row)


def test_nothing_inside_the_sandbox_sees_hidden_tests_or_files(red_team):
    course = red_team["course"]
    assert "nothing found" in _output_text(course, "attack_read_hidden_tests")
    assert "overwrote 0 files" in _output_text(course, "attack_overwrite_files")


def test_no_feedback_shows_a_hidden_test_line(red_team):
    hidden = hidden_test_lines(red_team["course"], ASSIGNMENT)
    assert hidden, "the hidden tests of hw1 have no distinctive line"
    pages = sorted((red_team["out"] / "feedback").rglob("*.html"))
    assert {p.parent.name for p in pages} >= {*HONEST, *red_team["attacks"]}
    for page in pages:
        text = html.unescape(re.sub(r"<[^>]+>", "", page.read_text()))  # as rendered
        leaked = sorted(hidden & {line.strip() for line in text.splitlines()})
        assert not leaked and "### BEGIN HIDDEN TESTS" not in text, (page, leaked[:3])


def test_course_files_and_submissions_are_untouched(red_team):
    assert red_team["unchanged"]


def test_nothing_leaves_the_machine(red_team):
    assert not red_team["network_reached"]
    text = _output_text(red_team["course"], "attack_network")
    assert "CONNECTED" not in text and text.count("blocked") == 3
