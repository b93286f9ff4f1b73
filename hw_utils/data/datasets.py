"""Labelled image sets in memory: :class:`ImageDataset`, named datasets (:func:`load_dataset`:
the offline shapes, or torchvision's CIFAR-10/100) and a stratified :func:`train_val_split`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import Dataset


@dataclass(frozen=True, eq=False, repr=False)
class ImageDataset(Dataset):
    """Labelled images held in memory.

    Attributes:
        images: ``(N, 3, H, W)`` float32 in [0, 1].
        labels: ``(N,)`` int64 class indices in ``0..len(classes)-1``.
        classes: the class names; ``classes[label]`` names a label.

    ``dataset[i]`` is ``(image, label)`` with ``image`` of shape ``(3, H, W)`` and ``label`` an int,
    so it also works with ``torch.utils.data.DataLoader``; :class:`BatchLoader` is faster.
    """

    images: Tensor
    labels: Tensor
    classes: tuple[str, ...]

    def __post_init__(self) -> None:
        images, labels = self.images, self.labels
        if not isinstance(images, Tensor) or not isinstance(labels, Tensor):
            raise TypeError(
                "ImageDataset: images and labels must be torch.Tensors, got "
                f"{type(images).__name__} and {type(labels).__name__}."
            )
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(
                f"ImageDataset: images must be (N, 3, H, W), got shape {tuple(images.shape)}; "
                "convert (N, H, W, 3) arrays with .permute(0, 3, 1, 2)."
            )
        if images.dtype != torch.float32:
            raise ValueError(
                f"ImageDataset: images must be float32, got {images.dtype}; "
                "for uint8 pixels use images.float() / 255."
            )
        if labels.ndim != 1 or labels.dtype != torch.int64:
            raise ValueError(
                f"ImageDataset: labels must be a 1-D int64 tensor, got shape {tuple(labels.shape)} "
                f"and dtype {labels.dtype}; use labels.long()."
            )
        if len(labels) != len(images):
            raise ValueError(
                f"ImageDataset: {len(images)} images but {len(labels)} labels; they must match."
            )
        object.__setattr__(self, "classes", tuple(self.classes))
        if not self.classes or not all(isinstance(name, str) for name in self.classes):
            raise ValueError(f"ImageDataset: classes must be non-empty names, got {self.classes}.")
        if len(images) == 0:
            return
        low, high = torch.aminmax(images)
        if low < 0 or high > 1:
            raise ValueError(
                "ImageDataset: images must lie in [0, 1], found values in "
                f"[{low.item():.3g}, {high.item():.3g}]; scale them (e.g. / 255) or clamp them."
            )
        low, high = torch.aminmax(labels)
        if low < 0 or high >= len(self.classes):
            raise ValueError(
                f"ImageDataset: labels must lie in 0..{len(self.classes) - 1} "
                f"(one per class name), found {low.item()}..{high.item()}."
            )

    @property
    def num_classes(self) -> int:
        """Number of classes (``len(classes)``)."""
        return len(self.classes)

    def subset(self, indices: Tensor | Sequence[int]) -> ImageDataset:
        """The samples at ``indices`` (in that order), with the same classes."""
        index = torch.as_tensor(indices, dtype=torch.int64)
        return ImageDataset(self.images[index], self.labels[index], self.classes)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        return self.images[index], int(self.labels[index])

    def __repr__(self) -> str:
        size = "x".join(str(s) for s in self.images.shape[1:])
        return f"ImageDataset({len(self)} images of {size}, {self.num_classes} classes)"


DATASET_NAMES: tuple[str, ...] = ("shapes", "cifar10", "cifar100")
"""Names :func:`load_dataset` knows."""

_SHAPES_DEFAULT_SIZE = {True: 10_000, False: 2_000}  # train, test


class DatasetUnavailableError(RuntimeError):
    """A real dataset is neither on disk nor downloadable; the message lists the fixes."""


def _load_cifar(
    name: str, train: bool, root: Path, download: bool, num_samples: int | None
) -> ImageDataset:
    from torchvision import datasets

    dataset_class = datasets.CIFAR10 if name == "cifar10" else datasets.CIFAR100
    folder = root / dataset_class.base_folder
    try:
        raw = dataset_class(root=str(root), train=train, download=download)
    except (RuntimeError, OSError) as error:  # missing/corrupt files, or no network
        reason = "download=False" if not download else f"downloading failed ({error})"
        raise DatasetUnavailableError(
            f"{name}: not found (or incomplete) in {folder.resolve()} and {reason}. Fixes: run "
            f"load_dataset({name!r}, download=True) once on a machine with internet; or copy the "
            f"folder {dataset_class.base_folder!r} from a machine that has it into "
            f"{root.resolve()}; or work offline with load_dataset('shapes')."
        ) from error
    split = "train" if train else "test"
    if num_samples is not None and num_samples > len(raw.data):
        raise ValueError(
            f"load_dataset: num_samples={num_samples} but the {name} {split} split has only "
            f"{len(raw.data)} images."
        )
    pixels = torch.from_numpy(raw.data[:num_samples])  # (N, H, W, 3) uint8
    images = pixels.permute(0, 3, 1, 2).float().div_(255.0).contiguous()
    labels = torch.as_tensor(raw.targets[:num_samples], dtype=torch.int64)
    return ImageDataset(images, labels, tuple(raw.classes))


def load_dataset(
    name: str = "shapes",
    *,
    train: bool = True,
    root: str | os.PathLike = "data",
    download: bool = False,
    num_samples: int | None = None,
    **shape_kwargs,
) -> ImageDataset:
    """A named dataset as an :class:`ImageDataset`: images ``(N, 3, 32, 32)`` in [0, 1]
    (``"shapes"`` takes another ``image_size``).

    Args:
        name: ``"shapes"`` (procedural, offline), ``"cifar10"`` or ``"cifar100"`` (torchvision).
        train: the training split, else the test split.
        root: folder with the CIFAR files (torchvision's layout, e.g. ``data/cifar-10-batches-py``).
        download: let torchvision download CIFAR into ``root`` when missing (needs internet).
        num_samples: for ``"shapes"`` the number of images (default 10,000 train, 2,000 test);
            for CIFAR the first ``num_samples`` images (default all).
        **shape_kwargs: passed to :func:`make_shapes` (``classes``, ``image_size``,
            ``difficulty``, ``seed``); ``"shapes"`` only.

    For ``"shapes"`` the train and test splits use disjoint seeds (``2 * seed`` and
    ``2 * seed + 1``), so they never share images; everything else is the same.

    Raises:
        DatasetUnavailableError: CIFAR is not in ``root`` and cannot be downloaded.
    """
    if name not in DATASET_NAMES:
        raise ValueError(f"load_dataset: unknown dataset {name!r}; choose one of {DATASET_NAMES}.")
    if num_samples is not None and (isinstance(num_samples, bool) or num_samples < 1):
        raise ValueError(f"load_dataset: num_samples must be positive or None, got {num_samples}.")
    if name == "shapes":
        seed = shape_kwargs.pop("seed", 0)
        if num_samples is None:
            num_samples = _SHAPES_DEFAULT_SIZE[bool(train)]
        split_seed = 2 * seed if train else 2 * seed + 1
        from hw_utils.data.shapes import make_shapes

        return make_shapes(num_samples, seed=split_seed, **shape_kwargs)
    if shape_kwargs:
        raise TypeError(
            f"load_dataset: {sorted(shape_kwargs)} only apply to 'shapes', not to {name!r}."
        )
    return _load_cifar(name, train, Path(root), download, num_samples)


def train_val_split(
    dataset: ImageDataset, val_fraction: float = 0.2, *, seed: int = 0
) -> tuple[ImageDataset, ImageDataset]:
    """Split into ``(train, val)``, stratified by class.

    ``val`` has exactly ``round(val_fraction * N)`` samples, each class contributing in proportion
    to its size (largest remainders get the rounding). The split is disjoint, deterministic given
    ``seed``, and both parts keep the original sample order.
    """
    total = len(dataset)
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"train_val_split: val_fraction must be in (0, 1), got {val_fraction}.")
    num_val = round(val_fraction * total)
    if not 0 < num_val < total:
        raise ValueError(
            f"train_val_split: val_fraction={val_fraction} of {total} samples leaves "
            f"{num_val} for validation and {total - num_val} for training; both need at least one."
        )
    counts = torch.bincount(dataset.labels, minlength=dataset.num_classes)
    quota = counts.double() * (num_val / total)
    per_class = quota.floor().long()
    remainder = quota - per_class
    shortfall = num_val - int(per_class.sum())
    per_class[torch.argsort(remainder, descending=True, stable=True)[:shortfall]] += 1

    generator = torch.Generator().manual_seed(seed)
    is_val = torch.zeros(total, dtype=torch.bool)
    for label in range(dataset.num_classes):
        members = (dataset.labels == label).nonzero().squeeze(1)
        chosen = torch.randperm(len(members), generator=generator)[: per_class[label]]
        is_val[members[chosen]] = True
    return dataset.subset(torch.where(~is_val)[0]), dataset.subset(torch.where(is_val)[0])
