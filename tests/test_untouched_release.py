"""The untouched release of every assignment, run cell by cell as a student would (nbclient,
errors allowed): each autograded test cell stops on the stub of a function the student must
write, named in a short message, and every solution cell's function is named by a test cell.
(The browser suite shows the same in JupyterLab on the first assignment.)"""

from __future__ import annotations

import re

import pytest
from browser.course_copy import (
    MAX_ERROR_LINES,
    STUB_ERROR,
    graded_tests,
    solution_ids,
    stub_names,
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
    stubs, tests = stub_names(notebook), graded_tests(notebook)
    NotebookClient(
        notebook,
        timeout=assignment.limits.cell_timeout_s,
        allow_errors=True,
        kernel_name="python3",
        resources={"metadata": {"path": str(folder)}},
    ).execute()

    named = set()
    for index in tests:
        shown = _shown_errors(notebook.cells[index])
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
