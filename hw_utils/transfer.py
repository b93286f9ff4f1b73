"""Reusing a pretrained network (hw6): the course's versions of what hw6 asks students to write,
and the few-label data of the transfer task.

A model here is any ``nn.Module`` whose head, the last layer that maps features to class scores,
is ``model.fc`` (the torchvision ResNet convention, and :class:`hw_utils.models.ResNet`'s).

- :func:`freeze_backbone`, :func:`replace_head`, :func:`trainable_parameters`,
  :func:`extract_features`: course references (hw6's graded functions), for later work, the
  benchmark and the tests' stand-ins.
- :func:`transfer_task`: the data of the transfer task, offline (the shape classes the course's
  backbone never saw) or CIFAR-10 for torchvision's ImageNet ResNet-18;
  :func:`per_class_subset`: the first ``k`` images of every class after a seeded shuffle (the
  "few labels per class").
"""

from __future__ import annotations

import os
import types
from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hw_utils.data import ImageDataset, load_dataset, make_shapes
from hw_utils.models.pretrained import BACKBONES, read_record
from hw_utils.references import course_reference

__all__ = [
    "BATCH_NORM_TYPES",
    "IMAGENET_SIZE",
    "TransferTask",
    "extract_features",
    "freeze_backbone",
    "imagenet_preprocess",
    "per_class_subset",
    "replace_head",
    "trainable_parameters",
    "transfer_task",
]

BATCH_NORM_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)
"""The batch-norm layer classes (the lazy variants are subclasses)."""


def _head(model: nn.Module) -> nn.Module:
    head = getattr(model, "fc", None)
    if not isinstance(head, nn.Module):
        raise TypeError(
            f"{type(model).__name__} has no head model.fc (an nn.Module); these functions "
            "follow torchvision's ResNet convention, where model.fc maps features to scores."
        )
    return head


def _train_stays_off(module: nn.Module, mode: bool = True) -> nn.Module:
    """``train`` of a frozen batch-norm layer: whatever ``mode`` asks, the layer stays in eval."""
    return nn.Module.train(module, False)


@course_reference("freeze_backbone")
def freeze_backbone(model: nn.Module, train_bn: bool = False) -> nn.Module:
    """Freeze every parameter outside the head ``model.fc``, in place; returns ``model``.

    With ``train_bn=False`` the batch-norm layers of the backbone are frozen completely: their
    weight and bias stop training and the layers stay in eval mode even when a training loop
    calls ``model.train()``, so they keep normalising with, and never update, their running
    statistics (detectron's and mmdetection's ``norm_eval``). With ``train_bn=True`` their weight
    and bias keep training and they behave as ordinary batch norm (batch statistics in training
    mode, running statistics updated). The head, batch norm inside it included, stays trainable.
    """
    head_modules = set(_head(model).modules())
    for module in model.modules():
        if module in head_modules:
            continue
        is_batch_norm = isinstance(module, BATCH_NORM_TYPES)
        for parameter in module.parameters(recurse=False):
            parameter.requires_grad_(is_batch_norm and train_bn)
        if is_batch_norm and not train_bn:
            module.train = types.MethodType(_train_stays_off, module)
            module.eval()
    _head(model).requires_grad_(True)
    return model


@course_reference("replace_head")
def replace_head(model: nn.Module, num_classes: int) -> nn.Module:
    """Replace ``model.fc`` by a new trainable ``nn.Linear(model.fc.in_features, num_classes)``
    on the old head's device and dtype, in place; returns ``model``."""
    old = _head(model)
    if not isinstance(old, nn.Linear):
        raise TypeError(f"replace_head: model.fc is a {type(old).__name__}, not an nn.Linear.")
    model.fc = nn.Linear(
        old.in_features, num_classes, device=old.weight.device, dtype=old.weight.dtype
    )
    return model


@course_reference("trainable_parameters")
def trainable_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The parameters of ``model`` that require gradients, in ``model.parameters()`` order."""
    return [parameter for parameter in model.parameters() if parameter.requires_grad]


@course_reference("extract_features")
def extract_features(model: nn.Module, images: Tensor, batch_size: int = 256) -> Tensor:
    """The features the head sees: ``(N, model.fc.in_features)`` inputs of ``model.fc`` for
    ``images`` ``(N, C, H, W)``, computed in eval mode without gradients, ``batch_size`` images at
    a time on the model's device; returned on the CPU. The model's mode is restored."""
    captured: list[Tensor] = []
    hook = _head(model).register_forward_hook(
        lambda module, inputs, output: captured.append(inputs[0].detach().cpu())
    )
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for batch in images.split(batch_size):
                model(batch.to(device))
    finally:
        hook.remove()
        model.train(was_training)
    return torch.cat(captured)


def per_class_subset(dataset: ImageDataset, per_class: int, *, seed: int = 0) -> ImageDataset:
    """``per_class`` images of every class of ``dataset``: the first ones after a shuffle seeded
    by ``seed``, so a larger ``per_class`` (same seed) contains every image of a smaller one.
    Images keep the dataset's order."""
    if isinstance(per_class, bool) or not isinstance(per_class, int) or per_class < 1:
        raise ValueError(f"per_class_subset: per_class must be a positive int, got {per_class!r}.")
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))
    chosen = []
    for label in range(dataset.num_classes):
        members = order[dataset.labels[order] == label]
        if len(members) < per_class:
            raise ValueError(
                f"per_class_subset: class {dataset.classes[label]!r} has {len(members)} images, "
                f"fewer than per_class={per_class}; use a larger dataset."
            )
        chosen.append(members[:per_class])
    return dataset.subset(torch.cat(chosen).sort().values)


IMAGENET_SIZE = 112
"""Side to which CIFAR's 32 x 32 images are upsampled for the ImageNet ResNet-18."""

_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)
_TRANSFER_SEED = 7_000  # make_shapes seed of the pool (the test set uses the next one)


def imagenet_preprocess(images: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Images ``(N, 3, H, W)`` in [0, 1] as torchvision's ImageNet models expect them: upsampled
    (bilinear) to :data:`IMAGENET_SIZE` and normalised with ImageNet's channel means and standard
    deviations. ``generator`` is unused (the signature of a ``BatchLoader`` transform)."""
    images = F.interpolate(images, size=IMAGENET_SIZE, mode="bilinear", align_corners=False)
    mean = torch.tensor(_IMAGENET_MEAN, dtype=images.dtype, device=images.device)
    std = torch.tensor(_IMAGENET_STD, dtype=images.dtype, device=images.device)
    return (images - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1)


class TransferTask(NamedTuple):
    """The data of a transfer task."""

    classes: tuple[str, ...]
    pool: ImageDataset
    """Labelled training images to draw a few labels per class from."""
    test: ImageDataset
    preprocess: Callable[..., Tensor] | None
    """What every batch needs before the backbone sees it (``f(images, generator=None)``, a
    ``BatchLoader`` transform), or ``None``."""


def transfer_task(
    backbone: str = "shapes",
    *,
    pool_size: int,
    test_size: int,
    root: str | os.PathLike = "data",
    download: bool = False,
) -> TransferTask:
    """The transfer task of a backbone of :func:`hw_utils.models.load_backbone`.

    ``"shapes"``: :func:`hw_utils.data.make_shapes` images of the record's ``transfer_classes``,
    the shapes the course's backbone never saw (pool and test from seeds no other data uses).
    ``"imagenet"``: the first ``pool_size`` training and ``test_size`` test images of CIFAR-10
    (``download`` fetches it into ``root``), with :func:`imagenet_preprocess`.

    Raises:
        hw_utils.data.DatasetUnavailableError: CIFAR-10 is not in ``root`` and cannot be
            downloaded.
    """
    if backbone == "shapes":
        classes = read_record().transfer_classes
        pool = make_shapes(pool_size, classes=classes, seed=_TRANSFER_SEED)
        test = make_shapes(test_size, classes=classes, seed=_TRANSFER_SEED + 1)
        return TransferTask(classes, pool, test, None)
    if backbone == "imagenet":
        options = {"root": root, "download": download}
        pool = load_dataset("cifar10", train=True, num_samples=pool_size, **options)
        test = load_dataset("cifar10", train=False, num_samples=test_size, **options)
        return TransferTask(pool.classes, pool, test, imagenet_preprocess)
    raise ValueError(f"transfer_task: unknown backbone {backbone!r}; choose one of {BACKBONES}.")
