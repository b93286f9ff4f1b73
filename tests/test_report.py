"""``course report``: the numbers on the page are the gradebook's, the cell most students failed
comes first, failure messages group and never show hidden tests, bad input is explained.

Two batches: a handmade one (scores and test-cell outputs written through the grader's own
gradebook and CSV writers, so every expected number is known), and one real ``course grade``
run of the fixture (``graded_course``) whose page is checked against the gradebook.
"""

from __future__ import annotations

import csv
import html
import json
import re
import shutil
import statistics
import tempfile
from pathlib import Path

import numpy as np
import pytest
from conftest import hidden_test_lines
from graded_course import ASSIGNMENT, graded_course
from nbgrader.api import Gradebook

from hw_utils.cli import main
from hw_utils.grading import autograde as A
from hw_utils.grading import cells as C
from hw_utils.grading.batch import NEEDS_MANUAL_GRADE, GradeRow, _write_csv
from hw_utils.grading.failures import (
    HIDDEN_ONLY,
    NO_MESSAGE,
    Failure,
    HiddenText,
    cell_failures,
    graded_tests,
)
from hw_utils.grading.gradebook import default_db_url, merge_result
from hw_utils.grading.outcomes import GradingOutputError, autograded_folder
from hw_utils.grading.report import (
    assignment_report,
    course_report,
    write_assignment_report,
    write_course_report,
)
from hw_utils.manifest import get_assignment

SECOND = "hw8_extra"
SECONDS = {"s1": 4.0, "s2": 6.0, "s3": 9.5, "s4": 0.0}


def _stream(text: str) -> dict:
    return {"output_type": "stream", "name": "stdout", "text": text}


def _register(course: Path, assignment_id: str) -> None:
    assignment = get_assignment(course, assignment_id)
    with tempfile.TemporaryDirectory() as scratch:
        copy = A.trusted_copy(course, assignment, Path(scratch))
        A.register_assignment(copy, assignment, default_db_url(course))


def _add_second_assignment(course: Path) -> None:
    """A copy of the fixture under another id, earlier in the course."""
    toml = (course / "assignments" / f"{ASSIGNMENT}.toml").read_text()
    toml = toml.replace("order = 9", "order = 8").replace(f'"{ASSIGNMENT}"', f'"{SECOND}"')
    (course / "assignments" / f"{SECOND}.toml").write_text(toml)
    (course / "source" / SECOND).mkdir()
    shutil.copy(
        course / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb",
        course / "source" / SECOND / f"{SECOND}.ipynb",
    )


def _submit(course, assignment, student, scores, outputs, *, status=A.GRADED, flags=()):
    """Merge ``scores`` (grade id -> points) into the gradebook and write the autograded notebook
    with ``outputs`` (grade id -> outputs) in its test cells (none when missing)."""
    (notebook,) = assignment.notebooks
    source = C.read_notebook(C.source_notebook(course, assignment.id, notebook))
    cells = tuple(
        A.CellScore(
            notebook, C.grade_id(c), scores.get(C.grade_id(c), C.points(c)), C.points(c), False
        )
        if C.is_test(c)
        else A.CellScore(notebook, C.grade_id(c), None, C.points(c), True)
        for c in source.cells
        if C.is_graded(c)
    )
    result = A.SubmissionResult(student, status, flags, cells, {}, "", 0.0)
    merge_result(default_db_url(course), assignment.id, result)
    if status == A.MISSING:
        return sum(c.score for c in cells if c.score is not None)
    graded = json.loads(json.dumps(source))
    for cell in graded["cells"]:
        cell["outputs"] = outputs.get(C.grade_id(cell), []) if cell["cell_type"] == "code" else []
    folder = autograded_folder(course, student, assignment.id)
    folder.mkdir(parents=True)
    (folder / f"{notebook}.ipynb").write_text(json.dumps(graded))
    return sum(c.score for c in cells if c.score is not None)


@pytest.fixture(scope="module")
def handmade(tmp_path_factory):
    """The fixture course with four students written by hand: s1 lost points in the second
    test cell, s2 in both (the first with hidden-test text only), s3 none (but flagged), s4
    handed in nothing; s1 and s3 also did the second assignment."""
    from conftest import make_fixture_course

    course = make_fixture_course(tmp_path_factory.mktemp("handmade") / "course")
    _add_second_assignment(course)
    assignment = get_assignment(course, ASSIGNMENT)
    first, second = graded_tests(course, assignment)[:2]
    hidden = max(hidden_test_lines(course, ASSIGNMENT), key=len)
    _register(course, ASSIGNMENT)
    windows = (
        "FAILED case one: got {}, expected 5.\nHint: count the windows.\n1 of 2 cases passed.\n"
    )
    outputs = {
        "s1": {second.grade_id: [_stream(windows.format(6))]},
        "s2": {
            second.grade_id: [
                _stream(windows.format(7) + "FAILED case two: shape (2,), expected (3,).\n")
            ],
            first.grade_id: [
                _stream(f"FAILED a hidden case: {hidden}\n"),
                {"output_type": "error", "ename": "AssertionError", "evalue": hidden[3:-3]},
            ],
        },
        "s3": {},
    }
    lost = {
        "s1": {second.grade_id: 0.0},
        "s2": {second.grade_id: 0.0, first.grade_id: 0.0},
        "s3": {},
    }
    scores, rows = {}, []
    for student in ("s1", "s2", "s3"):
        flags = ("static:magic",) if student == "s3" else ()
        scores[student] = _submit(
            course, assignment, student, lost[student], outputs[student], flags=flags
        )
        rows.append(
            GradeRow(student, scores[student], 10, NEEDS_MANUAL_GRADE, flags, "", SECONDS[student])
        )
    zero = {t.grade_id: 0.0 for t in graded_tests(course, assignment)}
    scores["s4"] = _submit(course, assignment, "s4", zero, {}, status=A.MISSING)
    rows.append(GradeRow("s4", 0, 10, A.MISSING, (), "no notebook in the submission", 0.0))
    grades = course / "graded"
    grades.mkdir()
    _write_csv(grades, rows, default_db_url(course), ASSIGNMENT)

    _register(course, SECOND)
    other = get_assignment(course, SECOND)
    second_scores = {
        "s1": _submit(course, other, "s1", {}, {}),
        "s3": _submit(course, other, "s3", {first.grade_id: 0.0}, {}),
    }
    return {
        "course": course,
        "grades": grades,
        "first": first,
        "second": second,
        "hidden": hidden,
        "scores": scores,
        "second_scores": second_scores,
    }


def _page(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _fact(page: str, key: str) -> str:
    match = re.search(rf'id="{re.escape(key)}">([^<]*)<', page)
    assert match, f"no #{key} on the page"
    return match.group(1)


def _row(page: str, attribute: str, value: str) -> str:
    match = re.search(rf'<tr {attribute}="{re.escape(value)}">(.*?)</tr>', page, re.S)
    assert match, f"no row {attribute}={value} on the page"
    return match.group(1)


def _lost(page: str, grade_id: str) -> tuple[int, int]:
    match = re.search(
        r'data-lost="(\d+)" data-graded="(\d+)"', _row(page, "data-grade-id", grade_id)
    )
    assert match, grade_id
    return int(match.group(1)), int(match.group(2))


def test_the_cell_most_students_failed_comes_first(handmade):
    report = assignment_report(handmade["course"], ASSIGNMENT, handmade["grades"])
    first, second = handmade["first"], handmade["second"]
    # In the notebook `first` comes first; `second` lost points for 2 of the 3 that ran.
    assert [c.test.grade_id for c in report.cells[:2]] == [second.grade_id, first.grade_id]
    top = report.cells[0]
    assert (top.lost, top.graded, top.points_lost) == (2, 3, 2 * second.points)
    functions = {f.function: f for f in report.functions}
    assert functions[second.function].points_lost >= 2 * second.points


def test_messages_differing_in_numbers_group_and_the_hint_follows(handmade):
    report = assignment_report(handmade["course"], ASSIGNMENT, handmade["grades"])
    top = report.cells[0]
    assert top.messages[0].text == "case one: got 6, expected 5."  # the first wording seen
    assert (top.messages[0].students, top.messages[0].variants) == (2, 2)
    assert top.messages[0].hint == "count the windows."
    assert [(m.text, m.students) for m in top.messages[1:]] == [
        ("case two: shape (2,), expected (3,).", 1)
    ]


def test_hidden_test_text_never_reaches_the_page(handmade, tmp_path):
    report = assignment_report(handmade["course"], ASSIGNMENT, handmade["grades"])
    failed_hidden = next(c for c in report.cells if c.test == handmade["first"])
    assert [m.text for m in failed_hidden.messages] == [HIDDEN_ONLY]
    text = html.unescape(_page(write_assignment_report(report, tmp_path).html))
    assert handmade["hidden"][3:-3] not in text
    for line in hidden_test_lines(handmade["course"], ASSIGNMENT):
        assert line not in text, line


def test_time_flags_and_the_lms_table(handmade, tmp_path):
    report = assignment_report(handmade["course"], ASSIGNMENT, handmade["grades"])
    assert report.time.median == statistics.median([4.0, 6.0, 9.5])
    assert report.time.slowest[0] == ("s3", 9.5)
    assert [(r.student_id, r.status, r.flags) for r in report.flagged] == [
        ("s3", NEEDS_MANUAL_GRADE, ("static:magic",)),
        ("s4", A.MISSING, ()),
    ]
    files = write_assignment_report(report, tmp_path)
    with open(files.csv) as f:
        rows = {r["student_id"]: r for r in csv.DictReader(f)}
    assert {s: float(r[ASSIGNMENT]) for s, r in rows.items()} == handmade["scores"]
    assert {r["max_total"] for r in rows.values()} == {"10"}
    assert all(p.read_bytes().startswith(b"\x89PNG") for p in files.figures)
    page = _page(files.html)
    assert _fact(page, "time-median") == "6.0"
    assert "static:magic" in _row(page, "data-student", "s3")


def test_the_page_is_self_contained(handmade, tmp_path):
    page = _page(
        write_assignment_report(
            assignment_report(handmade["course"], ASSIGNMENT, handmade["grades"]), tmp_path
        ).html
    )
    assert "<script" not in page and "<link" not in page
    assert not re.search(r'(src|href)="(?!data:)', page), "everything is inline"
    assert page.count('src="data:image/png;base64,') == 3


def test_course_report_has_a_column_per_assignment_and_totals(handmade, tmp_path):
    report = course_report(handmade["course"])
    assert [a.id for a in report.assignments] == [SECOND, ASSIGNMENT]  # course order
    rows = {r.student_id: r for r in report.rows}
    scores, other = handmade["scores"], handmade["second_scores"]
    assert rows["s2"].scores == (None, scores["s2"])
    assert rows["s3"].total == scores["s3"] + other["s3"]
    assert report.max_total == 20
    files = write_course_report(report, tmp_path)
    with open(files.csv) as f:
        table = {r["student_id"]: r for r in csv.DictReader(f)}
    assert list(next(iter(table.values()))) == [
        "student_id",
        SECOND,
        ASSIGNMENT,
        "total",
        "max_total",
    ]
    assert table["s2"][SECOND] == "" and float(table["s2"]["total"]) == scores["s2"]
    assert float(table["s1"]["total"]) == scores["s1"] + other["s1"]
    page = _page(files.html)
    assert _fact(page, "median") == f"{statistics.median(r.total for r in report.rows):.4g}"


def test_failures_of_a_cell_without_check_lines(handmade):
    hidden = HiddenText(handmade["course"], get_assignment(handmade["course"], ASSIGNMENT))
    printed = {"outputs": [_stream("3 of 4 cases passed\n")]}
    assert cell_failures(printed, hidden) == [Failure("3 of 4 cases passed", "")]
    assert cell_failures({"outputs": []}, hidden) == [Failure(NO_MESSAGE, "")]
    stub = {"ename": "NotImplementedError", "evalue": "add: replace this line with your code"}
    assert cell_failures({"outputs": [{"output_type": "error", **stub}]}, hidden) == [
        Failure("NotImplementedError: add: replace this line with your code", "")
    ]


# --- a real grading run, checked against its gradebook ---------------------------------------


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    return graded_course(tmp_path_factory)


def _gradebook(course: Path):
    """Student -> (score, {grade id: (score, max)}) straight from nbgrader's gradebook."""
    found = {}
    with Gradebook(default_db_url(course)) as gb:
        for submission in gb.find_assignment(ASSIGNMENT).submissions:
            cells = {
                g.name: (None if g.needs_manual_grade else g.score, g.max_score)
                for nb in submission.notebooks
                for g in nb.grades
            }
            found[submission.student.id] = (submission.score, cells)
    return found


def test_page_numbers_are_the_gradebooks(graded, tmp_path, capsys):
    out = tmp_path / "reports"
    argv = ["--course-dir", str(graded.course), "report", ASSIGNMENT]
    assert main([*argv, "--grades", str(graded.grades_dir), "--out", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    page = _page(out / f"{ASSIGNMENT}-report.html")
    book = _gradebook(graded.course)
    scores = [score for score, _ in book.values()]
    assert int(_fact(page, "count")) == len(book) == len(graded.students)
    for key, q in (("q1", 25), ("median", 50), ("q3", 75)):
        assert float(_fact(page, key)) == pytest.approx(np.percentile(scores, q), rel=1e-3)
    assert float(_fact(page, "mean")) == pytest.approx(np.mean(scores), rel=1e-3)
    ran = {s for s in book if any(autograded_folder(graded.course, s, ASSIGNMENT).glob("*.ipynb"))}
    for test in graded_tests(graded.course, graded.assignment):
        lost = sum(1 for s in ran if book[s][1][test.grade_id][0] < book[s][1][test.grade_id][1])
        assert _lost(page, test.grade_id) == (lost, len(ran))
    with open(graded.grades_dir / "grades.csv") as f:
        rows = list(csv.DictReader(f))
    seconds = [float(r["seconds"]) for r in rows if float(r["seconds"]) > 0]
    assert float(_fact(page, "time-median")) == pytest.approx(statistics.median(seconds), abs=0.06)
    assert "renamed_notebook" in _row(page, "data-student", "fay")


def test_course_csv_is_the_gradebooks(graded, tmp_path):
    out = tmp_path / "reports"
    assert main(["--course-dir", str(graded.course), "report", "--all", "--out", str(out)]) == 0
    with open(out / "course-grades.csv") as f:
        table = {r["student_id"]: float(r[ASSIGNMENT]) for r in csv.DictReader(f)}
    assert table == {s: score for s, (score, _) in _gradebook(graded.course).items()}


# --- bad input ------------------------------------------------------------------------------


def _report(course: Path, *args: str) -> int:
    return main(["--course-dir", str(course), "report", *args])


def test_a_missing_gradebook_is_named(fixture_course, tmp_path, capsys):
    (tmp_path / "graded").mkdir()
    assert _report(fixture_course, ASSIGNMENT, "--grades", str(tmp_path / "graded")) == 2
    error = capsys.readouterr().err
    assert f"No gradebook at {fixture_course / 'gradebook.db'}" in error
    assert "course grade" in error
    assert not (fixture_course / "gradebook.db").exists(), "reading never creates a gradebook"
    assert _report(fixture_course, "--all") == 2


def test_an_assignment_never_graded_is_named(handmade, tmp_path):
    course = Path(shutil.copytree(handmade["course"], tmp_path / "course"))
    (course / "assignments" / "hw7_never.toml").write_text(
        (course / "assignments" / f"{SECOND}.toml")
        .read_text()
        .replace("order = 8", "order = 7")
        .replace(f'"{SECOND}"', '"hw7_never"')
    )
    with pytest.raises(GradingOutputError, match="hw7_never has no graded submissions"):
        assignment_report(course, "hw7_never", handmade["grades"])


def test_an_empty_batch_and_a_wrong_folder_are_named(handmade, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "grades.csv").write_text("student_id,score,max_score,status,flags,message,seconds\n")
    with pytest.raises(GradingOutputError, match="lists no submissions"):
        assignment_report(handmade["course"], ASSIGNMENT, empty)
    with pytest.raises(GradingOutputError, match=r"No grades\.csv in"):
        assignment_report(handmade["course"], ASSIGNMENT, tmp_path)


def test_usage_errors(capsys):
    for argv in (["report"], ["report", ASSIGNMENT, "--all"], ["report", ASSIGNMENT]):
        with pytest.raises(SystemExit) as stop:
            main(argv)
        assert stop.value.code == 2
    assert "needs --grades" in capsys.readouterr().err
