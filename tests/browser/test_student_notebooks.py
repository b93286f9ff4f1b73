"""What a student sees in JupyterLab, for every assignment of the manifest.

One JupyterLab server serves a student's folder holding three copies of each released
assignment: untouched, solved (the reference solution, as a student would write it) and partly
wrong (a bundled buggy sample). The tests drive chromium as the student guide of README.md says:
run the cells, *Restart Kernel and Run All Cells*, *Validate*.
"""

from __future__ import annotations

import re
from typing import NamedTuple

import pytest
from nbformat import NotebookNode
from playwright.sync_api import Page

from hw_utils.grading import cells as C
from hw_utils.manifest import get_assignment

from . import lab_page as lab
from .course_copy import (
    REAL_ASSIGNMENTS,
    graded_tests,
    partly_wrong_sample,
    sample,
    scratch_course,
    solution_ids,
    stub_names,
    student_folder,
)
from .lab_server import LabSpec, lab_servers

pytestmark = pytest.mark.browser

VARIANTS = ("untouched", "solved", "partly-wrong")
STUB_ERROR = re.compile(r"NotImplementedError: ([\w.]+): replace this line with your code\s*$")
# An untouched stub stops a test cell with IPython's traceback: a few frames (the test line, the
# test helpers, the stub's `raise`) of a few context lines each, then the stub's message; a
# traceback through library internals or a printed tensor is much longer.
MAX_ERROR_LINES = 60
# A failed case prints "FAILED <case>: got ..., expected ..." and a hint line.
MAX_LINES_PER_FAILED_CASE = 4


@pytest.fixture(scope="module")
def desk(tmp_path_factory, browser_session):
    """The student's folder (``<assignment>/<variant>/``), served by JupyterLab and open in one
    browser page."""
    root = tmp_path_factory.mktemp("student")
    course = scratch_course(root / "course")
    home = root / "home"
    notebooks = {}
    for assignment_id in REAL_ASSIGNMENTS:
        assignment = get_assignment(course, assignment_id)
        works = {
            "untouched": None,
            "solved": sample(course, assignment_id, "full"),
            "partly-wrong": partly_wrong_sample(course, assignment_id),
        }
        for variant, work in works.items():
            folder = student_folder(course, assignment, work, home / assignment_id / variant)
            notebooks[assignment_id, variant] = folder / f"{assignment.notebooks[0]}.ipynb"
    with lab_servers(LabSpec(home, root / "jupyter")) as (server,):
        browser_session.servers["student"] = server
        page = browser_session.new_page()
        lab.open_lab(page, server)
        yield {
            "course": course,
            "home": home,
            "server": server,
            "page": page,
            "notebooks": notebooks,
        }


class Opened(NamedTuple):
    page: Page
    notebook: NotebookNode  # the file on screen, as written for the student
    run_timeout: float  # ms: the assignment's time limit for a notebook
    cell_timeout: float  # ms: its time limit for a cell


def open_variant(desk, assignment_id: str, variant: str) -> Opened:
    """Open the notebook of ``variant`` in the student's JupyterLab, kernel idle."""
    path = desk["notebooks"][assignment_id, variant]
    notebook = C.read_notebook(path)
    page = desk["page"]
    lab.open_notebook(
        page, desk["server"], str(path.relative_to(desk["home"])), len(notebook.cells)
    )
    limits = get_assignment(desk["course"], assignment_id).limits
    return Opened(page, notebook, limits.notebook_timeout_s * 1000, limits.cell_timeout_s * 1000)


def errors(cell: lab.CellView) -> list[str]:
    return [o.text for o in cell.outputs if o.mime == lab.STDERR]


def describe(cells: list[lab.CellView]) -> str:
    return "\n".join(f"cell {c.index} {c.prompt}\n{c.text()[:800]}" for c in cells)


@pytest.mark.parametrize("assignment_id", REAL_ASSIGNMENTS)
def test_untouched_release_stops_at_each_stub_naming_the_function(
    assignment_id, browser_session, desk
):
    page, notebook, run_timeout, cell_timeout = open_variant(desk, assignment_id, "untouched")
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
    named = set()
    for index in tests:
        shown = errors(cells[index])
        assert len(shown) == 1, f"test cell {index} shows {len(shown)} errors:\n{shown}"
        message = STUB_ERROR.search(shown[0])
        assert message and message.group(1) in stubs, (
            f"test cell {index} of the untouched release fails with something other than a "
            f"stub's NotImplementedError:\n{shown[0][-2000:]}"
        )
        assert len(shown[0].splitlines()) <= MAX_ERROR_LINES and "tensor(" not in shown[0], (
            f"test cell {index} shows a wall of text for an untouched stub:\n{shown[0]}"
        )
        named.add(message.group(1))
    unnamed = [f for f in solution_ids(notebook) if not any(n.split(".")[0] == f for n in named)]
    assert not unnamed, f"no test cell of the untouched release names the stub of {unnamed}"


@pytest.mark.parametrize("assignment_id", REAL_ASSIGNMENTS)
def test_solved_notebook_runs_clean_and_validates(assignment_id, browser_session, desk):
    page, notebook, run_timeout, _ = open_variant(desk, assignment_id, "solved")
    notebook_name = get_assignment(desk["course"], assignment_id).notebooks[0]
    source = C.read_notebook(C.source_notebook(desk["course"], assignment_id, notebook_name))

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
    assignment_id, browser_session, desk
):
    page, notebook, run_timeout, _ = open_variant(desk, assignment_id, "partly-wrong")
    buggy = partly_wrong_sample(desk["course"], assignment_id)
    tests = graded_tests(notebook)

    lab.restart_and_run_all(page)
    lab.click_validate(page)
    validation = lab.read_validation(page, run_timeout)
    browser_session.shot(page, f"{assignment_id}-partly-wrong-validate")
    lab.close_dialog(page)
    cells = lab.wait_for_run_to_end(page, run_timeout)
    browser_session.shot(page, f"{assignment_id}-partly-wrong-run-all")

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
        failures = max(1, shown.count("FAILED"))
        assert "expected" in shown and "Hint:" in shown, (
            f"test cell {index} does not say what was expected and give a hint:\n{shown}"
        )
        assert "tensor(" not in shown, f"test cell {index} prints a tensor:\n{shown}"
        assert len(shown.splitlines()) <= MAX_LINES_PER_FAILED_CASE * failures + 2, shown

    assert not validation.succeeded, validation.text
    assert sorted(validation.failed_sources) == sorted(
        cell.source.strip() for cell in failing.values()
    ), validation.text
