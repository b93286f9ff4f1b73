"""Probes that several assignments use (see :mod:`hw_utils.probes`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn


def _build(factory: Callable[..., Any], args: Sequence[Any], kwargs: dict[str, Any], seed: int):
    torch.manual_seed(seed)
    return factory(*args, **kwargs)


def module_state(
    factory: Callable[..., nn.Module],
    args: Sequence[Any] = (),
    kwargs: dict[str, Any] | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """What a freshly built ``factory(*args, **kwargs)`` (global seed ``seed``) holds.

    Returns:
        ``{"class": type name, "is_module": bool, "parameters": {name: tensor},
        "parameter_classes": {name: type name}, "attributes": {name: tensor}, "buffers":
        {name: tensor}, "state_dict": {key: tensor}}``; ``attributes`` are the tensors and
        ``None`` values set directly on the module (e.g. ``bias = None``), by attribute name.
    """
    module = _build(factory, args, kwargs or {}, seed)
    if not isinstance(module, nn.Module):
        return {"class": type(module).__name__, "is_module": False}
    attributes = {
        name: value
        for name, value in vars(module).items()
        if not name.startswith("_") and (value is None or isinstance(value, torch.Tensor))
    }
    attributes.update(
        {name: value for name, value in module._parameters.items() if "." not in name}
    )
    return {
        "class": type(module).__name__,
        "is_module": True,
        "parameters": dict(module.named_parameters()),
        "parameter_classes": {
            name: type(p).__name__ for name, p in module.named_parameters(recurse=False)
        },
        "attributes": attributes,
        "buffers": dict(module.named_buffers()),
        "state_dict": dict(module.state_dict()),
    }


def module_forward(
    factory: Callable[..., nn.Module],
    args: Sequence[Any],
    kwargs: dict[str, Any],
    inputs: Sequence[torch.Tensor],
    seed: int = 0,
    *,
    dtype: torch.dtype | None = None,
    train: bool = True,
    state_dict: dict[str, torch.Tensor] | None = None,
) -> dict[str, Any]:
    """Build ``factory(*args, **kwargs)`` (seed ``seed``), optionally load ``state_dict`` and
    convert to ``dtype``, then run ``module(x)`` for each ``x`` of ``inputs`` in training mode
    (``train``) or eval mode, without gradients.

    Returns:
        ``{"outputs": [tensor, ...], "state_dict": {...} after the passes}``.
    """
    module = _build(factory, args, kwargs, seed)
    if state_dict is not None:
        module.load_state_dict(state_dict)
    if dtype is not None:
        module = module.to(dtype)
    module.train(train)
    with torch.no_grad():
        outputs = [module(x) for x in inputs]
    return {"outputs": outputs, "state_dict": dict(module.state_dict())}
