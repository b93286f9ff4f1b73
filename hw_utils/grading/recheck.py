"""Re-run the tests outside the student's notebook session, with pristine imports.

A hostile notebook can make its own tests pass without doing the work: an input transformer that
blanks later cells, a patched ``torch.allclose`` or ``checks.assert_close``, a display hook that
prints full marks. The recheck therefore builds a new notebook from the autograded one, in which

- the instructor's locked cells (setup, every test cell with its hidden tests) run as they are;
- every cell a student could write keeps only its definitions: imports, functions, classes and
  assignments to plain names; statements that change anything else are dropped, and so are
  definitions that would replace a test helper of the locked cells;
- cells after the last test cell, and cells tagged ``recheck-skip`` (long experiments the tests
  do not need), are left out;

runs it in a fresh sandboxed kernel, and scores each test cell the way nbgrader does. A test cell
that scored higher in the student's session than in the recheck is flagged and capped.

``python -m hw_utils.grading.recheck IN.ipynb OUT.ipynb --cell-timeout S --ipc PREFIX`` runs it.
"""

from __future__ import annotations

import argparse
import ast
import copy
from pathlib import Path

import nbformat
from nbformat.notebooknode import NotebookNode
from nbgrader.utils import determine_grade

from hw_utils.grading import cells as C
from hw_utils.grading.nbgrader_plugins import StderrToStdout
from hw_utils.grading.tamper import parse_python, protected_names, shadowed, to_python

SKIP_TAG = "recheck-skip"
KEPT = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def _kept(statement: ast.stmt, protected: dict[str, str | None]) -> bool:
    if shadowed(statement, protected):
        return False
    if isinstance(statement, KEPT):
        return True
    if isinstance(statement, ast.Assign):
        return all(isinstance(t, ast.Name) for t in statement.targets)
    if isinstance(statement, ast.AnnAssign):
        return isinstance(statement.target, ast.Name)
    return False


def definitions_only(source: str, protected: dict[str, str | None] | None = None) -> str:
    """The definitions of a cell (see module docstring), without rebinding any ``protected``
    name the tests rely on; empty when the cell does not parse."""
    code = to_python(source)
    if code is None:
        return ""
    module = parse_python(code)
    module.body = [statement for statement in module.body if _kept(statement, protected or {})]
    return ast.unparse(module)


def locked_and_test_sources(nb: NotebookNode) -> tuple[list[str], list[str]]:
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    locked = [c.source for c in code if C.nbgrader_metadata(c).get("locked")]
    return locked, [c.source for c in code if C.is_test(c)]


def replay_notebook(autograded: NotebookNode) -> NotebookNode:
    """The notebook the recheck executes (outputs cleared)."""
    nb = copy.deepcopy(autograded)
    protected = protected_names(*locked_and_test_sources(nb))
    tests = [i for i, cell in enumerate(nb.cells) if C.is_test(cell)]
    last = tests[-1] if tests else -1
    kept = []
    for cell in nb.cells[: last + 1]:
        if cell.cell_type != "code":
            continue
        # Tags are the student's to edit (nbgrader restores only its own metadata): a test
        # cell always runs, whatever its tags say.
        if SKIP_TAG in cell.metadata.get("tags", []) and not C.is_test(cell):
            continue
        if not C.nbgrader_metadata(cell).get("locked"):
            cell.source = definitions_only(cell.source, protected)
        cell.outputs, cell.execution_count = [], None
        kept.append(cell)
    nb.cells = kept
    return nb


def test_scores(executed: NotebookNode) -> dict[str, float]:
    """nbgrader's score of every test cell of an executed notebook; 0 for one that never ran.
    Warnings on stderr do not cost points, as in autograde (:class:`StderrToStdout`)."""
    scores = {}
    demote = StderrToStdout()
    for index, cell in enumerate(executed.cells):
        if C.is_test(cell):
            demote.preprocess_cell(cell, {}, index)
            score = determine_grade(cell)[0] if cell.execution_count is not None else 0.0
            scores[C.grade_id(cell)] = float(score)
    return scores


def run(source: Path, target: Path, cell_timeout: int, ipc_prefix: str | None) -> None:
    """Execute the replay of ``source`` in its folder's working directory, write it to target."""
    from jupyter_client.manager import AsyncKernelManager
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    nb = replay_notebook(nbformat.read(source, as_version=4))
    options = {"transport": "ipc", "ip": ipc_prefix} if ipc_prefix else {}
    km = AsyncKernelManager(kernel_name="python3", **options)
    client = NotebookClient(
        nb,
        km=km,
        timeout=cell_timeout,
        allow_errors=True,
        interrupt_on_timeout=True,
        resources={"metadata": {"path": str(source.parent)}},
        extra_arguments=["--HistoryManager.hist_file=:memory:"],
    )
    try:
        client.execute()
    except (CellTimeoutError, DeadKernelError) as error:
        # Cells that did not run keep execution_count None and score 0 in test_scores.
        nb.metadata["recheck_incomplete"] = f"{type(error).__name__}: {error}"[:300]
    nbformat.write(nb, target)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m hw_utils.grading.recheck")
    parser.add_argument("source", type=Path)
    parser.add_argument("target", type=Path)
    parser.add_argument("--cell-timeout", type=int, default=30)
    parser.add_argument("--ipc", default=None, help="ZeroMQ ipc prefix (sandboxed kernels)")
    args = parser.parse_args(argv)
    run(args.source, args.target, args.cell_timeout, args.ipc)


if __name__ == "__main__":
    main()


def cap_by_recheck(cells, rechecked: dict[str, float]) -> tuple[list, list[str]]:
    """Cap each autograded test cell at its recheck score; flag the cells that were capped."""
    capped, flags = [], []
    for cell in cells:
        limit = rechecked.get(cell.grade_id)
        if limit is not None and cell.score is not None and cell.score > limit + 1e-9:
            flags.append(f"recheck_lower:{cell.grade_id}")
            cell = cell._replace(score=limit)
        capped.append(cell)
    return capped, flags
