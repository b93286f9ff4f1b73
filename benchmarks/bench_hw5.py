"""Benchmark of hw5_adam: how long its notebook, its slowest cells and its tests take, and how
large the effects of its experiments are.

Run with ``.venv/bin/python benchmarks/bench_hw5.py`` (about a minute on 2 CPU cores) for the CI
profile, or with ``--full`` for the full profile students run by default (about ten minutes). It
executes the source notebook (the reference solution) with nbclient in a copy of its folder,
timing every cell, and prints numbers; it asserts nothing:

1. the whole notebook, kernel start included (target in the CI profile: at most 120 s);
2. the slowest cells (target: none over 30 s, nbgrader's cell timeout);
3. the total time of all test cells (target: at most 10 s), and the slowest of them;
4. the effects the experiments teach (``RESULTS`` of the notebook), as numbers and ratios: the
   epochs each optimizer needs to reach 50% and 65% validation accuracy, what the same
   ``weight_decay`` does to the weight norm under Adam's L2 and AdamW's decoupled decay, and
   what warm-up and cosine decay add to a constant learning rate.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import nbformat
from notebook_timing import execute_copy, print_timing, printed

SOURCE = Path(__file__).resolve().parents[1] / "source" / "hw5_adam"
NOTEBOOK_NAME = "hw5_adam.ipynb"
NOTEBOOK_TARGET_S = 120.0
RESULTS_MARKER = "RESULTS_JSON="


def _execute(profile: str) -> tuple[nbformat.NotebookNode, float, dict]:
    """The executed notebook, its wall time and its RESULTS (read by an appended cell)."""
    report = f"import json\nprint({RESULTS_MARKER!r} + json.dumps(RESULTS))"
    with tempfile.TemporaryDirectory(prefix="bench-hw5-") as scratch:
        nb, seconds, _ = execute_copy(
            SOURCE, NOTEBOOK_NAME, profile, Path(scratch), extra_cell=report, timeout=1800
        )
    results = json.loads(printed(nb.cells[-1]).split(RESULTS_MARKER, 1)[1])
    nb.cells.pop()
    return nb, seconds, results


def _epochs(value: int | None) -> str:
    return "never" if value is None else f"epoch {value}"


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "n/a"


def _effects(results: dict) -> None:
    print("  effects (validation accuracy in %, weight norm of the conv and linear weights):")
    print("    optimizers without weight decay: epochs to 50% / 65%, best accuracy")
    for name in ("SGD", "SGD+momentum", "Adam"):
        r = results[name]
        print(
            f"      {name:<14} {_epochs(r['epochs_to_50']):>9} / {_epochs(r['epochs_to_65']):>9}, "
            f"best {r['best_val_acc']:.1f}% (epoch {r['best_epoch']})"
        )
    print("    weight decay 5e-3: best accuracy, train-val gap, weight norm against no decay")
    for name in ("SGD", "SGD+momentum", "Adam", "AdamW"):
        r, base = results[f"{name}, wd=0.005"], results["Adam" if name == "AdamW" else name]
        change = r["best_val_acc"] - base["best_val_acc"]
        print(
            f"      {name:<14} best {r['best_val_acc']:.1f}% ({change:+.1f}), "
            f"gap {r['final_train_acc'] - r['final_val_acc']:.1f} "
            f"(without: {base['final_train_acc'] - base['final_val_acc']:.1f}), norm "
            f"{r['weight_norm']:.2f} = {_ratio(r['weight_norm'], base['weight_norm'])} of "
            f"{base['weight_norm']:.2f}"
        )
    adam = results["Adam"]
    print("    L2 against decoupled decay (Adam, lr 1e-3): final weight norm, best accuracy")
    for label in ("Adam", "Adam, wd=0.005", "Adam, wd=0.05", "AdamW, wd=0.005", "AdamW, wd=0.5"):
        r = results[label]
        share = _ratio(r["weight_norm"], adam["weight_norm"])
        print(
            f"      {label:<16} norm {r['weight_norm']:6.2f} ({share} of no decay), "
            f"best {r['best_val_acc']:.1f}%"
        )
    print("    schedules (Adam, peak lr 3e-3): best accuracy, epoch to 65%, final training loss")
    constant = results["Adam 3e-3, constant"]
    for name in ("constant", "warmup", "warmup_cosine"):
        r = results[f"Adam 3e-3, {name}"]
        print(
            f"      {name:<14} best {r['best_val_acc']:.1f}% "
            f"({r['best_val_acc'] - constant['best_val_acc']:+.1f}), 65% at "
            f"{_epochs(r['epochs_to_65'])}, train loss {r['final_train_loss']:.3f} "
            f"({_ratio(r['final_train_loss'], constant['final_train_loss'])} of constant)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="the full profile (about 10 min)")
    profile = "full" if parser.parse_args().full else "ci"
    nb, seconds, results = _execute(profile)
    title = f"{NOTEBOOK_NAME}, {profile} profile, reference solution"
    print_timing(nb, seconds, title, NOTEBOOK_TARGET_S)
    if profile == "full":
        _effects(results)
    else:
        print("  (effect sizes: run with --full; the CI profile trains too little to show them)")


if __name__ == "__main__":
    main()
