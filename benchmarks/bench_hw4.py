"""Benchmark of hw4_batchnorm: how long its notebook and its tests take, and how large the
effects of its experiments are.

Run with ``.venv/bin/python benchmarks/bench_hw4.py`` (the CI part takes about a minute on 2 CPU
cores; ``--full`` adds the full profile, 10 to 30 minutes more depending on the machine's load;
``OMP_NUM_THREADS=1`` helps on a shared machine). It executes the source notebook (the reference
solution) with nbclient in a copy of its folder (so the experiment records do not land in
``source/``), and prints numbers; it asserts nothing:

1. CI profile: the whole notebook, kernel start included (target: at most 120 s); the slowest
   cells (target: none over 30 s, nbgrader's cell timeout); the test cells together (target: at
   most 10 s).
2. Full profile (``--full``), from the experiment records the notebook saves: per learning rate
   the best validation accuracy with and without batch norm; the smallest rate above the plain
   network's best one at which it breaks (it diverges, or its final training loss stays above
   95% of ln(classes), the loss of a uniform guess) and what batch norm reaches there; the epochs
   each network needs to reach the notebook's target accuracy at the plain network's best rate;
   the same accuracies per initial weight scale and per batch size (with the batch-norm net's
   accuracy the way it was trained); and the accuracies of the forgotten-``model.eval()``
   experiment.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
from pathlib import Path

import nbformat
from notebook_timing import execute_copy, print_timing

from hw_utils.experiments import load_records

SOURCE = Path(__file__).resolve().parents[1] / "source" / "hw4_batchnorm"
NOTEBOOK_NAME = "hw4_batchnorm.ipynb"
NOTEBOOK_TARGET_S = 120.0
NUM_CLASSES = 6
CHANCE = 100 / NUM_CLASSES
STALLED = 0.95  # a run whose final training loss stays above this fraction of ln(classes) stalled
REPORT = (
    "import json; print('BENCH ' + json.dumps({'ways': ways, 'target': TARGET, "
    "'as_trained': as_trained}))"
)


def _best(records: list, bn: bool, key: str) -> dict:
    return {r.config[key]: max(r.result.val_acc) for r in records if r.config["bn"] == bn}


def _stalled(history) -> bool:
    """Diverged, or the final training loss is still close to that of a uniform guess."""
    final = history.train_loss[-1]
    return not math.isfinite(final) or final > STALLED * math.log(NUM_CLASSES)


def _first(history, accuracy: float) -> int | None:
    return next((k + 1 for k, v in enumerate(history.val_acc) if v >= accuracy), None)


def _sweep(records: list, key: str) -> tuple[dict, dict]:
    plain, bn = _best(records, False, key), _best(records, True, key)
    print(f"    {key:>14}  {'plain':>7}  {'BN':>7}")
    for value in sorted(plain):
        print(f"    {value:>14}  {plain[value]:6.1f}%  {bn[value]:6.1f}%")
    return plain, bn


def print_effects(nb: nbformat.NotebookNode, folder: Path) -> None:
    report = next(
        json.loads(line[len("BENCH ") :])
        for output in nb.cells[-1].outputs
        for line in output.get("text", "").splitlines()
        if line.startswith("BENCH ")
    )
    target = report["target"]
    print("Full profile: best validation accuracy (chance 16.7%)")
    print("  learning rate (plain SGD):")
    lr_records = load_records(folder / "results", "lr_*")
    plain, bn = _sweep(lr_records, "lr")
    best_lr = max(plain, key=plain.get)
    broken = [
        r.config["lr"]
        for r in sorted(lr_records, key=lambda r: r.config["lr"])
        if not r.config["bn"] and r.config["lr"] > best_lr and _stalled(r.result)
    ]
    if broken:
        lr = broken[0]
        print(
            f"  smallest rate above the plain net's best ({best_lr}) that breaks it: {lr} (plain "
            f"{plain[lr]:.1f}%, BN "
            f"{bn[lr]:.1f}%: {bn[lr] - plain[lr]:+.1f} points, {bn[lr] / plain[lr]:.2f}x)"
        )
    else:
        print(f"  no rate of the sweep above the plain net's best ({best_lr}) breaks it")
    histories = {r.config["bn"]: r.result for r in lr_records if r.config["lr"] == best_lr}
    epochs = {kind: _first(history, target) for kind, history in histories.items()}
    print(
        f"  at the plain net's best rate {best_lr}: {target:.0f}% reached at epoch "
        f"{epochs[False] or 'never'} (plain) and {epochs[True] or 'never'} (BN)"
        + (f", {epochs[False] / epochs[True]:.1f}x fewer" if epochs[False] and epochs[True] else "")
    )
    print("  initial weight scale of the convolutions (x Kaiming):")
    scale_records = load_records(folder / "results", "scale_*")
    _sweep(scale_records, "weight_scale")
    for bn in (False, True):
        runs = [r for r in scale_records if r.config["bn"] == bn]
        learned = sorted(r.config["weight_scale"] for r in runs if not _stalled(r.result))
        print(
            f"  {'BN' if bn else 'plain'} learns at {len(learned)} of {len(runs)} scales: {learned}"
        )
    print("  batch size (the same learning rate for all):")
    _sweep(load_records(folder / "results", "batch_*"), "batch_size")
    print("  the BN net evaluated the way it was trained (training mode, its own batch size):")
    for size, value in report["as_trained"].items():
        print(f"    batch {size:>4}: {value:5.1f}%")
    print("  forgotten model.eval(), the BN net of lr 0.05:")
    for way, value in report["ways"].items():
        print(f"    {way:>32}: {value:5.1f}%")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="also run the full profile")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-hw4-") as scratch:
        nb, seconds, _ = execute_copy(
            SOURCE, NOTEBOOK_NAME, "ci", Path(scratch), extra_cell=REPORT, timeout=1800
        )
        title = f"{NOTEBOOK_NAME}, CI profile, reference solution"
        print_timing(nb, seconds, title, NOTEBOOK_TARGET_S, cells=-1)
        if args.full:
            nb, seconds, folder = execute_copy(
                SOURCE, NOTEBOOK_NAME, "full", Path(scratch), extra_cell=REPORT, timeout=1800
            )
            print(f"\nFull profile: whole notebook {seconds:.0f} s")
            print_effects(nb, folder)


if __name__ == "__main__":
    main()
