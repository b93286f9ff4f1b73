"""Batches of an in-memory dataset: :class:`BatchLoader`, a fast stand-in for ``DataLoader``."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import torch
from torch import Tensor

from hw_utils.data.datasets import ImageDataset


def _take(tensor: Tensor, index: Tensor) -> Tensor:
    """``tensor[index]`` along dim 0, as a new tensor. On the CPU through NumPy: its one-thread
    copy is faster than torch's multi-threaded one, which stalls badly when the cores are busy."""
    if tensor.device.type == "cpu":
        return torch.from_numpy(tensor.numpy().take(index.numpy(), axis=0))
    return tensor[index.to(tensor.device)]


class BatchLoader:
    """Batches of an in-memory :class:`ImageDataset`; a fast stand-in for ``DataLoader``.

    Iterating yields ``(images, labels)`` with images ``(B, 3, H, W)`` and labels ``(B,)``; the
    last batch is shorter unless ``drop_last``. ``len(loader)`` is the number of batches and
    ``loader.dataset`` the dataset.

    Each pass (epoch) uses a generator seeded from ``(seed, epoch)``: with ``shuffle`` it draws a
    new permutation every epoch, the same sequence on every run. ``transform``, if given, maps
    each image batch, called as ``transform(images, generator=generator)`` with that generator, so
    :func:`random_flip_crop` (or any ``f(images, generator=None)``) plugs in directly.
    """

    def __init__(
        self,
        dataset: ImageDataset,
        batch_size: int,
        *,
        shuffle: bool = False,
        drop_last: bool = False,
        transform: Callable[[Tensor, torch.Generator], Tensor] | None = None,
        seed: int = 0,
    ) -> None:
        if not isinstance(dataset, ImageDataset):
            raise TypeError(
                f"BatchLoader: dataset must be an ImageDataset, got {type(dataset).__name__}; "
                "use torch.utils.data.DataLoader for other datasets."
            )
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"BatchLoader: batch_size must be a positive int, got {batch_size!r}.")
        self.dataset = dataset
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.transform = transform
        self.seed = seed
        self.epoch = 0
        """Number of passes started so far; the next pass uses this epoch's generator."""

    def __len__(self) -> int:
        if self.drop_last:
            return len(self.dataset) // self.batch_size
        return math.ceil(len(self.dataset) / self.batch_size)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        self.epoch += 1
        total = len(self.dataset)
        order = torch.randperm(total, generator=generator) if self.shuffle else torch.arange(total)
        for batch in range(len(self)):
            index = order[batch * self.batch_size : (batch + 1) * self.batch_size]
            images = _take(self.dataset.images, index)
            if self.transform is not None:
                images = self.transform(images, generator=generator)
            yield images, _take(self.dataset.labels, index)
