"""Probes of hw3_regularization: penalties, dropout, augmentation and loaders, observed.

Each probe builds what the test describes (seeded), runs the student's code on the test's inputs
and returns raw observations (values, gradients, outputs, parameters, batches) as data; the
checker decides what they should be. Models for the penalty tests are described as data (a list
of layer tuples, see :func:`penalty_model`), so the checker builds the same model to compute the
expected values.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode

from hw_utils.data import ImageDataset
from hw_utils.probes.common import one_thread

__all__ = [
    "augment_outputs",
    "dropout_gradient",
    "dropout_outputs",
    "loader_passes",
    "marking_transform",
    "penalised_sgd_step",
    "penalty_model",
    "penalty_report",
]


# ---- penalties ---------------------------------------------------------------------------


def _layer(spec: Sequence[Any]) -> nn.Module:
    kind, *args = spec
    if kind == "conv":
        in_channels, out_channels, kernel, bias = args
        return nn.Conv2d(in_channels, out_channels, kernel, bias=bias)
    if kind == "linear":
        in_features, out_features, bias = args
        return nn.Linear(in_features, out_features, bias=bias)
    if kind == "bn":
        return nn.BatchNorm2d(args[0])
    if kind == "bn1d":
        return nn.BatchNorm1d(args[0])
    if kind == "relu":
        return nn.ReLU()
    if kind == "pool":
        return nn.MaxPool2d(args[0])
    if kind == "flatten":
        return nn.Flatten()
    if kind == "block":
        return nn.Sequential(*(_layer(inner) for inner in args[0]))
    raise ValueError(f"penalty_model: unknown layer kind {kind!r}")


def penalty_model(layers: Sequence[Sequence[Any]], seed: int) -> nn.Sequential:
    """A float64 ``nn.Sequential`` described by ``layers``, every parameter drawn from a
    generator seeded with ``seed`` (the same model on both sides of the boundary).

    Layer tuples: ``("conv", in, out, kernel, bias)``, ``("linear", in, out, bias)``,
    ``("bn", channels)``, ``("bn1d", features)``, ``("relu",)``, ``("pool", kernel)``,
    ``("flatten",)``, ``("block", [layer tuples])`` (a nested ``nn.Sequential``). Weights and
    biases are normal with standard deviation 0.5; normalisation scales are ``1 + 0.3 * normal``
    and their shifts normal, so that penalising them, or a bias, changes the result.
    """
    model = nn.Sequential(*(_layer(spec) for spec in layers)).to(torch.float64)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            is_norm = isinstance(module, nn.BatchNorm1d | nn.BatchNorm2d)
            for name, parameter in module.named_parameters(recurse=False):
                noise = torch.randn(parameter.shape, generator=generator, dtype=torch.float64)
                if is_norm and name == "weight":
                    parameter.copy_(1 + 0.3 * noise)
                else:
                    parameter.copy_(0.5 * noise)
    return model


def penalty_report(
    penalty: Callable[[nn.Module, float], Any],
    layers: Sequence[Sequence[Any]],
    seed: int,
    strength: float,
) -> dict[str, Any]:
    """``penalty(model, strength)`` on :func:`penalty_model` ``(layers, seed)``.

    Returns:
        ``{"value": what it returned, "grads": {parameter name: gradient of the value, or None
        where the value does not depend on it}}``; ``grads`` is empty when the value is not a
        one-element tensor that autograd can differentiate.
    """
    __tracebackhide__ = True  # a stub's error shows the student's line, not this one
    with one_thread():
        model = penalty_model(layers, seed)
        value = penalty(model, strength)
        grads: dict[str, Tensor | None] = {}
        if isinstance(value, Tensor) and value.numel() == 1 and value.requires_grad:
            names, parameters = zip(*model.named_parameters(), strict=True)
            found = torch.autograd.grad(value.sum(), parameters, allow_unused=True)
            grads = dict(zip(names, found, strict=True))
        return {"value": value, "grads": grads}


def penalised_sgd_step(
    penalty: Callable[[nn.Module, float], Any],
    layers: Sequence[Sequence[Any]],
    seed: int,
    strength: float,
    lr: float,
    inputs: Tensor,
    labels: Tensor,
) -> dict[str, Tensor]:
    """The parameters of :func:`penalty_model` ``(layers, seed)`` after one plain SGD step,
    ``p <- p - lr * gradient``, on ``cross_entropy(model(inputs), labels) + penalty(model,
    strength)`` in training mode, by name. (The step is written out rather than taken with
    ``torch.optim.SGD``, whose first use imports the compiler, seconds on a busy machine.)"""
    __tracebackhide__ = True  # a stub's error shows the student's line, not this one
    with one_thread():
        model = penalty_model(layers, seed).train()
        names, parameters = zip(*model.named_parameters(), strict=True)
        loss = F.cross_entropy(model(inputs), labels) + penalty(model, strength)
        grads = torch.autograd.grad(loss, parameters, allow_unused=True)
        return {
            name: p.detach() if g is None else (p - lr * g).detach()
            for name, p, g in zip(names, parameters, grads, strict=True)
        }


# ---- dropout -----------------------------------------------------------------------------


class _TorchCalls(TorchFunctionMode):
    """Inside it, the names (``module.name``) of the torch functions and tensor methods called
    are recorded: every route to a library function passes here, ``torch._C`` and
    ``torch.ops`` ones included, which patching a module attribute cannot catch."""

    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        module = getattr(func, "__module__", None) or ""
        self.names.add(f"{module}.{getattr(func, '__name__', type(func).__name__)}")
        return func(*args, **(kwargs or {}))


def dropout_outputs(
    factory: Callable[[float], nn.Module],
    p: float,
    inputs: Tensor,
    seed: int,
    modes: Sequence[bool] = (True,),
) -> dict[str, Any]:
    """Build ``factory(p)`` inside an ``nn.Sequential``, seed the global generator with ``seed``,
    then for each of ``modes`` set the container to training (``True``) or eval mode with
    ``.train()``/``.eval()``, as a model does, and run one forward pass of (a copy of)
    ``inputs`` without gradients.

    Returns:
        ``{"outputs": [tensor per mode], "input_after": the copy after the passes,
        "torch_functions": sorted names of the torch functions the passes called}``.
    """
    __tracebackhide__ = True  # a stub's error shows the student's line, not this one
    with one_thread():
        torch.manual_seed(seed)
        container = nn.Sequential(factory(p))
        given = inputs.clone()
        outputs = []
        with torch.no_grad(), _TorchCalls() as calls:
            for training in modes:
                container.train(training)
                outputs.append(container(given))
        return {"outputs": outputs, "input_after": given, "torch_functions": sorted(calls.names)}


def dropout_gradient(
    factory: Callable[[float], nn.Module],
    p: float,
    inputs: Tensor,
    grad_output: Tensor,
    seed: int,
) -> dict[str, Any]:
    """One training-mode forward of ``factory(p)`` on a leaf copy of ``inputs`` (global generator
    seeded with ``seed``), then ``output.backward(grad_output)`` when the output has a graph.

    Returns:
        ``{"output": tensor, "grad": the gradient that reached the input, None if none,
        "torch_functions": sorted names of the torch functions the forward pass called}``.
    """
    __tracebackhide__ = True  # a stub's error shows the student's line, not this one
    with one_thread():
        torch.manual_seed(seed)
        layer = factory(p)
        layer.train()
        leaf = inputs.clone().requires_grad_(True)
        with _TorchCalls() as calls:
            output = layer(leaf)
        if isinstance(output, Tensor) and output.requires_grad:
            output.backward(grad_output)
        return {"output": output, "grad": leaf.grad, "torch_functions": sorted(calls.names)}


# ---- augmentation ------------------------------------------------------------------------


def augment_outputs(
    augment: Callable[..., Tensor],
    images: Tensor,
    calls: Sequence[tuple[int | None, int]],
) -> dict[str, list[Tensor]]:
    """Call ``augment`` once per ``(generator_seed, global_seed)`` of ``calls``, each on a fresh
    copy of ``images``: the global generator is seeded with ``global_seed``, and ``augment`` gets
    ``generator=torch.Generator().manual_seed(generator_seed)``, or no generator when
    ``generator_seed`` is ``None``.

    Returns:
        ``{"outputs": [tensor per call], "inputs_after": [the copy after each call]}``.
    """
    __tracebackhide__ = True  # a stub's error shows the student's line, not this one
    with one_thread():
        outputs, inputs_after = [], []
        for generator_seed, global_seed in calls:
            torch.manual_seed(global_seed)
            given = images.clone()
            if generator_seed is None:
                outputs.append(augment(given))
            else:
                generator = torch.Generator().manual_seed(generator_seed)
                outputs.append(augment(given, generator=generator))
            inputs_after.append(given)
        return {"outputs": outputs, "inputs_after": inputs_after}


# ---- loaders -----------------------------------------------------------------------------


MARK = 2.0
""":func:`marking_transform` adds ``MARK + u`` to an image, ``u`` uniform in [0, 1) per image."""


def marking_transform(images: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """A stand-in augmentation whose work is visible: each image of the batch shifted by its own
    random constant in ``[MARK, MARK + 1)``, drawn from ``generator``."""
    shift = MARK + torch.rand((len(images), 1, 1, 1), generator=generator)
    return images + shift.to(images.dtype)


def _dataset(images: Tensor, labels: Tensor) -> ImageDataset:
    classes = tuple(f"class {k}" for k in range(int(labels.max()) + 1))
    return ImageDataset(images, labels, classes)


def loader_passes(
    make_loaders: Callable[..., tuple[Any, Any]],
    train_data: tuple[Tensor, Tensor],
    val_data: tuple[Tensor, Tensor],
    batch_size: int,
    augment: bool,
    epochs: int = 2,
    seed: int = 0,
) -> list[dict[str, list[tuple[Tensor, Tensor]]]]:
    """``make_loaders(train_set, val_set, batch_size, transform=..., seed=seed)`` with the
    datasets of ``(images, labels)`` pairs and ``transform`` :func:`marking_transform` when
    ``augment`` (else ``None``); then ``epochs`` passes over both loaders.

    Returns:
        One ``{"train": [(images, labels), ...], "val": [...]}`` per pass, the batches in the
        order the loaders yield them.
    """
    __tracebackhide__ = True  # a stub's error shows the student's line, not this one
    with one_thread():
        train_set, val_set = _dataset(*train_data), _dataset(*val_data)
        transform = marking_transform if augment else None
        train_loader, val_loader = make_loaders(
            train_set, val_set, batch_size, transform=transform, seed=seed
        )
        return [
            {
                "train": [(images, labels) for images, labels in train_loader],
                "val": [(images, labels) for images, labels in val_loader],
            }
            for _ in range(epochs)
        ]
