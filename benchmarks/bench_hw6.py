"""Benchmark of hw6_transfer_learning: its time in the CI profile and its effects in the full one.

Run with ``.venv/bin/python benchmarks/bench_hw6.py`` (the full profile takes several minutes on
2 CPU cores; ``--ci-only`` skips it). It executes the source notebook (the reference solution)
with nbclient in a copy of its folder and prints numbers; it asserts nothing:

1. CI profile: the whole notebook, kernel start included (target: at most 180 s), the slowest
   cells (target: none over 30 s) and the test cells together (target: at most 10 s);
2. full profile: the test accuracy of every method and number of labels per class, and the
   effect the assignment teaches: a frozen pretrained backbone against training from scratch
   with few labels (difference and ratio), fine-tuning against the frozen backbone, and the
   learning rates per param group;
3. the pretraining of the shipped backbone, from its record.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from notebook_timing import cell_seconds

from hw_utils.grading.cells import is_test
from hw_utils.models import read_record

SOURCE = Path(__file__).resolve().parents[1] / "source" / "hw6_transfer_learning"
NOTEBOOK_NAME = "hw6_transfer_learning.ipynb"
NOTEBOOK_TARGET_S, CELL_TARGET_S, TESTS_TARGET_S = 180.0, 30.0, 10.0
REPORT = """
import json
print("BENCH" + json.dumps({
    "results": [[method, k, accuracy] for (method, k), accuracy in results.items()],
    "labels": LABELS_PER_CLASS,
}))
"""


def _label(index: int, cell: nbformat.NotebookNode) -> str:
    """The cell's grade id, or its index and first line."""
    grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
    first_line = cell.source.strip().splitlines()[0] if cell.source.strip() else ""
    return grade_id or f"cell {index}: {first_line[:40]}"


def _execute(profile: str, extra: str = "") -> tuple[nbformat.NotebookNode, float]:
    os.environ["HW_PROFILE"] = profile
    with tempfile.TemporaryDirectory(prefix="bench-hw6-") as scratch:
        folder = Path(shutil.copytree(SOURCE, Path(scratch) / SOURCE.name))
        nb = nbformat.read(folder / NOTEBOOK_NAME, as_version=4)
        if extra:
            nb.cells.append(nbformat.v4.new_code_cell(extra))
        client = NotebookClient(
            nb,
            timeout=1800,
            kernel_name="python3",
            record_timing=True,
            resources={"metadata": {"path": str(folder)}},
        )
        start = time.perf_counter()
        client.execute()
        return nb, time.perf_counter() - start


def _printed(cell: nbformat.NotebookNode) -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", []) if o.output_type == "stream")


def ci_timing() -> None:
    nb, notebook_s = _execute("ci")
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
    print(
        f"  test cells: {len(tests)}, together {tests_s:.2f} s (target <= {TESTS_TARGET_S:.0f} "
        f"s: {tests_s / TESTS_TARGET_S:.0%} of it); the slowest:"
    )
    for label, seconds in sorted(tests, key=lambda item: -item[1])[:3]:
        print(f"    {label:<50} {seconds * 1e3:6.0f} ms")


def full_effects() -> None:
    nb, notebook_s = _execute("full", REPORT)
    report = json.loads(_printed(nb.cells[-1]).partition("BENCH")[2])
    accuracy = {(method, k): value for method, k, value in report["results"]}
    labels = report["labels"]
    methods = list(dict.fromkeys(method for method, _, _ in report["results"]))
    print(f"\n{NOTEBOOK_NAME}, full profile: {notebook_s:.0f} s")
    print("  test accuracy (%) by labels per class:")
    print("    " + f"{'method':<14}" + "".join(f"{k:>8}" for k in labels))
    for method in methods:
        print("    " + f"{method:<14}" + "".join(f"{accuracy[method, k]:8.1f}" for k in labels))
    for k in labels:
        frozen, scratch = accuracy["frozen", k], accuracy["scratch", k]
        fine = accuracy["fine-tune", k]
        print(
            f"  {k:>3} labels per class: frozen - scratch {frozen - scratch:+5.1f} points "
            f"(x{frozen / scratch:.2f}); fine-tune - frozen {fine - frozen:+5.1f}; "
            f"frozen + BN - frozen {accuracy['frozen + BN', k] - frozen:+5.1f}"
        )
    print("  what the other experiments print (the model answers quote these):")
    for index, cell in enumerate(nb.cells[:-1]):
        lines = [
            line.rsplit("\r", 1)[-1]
            for line in _printed(cell).splitlines()
            if "%" in line and "it/s]" not in line and "s/it]" not in line
        ]
        for line in lines:
            print(f"    [{_label(index, cell)[:24]}] {line.strip()}")


def pretraining() -> None:
    record = read_record()
    print(
        f"\npretrained backbone {record.name}: {record.result['parameters']:,} parameters, "
        f"{record.data['train_size']:,} images of {len(record.pretrain_classes)} classes, "
        f"{record.training['epochs']} epochs, {record.result['val_accuracy']:.1f}% validation "
        f"accuracy, {record.result['seconds'] / 60:.1f} min wall clock on "
        f"{record.software['threads']} threads"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ci-only", action="store_true", help="skip the full profile")
    args = parser.parse_args()
    ci_timing()
    if not args.ci_only:
        full_effects()
    pretraining()


if __name__ == "__main__":
    main()
