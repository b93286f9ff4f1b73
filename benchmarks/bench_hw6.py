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
import tempfile
from pathlib import Path

import nbformat
from notebook_timing import cell_label, execute_copy, print_timing, printed

from hw_utils.models import read_record

SOURCE = Path(__file__).resolve().parents[1] / "source" / "hw6_transfer_learning"
NOTEBOOK_NAME = "hw6_transfer_learning.ipynb"
NOTEBOOK_TARGET_S = 180.0
REPORT = """
import json
print("BENCH" + json.dumps({
    "results": [[method, k, accuracy] for (method, k), accuracy in results.items()],
    "labels": LABELS_PER_CLASS,
}))
"""


def _execute(profile: str, extra_cell: str | None = None) -> tuple[nbformat.NotebookNode, float]:
    with tempfile.TemporaryDirectory(prefix="bench-hw6-") as scratch:
        nb, seconds, _ = execute_copy(
            SOURCE, NOTEBOOK_NAME, profile, Path(scratch), extra_cell=extra_cell, timeout=1800
        )
    return nb, seconds


def ci_timing() -> None:
    nb, seconds = _execute("ci")
    print_timing(nb, seconds, f"{NOTEBOOK_NAME}, CI profile, reference solution", NOTEBOOK_TARGET_S)


def full_effects() -> None:
    nb, notebook_s = _execute("full", REPORT)
    report = json.loads(printed(nb.cells[-1]).partition("BENCH")[2])
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
            for line in printed(cell).splitlines()
            if "%" in line and "it/s]" not in line and "s/it]" not in line
        ]
        for line in lines:
            print(f"    [{cell_label(index, cell)[:24]}] {line.strip()}")


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
