"""Benchmark of hw3_regularization: its notebook's time, and the effect of every method.

Run with ``.venv/bin/python benchmarks/bench_hw3.py`` (about a minute on 2 CPU cores for the CI
part; ``--full`` adds the full profile, what students run by default: about half an hour of
CPU time, well over an hour on 2 cores shared with other jobs). It executes the source notebook
(the reference solution) with nbclient, in a copy of its folder (so the experiment records do
not land in ``source/``), and prints numbers; it asserts nothing:

1. CI profile: the whole notebook, kernel start included (target: at most 120 s); the slowest
   cells (target: none over 30 s, nbgrader's cell timeout); the test cells' total (target: at
   most 10 s);
2. with ``--full`` (``--only-full``: without 1), the full profile: every run's final training
   accuracy (eval mode, clean images), validation accuracy and train-validation gap, each gap
   against the plain run's (difference and ratio), the plain run's validation loss (lowest, at
   which epoch, last), and the fraction of near-zero hidden weights after the plain, L2 and L1
   runs. ``--save PATH`` keeps the executed full-profile notebook (to read every output).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import nbformat
from notebook_timing import execute_copy, print_timing, printed

SOURCE = Path(__file__).resolve().parents[1] / "source" / "hw3_regularization"
NOTEBOOK_NAME = "hw3_regularization.ipynb"
NOTEBOOK_TARGET_S = 120.0
REPORT = """
import json
NEAR_ZERO_BY_RUN = {}
for _label in ("plain", "L2 (0.1)", "L1 (0.001)"):
    _hidden = next(m for m in models[_label].modules() if isinstance(m, nn.Linear))
    NEAR_ZERO_BY_RUN[_label] = (_hidden.weight.abs() < NEAR_ZERO).double().mean().item()
_best = min(range(plain.num_epochs), key=lambda k: plain.val_loss[k])
print(json.dumps({"summaries": {k: v._asdict() for k, v in summaries.items()},
                  "near_zero": NEAR_ZERO_BY_RUN,
                  "plain_val_loss": {"best_epoch": _best + 1, "best": plain.val_loss[_best],
                                     "last": plain.val_loss[-1]},
                  "plain_train_loss_last": plain.train_loss[-1]}))
"""


def timing() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-hw3-") as scratch:
        nb, seconds, _ = execute_copy(SOURCE, NOTEBOOK_NAME, "ci", Path(scratch))
    print_timing(nb, seconds, f"{NOTEBOOK_NAME}, CI profile, reference solution", NOTEBOOK_TARGET_S)


def effects(save: Path | None) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-hw3-") as scratch:
        nb, seconds, _ = execute_copy(
            SOURCE, NOTEBOOK_NAME, "full", Path(scratch), extra_cell=REPORT
        )
    if save:
        nbformat.write(nb, save)
    report = json.loads(printed(nb.cells[-1]).strip().splitlines()[-1])
    summaries = report["summaries"]
    plain_gap = summaries["plain"]["gap"]
    print(f"\n{NOTEBOOK_NAME}, full profile, reference solution ({seconds / 60:.1f} min)")
    print(
        f"  {'run':<28} {'train %':>8} {'val %':>7} {'gap':>6} {'gap - plain':>12} "
        f"{'gap / plain':>12}"
    )
    for label, s in summaries.items():
        print(
            f"  {label:<28} {s['train_acc']:8.1f} {s['val_acc']:7.1f} {s['gap']:6.1f} "
            f"{s['gap'] - plain_gap:+12.1f} {s['gap'] / plain_gap:12.2f}"
        )
    losses = report["plain_val_loss"]
    print(
        f"  plain run: lowest validation loss {losses['best']:.3f} at epoch "
        f"{losses['best_epoch']}, {losses['last']:.3f} after the last "
        f"({losses['last'] / losses['best']:.1f}x); last training loss "
        f"{report['plain_train_loss_last']:.4f}"
    )
    print("  hidden-layer weights with |w| < 1e-3:")
    for label, fraction in report["near_zero"].items():
        print(f"    {label:<26} {fraction:6.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="also run the full profile")
    parser.add_argument(
        "--only-full", action="store_true", help="run the full profile only (no CI timing)"
    )
    parser.add_argument(
        "--save", type=Path, help="write the notebook executed in the full profile here"
    )
    args = parser.parse_args()
    if not args.only_full:
        timing()
    if args.full or args.only_full:
        effects(args.save)


if __name__ == "__main__":
    main()
