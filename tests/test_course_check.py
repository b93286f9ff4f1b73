"""`course check` finds each kind of inconsistency, and passes a consistent course."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from hw_utils.grading.check import check_course

NOTEBOOK = Path("source/hw9_fixture/hw9_fixture.ipynb")


def _edit(course: Path, change) -> None:
    nb = nbformat.read(course / NOTEBOOK, 4)
    change(nb)
    nbformat.write(nb, course / NOTEBOOK)


def _cell(nb, grade_id):
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def test_consistent_course_has_no_problems(fixture_course):
    assert check_course(fixture_course) == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda nb: _cell(nb, "test_mean").metadata.nbgrader.update(grade_id="test_add"),
            "used twice",
        ),
        (lambda nb: _cell(nb, "test_add").metadata.nbgrader.update(points=0), "positive points"),
        (lambda nb: _cell(nb, "test_add").metadata.nbgrader.update(locked=False), "locked"),
        (lambda nb: _cell(nb, "test_add").metadata.nbgrader.update(points=5), "add up to 12"),
        (lambda nb: nb.cells.remove(_cell(nb, "test_mean")), "no test after it"),
        (
            lambda nb: setattr(
                nb.cells[1], "source", "### BEGIN SOLUTION\nx = 1\n### END SOLUTION"
            ),
            "not marked as solution",
        ),
    ],
    ids=["duplicate-id", "no-points", "unlocked", "total", "untested-solution", "stray-marker"],
)
def test_metadata_problems_are_named(fixture_course, change, expected):
    _edit(fixture_course, change)
    problems = check_course(fixture_course, release=False)
    assert any(expected in p for p in problems), problems


def test_stale_release_is_reported(fixture_course):
    _edit(fixture_course, lambda nb: nb.cells[0].__setitem__("source", "# Changed title"))
    problems = check_course(fixture_course)
    assert any("out of sync" in p and "course build hw9_fixture" in p for p in problems), problems


def test_solution_text_in_the_release_is_a_leak(fixture_course):
    released = fixture_course / "release/hw9_fixture/hw9_fixture.ipynb"
    nb = nbformat.read(released, 4)
    nb.cells.append(nbformat.v4.new_code_cell("return sum(values) / len(values)"))
    nbformat.write(nb, released)
    problems = check_course(fixture_course)
    assert any("solution or hidden-test text" in p for p in problems), problems


def test_hidden_marker_in_a_release_file_is_a_leak(fixture_course):
    (fixture_course / "release/hw9_fixture/notes.txt").write_text("### BEGIN HIDDEN TESTS\n")
    assert any("BEGIN HIDDEN TESTS" in p for p in check_course(fixture_course))


def test_missing_source_and_unknown_folder(fixture_course):
    (fixture_course / "source/hw8_orphan").mkdir()
    (fixture_course / NOTEBOOK).unlink()
    problems = check_course(fixture_course, release=False)
    assert any("hw8_orphan" in p and "no manifest entry" in p for p in problems)
    assert any("does not exist" in p for p in problems)


def test_sample_with_unknown_cell(fixture_course):
    (fixture_course / "samples/hw9_fixture/typo.toml").write_text(
        'base = "solution"\n[cells]\naddd = "x = 1"\n[expected]\ntest_add = 0\n'
    )
    problems = check_course(fixture_course, release=False)
    assert any("typo.toml" in p and "'addd'" in p for p in problems), problems
