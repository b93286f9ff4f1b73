"""Benchmark of hw1_convolution: how long its tests and its notebook take, and how fast the
vectorized convolution is.

Run with ``.venv/bin/python benchmarks/bench_hw1.py`` (under a minute on 2 CPU cores). It executes
the source notebook (the reference solution, written with loops as students write it) in the CI
profile with nbclient, timing every cell, and prints numbers; it asserts nothing about time:

1. the total time of all test cells (target: at most 2 s);
2. the whole notebook's time, kernel start included (target: at most 60 s);
3. ``conv2d_vectorized`` against ``F.conv2d`` on a realistic layer (32 images, 64 -> 64 channels,
   32 x 32 pixels, 3 x 3 kernel, padding 1): the ratio of their median times (target: at most 3x),
   measured in the notebook's own kernel after it ran, the two interleaved to share any noise, on
   one thread (as the notebook runs) and on every core (PyTorch's default).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from notebook_timing import cell_seconds

from hw_utils.grading.cells import is_test

NOTEBOOK = (
    Path(__file__).resolve().parents[1] / "source" / "hw1_convolution" / "hw1_convolution.ipynb"
)
MARKER = "BENCH_HW1 "

# Appended to the notebook: times conv2d_vectorized and F.conv2d on the realistic layer, on one
# thread (what the notebook sets) and on every core (PyTorch's default).
RATIO_CELL = f"""
import json as _json
import os as _os
import statistics as _statistics

_x, _w, _b = torch.randn(32, 64, 32, 32), torch.randn(64, 64, 3, 3), torch.randn(64)
_candidates = {{
    "vectorized": lambda: conv2d_vectorized(_x, _w, _b, padding=1),
    "F.conv2d": lambda: F.conv2d(_x, _w, _b, padding=1),
}}
_result = {{}}
for _threads in sorted({{1, _os.cpu_count() or 1}}):
    torch.set_num_threads(_threads)
    _times = {{name: [] for name in _candidates}}
    for _round in range(17):
        for _name, _run in _candidates.items():
            _start = time.perf_counter()
            _run()
            if _round >= 2:  # the first rounds warm up the allocator and caches
                _times[_name].append(time.perf_counter() - _start)
    _result[_threads] = {{name: _statistics.median(values) for name, values in _times.items()}}
print({MARKER!r} + _json.dumps(_result))
"""


def main() -> None:
    os.environ["HW_PROFILE"] = "ci"
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(RATIO_CELL))
    client = NotebookClient(
        nb,
        timeout=600,
        kernel_name="python3",
        record_timing=True,
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )
    start = time.perf_counter()
    client.execute()
    notebook_s = time.perf_counter() - start
    ratio_s = cell_seconds(nb.cells[-1])

    tests = [
        (cell.metadata["nbgrader"]["grade_id"], cell_seconds(cell))
        for cell in nb.cells
        if is_test(cell)
    ]
    tests_s = sum(seconds for _, seconds in tests)
    print(f"{NOTEBOOK.name}, CI profile, reference solution (loops)")
    print(f"  test cells: {len(tests)}, together {tests_s:.2f} s (target <= 2 s)")
    for grade_id, seconds in sorted(tests, key=lambda item: -item[1])[:5]:
        print(f"    {grade_id:<34} {seconds * 1e3:7.0f} ms")
    print(
        f"  whole notebook, kernel start included: {notebook_s - ratio_s:.1f} s (target <= 60 s; "
        f"plus {ratio_s:.1f} s for the ratio measurement below)"
    )

    line = next(
        text
        for output in nb.cells[-1].outputs
        if output.output_type == "stream"
        for text in output.text.splitlines()
        if text.startswith(MARKER)
    )
    for threads, medians in json.loads(line[len(MARKER) :]).items():
        vectorized, torch_conv = medians["vectorized"], medians["F.conv2d"]
        print(
            f"  realistic layer (32, 64, 32, 32) -> 64 channels, 3x3, padding 1, {threads} "
            f"thread(s): conv2d_vectorized {vectorized * 1e3:.1f} ms, F.conv2d "
            f"{torch_conv * 1e3:.1f} ms, ratio {vectorized / torch_conv:.2f}x (target <= 3x)"
        )


if __name__ == "__main__":
    main()
