"""The pages of ``course report`` and ``course similarity`` in chromium.

Each page is opened from disk as an instructor opens it: it loads nothing but itself (no network,
no other file), shows the gradebook's numbers, and puts the cell most students failed first (a
synthetic class of hw1, ``tests/synthetic_batch.py``, and a real grading run of the fixture,
``tests/graded_course.py``). The similarity page says it never changes a grade and shows the
copied pair side by side with the matching code marked. Screenshots (the README shows two of
them) land in ``test-artifacts/browser/test_reports/``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import scratch_course
from graded_course import ADDED, ASSIGNMENT, graded_course
from nbgrader.api import Gradebook
from playwright.sync_api import Page, expect
from synthetic_batch import make_batch

from hw_utils.cli import main
from hw_utils.grading.failures import graded_tests
from hw_utils.grading.gradebook import default_db_url
from hw_utils.grading.outcomes import autograded_folder

from .course_copy import REAL_ASSIGNMENTS

pytestmark = pytest.mark.browser

CLASS_SIZE = 40
# Screenshots for the README: tall enough to show the summary and the first rows below it.
TALL = {"width": 1280, "height": 1280}


def _open(page: Page, path: Path) -> list[str]:
    """Open ``path``; returns every URL the page requested."""
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(path.as_uri())
    expect(page.locator("h1")).to_be_visible()
    return requested


def _loads_only_itself(requested: list[str], path: Path) -> None:
    outside = [url for url in requested if url != path.as_uri() and not url.startswith("data:")]
    assert outside == [], "the page is self-contained"


def _gradebook(course: Path, assignment_id: str):
    """Scores and per-cell (score, max) of every submission, straight from nbgrader."""
    with Gradebook(default_db_url(course)) as gb:
        return {
            s.student.id: (
                s.score,
                {g.name: (g.score, g.max_score) for nb in s.notebooks for g in nb.grades},
            )
            for s in gb.find_assignment(assignment_id).submissions
        }


def _shares(course: Path, assignment, book) -> dict[str, float]:
    """Test cell -> share of the students with an autograded notebook who lost points."""
    ran = [s for s in book if any(autograded_folder(course, s, assignment.id).glob("*.ipynb"))]
    return {
        t.grade_id: sum(book[s][1][t.grade_id][0] < t.points for s in ran) / len(ran)
        for t in graded_tests(course, assignment)
    }


def _report(course: Path, assignment_id: str, grades: Path, out: Path) -> Path:
    args = ["--course-dir", str(course), "report", assignment_id, "--grades", str(grades)]
    assert main([*args, "--out", str(out)]) == 0
    return out / f"{assignment_id}-report.html"


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    course = scratch_course(tmp_path_factory.mktemp("synthetic") / "course")
    return make_batch(course, REAL_ASSIGNMENTS[0], CLASS_SIZE, copies=2)


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    return graded_course(tmp_path_factory)


def test_class_report_of_a_class(browser_session, synthetic, tmp_path):
    path = _report(synthetic.course, synthetic.assignment.id, synthetic.grades_dir, tmp_path)
    page = browser_session.new_page()
    requested = _open(page, path)
    book = _gradebook(synthetic.course, synthetic.assignment.id)
    scores = [score for score, _ in book.values()]
    expect(page.locator("#count")).to_have_text(str(CLASS_SIZE))
    expect(page.locator("#median")).to_have_text(f"{np.median(scores):.4g}")
    expect(page.locator("#q1")).to_have_text(f"{np.percentile(scores, 25):.4g}")
    expect(page.locator("#q3")).to_have_text(f"{np.percentile(scores, 75):.4g}")
    shares = _shares(synthetic.course, synthetic.assignment, book)
    first = page.locator("tr[data-grade-id]").first.get_attribute("data-grade-id")
    assert shares[first] == max(shares.values()), "the cell most students failed comes first"
    page.set_viewport_size(TALL)
    browser_session.shot(page, "class-report")
    _loads_only_itself(requested, path)


def test_report_of_a_real_grading_run(browser_session, graded, tmp_path):
    path = _report(graded.course, ASSIGNMENT, graded.grades_dir, tmp_path)
    page = browser_session.new_page()
    requested = _open(page, path)
    book = _gradebook(graded.course, ASSIGNMENT)
    expect(page.locator("#median")).to_have_text(f"{np.median([s for s, _ in book.values()]):.4g}")
    for grade_id, share in _shares(graded.course, graded.assignment, book).items():
        row = page.locator(f'tr[data-grade-id="{grade_id}"] td.lost')
        expect(row).to_contain_text(f"{share * 100:.0f}%")
    expect(page.locator('tr[data-student="fay"]')).to_contain_text("renamed_notebook")
    browser_session.shot(page, "fixture-report")
    _loads_only_itself(requested, path)


def test_similarity_page_shows_the_copy_side_by_side(browser_session, graded, tmp_path):
    args = ["--course-dir", str(graded.course), "similarity", ASSIGNMENT, "--out", str(tmp_path)]
    assert main(args) == 0
    path = tmp_path / f"{ASSIGNMENT}-similarity.html"
    page = browser_session.new_page()
    requested = _open(page, path)
    expect(page.locator("#never-changes-a-grade")).to_contain_text("never changes a grade")
    copied = sorted(s for s, name in ADDED.items() if name in ("original", "renamed"))
    pair = page.locator("section.pair").first
    expect(pair).to_have_attribute("data-pair", " ".join(copied))
    assert pair.locator("mark").count() > 0, "the matching code is marked"
    page.set_viewport_size(TALL)
    browser_session.shot(page, "similarity")
    _loads_only_itself(requested, path)
