"""A course on one machine, through nbgrader's exchange: the instructor releases, the student
fetches, works and submits in JupyterLab's *Assignments* panel, the instructor collects, grades
with ``course grade`` (sandbox on), grades a discussion answer by hand in formgrader, returns
feedback, and exports grades; the student reads the feedback in the browser.

Every assignment of the manifest takes part. Student and instructor are the same OS user with
their own folders and their own JupyterLab; the exchange lives in a scratch folder.
"""

from __future__ import annotations

import csv
import getpass
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from hw_utils.grading import cells as C
from hw_utils.grading.nbgrader_cli import run_nbgrader
from hw_utils.grading.samples import expected_scores, materialise
from hw_utils.grading.sandbox import SandboxUnavailableError, require_bwrap
from hw_utils.manifest import get_assignment

from . import lab_page as lab
from .course_copy import REAL_ASSIGNMENTS, hidden_test_lines, partly_wrong_sample, scratch_course
from .lab_server import LabSpec, lab_servers

pytestmark = pytest.mark.browser

STUDENT = getpass.getuser()  # nbgrader's exchange names a submission after the OS user
COMMAND_TIMEOUT_S = 120


def exchange_config(exchange: Path) -> str:
    return f"c = get_config()\nc.Exchange.root = {str(exchange)!r}\n"


@pytest.fixture(scope="module")
def campus(tmp_path_factory, browser_session):
    """The course folder (instructor), the student's folder, the exchange, and a JupyterLab for
    each of the two people."""
    assert REAL_ASSIGNMENTS, "the manifest lists no assignment"
    try:
        require_bwrap()
    except SandboxUnavailableError as error:
        if os.environ.get("CI"):
            pytest.fail(f"course grade needs its sandbox in CI: {error}", pytrace=False)
        pytest.skip(str(error))
    root = tmp_path_factory.mktemp("campus")
    course = scratch_course(root / "course")
    home = root / "student"
    home.mkdir()
    config = exchange_config(root / "exchange")
    with lab_servers(
        LabSpec(course, root / "instructor-jupyter", nbgrader_config=config),
        LabSpec(home, root / "student-jupyter", nbgrader_config=config),
    ) as (instructor, student):
        browser_session.servers.update(instructor=instructor, student=student)
        yield {
            "root": root,
            "course": course,
            "home": home,
            # the instructor's own Jupyter config (the exchange root) for the command line
            "env": {"JUPYTER_CONFIG_DIR": str(root / "instructor-jupyter" / "config")},
            "instructor": instructor,
            "student": student,
            "scores": {},  # assignment -> (autograded points, manual points)
        }


def instructor_runs(campus, *args: str) -> str:
    """``nbgrader <args>`` in the course folder, as the instructor; returns its log."""
    return run_nbgrader(args, campus["course"], env=campus["env"], timeout=COMMAND_TIMEOUT_S).stdout


def course_grade(campus, assignment_id: str) -> dict[str, str]:
    """``course grade <id> --submissions submitted --out ...`` (the real command, sandbox on);
    returns the student's row of grades.csv."""
    out = campus["root"] / "grades" / assignment_id
    command = [str(Path(sys.executable).parent / "course"), "grade", assignment_id]
    result = subprocess.run(
        [*command, "--submissions", "submitted", "--out", str(out)],
        cwd=campus["course"],
        capture_output=True,
        text=True,
        timeout=get_assignment(campus["course"], assignment_id).limits.notebook_timeout_s
        + COMMAND_TIMEOUT_S,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    with open(out / "grades.csv") as f:
        rows = {row["student_id"]: row for row in csv.DictReader(f)}
    assert set(rows) == {STUDENT}, rows
    return rows[STUDENT]


def open_lab(browser_session, server) -> Page:
    page = browser_session.new_page()
    lab.open_lab(page, server)
    return page


def assignment_row(page: Page, listing: str, assignment_id: str):
    """The row of ``assignment_id`` in one list of the Assignments panel: ``released``,
    ``fetched`` or ``submitted``."""
    rows = page.locator(f"#{listing}_assignments_list > .list_item")
    return rows.filter(has=page.locator(".item_name", has_text=assignment_id))


def write_work(campus, assignment_id: str) -> None:
    """The student's work: the fetched notebooks with the bundled partly wrong sample's answers."""
    course = campus["course"]
    assignment = get_assignment(course, assignment_id)
    work = partly_wrong_sample(course, assignment_id)
    with tempfile.TemporaryDirectory() as scratch:
        written = materialise(work, course, assignment, Path(scratch)) / assignment.id
        for notebook in assignment.notebooks:
            fetched = campus["home"] / assignment_id / f"{notebook}.ipynb"
            assert fetched.is_file(), f"the fetched assignment lacks {fetched.name}"
            shutil.copy(written / f"{notebook}.ipynb", fetched)


def test_student_fetches_works_and_submits_in_the_assignments_panel(campus, browser_session):
    for assignment_id in REAL_ASSIGNMENTS:
        instructor_runs(campus, "release_assignment", assignment_id)

    page = open_lab(browser_session, campus["student"])
    campus["student_page"] = page
    lab.menu(page, "Nbgrader", "Assignment List")
    for assignment_id in REAL_ASSIGNMENTS:
        assignment_row(page, "released", assignment_id).get_by_role("button", name="Fetch").click()
        expect(assignment_row(page, "fetched", assignment_id)).to_be_visible()
    browser_session.shot(page, "student-fetched")

    for assignment_id in REAL_ASSIGNMENTS:
        write_work(campus, assignment_id)
        assignment_row(page, "fetched", assignment_id).get_by_role("button", name="Submit").click()
        expect(assignment_row(page, "submitted", assignment_id)).to_be_visible()
    browser_session.shot(page, "student-submitted")
    inbound = campus["root"] / "exchange" / "cnn-course" / "inbound"
    for assignment_id in REAL_ASSIGNMENTS:
        assert list(inbound.glob(f"{STUDENT}+{assignment_id}+*")), f"{assignment_id} not submitted"


def manual_answer(course: Path, assignment_id: str):
    """``(notebook, cell)`` of the first discussion answer (graded by hand), or ``None``."""
    for notebook in get_assignment(course, assignment_id).notebooks:
        source = C.read_notebook(C.source_notebook(course, assignment_id, notebook))
        for cell in source.cells:
            if C.is_manual_answer(cell):
                return notebook, cell
    return None


def jinja_score(points: float) -> str:
    """A score as nbgrader's feedback template prints it (``float | round(2)``)."""
    return str(round(float(points), 2))


def grade_by_hand(page: Page, assignment_id: str, notebook: str, answer, points: float) -> None:
    """Formgrader → Manual Grading → assignment → notebook → the submission: type the points of
    the answer and wait until formgrader has saved them."""
    frame = page.frame_locator("iframe")
    frame.locator(".nav").get_by_role("link", name="Manual Grading").click()
    expect(frame.locator("body")).to_contain_text("Assignment ID")
    frame.get_by_role("link", name=assignment_id, exact=True).click()
    expect(frame.locator("body")).to_contain_text("Notebook ID")
    frame.get_by_role("link", name=notebook, exact=True).click()
    expect(frame.locator("body")).to_contain_text("Submission ID")
    frame.get_by_role("link", name="Submission #1").click()
    score = frame.locator(f"input.score#{C.grade_id(answer)}")
    # formgrader marks the box once the submission's grades have loaded
    expect(score).to_have_class(re.compile(r"\bneeds_manual_grade\b"))
    with page.expect_response(
        lambda r: "/formgrader/api/grade/" in r.url and r.request.method == "PUT"
    ) as saved:
        score.fill(f"{points:g}")
        score.press("Tab")
    assert saved.value.ok, saved.value.status
    expect(score).not_to_have_class(re.compile(r"\bneeds_manual_grade\b"))


def test_instructor_grades_and_grades_a_discussion_answer_by_hand(campus, browser_session):
    course = campus["course"]
    assert "student_page" in campus, "needs the submissions of the previous test"
    for assignment_id in REAL_ASSIGNMENTS:
        instructor_runs(campus, "collect", assignment_id)
        row = course_grade(campus, assignment_id)
        work = partly_wrong_sample(course, assignment_id)
        expected = expected_scores(work, course, get_assignment(course, assignment_id))
        waits = manual_answer(course, assignment_id) is not None  # for a grader
        assert row["status"] == ("needs_manual_grade" if waits else "graded"), row
        assert float(row["score"]) == sum(expected.values()), (work.description, row)
        campus["scores"][assignment_id] = [float(row["score"]), 0.0]

    page = open_lab(browser_session, campus["instructor"])
    lab.menu(page, "Nbgrader", "Formgrader")
    expect(page.frame_locator("iframe").locator("body")).to_contain_text("Manage Assignments")
    table = page.frame_locator("iframe").locator("table")
    for assignment_id in REAL_ASSIGNMENTS:
        expect(table).to_contain_text(assignment_id)
    table.scroll_into_view_if_needed()
    browser_session.shot(page, "formgrader-manage-assignments")
    for assignment_id in REAL_ASSIGNMENTS:
        if manual_answer(course, assignment_id) is None:
            continue
        notebook, answer = manual_answer(course, assignment_id)
        points = C.points(answer) / 2
        grade_by_hand(page, assignment_id, notebook, answer, points)
        campus["scores"][assignment_id][1] = points
        browser_session.shot(page, f"formgrader-manual-grade-{assignment_id}")

    (course / "export").mkdir()
    instructor_runs(campus, "export", "--to=export/grades.csv")
    with open(course / "export" / "grades.csv") as f:
        exported = {(r["assignment"], r["student_id"]): r for r in csv.DictReader(f)}
    for assignment_id, (autograded, by_hand) in campus["scores"].items():
        row = exported[assignment_id, STUDENT]
        assert float(row["raw_score"]) == autograded + by_hand, (assignment_id, row)


def test_student_reads_feedback_without_hidden_tests(campus, browser_session):
    course = campus["course"]
    assert campus["scores"], "needs the grades of the previous test"
    for assignment_id in REAL_ASSIGNMENTS:
        instructor_runs(campus, "generate_feedback", assignment_id, "--force")
        instructor_runs(campus, "release_feedback", assignment_id)

    page = campus["student_page"]
    page.locator("#refresh_assignments_list").click()
    for assignment_id in REAL_ASSIGNMENTS:
        row = assignment_row(page, "submitted", assignment_id)
        row.get_by_role("button", name="Fetch Feedback").click()
        expect(row.get_by_text("(view feedback)")).to_be_visible()
    browser_session.shot(page, "student-feedback-fetched")

    for assignment_id in REAL_ASSIGNMENTS:
        assignment = get_assignment(course, assignment_id)
        autograded, by_hand = campus["scores"][assignment_id]
        row = assignment_row(page, "submitted", assignment_id)
        row.get_by_text("(view feedback)").click()
        notebook = assignment.notebooks[0]
        page.locator(".jp-DirListing-item", has_text=f"{notebook}.html").dblclick()
        viewer = page.frame_locator(".jp-HTMLViewer iframe:visible")
        expect(viewer.locator("body")).to_contain_text(notebook)
        text = viewer.locator("body").inner_text()
        browser_session.shot(page, f"student-feedback-{assignment_id}")
        total = (
            f"(Score: {jinja_score(autograded + by_hand)} / {jinja_score(assignment.total_points)})"
        )
        assert total in text, f"{assignment_id}: feedback header is not {total}"
        leaked = [line for line in hidden_test_lines(course, assignment_id) if line in text]
        assert not leaked and "HIDDEN TESTS" not in text, f"hidden tests shown: {leaked}"
        lab.menu(page, "Nbgrader", "Assignment List")
