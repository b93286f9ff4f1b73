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

import tempfile
from pathlib import Path

from notebook_timing import execute_copy, print_timing

SOURCE = Path(__file__).resolve().parents[1] / "source" / "hw2_cnn_architecture"
NOTEBOOK_NAME = "hw2_cnn_architecture.ipynb"
NOTEBOOK_TARGET_S = 120.0


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-hw2-") as scratch:
        nb, seconds, _ = execute_copy(SOURCE, NOTEBOOK_NAME, "ci", Path(scratch), timeout=600)
    print_timing(nb, seconds, f"{NOTEBOOK_NAME}, CI profile, reference solution", NOTEBOOK_TARGET_S)


if __name__ == "__main__":
    main()
