"""The instructor's side of the browser tests: nbgrader and ``course`` commands in the course
folder, and formgrader's manual grading page."""

from __future__ import annotations

import csv
import re
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

from playwright.sync_api import Page, expect

from hw_utils.grading import cells as C
from hw_utils.grading.nbgrader_cli import run_nbgrader
from hw_utils.manifest import get_assignment

COMMAND_TIMEOUT_S = 120


class Course(NamedTuple):
    """The instructor's course folder and Jupyter config folder (which holds the exchange root,
    as ``~/.jupyter/nbgrader_config.py`` would)."""

    root: Path
    jupyter_config: Path

    def nbgrader(self, *args: str) -> str:
        """``nbgrader <args>`` in the course folder; returns its log."""
        env = {"JUPYTER_CONFIG_DIR": str(self.jupyter_config)}
        return run_nbgrader(args, self.root, env=env, timeout=COMMAND_TIMEOUT_S).stdout


def course_grade(course: Course, assignment_id: str, student: str, out: Path) -> dict[str, str]:
    """``course grade <id> --submissions submitted --out <out>/<id>`` in the course folder (the
    real command, sandbox on); returns the student's row of ``grades.csv``."""
    command = [str(Path(sys.executable).parent / "course"), "grade", assignment_id]
    command += ["--submissions", "submitted", "--out", str(out / assignment_id)]
    limit = get_assignment(course.root, assignment_id).limits.notebook_timeout_s
    result = subprocess.run(
        command,
        cwd=course.root,
        capture_output=True,
        text=True,
        timeout=limit + COMMAND_TIMEOUT_S,
    )
    assert result.returncode == 0, f"course grade {assignment_id}:\n{result.stdout[-3000:]}"
    with open(out / assignment_id / "grades.csv") as f:
        rows = {row["student_id"]: row for row in csv.DictReader(f)}
    assert set(rows) == {student}, rows
    return rows[student]


def manual_answer(course: Path, assignment_id: str) -> tuple[str, object] | None:
    """``(notebook, cell)`` of the first discussion answer (graded by hand), or ``None``."""
    for notebook in get_assignment(course, assignment_id).notebooks:
        source = C.read_notebook(C.source_notebook(course, assignment_id, notebook))
        for cell in source.cells:
            if C.is_manual_answer(cell):
                return notebook, cell
    return None


def grade_by_hand(page: Page, assignment_id: str, notebook: str, answer, points: float) -> None:
    """In the formgrader tab: Manual Grading → assignment → notebook → the submission; type the
    points of ``answer`` and wait until formgrader has saved them."""
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


def feedback_score(points: float) -> str:
    """A score as nbgrader's feedback template prints it (``float | round(2)``)."""
    return str(round(float(points), 2))
