"""The untouched release of every assignment, run cell by cell as a student would (nbclient,
errors allowed): each autograded test cell stops on the stub of a function the student must
write, named in a short message, and every solution cell's function is named by a test cell.
(The browser suite shows the same in JupyterLab on the first assignment.)"""

from __future__ import annotations

import re

import pytest
from browser.course_copy import (
    assert_each_test_stops_on_a_named_stub,
    graded_tests,
    student_folder,
)
from conftest import REPO
from nbclient import NotebookClient

from hw_utils.grading import cells as C
from hw_utils.manifest import load_manifest

MANIFEST = load_manifest(REPO)
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _shown_errors(cell) -> list[str]:
    """The errors a cell shows, as text: tracebacks without colour codes, and stderr."""
    shown = []
    for output in cell.get("outputs", []):
        if output.output_type == "error":
            shown.append(ANSI.sub("", "\n".join(output.traceback)))
        elif output.output_type == "stream" and output.name == "stderr":
            shown.append(output.text)
    return shown


@pytest.mark.parametrize("assignment_id", list(MANIFEST))
def test_untouched_release_stops_at_each_stub_naming_the_function(assignment_id, tmp_path):
    assignment = MANIFEST[assignment_id]
    folder = student_folder(REPO, assignment, None, tmp_path / assignment_id)
    notebook = C.read_notebook(folder / f"{assignment.notebooks[0]}.ipynb")
    tests = graded_tests(notebook)
    NotebookClient(
        notebook,
        timeout=assignment.limits.cell_timeout_s,
        allow_errors=True,
        kernel_name="python3",
        resources={"metadata": {"path": str(folder)}},
    ).execute()

    shown = {index: _shown_errors(notebook.cells[index]) for index in tests}
    assert_each_test_stops_on_a_named_stub(notebook, shown)
