"""A course on one machine, in the browser: the student guide (a partly wrong notebook) on every
assignment of the manifest; the untouched and solved notebooks and the exchange round trip
(steps 1, 3, 4) on the first one.

The tests run in order, as a course does:

1. the instructor releases (``nbgrader release_assignment``); the student fetches in JupyterLab's
   *Assignments* panel, works (a bundled partly wrong sample) and submits there;
2. the student goes through the README's student guide on copies of the released assignments:
   the untouched notebook stops at each stub with its name; a solved one runs clean under
   *Restart Kernel and Run All Cells* and *Validate* says success (first assignment); a partly
   wrong one explains its failing tests and *Validate* names exactly those (every assignment);
3. the instructor collects (``nbgrader collect``), grades with ``course grade`` (sandbox on),
   opens formgrader, grades a discussion answer by hand and exports the grades
   (``export/grades.csv`` holds the manual points);
4. the instructor returns feedback (``nbgrader generate_feedback`` / ``release_feedback``) and the
   student reads it in the browser: the right score, no hidden-test source.

Student and instructor are the same OS user with their own folders, their own JupyterLab (on
127.0.0.1, random port and token) and their own Jupyter config; the exchange is a scratch folder.
Each step's screenshot is in ``test-artifacts/browser/test_course_flow/``.
"""

from __future__ import annotations

import csv
import getpass
import os
from typing import NamedTuple

import pytest
from conftest import hidden_test_lines, scratch_course
from nbformat import NotebookNode
from playwright.sync_api import Page, expect

from hw_utils.grading import cells as C
from hw_utils.grading.samples import expected_scores
from hw_utils.grading.sandbox import SandboxUnavailableError, require_bwrap
from hw_utils.manifest import get_assignment

from . import lab_page as lab
from .course_copy import (
    MAX_ERROR_LINES,
    REAL_ASSIGNMENTS,
    STUB_ERROR,
    assert_each_test_stops_on_a_named_stub,
    graded_tests,
    partly_wrong_sample,
    sample,
    stub_names,
    student_folder,
    write_work,
)
from .instructor import Course, course_grade, feedback_score, grade_by_hand, manual_answer
from .lab_server import LabSpec, lab_servers

pytestmark = pytest.mark.browser

STUDENT = getpass.getuser()  # nbgrader's exchange names a submission after the OS user
# A failed case prints "FAILED <case>: ... expected ...", maybe what came and what was expected on
# a line each, and a hint.
MAX_LINES_PER_FAILED_CASE = 5
# The exchange round trip (release, fetch, submit, collect, grade, grade by hand, feedback) is the
# same machinery for every assignment; it runs on the first one to keep the suite within its
# 3-minute budget. What students see in their notebooks is checked on every assignment, and the
# grading contract grades every assignment's samples.
EXCHANGE_ASSIGNMENTS = REAL_ASSIGNMENTS[:1]
# The untouched and the solved notebook in JupyterLab are the same for every assignment (stubs
# stop Run All, a solved notebook renders its plots and validates): on the first one. Their
# content is checked on every assignment outside the browser (every test cell of each untouched
# release stops on a named stub: test_untouched_release.py; every solution earns full points:
# the grading contract; its outputs: nbval). What a partly wrong notebook shows (each failing
# test's message and hint, Validate naming exactly those) is each assignment's own: on all.
GUIDE_ASSIGNMENTS = REAL_ASSIGNMENTS[:1]


def exchange_config(exchange) -> str:
    return f"c = get_config()\nc.Exchange.root = {str(exchange)!r}\n"


@pytest.fixture(scope="module")
def campus(tmp_path_factory, browser_session):
    """The course folder (instructor), the student's home folder, the exchange, a JupyterLab for
    each of the two people and a browser page on each; the student's home also holds a copy of
    each release per variant: ``<assignment>-<variant>/``."""
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
    notebooks = {}
    for assignment_id in REAL_ASSIGNMENTS:
        assignment = get_assignment(course, assignment_id)
        works = {"partly-wrong": partly_wrong_sample(course, assignment_id)}
        if assignment_id in GUIDE_ASSIGNMENTS:
            works |= {"untouched": None, "solved": sample(course, assignment_id, "full")}
        for variant, work in works.items():
            folder = student_folder(course, assignment, work, home / f"{assignment_id}-{variant}")
            notebooks[assignment_id, variant] = folder / f"{assignment.notebooks[0]}.ipynb"
    config = exchange_config(root / "exchange")
    with lab_servers(
        LabSpec(course, root / "instructor-jupyter", nbgrader_config=config),
        LabSpec(home, root / "student-jupyter", nbgrader_config=config),
    ) as (instructor, student):
        browser_session.servers.update(instructor=instructor, student=student)
        student_page, instructor_page = browser_session.new_page(), browser_session.new_page()
        lab.open_lab(student_page, student)
        lab.open_lab(instructor_page, instructor)
        yield {
            "root": root,
            "course": Course(course, root / "instructor-jupyter" / "config"),
            "home": home,
            "notebooks": notebooks,
            "student": student,
            "student_page": student_page,
            "instructor_page": instructor_page,
        }


def in_front(page: Page) -> Page:
    """Bring the student's or the instructor's page to the front: a page behind another gets no
    animation frames, so each click waits for it to look stable."""
    page.bring_to_front()
    return page


# 1. Release, fetch, work, submit.


def test_student_fetches_works_and_submits_in_the_assignments_panel(campus, browser_session):
    course = campus["course"]
    for assignment_id in EXCHANGE_ASSIGNMENTS:
        course.nbgrader("release_assignment", assignment_id)

    page = in_front(campus["student_page"])
    lab.menu(page, "Nbgrader", "Assignment List")
    for assignment_id in EXCHANGE_ASSIGNMENTS:
        released = lab.assignment_row(page, "released", assignment_id)
        released.get_by_role("button", name="Fetch").click()
        expect(lab.assignment_row(page, "fetched", assignment_id)).to_be_visible()
    browser_session.shot(page, "student-fetched")

    for assignment_id in EXCHANGE_ASSIGNMENTS:
        assignment = get_assignment(course.root, assignment_id)
        fetched = campus["home"] / assignment_id
        assert (fetched / f"{assignment.notebooks[0]}.ipynb").is_file()
        work = partly_wrong_sample(course.root, assignment_id)
        write_work(course.root, assignment, work, fetched)
        fetched_row = lab.assignment_row(page, "fetched", assignment_id)
        fetched_row.get_by_role("button", name="Submit").click()
        expect(lab.assignment_row(page, "submitted", assignment_id)).to_be_visible()
    browser_session.shot(page, "student-submitted")

    inbound = campus["root"] / "exchange" / "cnn-course" / "inbound"
    for assignment_id in EXCHANGE_ASSIGNMENTS:
        assert list(inbound.glob(f"{STUDENT}+{assignment_id}+*")), f"{assignment_id} not submitted"
    campus["submitted"] = True


# 2. The student guide, on copies of each release.


class Opened(NamedTuple):
    page: Page
    notebook: NotebookNode  # the file on screen, as written for the student
    run_timeout: float  # ms: the assignment's time limit for a notebook
    cell_timeout: float  # ms: its time limit for a cell


def open_variant(campus, assignment_id: str, variant: str) -> Opened:
    """Open the notebook of ``variant`` in the student's JupyterLab, kernel idle."""
    path = campus["notebooks"][assignment_id, variant]
    notebook = C.read_notebook(path)
    page = in_front(campus["student_page"])
    relative = str(path.relative_to(campus["home"]))
    lab.open_notebook(page, campus["student"], relative, len(notebook.cells))
    limits = get_assignment(campus["course"].root, assignment_id).limits
    return Opened(page, notebook, limits.notebook_timeout_s * 1000, limits.cell_timeout_s * 1000)


def errors(cell: lab.CellView) -> list[str]:
    return [o.text for o in cell.outputs if o.mime == lab.STDERR]


def describe(cells: list[lab.CellView]) -> str:
    return "\n".join(f"cell {c.index} {c.prompt}\n{c.text()[:800]}" for c in cells)


@pytest.mark.parametrize("assignment_id", GUIDE_ASSIGNMENTS)
def test_untouched_release_stops_at_each_stub_naming_the_function(
    assignment_id, campus, browser_session
):
    page, notebook, run_timeout, cell_timeout = open_variant(campus, assignment_id, "untouched")
    stubs, tests = stub_names(notebook), graded_tests(notebook)

    # Run All stops at the first test cell, on the stub of a function the student must write.
    lab.restart_and_run_all(page)
    cells = lab.wait_for_run_to_end(page, run_timeout)
    stopped = [c for c in cells if errors(c)]
    assert stopped, "Run All of the untouched release showed no error at all"
    first = stopped[0]
    first_message = STUB_ERROR.search(errors(first)[0])
    assert first_message and first_message.group(1) in stubs, describe([first])
    lab.show_cell(page, first.index)
    browser_session.shot(page, f"{assignment_id}-untouched-run-all-stops-at-a-stub")

    # Going on cell by cell (cells that use an unwritten function's result may fail too), every
    # test cell stops on a stub, in a few lines.
    cells = lab.run_cells_from(page, first.index + 1, cell_timeout)
    browser_session.shot(page, f"{assignment_id}-untouched-cell-by-cell")
    assert len(cells) == len(notebook.cells)
    assert_each_test_stops_on_a_named_stub(notebook, {i: errors(cells[i]) for i in tests})


@pytest.mark.parametrize("assignment_id", GUIDE_ASSIGNMENTS)
def test_solved_notebook_runs_clean_and_validates(assignment_id, campus, browser_session):
    page, notebook, run_timeout, _ = open_variant(campus, assignment_id, "solved")
    course = campus["course"].root
    notebook_name = get_assignment(course, assignment_id).notebooks[0]
    source = C.read_notebook(C.source_notebook(course, assignment_id, notebook_name))

    lab.restart_and_run_all(page)
    lab.click_validate(page)  # while the notebook runs: validation runs its own kernel
    validation = lab.read_validation(page, run_timeout)
    browser_session.shot(page, f"{assignment_id}-solved-validate")
    assert validation.succeeded, validation.text
    assert "Success! Your notebook passes all the tests." in validation.text
    lab.close_dialog(page)

    cells = lab.wait_for_run_to_end(page, run_timeout)
    with_images = [c.index for c in cells if c.images]
    lab.show_cell(page, with_images[0] if with_images else len(cells) - 1)
    browser_session.shot(page, f"{assignment_id}-solved-run-all")
    assert len(cells) == len(notebook.cells) == len(source.cells)
    not_run = [c.index for c in cells if c.kind == "code" and not c.executed]
    assert not not_run, f"cells not run: {not_run}"
    on_stderr = [c for c in cells if any(o.mime == lab.STDERR for o in c.outputs)]
    assert not on_stderr, f"errors or stderr output:\n{describe(on_stderr)}"
    for index, stored in enumerate(source.cells):
        if stored.cell_type != "code":
            continue
        images = sum("image/png" in o.get("data", {}) for o in stored.outputs)
        assert cells[index].images >= images, (
            f"cell {index} shows {cells[index].images} image(s); its stored output has {images}"
        )
        printed = any(o.get("name") == "stdout" for o in stored.outputs)
        if printed:
            assert cells[index].text(lab.STDOUT), f"cell {index} printed nothing on stdout"


@pytest.mark.parametrize("assignment_id", REAL_ASSIGNMENTS)
def test_partly_wrong_notebook_explains_and_validate_names_the_failing_tests(
    assignment_id, campus, browser_session
):
    page, notebook, run_timeout, _ = open_variant(campus, assignment_id, "partly-wrong")
    buggy = partly_wrong_sample(campus["course"].root, assignment_id)
    tests = graded_tests(notebook)

    lab.restart_and_run_all(page)
    lab.click_validate(page)
    validation = lab.read_validation(page, run_timeout)
    browser_session.shot(page, f"{assignment_id}-partly-wrong-validate")
    lab.close_dialog(page)
    cells = lab.wait_for_run_to_end(page, run_timeout)

    not_run = [c.index for c in cells if c.kind == "code" and not c.executed]
    assert not not_run, f"a bug in one function stopped the notebook; not run: {not_run}"
    broken = [c for c in cells if errors(c) and c.index not in tests]
    assert not broken, f"cells other than tests fail:\n{describe(broken)}"

    failing = {}
    for index, cell in tests.items():
        shown = lab.shown_score(cells[index])
        if errors(cells[index]) or (shown is not None and shown < C.points(cell)):
            failing[index] = cell
    assert failing, f"{buggy.description}: no visible test fails"
    lab.show_cell(page, min(failing))
    browser_session.shot(page, f"{assignment_id}-partly-wrong-failing-test")
    assert {C.grade_id(c) for c in failing.values()} <= set(buggy.expected), (
        "tests fail that the sample's bug should not touch"
    )
    for index in failing:
        shown = cells[index].text()
        assert "expected" in shown and "Hint:" in shown, (
            f"test cell {index} does not say what was expected and give a hint:\n{shown}"
        )
        assert "tensor(" not in shown, f"test cell {index} prints a tensor:\n{shown}"
        printed = [line for line in cells[index].text(lab.STDOUT).splitlines() if line.strip()]
        failures = max(1, sum(line.startswith("FAILED") for line in printed))
        assert len(printed) <= MAX_LINES_PER_FAILED_CASE * failures + 1, (  # + "n of m passed"
            f"test cell {index} prints more than a short message per failed case:\n{shown}"
        )
        for error in errors(cells[index]):
            assert len(error.splitlines()) <= MAX_ERROR_LINES, f"test cell {index}:\n{error}"

    assert not validation.succeeded, validation.text
    assert sorted(validation.failed_sources) == sorted(
        cell.source.strip() for cell in failing.values()
    ), validation.text


# 3. Grades: collected and autograded, a discussion answer graded by hand in formgrader, exported.


def test_instructor_collects_grades_and_grades_by_hand_in_formgrader(campus, browser_session):
    assert "submitted" in campus, "nothing was submitted: see the first test of this module"
    course = campus["course"]
    scores = {}
    for assignment_id in EXCHANGE_ASSIGNMENTS:
        course.nbgrader("collect", assignment_id)
        row = course_grade(course, assignment_id, STUDENT, campus["root"] / "grades")
        work = partly_wrong_sample(course.root, assignment_id)
        expected = expected_scores(work, course.root, get_assignment(course.root, assignment_id))
        waits = manual_answer(course.root, assignment_id) is not None  # for a grader
        assert row["status"] == ("needs_manual_grade" if waits else "graded"), row
        assert float(row["score"]) == sum(expected.values()), (work.description, row)
        scores[assignment_id] = [float(row["score"]), 0.0]

    page = in_front(campus["instructor_page"])
    lab.menu(page, "Nbgrader", "Formgrader")
    frame = page.frame_locator("iframe")
    expect(frame.locator("body")).to_contain_text("Manage Assignments")
    table = frame.locator("table")
    for assignment_id in EXCHANGE_ASSIGNMENTS:
        expect(table).to_contain_text(assignment_id)
    table.scroll_into_view_if_needed()
    browser_session.shot(page, "formgrader-manage-assignments")
    for assignment_id in EXCHANGE_ASSIGNMENTS:
        answer = manual_answer(course.root, assignment_id)
        if answer is not None:
            notebook, cell = answer
            scores[assignment_id][1] = C.points(cell) / 2
            grade_by_hand(page, assignment_id, notebook, cell, scores[assignment_id][1])
            browser_session.shot(page, f"formgrader-manual-grade-{assignment_id}")

    (course.root / "export").mkdir()
    course.nbgrader("export", "--to=export/grades.csv")
    with open(course.root / "export" / "grades.csv") as f:
        exported = {(r["assignment"], r["student_id"]): r for r in csv.DictReader(f)}
    for assignment_id, (autograded, by_hand) in scores.items():
        row = exported[assignment_id, STUDENT]
        assert float(row["raw_score"]) == autograded + by_hand, (assignment_id, row)
    campus["scores"] = scores


# 4. Feedback.


def test_student_reads_feedback_without_hidden_tests(campus, browser_session):
    assert "scores" in campus, "no grades: see the previous test of this module"
    course = campus["course"]
    for assignment_id in EXCHANGE_ASSIGNMENTS:
        course.nbgrader("generate_feedback", assignment_id, "--force")
        course.nbgrader("release_feedback", assignment_id)

    page = in_front(campus["student_page"])
    lab.menu(page, "Nbgrader", "Assignment List")
    page.locator("#refresh_assignments_list").click()
    for assignment_id in EXCHANGE_ASSIGNMENTS:
        row = lab.assignment_row(page, "submitted", assignment_id)
        row.get_by_role("button", name="Fetch Feedback").click()
        expect(row.get_by_text("(view feedback)")).to_be_visible()
    browser_session.shot(page, "student-feedback-fetched")

    for assignment_id in EXCHANGE_ASSIGNMENTS:
        assignment = get_assignment(course.root, assignment_id)
        autograded, by_hand = campus["scores"][assignment_id]
        lab.menu(page, "Nbgrader", "Assignment List")
        lab.assignment_row(page, "submitted", assignment_id).get_by_text("(view feedback)").click()
        notebook = assignment.notebooks[0]
        page.locator(".jp-DirListing-item", has_text=f"{notebook}.html").dblclick()
        viewer = page.frame_locator(".jp-HTMLViewer iframe:visible")
        expect(viewer.locator("body")).to_contain_text(notebook)
        text = viewer.locator("body").inner_text()
        browser_session.shot(page, f"student-feedback-{assignment_id}")
        total = f"(Score: {feedback_score(autograded + by_hand)} / "
        total += f"{feedback_score(assignment.total_points)})"
        assert total in text, f"{assignment_id}: feedback header is not {total}"
        shown_lines = {line.strip() for line in text.splitlines()}
        leaked = hidden_test_lines(course.root, assignment_id) & shown_lines
        assert not leaked and "HIDDEN TESTS" not in text, f"hidden tests shown: {leaked}"
