"""Plots for the course: learning curves, experiment comparisons, confusion matrices, image grids.

Every function returns the matplotlib ``Figure`` and shows or saves nothing itself. Figures made
here are detached from pyplot, so in a notebook a figure appears once when it is the cell's last
expression (or passed to ``display``), and many figures in a loop neither leak memory nor trigger
matplotlib's "too many figures" warning on stderr. Save one with ``fig.savefig(path)``. Functions
that accept ``ax``/``axes`` draw into the caller's figure instead and return that.

Images are ``(N, 3, H, W)`` or ``(N, 1, H, W)`` tensors with values in [0, 1] (NCHW).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from torch import Tensor

from hw_utils.experiments import ExperimentRecord, load_records
from hw_utils.training import FitResult

__all__ = [
    "confusion_matrix",
    "filter_grid",
    "image_grid",
    "plot_confusion_matrix",
    "plot_exp_results",
    "plot_fit",
]

METRICS: dict[str, tuple[str, str]] = {
    "train_loss": ("Training loss", "loss"),
    "train_acc": ("Training accuracy", "accuracy (%)"),
    "val_loss": ("Validation loss", "loss"),
    "val_acc": ("Validation accuracy", "accuracy (%)"),
}
"""The per-epoch metrics of a ``FitResult``: their plot title and y-axis label."""

WRONG_COLOR = "tab:red"
RIGHT_COLOR = "tab:green"


def _new_figure(figsize: tuple[float, float]) -> Figure:
    """A figure that pyplot does not track (see the module docstring)."""
    figure = plt.figure(figsize=figsize)
    plt.close(figure)
    return figure


def _epochs(values: Sequence[float]) -> list[int]:
    return list(range(1, len(values) + 1))


def plot_fit(
    result: FitResult, title: str | None = None, axes: Sequence[Axes] | None = None
) -> Figure:
    """Loss (left) and accuracy (right) per epoch, training versus validation.

    Args:
        result: the history returned by ``hw_utils.training.fit``.
        title: the figure's title.
        axes: two axes to draw into (loss, accuracy); by default a new 10 x 4 inch figure.
    """
    if axes is None:
        figure = _new_figure((10, 4))
        loss_ax, acc_ax = figure.subplots(1, 2)
    else:
        if len(axes) != 2:
            raise ValueError(f"plot_fit: axes must be 2 axes (loss, accuracy), got {len(axes)}.")
        loss_ax, acc_ax = axes
        figure = loss_ax.figure
    panels = [
        (loss_ax, "Loss", "loss", result.train_loss, result.val_loss),
        (acc_ax, "Accuracy", "accuracy (%)", result.train_acc, result.val_acc),
    ]
    for ax, panel_title, ylabel, train, val in panels:
        marker = "o" if len(train) <= 30 else None
        ax.plot(_epochs(train), train, marker=marker, label="train")
        ax.plot(_epochs(val), val, marker=marker, label="validation")
        ax.set_title(panel_title)
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend()
    if title is not None:
        figure.suptitle(title)
    return figure


def _as_records(records: Any) -> list[ExperimentRecord]:
    """Records from a sequence of them, a results folder, or a ``folder/pattern`` glob."""
    if isinstance(records, (str, Path)):
        path = Path(records)
        found = load_records(path) if path.is_dir() else load_records(path.parent, path.name)
        if not found:
            raise ValueError(f"plot_exp_results: no experiment records match {str(path)!r}.")
        return found
    found = list(records)
    if not found:
        raise ValueError("plot_exp_results: no records to plot.")
    for record in found:
        if not isinstance(record, ExperimentRecord):
            raise TypeError(
                "plot_exp_results: records must be ExperimentRecords, a results folder or a "
                f"'folder/pattern' glob, got a {type(record).__name__}."
            )
    return found


def _run_label(record: ExperimentRecord, keys: Sequence[str]) -> str:
    if not keys:
        return record.name
    missing = [key for key in keys if key not in record.config]
    if missing:
        raise ValueError(
            f"plot_exp_results: record {record.name!r} has no config key {missing[0]!r} "
            f"(its keys: {sorted(record.config)})."
        )
    return ", ".join(f"{key}={record.config[key]}" for key in keys)


def plot_exp_results(
    records: Iterable[ExperimentRecord] | str | Path,
    metric: str = "val_acc",
    label_by: str | Sequence[str] | None = None,
    ax: Axes | None = None,
) -> Figure:
    """One curve per experiment run of ``metric`` against the epoch.

    Args:
        records: experiment records, a results folder (every record in it), or a folder and
            file-name glob such as ``"results/exp1_1_K32_*"``.
        metric: ``"train_loss"``, ``"train_acc"``, ``"val_loss"`` or ``"val_acc"``.
        label_by: config key(s) naming each curve (``["K", "L"]`` gives ``"K=32, L=2"``);
            ``None`` uses the run names.
        ax: axes to draw into; by default a new 7 x 4.5 inch figure.
    """
    if metric not in METRICS:
        raise ValueError(
            f"plot_exp_results: unknown metric {metric!r}; choose one of {list(METRICS)}."
        )
    keys = [label_by] if isinstance(label_by, str) else list(label_by or [])
    runs = _as_records(records)
    if ax is None:
        figure = _new_figure((7, 4.5))
        ax = figure.subplots()
    else:
        figure = ax.figure
    for record in runs:
        values = getattr(record.result, metric)
        marker = "o" if len(values) <= 30 else None
        ax.plot(_epochs(values), values, marker=marker, label=_run_label(record, keys))
    title, ylabel = METRICS[metric]
    ax.set_title(f"{title} by {', '.join(keys)}" if keys else title)
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return figure


def _class_indices(values: Any, name: str, num_classes: int) -> Tensor:
    values = torch.as_tensor(values).detach().cpu()
    if values.ndim != 1 or values.is_floating_point():
        raise ValueError(
            f"confusion_matrix: {name} must be a 1-D tensor of class indices, got "
            f"{values.dtype} of shape {tuple(values.shape)}."
        )
    if values.numel() and (values.min() < 0 or values.max() >= num_classes):
        raise ValueError(
            f"confusion_matrix: {name} range from {values.min().item()} to {values.max().item()}, "
            f"expected 0 to {num_classes - 1} for {num_classes} classes."
        )
    return values.long()


def confusion_matrix(labels: Any, predictions: Any, num_classes: int) -> Tensor:
    """``(num_classes, num_classes)`` int64 counts: entry ``[t, p]`` counts samples of true class
    ``t`` predicted as ``p`` (rows are true classes, columns predictions)."""
    labels = _class_indices(labels, "labels", num_classes)
    predictions = _class_indices(predictions, "predictions", num_classes)
    if labels.shape != predictions.shape:
        raise ValueError(
            f"confusion_matrix: {labels.numel()} labels but {predictions.numel()} predictions."
        )
    counts = torch.bincount(labels * num_classes + predictions, minlength=num_classes**2)
    return counts.reshape(num_classes, num_classes)


def plot_confusion_matrix(
    labels: Any,
    predictions: Any,
    class_names: Sequence[str],
    ax: Axes | None = None,
    normalize: bool = False,
) -> Figure:
    """The confusion matrix as a heat map, true classes down, predicted classes across.

    Args:
        labels, predictions: ``(N,)`` class indices (e.g. from ``hw_utils.training.predict``).
        class_names: one name per class; their number is the number of classes.
        normalize: show each row as percentages of its true class (rows sum to 100) instead of
            counts.
        ax: axes to draw into; by default a new figure sized for the number of classes. A colour
            bar is added beside it.
    """
    num_classes = len(class_names)
    matrix = confusion_matrix(labels, predictions, num_classes).double()
    if normalize:
        matrix = 100.0 * matrix / matrix.sum(dim=1, keepdim=True).clamp(min=1.0)
    if ax is None:
        side = min(12.0, 2.5 + 0.5 * num_classes)
        figure = _new_figure((side + 1.0, side))
        ax = figure.subplots()
    else:
        figure = ax.figure
    image = ax.imshow(matrix.numpy(), cmap="Blues", vmin=0.0)
    figure.colorbar(image, ax=ax, label="% of true class" if normalize else "samples")
    ax.set_xticks(range(num_classes), class_names, rotation=45, ha="right")
    ax.set_yticks(range(num_classes), class_names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title("Confusion matrix (% of each true class)" if normalize else "Confusion matrix")
    if num_classes <= 20:
        threshold = matrix.max().item() / 2
        for true, row in enumerate(matrix.tolist()):
            for predicted, value in enumerate(row):
                ax.text(
                    predicted,
                    true,
                    f"{value:.0f}",
                    ha="center",
                    va="center",
                    fontsize="small",
                    color="white" if value > threshold else "black",
                )
    return figure


def _images_for_display(images: Any) -> Tensor:
    """``(N, H, W, 3)`` or ``(N, H, W)`` float tensor in [0, 1] from NCHW images."""
    images = torch.as_tensor(images).detach().cpu().float()
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(
            f"image_grid: images must be (N, 3, H, W) or (N, 1, H, W), got shape "
            f"{tuple(images.shape)}; add a batch axis with unsqueeze(0) for one image, or "
            "permute(0, 3, 1, 2) channels-last images."
        )
    low, high = images.min().item(), images.max().item()
    if low < -1e-3 or high > 1 + 1e-3:
        raise ValueError(
            f"image_grid: pixel values range from {low:.3g} to {high:.3g}, expected [0, 1]; undo "
            "the normalisation first (images * std + mean)."
        )
    images = images.clamp(0.0, 1.0)
    return images[:, 0] if images.shape[1] == 1 else images.permute(0, 2, 3, 1)


def _show_grid(
    pixels: Tensor, ncols: int, cell_inches: float, caption_room: float
) -> tuple[Figure, list[Axes]]:
    """One image per axes (``pixels`` ``(N, H, W[, 3])`` in [0, 1]), spare axes hidden."""
    count = pixels.shape[0]
    ncols = max(1, min(ncols, count))
    nrows = math.ceil(count / ncols)
    figure = _new_figure((ncols * cell_inches, nrows * (cell_inches + caption_room)))
    axes = figure.subplots(nrows, ncols, squeeze=False).ravel().tolist()
    for ax, image in zip(axes, pixels, strict=False):
        ax.imshow(
            image.numpy(),
            cmap="gray" if image.ndim == 2 else None,
            vmin=0.0,
            vmax=1.0,
            interpolation="nearest",
        )
    for ax in axes:
        ax.set_axis_off()
    return figure, axes[:count]


def _caption(
    label: int | None, predicted: int | None, class_names: Sequence[str] | None
) -> tuple[str, str | None]:
    """Caption text and colour of one image: its class, or its prediction marked right/wrong."""

    def name(index: int) -> str:
        return str(class_names[index]) if class_names is not None else str(index)

    if predicted is None:
        return ("" if label is None else name(label)), None
    if label is None:
        return name(predicted), None
    if predicted == label:
        return name(predicted), RIGHT_COLOR
    return f"{name(predicted)}\n(true: {name(label)})", WRONG_COLOR


def _per_image(values: Any, count: int, what: str) -> list[int | None]:
    """``values`` as a list of ``count`` class indices, or ``count`` Nones when not given."""
    if values is None:
        return [None] * count
    values = torch.as_tensor(values).reshape(-1).tolist()
    if len(values) != count:
        raise ValueError(f"image_grid: {count} images but {len(values)} {what}.")
    return values


def image_grid(
    images: Any,
    labels: Any = None,
    class_names: Sequence[str] | None = None,
    ncols: int = 8,
    predictions: Any = None,
) -> Figure:
    """Images in a grid, ``ncols`` per row, captioned with their class.

    Args:
        images: ``(N, 3, H, W)`` (colour) or ``(N, 1, H, W)`` (grey) values in [0, 1].
        labels: ``(N,)`` true classes, the caption.
        class_names: names for class indices; without them the captions are the indices.
        predictions: ``(N,)`` predicted classes; the caption becomes the prediction, green when
            right and red with the true class below when wrong (``"cat\\n(true: dog)"``).
    """
    pixels = _images_for_display(images)
    count = pixels.shape[0]
    captions = [
        _caption(label, predicted, class_names)
        for label, predicted in zip(
            _per_image(labels, count, "labels"),
            _per_image(predictions, count, "predictions"),
            strict=True,
        )
    ]
    caption_room = 0.45 if any(text for text, _ in captions) else 0.0
    figure, axes = _show_grid(pixels, ncols, 1.5, caption_room)
    for ax, (text, color) in zip(axes, captions, strict=True):
        if text:
            ax.set_title(text, fontsize="small", **({"color": color} if color else {}))
    return figure


def filter_grid(weight: Tensor, ncols: int = 8) -> Figure:
    """The filters of a conv layer, one image per output channel.

    Args:
        weight: ``(out_channels, in_channels, kH, kW)``, e.g. ``model[0].weight``. With 3 input
            channels each filter is shown in colour (RGB); otherwise its first input channel is
            shown in grey.
        ncols: filters per row.

    Each filter is rescaled on its own to fill [0, 1] (its minimum black, its maximum white), so
    compare patterns, not magnitudes.
    """
    weight = torch.as_tensor(weight).detach().cpu().float()
    if weight.ndim != 4:
        raise ValueError(
            f"filter_grid: weight must be (out_channels, in_channels, kH, kW), got shape "
            f"{tuple(weight.shape)}."
        )
    out_channels, in_channels, height, width = weight.shape
    shown = weight if in_channels == 3 else weight[:, :1]
    flat = shown.reshape(out_channels, -1)
    low = flat.min(dim=1).values.reshape(-1, 1, 1, 1)
    span = flat.max(dim=1).values.reshape(-1, 1, 1, 1) - low
    normalised = torch.where(
        span > 0, (shown - low) / span.clamp(min=1e-12), torch.full_like(shown, 0.5)
    )
    pixels = normalised.permute(0, 2, 3, 1) if in_channels == 3 else normalised[:, 0]
    figure, _ = _show_grid(pixels, ncols, 1.0, 0.0)
    what = "RGB" if in_channels == 3 else f"input channel 0 of {in_channels}"
    figure.suptitle(f"{out_channels} filters, {height}x{width} ({what})")
    return figure
