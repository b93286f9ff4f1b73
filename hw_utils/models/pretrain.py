"""Pretrain the course's backbone on some shape classes and write its weights and record.

    python -m hw_utils.models.pretrain            # the shipped backbone, into hw_utils/assets
    python -m hw_utils.models.pretrain --tiny --out /tmp/backbone   # a seconds-long check

It trains :func:`hw_utils.models.resnet_small` on :func:`hw_utils.data.make_shapes` images of
:data:`PRETRAIN_CLASSES` (the other shape classes are kept for the transfer task) with AdamW, a
one-cycle learning-rate schedule and flip-and-crop augmentation, everything seeded, then writes
``<name>.pt`` (the state dict) and ``<name>.json`` (:class:`~hw_utils.models.pretrained.
PretrainedRecord`: architecture, classes, data, training, validation accuracy, SHA-256). On the
same machine, thread count and torch version the same command writes the same weights.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
from tqdm import tqdm

from hw_utils.data import SHAPE_CLASSES, BatchLoader, make_shapes, random_flip_crop
from hw_utils.models.pretrained import ASSETS, COURSE_BACKBONE, PretrainedRecord, sha256_of
from hw_utils.models.resnet import resnet_small
from hw_utils.training import evaluate

PRETRAIN_CLASSES: tuple[str, ...] = (
    "circle", "square", "triangle", "cross", "crescent", "ellipse", "frame", "arrow"
)  # fmt: skip
"""Eight of the twelve shape classes; the transfer task gets the other four (ring, star, heart,
hourglass), each made of parts the backbone has seen: a hole, corners, curves."""


class PretrainConfig(NamedTuple):
    """Everything that determines the pretrained weights."""

    classes: tuple[str, ...] = PRETRAIN_CLASSES
    train_size: int = 12_000
    val_size: int = 2_000
    image_size: int = 32
    difficulty: float = 0.5
    data_seed: int = 1_000
    widths: tuple[int, ...] = (32, 64, 128)
    blocks: tuple[int, ...] = (1, 1, 1)
    stem_stride: int = 2
    epochs: int = 10
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 5e-4
    seed: int = 0


FULL = PretrainConfig()
"""The shipped backbone."""

TINY = PretrainConfig(train_size=192, val_size=48, widths=(8, 16, 16), epochs=1, batch_size=32)
"""A seconds-long run that exercises the whole script (CI)."""


def pretrain(
    config: PretrainConfig = FULL,
    out: str | Path = ASSETS,
    name: str = COURSE_BACKBONE,
    *,
    progress: bool = True,
) -> PretrainedRecord:
    """Train the backbone of ``config`` and write ``<out>/<name>.pt`` and ``<out>/<name>.json``;
    returns the record. Progress goes to stdout."""
    started = time.perf_counter()
    # Train and validation images use seeds that no assignment uses for its shapes data.
    train = make_shapes(
        config.train_size,
        classes=config.classes,
        image_size=config.image_size,
        difficulty=config.difficulty,
        seed=config.data_seed,
    )
    val = make_shapes(
        config.val_size,
        classes=config.classes,
        image_size=config.image_size,
        difficulty=config.difficulty,
        seed=config.data_seed + 1,
    )
    architecture = {
        "num_classes": len(config.classes),
        "widths": list(config.widths),
        "blocks": list(config.blocks),
        "stem_stride": config.stem_stride,
    }
    torch.manual_seed(config.seed)
    model = resnet_small(**architecture)
    optimizer = torch.optim.AdamW(model.parameters(), config.lr, weight_decay=config.weight_decay)
    loader = BatchLoader(
        train, config.batch_size, shuffle=True, transform=random_flip_crop, seed=config.seed
    )
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=config.lr, total_steps=config.epochs * len(loader), pct_start=0.15
    )
    val_loader = BatchLoader(val, 500)
    history: list[float] = []
    bar = tqdm(total=config.epochs, desc="pretrain", unit="epoch", file=sys.stdout,
               disable=not progress)  # fmt: skip
    for _ in range(config.epochs):
        model.train()
        for images, labels in loader:
            optimizer.zero_grad()
            F.cross_entropy(model(images), labels).backward()
            optimizer.step()
            schedule.step()
        history.append(evaluate(model, val_loader, F.cross_entropy, "cpu").accuracy)
        bar.set_postfix({"val_acc": f"{history[-1]:.1f}%"}, refresh=False)
        bar.update()
    bar.close()

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    weights = out / f"{name}.pt"
    torch.save(model.state_dict(), weights)
    record = PretrainedRecord(
        name=name,
        weights=weights.name,
        sha256=sha256_of(weights),
        architecture=architecture,
        pretrain_classes=tuple(config.classes),
        transfer_classes=tuple(c for c in SHAPE_CLASSES if c not in config.classes),
        data={
            "dataset": "hw_utils.data.make_shapes",
            "train_size": config.train_size,
            "val_size": config.val_size,
            "image_size": config.image_size,
            "difficulty": config.difficulty,
            "train_seed": config.data_seed,
            "val_seed": config.data_seed + 1,
        },
        training={
            "epochs": config.epochs,
            "batch_size": config.batch_size,
            "optimizer": f"AdamW(lr={config.lr}, weight_decay={config.weight_decay})",
            "schedule": "OneCycleLR(max_lr=lr, pct_start=0.15), stepped per batch",
            "augmentation": "hw_utils.data.random_flip_crop (padding 4)",
            "seed": config.seed,
        },
        result={
            "val_accuracy": round(history[-1], 2),
            "val_accuracy_per_epoch": [round(a, 2) for a in history],
            "parameters": sum(p.numel() for p in model.parameters()),
            "seconds": round(time.perf_counter() - started, 1),
        },
        software={
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "python": platform.python_version(),
            "command": "python -m hw_utils.models.pretrain",
        },
    )
    weights.with_suffix(".json").write_text(record.to_json(), encoding="utf-8")
    return record


def main(argv: Sequence[str] | None = None, log: Callable[[str], None] = print) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hw_utils.models.pretrain", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--out", type=Path, default=ASSETS, help="folder (default: %(default)s)")
    parser.add_argument("--name", default=COURSE_BACKBONE, help="file name without suffix")
    parser.add_argument("--tiny", action="store_true", help="a seconds-long check run")
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    record = pretrain(TINY if args.tiny else FULL, args.out, args.name)
    minutes = record.result["seconds"] / 60
    log(
        f"{args.out / record.weights}: validation accuracy {record.result['val_accuracy']:.1f}% "
        f"on {len(record.pretrain_classes)} classes after {record.training['epochs']} epochs "
        f"({minutes:.1f} min); sha256 {record.sha256}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
