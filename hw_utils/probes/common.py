"""Probes that several assignments use (see :mod:`hw_utils.probes`)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from hw_utils.boundary.calls import ForbiddenCallError
from hw_utils.boundary.data import (
    BoundaryError,
    NotDataError,
    error_from_data,
    error_to_data,
    to_data,
)
from hw_utils.checks import CheckFailed


class one_thread:  # a context manager and a decorator, named like a function
    """torch on one thread inside the block (or the decorated function): the tensors of tests
    are tiny, so more threads only add overhead, and they stall badly when the cores are busy
    (as when notebooks are graded side by side). The thread count is restored afterwards."""

    def __enter__(self) -> None:
        self._threads = torch.get_num_threads()
        torch.set_num_threads(1)

    def __exit__(self, *exc: object) -> None:
        torch.set_num_threads(self._threads)

    def __call__(self, function: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(function)
        def single_threaded(*args: Any, **kwargs: Any) -> Any:
            __tracebackhide__ = True  # a student's traceback skips this wrapper
            with one_thread():  # a fresh one per call: calls may nest
                return function(*args, **kwargs)

        return single_threaded


def _build(factory: Callable[..., Any], args: Sequence[Any], kwargs: dict[str, Any], seed: int):
    # Probes that only forward to the student's code hide their frames (as the boundary does):
    # a student's traceback goes from the test cell straight into their own code.
    __tracebackhide__ = True
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
    __tracebackhide__ = True
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
    __tracebackhide__ = True
    module = _build(factory, args, kwargs, seed)
    if state_dict is not None:
        module.load_state_dict(state_dict)
    if dtype is not None:
        module = module.to(dtype)
    module.train(train)
    with torch.no_grad():
        outputs = [module(x) for x in inputs]
    return {"outputs": outputs, "state_dict": dict(module.state_dict())}


def call_each(
    function: Callable[..., Any], calls: Sequence[tuple[Sequence[Any], dict[str, Any]]]
) -> list[dict[str, Any]]:
    """``function(*args, **kwargs)`` for each ``(args, kwargs)`` of ``calls``, one after the
    other: one boundary call for a test that needs many small results (sizes for 200 shapes).

    Returns:
        One entry per call: ``{"value": the result as data}``, or ``{"error": the exception as
        data}`` when the call raised (or returned something that is not data); replay an entry
        on the tests' side with :func:`outcome`.
    """
    entries = []
    for args, kwargs in calls:
        try:
            entries.append({"value": to_data(function(*args, **kwargs), "the value returned")})
        except Exception as error:  # the test decides what an error means
            entries.append({"error": error_to_data(error)})
    return entries


_KNOWN_ERRORS = {  # as across the boundary: these come back as themselves
    f"{kind.__module__}.{kind.__qualname__}": kind
    for kind in (CheckFailed, ForbiddenCallError, NotDataError, BoundaryError)
}


def outcome(entry: dict[str, Any]) -> Any:
    """The value of one :func:`call_each` entry, or its exception raised here (as the nearest
    builtin exception with the same message, like an error across the boundary)."""
    if "error" in entry:
        raise error_from_data(entry["error"], _KNOWN_ERRORS)
    return entry["value"]


def build_layers(spec: Any) -> nn.Module:
    """The module that ``spec`` describes, as data: a tuple ``("Conv2d", args, kwargs)`` is
    ``nn.Conv2d(*args, **kwargs)`` (any layer class of ``torch.nn``), a list of specs an
    ``nn.Sequential`` of them (nested lists nest)::

        [("Conv2d", (3, 4, 3), {"bias": False}), [("Flatten", (), {}), ("Linear", (4, 2), {})]]
    """
    if isinstance(spec, list):
        return nn.Sequential(*(build_layers(item) for item in spec))
    name, args, kwargs = spec
    layer = getattr(nn, name, None)
    if not (isinstance(layer, type) and issubclass(layer, nn.Module)):
        raise ValueError(f"build_layers: {name!r} is not a layer of torch.nn.")
    return layer(*args, **kwargs)
