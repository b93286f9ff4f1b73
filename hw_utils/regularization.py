"""The course's versions of hw3's regularisers: weight penalties and the loaders of a run.

hw3 asks students to write these (``l2_penalty``, ``l1_penalty``, ``make_loaders``); the versions
here are course references (:mod:`hw_utils.references`): hw3's experiments fall back on them while
a student's own version is unfinished, and later assignments may use them. The penalised weights
are those of the ``nn.Conv2d`` and ``nn.Linear`` layers, anywhere in the model: never biases, never
normalisation layers (their scale is not a weight whose size should shrink).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from hw_utils.data import BatchLoader, ImageDataset
from hw_utils.references import course_reference

__all__ = ["l1_penalty", "l2_penalty", "make_loaders", "penalised_weights"]

PENALISED_LAYERS = (nn.Conv2d, nn.Linear)


def penalised_weights(model: nn.Module) -> list[Tensor]:
    """The ``weight`` of every ``nn.Conv2d`` and ``nn.Linear`` in ``model`` (nested ones too), in
    the order of ``model.modules()``."""
    return [m.weight for m in model.modules() if isinstance(m, PENALISED_LAYERS)]


def _total(terms: list[Tensor], model: nn.Module) -> Tensor:
    if not terms:
        parameter = next(model.parameters(), None)
        return torch.zeros((), dtype=parameter.dtype if parameter is not None else None)
    return torch.stack(terms).sum()


@course_reference("l2_penalty")
def l2_penalty(model: nn.Module, weight_decay: float) -> Tensor:
    """``0.5 * weight_decay * sum(w ** 2)`` over :func:`penalised_weights`, a 0-d tensor.

    Its gradient is ``weight_decay * w``: one SGD step on ``loss + l2_penalty(model, wd)`` is one
    step of ``SGD(weight_decay=wd)`` (applied to those weights only) on ``loss``.
    """
    return 0.5 * weight_decay * _total([w.square().sum() for w in penalised_weights(model)], model)


@course_reference("l1_penalty")
def l1_penalty(model: nn.Module, strength: float) -> Tensor:
    """``strength * sum(|w|)`` over :func:`penalised_weights`, a 0-d tensor."""
    return strength * _total([w.abs().sum() for w in penalised_weights(model)], model)


@course_reference("make_loaders")
def make_loaders(
    train_set: ImageDataset,
    val_set: ImageDataset,
    batch_size: int,
    transform: Callable[..., Tensor] | None = None,
    seed: int = 0,
) -> tuple[BatchLoader, BatchLoader]:
    """``(train_loader, val_loader)``: the training batches shuffled every epoch and passed
    through ``transform`` (augmentation, when given); the validation batches in order and
    untouched."""
    train_loader = BatchLoader(train_set, batch_size, shuffle=True, transform=transform, seed=seed)
    return train_loader, BatchLoader(val_set, batch_size)
