"""Benchmark of hw_utils.data: speed, and the learning effects the shapes dataset must show.

Run with ``.venv/bin/python benchmarks/bench_data.py`` (a few minutes on 2 CPU cores). It prints
numbers and asserts nothing about time:

1. ``make_shapes`` generation time per 1,000 images of 32x32.
2. One shuffled epoch of :class:`BatchLoader` against ``DataLoader(TensorDataset(...))``.
3. Learning effects on the default shapes (10,000 train / 2,000 test images, difficulty 0.5, all
   classes): a ~34k-parameter CNN against an MLP of the same size and a much larger one, trained
   for the same number of epochs (12 by default: about a minute for the CNN on two idle cores);
   and overfitting: the CNN on 100 training images (train accuracy against validation accuracy).
"""

from __future__ import annotations

import argparse
import itertools
import os
import time

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from hw_utils.data import BatchLoader, ImageDataset, load_dataset, make_shapes, random_flip_crop


def small_cnn(num_classes: int) -> nn.Sequential:
    """Four conv-BN-ReLU stages (16, 32, 32, 64 channels), the first three max-pooled, then a
    global average pool and a linear layer: about 34k parameters."""
    layers: list[nn.Module] = []
    channels = [3, 16, 32, 32, 64]
    for stage, (c_in, c_out) in enumerate(itertools.pairwise(channels)):
        layers += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU()]
        if stage < 3:
            layers.append(nn.MaxPool2d(2))
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels[-1], num_classes)]
    return nn.Sequential(*layers)


class Centre(nn.Module):
    """``x - 0.5``: centred inputs; without them Adam stalls the MLPs at chance level."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return images - 0.5


def mlp(num_classes: int, hidden: list[int], image_size: int = 32) -> nn.Sequential:
    """Centre and flatten, then Linear-ReLU per hidden width, then a linear output layer."""
    layers: list[nn.Module] = [Centre(), nn.Flatten()]
    width = 3 * image_size * image_size
    for units in hidden:
        layers += [nn.Linear(width, units), nn.ReLU()]
        width = units
    layers.append(nn.Linear(width, num_classes))
    return nn.Sequential(*layers)


def num_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def accuracy(model: nn.Module, dataset: ImageDataset) -> float:
    """Accuracy in percent, in eval mode."""
    model.eval()
    correct = 0
    for images, labels in BatchLoader(dataset, 500):
        correct += int((model(images).argmax(1) == labels).sum())
    return 100.0 * correct / len(dataset)


def train(
    model: nn.Module, train_set: ImageDataset, *, epochs: int, lr: float, batch_size: int = 64
) -> float:
    """Adam with a one-cycle learning-rate schedule; returns the seconds it took."""
    loader = BatchLoader(train_set, batch_size, shuffle=True, seed=1)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=lr, total_steps=epochs * len(loader)
    )
    loss_fn = nn.CrossEntropyLoss()
    start = time.perf_counter()
    model.train()
    for _ in range(epochs):
        for images, labels in loader:
            optimizer.zero_grad()
            loss_fn(model(images), labels).backward()
            optimizer.step()
            schedule.step()
    return time.perf_counter() - start


def bench_generation() -> None:
    print("== make_shapes generation (32x32, difficulty 0.5)")
    make_shapes(100)  # warm-up
    for count in (1_000, 10_000):
        start = time.perf_counter()
        make_shapes(count, seed=1)
        seconds = time.perf_counter() - start
        print(f"  {count:>6} images: {seconds:6.3f} s  ({1000 * seconds / count:.3f} s per 1,000)")


def bench_loader(dataset: ImageDataset) -> None:
    def epoch_seconds(loader) -> float:
        start = time.perf_counter()
        for _images, _labels in loader:
            pass
        return time.perf_counter() - start

    tensors = TensorDataset(dataset.images, dataset.labels)
    default_threads = torch.get_num_threads()
    for threads in sorted({default_threads, 1}, reverse=True):
        torch.set_num_threads(threads)
        print(f"== one shuffled epoch over {len(dataset)} images, batch 64, {threads} thread(s)")
        fast = min(epoch_seconds(BatchLoader(dataset, 64, shuffle=True)) for _ in range(3))
        slow = min(
            epoch_seconds(DataLoader(tensors, batch_size=64, shuffle=True)) for _ in range(3)
        )
        augmented = BatchLoader(dataset, 64, shuffle=True, transform=random_flip_crop)
        augment = min(epoch_seconds(augmented) for _ in range(3))
        print(f"  BatchLoader:                     {1000 * fast:8.1f} ms")
        print(f"  DataLoader(TensorDataset):       {1000 * slow:8.1f} ms")
        print(f"  ratio DataLoader / BatchLoader:  {slow / fast:8.1f}x")
        print(f"  BatchLoader + random_flip_crop:  {1000 * augment:8.1f} ms")
    torch.set_num_threads(default_threads)


def bench_learning(train_set: ImageDataset, val_set: ImageDataset, epochs: int) -> None:
    classes = train_set.num_classes
    print(
        f"== learning on shapes: {len(train_set)} train / {len(val_set)} val images, "
        f"{classes} classes (chance {100 / classes:.1f}%)"
    )
    runs = [  # the best of 1e-4, 3e-4 and 1e-3 for the MLPs
        ("small CNN", lambda: small_cnn(classes), 3e-3),
        ("MLP, same size", lambda: mlp(classes, [11]), 1e-3),
        ("MLP, 25x larger", lambda: mlp(classes, [256, 128]), 1e-3),
    ]
    for name, build, lr in runs:
        torch.manual_seed(0)
        model = build()
        seconds = train(model, train_set, epochs=epochs, lr=lr)
        print(
            f"  {name:<16}{num_parameters(model):>9,} params, {epochs} epochs ({seconds:5.1f} s): "
            f"train {accuracy(model, train_set):5.1f}%, val {accuracy(model, val_set):5.1f}%"
        )

    tiny = train_set.subset(range(100))
    torch.manual_seed(0)
    model = small_cnn(classes)
    seconds = train(model, tiny, epochs=60, lr=5e-3, batch_size=20)
    print(
        f"  overfit: small CNN on 100 images, 60 epochs ({seconds:.1f} s): "
        f"train {accuracy(model, tiny):5.1f}%, val {accuracy(model, val_set):5.1f}%"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--difficulty", type=float, default=0.5)
    parser.add_argument(
        "--epochs", type=int, default=12, help="epochs on the full train set (default 12)"
    )
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, load average {load}")
    print("(busy cores slow multi-threaded torch down many times over; try --threads 1)")
    bench_generation()
    train_set = load_dataset("shapes", train=True, difficulty=args.difficulty)
    val_set = load_dataset("shapes", train=False, difficulty=args.difficulty)
    bench_loader(train_set)
    bench_learning(train_set, val_set, args.epochs)


if __name__ == "__main__":
    main()
