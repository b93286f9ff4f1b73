"""Training results and the reference trainer.

This is the solution of hw2's trainer, kept in the package so that later assignments (and a student
stuck on hw2) can train models with it. Conventions:

- A loader is any iterable of ``(inputs, labels)`` batches: a ``torch.utils.data.DataLoader``, the
  course's ``hw_utils.data.BatchLoader``, or a list of tensor pairs. ``inputs`` is ``(N, ...)``
  (images are NCHW), ``labels`` is ``(N,)`` int64 class indices.
- The model maps ``inputs`` to class scores (logits) ``(N, num_classes)``; predictions are the
  argmax over the class axis (dim 1).
- ``loss_fn(scores, labels)`` returns the batch mean as a scalar (``nn.CrossEntropyLoss()``).
  Epoch losses are means over samples: each batch mean is weighted by its batch size, so a short
  last batch counts as much as its samples, no more.
- Accuracy is in percent (0-100).
- The model must already be on ``device``; the trainer moves each batch there.

Progress bars are written to ``sys.stdout``, never stderr: nbgrader zeroes a graded cell that
writes anything to stderr.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor, nn
from tqdm import tqdm

from hw_utils.references import course_reference

__all__ = [
    "EpochResult",
    "FitResult",
    "choose_device",
    "count_parameters",
    "evaluate",
    "fit",
    "predict",
    "seed_everything",
    "train_epoch",
]

Batches = Iterable[tuple[Tensor, Tensor]]
"""Any iterable of ``(inputs, labels)`` batches."""

Penalty = Callable[[nn.Module], Tensor]
"""A regularisation term of the model's parameters, e.g. ``lambda m: l2_penalty(m, 1e-4)``: a
scalar tensor added to the loss before each backward pass."""


class EpochResult(NamedTuple):
    """One pass over a loader."""

    loss: float
    """Mean loss over all samples."""
    accuracy: float
    """Percentage (0-100) of samples whose argmax class equals the label."""


class FitResult(NamedTuple):
    """The history of :func:`fit`: one entry per epoch actually run."""

    num_epochs: int
    train_loss: list[float]
    train_acc: list[float]
    val_loss: list[float]
    val_acc: list[float]


def choose_device() -> torch.device:
    """The best available device: ``cuda``, else Apple's ``mps``, else ``cpu``."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global generator and torch (CPU and every GPU)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of scalar parameters of ``model`` (only those with ``requires_grad`` by default)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def _describe(batch: Any) -> str:
    if isinstance(batch, (tuple, list)):
        return f"a {type(batch).__name__} of {len(batch)} items"
    return f"a {type(batch).__name__}"


def _batches(
    loader: Batches, device: torch.device | str, caller: str
) -> Iterator[tuple[Tensor, Tensor]]:
    """Yield the loader's ``(inputs, labels)`` batches moved to ``device``."""
    for batch in loader:
        if not isinstance(batch, (tuple, list)) or len(batch) != 2:
            raise TypeError(
                f"{caller}: the loader must yield (inputs, labels) pairs, got {_describe(batch)}."
            )
        inputs, labels = batch
        yield inputs.to(device), labels.to(device)


class _Tally:
    """Sums of batch losses (weighted by batch size) and correct predictions over an epoch."""

    def __init__(self, caller: str) -> None:
        self.caller = caller
        self.loss_sum = 0.0
        self.correct = 0
        self.samples = 0

    def add(self, loss: Tensor, scores: Tensor, labels: Tensor) -> None:
        if loss.ndim != 0:
            raise ValueError(
                f"{self.caller}: loss_fn returned shape {tuple(loss.shape)}, expected a scalar "
                "(the batch mean); use reduction='mean'."
            )
        batch_size = labels.shape[0]
        self.loss_sum += loss.item() * batch_size
        self.correct += (scores.argmax(dim=1) == labels).sum().item()
        self.samples += batch_size

    def result(self) -> EpochResult:
        if self.samples == 0:
            raise ValueError(f"{self.caller}: the loader yielded no samples.")
        return EpochResult(self.loss_sum / self.samples, 100.0 * self.correct / self.samples)


@course_reference("train_epoch")
def train_epoch(
    model: nn.Module,
    loader: Batches,
    loss_fn: Any,
    optimizer: torch.optim.Optimizer,
    device: torch.device | str,
    *,
    scheduler: Any = None,
    penalty: Penalty | None = None,
) -> EpochResult:
    """One training pass over ``loader``: ``model.train()``, then per batch zero the gradients,
    forward, backward and ``optimizer.step()``.

    ``optimizer`` is any ``torch.optim.Optimizer`` (PyTorch's or one of your own).

    Args:
        scheduler: a learning-rate scheduler stepped after every ``optimizer.step()`` (a
            schedule counted in batches, such as a warm-up); ``fit`` steps one per epoch instead.
        penalty: ``penalty(model)``, a scalar tensor added to each batch's loss before the
            backward pass (e.g. an L2 penalty); ``None`` adds nothing.

    Returns the mean loss over samples and the accuracy (percent) of the predictions made during
    the pass (each with the weights before that batch's step). The loss is ``loss_fn``'s alone,
    without the penalty, so that runs with different penalties compare on the same scale.
    """
    model.train()
    tally = _Tally("train_epoch")
    for inputs, labels in _batches(loader, device, "train_epoch"):
        optimizer.zero_grad()
        scores = model(inputs)
        loss = loss_fn(scores, labels)
        tally.add(loss, scores, labels)
        if penalty is not None:
            loss = loss + _penalty_term(penalty, model)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
    return tally.result()


def _penalty_term(penalty: Penalty, model: nn.Module) -> Tensor:
    term = penalty(model)
    if not isinstance(term, Tensor) or term.ndim != 0:
        what = f"shape {tuple(term.shape)}" if isinstance(term, Tensor) else type(term).__name__
        raise ValueError(
            f"train_epoch: penalty(model) returned {what}, expected a scalar tensor (0-d) that "
            "autograd can differentiate; sum the terms, and do not call .item() on them."
        )
    return term


@course_reference("evaluate")
def evaluate(
    model: nn.Module, loader: Batches, loss_fn: Any, device: torch.device | str
) -> EpochResult:
    """Mean loss over samples and accuracy (percent) of ``model`` on ``loader``, in eval mode
    (dropout off, batch norm using running statistics) and without tracking gradients."""
    model.eval()
    tally = _Tally("evaluate")
    with torch.no_grad():
        for inputs, labels in _batches(loader, device, "evaluate"):
            scores = model(inputs)
            tally.add(loss_fn(scores, labels), scores, labels)
    return tally.result()


def predict(model: nn.Module, loader: Batches, device: torch.device | str) -> tuple[Tensor, Tensor]:
    """``(labels, predictions)`` over ``loader`` in its order, both ``(N,)`` int64 on the CPU.

    Predictions are the argmax over the class axis of the scores, in eval mode without gradients.
    Use a loader without shuffling to line the results up with the dataset.
    """
    model.eval()
    all_labels, all_predictions = [], []
    with torch.no_grad():
        for inputs, labels in _batches(loader, device, "predict"):
            all_predictions.append(model(inputs).argmax(dim=1).cpu())
            all_labels.append(labels.cpu())
    if not all_labels:
        raise ValueError("predict: the loader yielded no samples.")
    return torch.cat(all_labels).long(), torch.cat(all_predictions).long()


def _check_positive_int(value: Any, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"fit: {name} must be a positive int, got {value!r}.")


@course_reference("fit")
def fit(
    model: nn.Module,
    train_loader: Batches,
    val_loader: Batches,
    loss_fn: Any,
    optimizer: torch.optim.Optimizer,
    epochs: int,
    device: torch.device | str,
    early_stopping: int | None = None,
    *,
    scheduler: Any = None,
    scheduler_interval: str = "epoch",
    progress: bool = True,
    penalty: Penalty | None = None,
) -> FitResult:
    """Train for up to ``epochs`` epochs, evaluating on ``val_loader`` after each.

    Args:
        optimizer: any ``torch.optim.Optimizer`` (PyTorch's or one of your own).
        early_stopping: stop once this many consecutive epochs bring no new best (strictly lower)
            validation loss; ``None`` always runs every epoch.
        scheduler: a learning-rate scheduler. With ``scheduler_interval="epoch"`` it is stepped
            once per epoch, after training and evaluation (``ReduceLROnPlateau`` is given the
            validation loss); with ``"batch"``, after every optimizer step (schedules counted
            in batches, such as a warm-up), by :func:`train_epoch`.
        progress: show a progress bar over epochs with the latest train/val loss and accuracy,
            written to stdout; ``False`` prints nothing.
        penalty: ``penalty(model)``, a scalar tensor added to the training loss of every batch
            before the backward pass (see :func:`train_epoch`); the reported losses leave it out.

    Returns:
        The per-epoch history; ``num_epochs`` is the number of epochs actually run.
    """
    _check_positive_int(epochs, "epochs")
    if early_stopping is not None:
        _check_positive_int(early_stopping, "early_stopping")
    if scheduler_interval not in ("epoch", "batch"):
        raise ValueError(
            f"fit: scheduler_interval must be 'epoch' or 'batch', got {scheduler_interval!r}."
        )
    per_batch = scheduler if scheduler_interval == "batch" else None
    if isinstance(per_batch, torch.optim.lr_scheduler.ReduceLROnPlateau):
        raise ValueError(
            "fit: ReduceLROnPlateau watches the validation loss, which exists once per epoch; "
            "use scheduler_interval='epoch' with it."
        )

    train_loss: list[float] = []
    train_acc: list[float] = []
    val_loss: list[float] = []
    val_acc: list[float] = []
    best_val_loss = float("inf")
    epochs_without_improvement = 0
    stop_message = ""
    bar = tqdm(total=epochs, desc="fit", unit="epoch", file=sys.stdout, disable=not progress)
    for epoch in range(1, epochs + 1):
        train = train_epoch(
            model, train_loader, loss_fn, optimizer, device, scheduler=per_batch, penalty=penalty
        )
        val = evaluate(model, val_loader, loss_fn, device)
        train_loss.append(train.loss)
        train_acc.append(train.accuracy)
        val_loss.append(val.loss)
        val_acc.append(val.accuracy)
        bar.set_postfix(
            {
                "train_loss": f"{train.loss:.4f}",
                "train_acc": f"{train.accuracy:.1f}%",
                "val_loss": f"{val.loss:.4f}",
                "val_acc": f"{val.accuracy:.1f}%",
            },
            refresh=False,
        )
        bar.update()
        if scheduler is not None and per_batch is None:
            if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                scheduler.step(val.loss)
            else:
                scheduler.step()
        if val.loss < best_val_loss:
            best_val_loss = val.loss
            epochs_without_improvement = 0
        else:
            epochs_without_improvement += 1
        if early_stopping is not None and epochs_without_improvement >= early_stopping:
            stop_message = (
                f"Early stopping after epoch {epoch}: no new best validation loss in "
                f"{early_stopping} epochs (best {best_val_loss:.4f} at epoch "
                f"{epoch - early_stopping})."
            )
            break
    bar.close()
    if progress and stop_message:
        print(stop_message)
    return FitResult(len(train_loss), train_loss, train_acc, val_loss, val_acc)
