"""Red team: batches mixing honest and hostile submissions of hw1 and hw2 (issue: grading that
student code cannot reach).

Each batch must complete; honest students (full, blank, buggy, and the honest variations:
``%%time``, ``%timeit``, ``IPython.display``, tqdm, decorators, helpers, NumPy, prints) keep their
exact scores with no flag; no hostile submission gets a point it did not earn (those the boundary
cannot decide only with their flag); the limits hold (disk, memory, processes, CPU, network); the
course files and submissions are untouched; no hidden test is readable from inside the sandbox
or shown in any feedback page.
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
from red_team import TARGETS, write_attacks, write_honest
from test_assignments import MANIFEST
from test_grading_fixture import require_bwrap

from hw_utils.grading.batch import grade_batch
from hw_utils.grading.samples import expected_scores, load_samples, materialise

pytestmark = pytest.mark.grading
ASSIGNMENTS = [a for a in TARGETS if a in MANIFEST]


def _digest(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for root in paths:
        for path in sorted([root, *root.rglob("*")] if root.is_dir() else [root]):
            h.update(str(path).encode())
            if path.is_file():
                h.update(path.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module", params=ASSIGNMENTS)
def red_team(request, tmp_path_factory):
    require_bwrap()
    target = TARGETS[request.param]
    assignment_id = target.assignment
    root = tmp_path_factory.mktemp(f"red_team_{assignment_id}")
    course = scratch_course(root / "course")
    assignment = MANIFEST[assignment_id]
    samples = {s.student_id: s for s in load_samples(course, assignment_id)}
    submissions = root / "submissions"
    honest = ["sample_full", "sample_blank", target.base]
    for student in honest:
        materialise(samples[student], course, assignment, submissions)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.setblocking(False)
    notebook = f"{assignment_id}/{assignment_id}.ipynb"
    attacks = write_attacks(
        target, submissions / target.base / notebook, submissions, listener.getsockname()[1]
    )
    variations = write_honest(target, submissions / "sample_full" / notebook, submissions)
    protected = [course / name for name in COURSE_FILES] + [submissions]
    before = _digest(protected)
    report = grade_batch(course, assignment_id, submissions, root / "out", jobs=2, log=print)
    try:
        listener.accept()
        reached = True
    except BlockingIOError:
        reached = False
    listener.close()
    return {
        "target": target,
        "course": course,
        "assignment": assignment,
        "samples": samples,
        "honest": honest,
        "variations": variations,
        "attacks": attacks,
        "rows": {row.student_id: row for row in report.rows},
        "out": root / "out",
        "submissions": submissions,
        "unchanged": _digest(protected) == before,
        "network_reached": reached,
    }


def _output_text(red_team, student: str) -> str:
    assignment_id = red_team["target"].assignment
    path = red_team["course"] / "autograded" / student / assignment_id / f"{assignment_id}.ipynb"
    nb = nbformat.read(path, 4)
    return "\n".join(
        str(output.get("text", "")) for cell in nb.cells for output in cell.get("outputs", [])
    )


def test_honest_students_keep_their_exact_scores_and_no_flags(red_team):
    for student in red_team["honest"]:
        sample = red_team["samples"][student]
        expected = sum(expected_scores(sample, red_team["course"], red_team["assignment"]).values())
        row = red_team["rows"][student]
        assert (row.score, row.flags) == (expected, ()), row


def test_honest_variations_score_like_the_full_solution_unflagged(red_team):
    full = red_team["rows"]["sample_full"]
    for student in red_team["variations"]:
        row = red_team["rows"][student]
        assert (row.score, row.status, row.flags) == (full.score, full.status, ()), row


def test_every_attack_earns_nothing_it_did_not_earn_and_is_reported(red_team):
    base = red_team["rows"][red_team["target"].base].score
    failures = []
    for student, spec in red_team["attacks"].items():
        row = red_team["rows"][student]
        if spec.expected == "base" and row.score > base:
            failures.append(f"{student}: {row.score} > base {base} ({row})")
        elif isinstance(spec.expected, float) and row.score != spec.expected:
            failures.append(f"{student}: {row.score}, expected {spec.expected} ({row})")
        if row.status not in spec.status:
            failures.append(f"{student}: status {row.status} not in {spec.status}")
        for flag in spec.flags:
            if not any(f.startswith(flag) for f in row.flags):
                failures.append(f"{student}: flag {flag} missing from {row.flags}")
    assert not failures, "\n".join(failures)


def test_nothing_inside_the_sandbox_sees_hidden_tests_or_course_files(red_team):
    if "attack_read_hidden_tests" in red_team["attacks"]:
        assert "nothing found" in _output_text(red_team, "attack_read_hidden_tests")
        assert "overwrote 0 files" in _output_text(red_team, "attack_overwrite_files")
    assert "leaked 0" in _output_text(red_team, "attack_hidden_tests_from_caches")


def test_limits_hold(red_team):
    if "attack_disk_fill_everywhere" not in red_team["attacks"]:
        pytest.skip("the limits are checked on hw1")
    disk_mb = red_team["assignment"].limits.disk_mb
    written = re.search(r"wrote (\d+) MB", _output_text(red_team, "attack_disk_fill_everywhere"))
    assert written and int(written.group(1)) <= disk_mb, written
    cores = re.search(
        r"used ([\d.]+) cores", _output_text(red_team, "attack_threads_on_every_core")
    )
    assert cores and float(cores.group(1)) < 1.3, "one core per job when two jobs share two"
    fork = _output_text(red_team, "attack_fork_bomb")
    assert "stopped after" in fork or red_team["rows"]["attack_fork_bomb"].status == "kernel_died"


def test_no_feedback_shows_a_hidden_test_line(red_team):
    assignment_id = red_team["target"].assignment
    hidden = hidden_test_lines(red_team["course"], assignment_id)
    assert hidden, f"the hidden tests of {assignment_id} have no distinctive line"
    pages = sorted((red_team["out"] / "feedback").rglob("*.html"))
    assert {p.parent.name for p in pages} >= {*red_team["honest"], *red_team["attacks"]}
    for page in pages:
        text = html.unescape(re.sub(r"<[^>]+>", "", page.read_text()))  # as rendered
        # a line the student wrote themselves (an attack's `return found`) is no leak
        submitted = (
            red_team["submissions"] / page.parent.name / assignment_id / f"{page.stem}.ipynb"
        )
        own = {
            line.strip()
            for cell in nbformat.read(submitted, 4).cells
            for line in cell.source.splitlines()
        }
        leaked = sorted((hidden - own) & {line.strip() for line in text.splitlines()})
        assert not leaked and "### BEGIN HIDDEN TESTS" not in text, (page, leaked[:3])


def test_course_files_and_submissions_are_untouched(red_team):
    assert red_team["unchanged"]


def test_nothing_leaves_the_machine(red_team):
    assert not red_team["network_reached"]
    if "attack_network" in red_team["attacks"]:
        text = _output_text(red_team, "attack_network")
        assert "CONNECTED" not in text and text.count("blocked") == 3
