"""Benchmark of hw2_cnn_architecture: how long its notebook, its slowest cells and its tests take.

Run with ``.venv/bin/python benchmarks/bench_hw2.py`` (about a minute on 2 CPU cores). It executes
the source notebook (the reference solution) in the CI profile with nbclient, in a copy of its
folder (so the experiment records do not land in ``source/``), timing every cell, and prints
numbers; it asserts nothing about time:

1. the whole notebook, kernel start included (target: at most 120 s);
2. the slowest cells (target: none over 30 s, nbgrader's cell timeout);
3. the total time of all test cells, and the slowest of them.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from notebook_timing import cell_seconds

from hw_utils.grading.cells import is_test

SOURCE = Path(__file__).resolve().parents[1] / "source" / "hw2_cnn_architecture"
NOTEBOOK_NAME = "hw2_cnn_architecture.ipynb"
NOTEBOOK_TARGET_S = 120.0
CELL_TARGET_S = 30.0


def _label(index: int, cell: nbformat.NotebookNode) -> str:
    """The cell's grade id, or its index and first line."""
    grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
    first_line = cell.source.strip().splitlines()[0] if cell.source.strip() else ""
    return grade_id or f"cell {index}: {first_line[:40]}"


def main() -> None:
    os.environ["HW_PROFILE"] = "ci"
    with tempfile.TemporaryDirectory(prefix="bench-hw2-") as scratch:
        folder = Path(shutil.copytree(SOURCE, Path(scratch) / SOURCE.name))
        nb = nbformat.read(folder / NOTEBOOK_NAME, as_version=4)
        client = NotebookClient(
            nb,
            timeout=600,
            kernel_name="python3",
            record_timing=True,
            resources={"metadata": {"path": str(folder)}},
        )
        start = time.perf_counter()
        client.execute()
        notebook_s = time.perf_counter() - start

    cells = [
        (_label(index, cell), cell_seconds(cell), is_test(cell))
        for index, cell in enumerate(nb.cells)
        if cell.cell_type == "code"
    ]
    tests = [(label, seconds) for label, seconds, tested in cells if tested]
    tests_s = sum(seconds for _, seconds in tests)
    slowest = max(seconds for _, seconds, _ in cells)
    print(f"{NOTEBOOK_NAME}, CI profile, reference solution")
    print(
        f"  whole notebook, kernel start included: {notebook_s:.1f} s "
        f"(target <= {NOTEBOOK_TARGET_S:.0f} s: {notebook_s / NOTEBOOK_TARGET_S:.0%} of it)"
    )
    print(
        f"  slowest cell: {slowest:.1f} s (target <= {CELL_TARGET_S:.0f} s: "
        f"{slowest / CELL_TARGET_S:.0%} of it); the eight slowest:"
    )
    for label, seconds, _ in sorted(cells, key=lambda item: -item[1])[:8]:
        print(f"    {label:<50} {seconds:6.2f} s")
    print(f"  test cells: {len(tests)}, together {tests_s:.2f} s; the five slowest:")
    for label, seconds in sorted(tests, key=lambda item: -item[1])[:5]:
        print(f"    {label:<50} {seconds * 1e3:6.0f} ms")


if __name__ == "__main__":
    main()
