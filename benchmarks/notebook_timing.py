"""Executing a source notebook for the benchmarks of this folder, and its CI-profile timing
report (whole notebook, slowest cells, test cells, each against its target)."""

from __future__ import annotations

import os
import shutil
import time
from datetime import datetime
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from hw_utils.grading.cells import is_test

CELL_TARGET_S = 30.0  # nbgrader's cell timeout in every manifest
TESTS_TARGET_S = 10.0  # the test cells of a notebook together


def cell_seconds(cell: nbformat.NotebookNode) -> float:
    """Wall-clock time of one executed cell, from nbclient's recorded timestamps (0 if none)."""
    timing = cell.metadata.get("execution", {})
    start = timing.get("iopub.execute_input") or timing.get("shell.execute_request")
    end = timing.get("shell.execute_reply")
    if not (start and end):
        return 0.0
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def cell_label(index: int, cell: nbformat.NotebookNode) -> str:
    """The cell's grade id, or its index and first line."""
    grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
    first_line = cell.source.strip().splitlines()[0] if cell.source.strip() else ""
    return grade_id or f"cell {index}: {first_line[:40]}"


def execute_copy(
    source: Path,
    notebook_name: str,
    profile: str,
    scratch: Path,
    *,
    extra_cell: str | None = None,
    timeout: int = 3600,
) -> tuple[nbformat.NotebookNode, float, Path]:
    """The notebook executed by nbclient in ``profile``, in a copy of its folder under
    ``scratch`` (experiment records stay out of ``source/``), with ``extra_cell`` appended;
    returns it, its wall time (kernel start included) and the copy's folder."""
    os.environ["HW_PROFILE"] = profile
    folder = Path(shutil.copytree(source, Path(scratch) / profile / source.name))
    nb = nbformat.read(folder / notebook_name, as_version=4)
    if extra_cell:
        nb.cells.append(nbformat.v4.new_code_cell(extra_cell))
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        record_timing=True,
        resources={"metadata": {"path": str(folder)}},
    )
    start = time.perf_counter()
    client.execute()
    return nb, time.perf_counter() - start, folder


def printed(cell: nbformat.NotebookNode) -> str:
    """What a cell printed (its stream outputs)."""
    return "".join(o.get("text", "") for o in cell.get("outputs", []) if o.output_type == "stream")


def print_timing(
    nb: nbformat.NotebookNode,
    notebook_s: float,
    title: str,
    notebook_target_s: float,
    *,
    cells: int | None = None,
) -> None:
    """The timing report of an executed notebook: the whole notebook against
    ``notebook_target_s``, the eight slowest cells against :data:`CELL_TARGET_S`, the test
    cells against :data:`TESTS_TARGET_S`; only the first ``cells`` cells (default: all; leave
    out a cell the benchmark appended)."""
    timed = [
        (cell_label(index, cell), cell_seconds(cell), is_test(cell))
        for index, cell in enumerate(nb.cells[:cells])
        if cell.cell_type == "code"
    ]
    tests = [(label, seconds) for label, seconds, tested in timed if tested]
    tests_s = sum(seconds for _, seconds in tests)
    slowest = max(seconds for _, seconds, _ in timed)
    print(title)
    print(
        f"  whole notebook, kernel start included: {notebook_s:.1f} s "
        f"(CI target <= {notebook_target_s:.0f} s: {notebook_s / notebook_target_s:.0%} of it)"
    )
    print(
        f"  slowest cell: {slowest:.1f} s (target <= {CELL_TARGET_S:.0f} s: "
        f"{slowest / CELL_TARGET_S:.0%} of it); the eight slowest:"
    )
    for label, seconds, _ in sorted(timed, key=lambda item: -item[1])[:8]:
        print(f"    {label:<50} {seconds:6.2f} s")
    print(
        f"  test cells: {len(tests)}, together {tests_s:.2f} s (target <= {TESTS_TARGET_S:.0f} s:"
        f" {tests_s / TESTS_TARGET_S:.0%} of it); the five slowest:"
    )
    for label, seconds in sorted(tests, key=lambda item: -item[1])[:5]:
        print(f"    {label:<50} {seconds * 1e3:6.0f} ms")
