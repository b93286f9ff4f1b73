"""Probes of hw4_batchnorm: what the student's batch norm does to the tensors it is given.

``batchnorm_forward`` updates the running statistics *in place*, and a test's arguments reach the
student's code as copies, so a test cannot see those changes itself: :func:`forward_calls` makes
the tensors where the student's code runs, calls it, and returns the outputs together with the
running statistics after every call. :func:`backward_call` calls ``batchnorm_backward``, and
:func:`module_script` builds a ``BatchNorm2d`` class and runs a script of training and evaluation
passes, backward passes and conversions, returning what it saw at each step. They are plain
functions of their arguments, so the checker runs the same probe on PyTorch's own layer and
compares.

While a probe runs the student's code, PyTorch's own normalisation kernels (aten operators named
``*batch_norm*``, ``*layer_norm*``, ``*group_norm*``, ``*instance_norm*``, however they are
reached: ``F.batch_norm``, ``nn.BatchNorm2d``, ``torch.ops.aten``, TorchScript, a thread that was
started before...) raise :class:`LibraryNormError`, and so does starting a thread;
:func:`backward_call` also refuses autograd (an operator on a tensor that requires gradients, a
graph that saves one, autograd's backward engine, forward-mode AD): the assignment is to write
both passes by hand.
"""

from __future__ import annotations

import _thread
import contextlib
import functools
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils._python_dispatch import TorchDispatchMode

from hw_utils.references import course_reference

__all__ = [
    "STATE_NAMES",
    "LibraryNormError",
    "backward_call",
    "batchnorm_forward_by_formula",
    "forward_calls",
    "module_script",
]

STATE_NAMES = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
"""The attributes of a batch-norm layer that :func:`module_script` reports."""

NORM_KERNELS = ("batch_norm", "layer_norm", "group_norm", "instance_norm")
"""Parts of the names of PyTorch's normalisation operators, refused while a probe watches."""


class LibraryNormError(RuntimeError):
    """The student's code called one of PyTorch's normalisation kernels (or autograd) where the
    assignment asks for the computation by hand."""


class _Watch(TorchDispatchMode):
    """Every aten operator passes, except PyTorch's normalisation kernels and, when autograd is
    refused, operators on tensors that require gradients. A dispatch mode sees every operator
    however it is reached (``F.batch_norm``, ``torch.ops.aten``, TorchScript, code that turns
    off torch-function modes)."""

    def __init__(self, function: str, *, autograd: bool) -> None:
        super().__init__()
        self.function = function
        self.autograd = autograd

    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        return False  # no torch.compile here; skipping it would import torch._dynamo (seconds)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = func.__name__
        if any(kernel in name for kernel in NORM_KERNELS):
            raise LibraryNormError(_NORM_MESSAGE.format(self.function, name))
        if not self.autograd and any(
            isinstance(value, Tensor) and value.requires_grad for value in (*args, *kwargs.values())
        ):
            raise LibraryNormError(_AUTOGRAD_MESSAGE.format(self.function))
        return func(*args, **kwargs)


_NORM_MESSAGE = (
    "{} used PyTorch's normalisation ({}, e.g. via F.batch_norm or nn.BatchNorm2d): compute it "
    "yourself from the mean, the variance and arithmetic."
)
_AUTOGRAD_MESSAGE = (
    "{} used autograd (it built a graph to differentiate): derive the gradient by hand and "
    "compute it with tensor arithmetic."
)


def _refuse_autograd(function: str) -> Callable[[Tensor], Any]:
    def pack(tensor: Tensor) -> Any:
        raise LibraryNormError(_AUTOGRAD_MESSAGE.format(function))

    return pack


class _RefusingEngine:
    """Stands in for autograd's engine: running a backward pass (``torch.autograd.grad``,
    ``Tensor.backward``, ``torch.func.vjp``...) raises."""

    def __init__(self, function: str) -> None:
        self.function = function

    def __getattr__(self, name: str) -> Any:
        raise LibraryNormError(_AUTOGRAD_MESSAGE.format(self.function))


@contextlib.contextmanager
def _no_autograd_anywhere(function: str) -> Iterator[None]:
    """Autograd's backward engine and forward-mode AD's dual levels (``torch.func.jvp``,
    ``torch.autograd.forward_ad``) raise meanwhile, in every thread: the saved-tensor hook and
    the dispatch mode see reverse mode in the calling thread only, and forward mode not at all
    (its tangents are computed above the dispatch mode)."""
    from torch._functorch import predispatch
    from torch.autograd.variable import Variable

    def refuse_dual_level(*args: Any, **kwargs: Any) -> Any:
        raise LibraryNormError(_AUTOGRAD_MESSAGE.format(function))

    engine, enter_dual_level = Variable._execution_engine, predispatch._enter_dual_level
    Variable._execution_engine = _RefusingEngine(function)
    predispatch._enter_dual_level = refuse_dual_level
    try:
        yield
    finally:
        Variable._execution_engine = engine
        predispatch._enter_dual_level = enter_dual_level


def _refuse_threads(*args: Any, **kwargs: Any) -> Any:
    raise LibraryNormError(
        "the code under test started a thread: batch norm needs none (and the tests watch "
        "only the calling thread)."
    )


_THREAD_STARTERS = [
    (module, name)
    for module, names in (
        (threading.Thread, ("start",)),
        (threading, ("_start_new_thread", "_start_joinable_thread")),
        (_thread, ("start_new_thread", "start_joinable_thread")),
    )
    for name in names
    if hasattr(module, name)
]


@contextlib.contextmanager
def _no_new_threads() -> Iterator[None]:
    """Starting a thread raises meanwhile (a new thread would run outside the watch)."""
    saved = [(owner, name, getattr(owner, name)) for owner, name in _THREAD_STARTERS]
    for owner, name, _ in saved:
        setattr(owner, name, _refuse_threads)
    try:
        yield
    finally:
        for owner, name, original in saved:
            setattr(owner, name, original)


KERNEL_KEYS = ("CPU", "CUDA")
"""The dispatch keys at which :func:`_no_norm_kernels` replaces PyTorch's normalisation kernels."""


@functools.cache
def _norm_operators() -> tuple[str, ...]:
    """Every aten operator (``name.overload``) whose name contains one of NORM_KERNELS."""
    return tuple(
        name.removeprefix("aten::")
        for name in torch._C._dispatch_get_all_op_names()
        if name.startswith("aten::") and any(kernel in name for kernel in NORM_KERNELS)
    )


@contextlib.contextmanager
def _no_norm_kernels(function: str) -> Iterator[None]:
    """PyTorch's normalisation kernels raise meanwhile, *in every thread*: the dispatch mode of
    :class:`_Watch` is per thread, and a thread started before the probe (a pool's worker) or
    code that pops the mode off its thread's stack would not meet it. Registered for the
    process (``torch.library``), removed afterwards."""

    def refusing(name: str) -> Callable[..., Any]:
        def refuse(*args: Any, **kwargs: Any) -> Any:
            raise LibraryNormError(_NORM_MESSAGE.format(function, name))

        return refuse

    library = torch.library.Library("aten", "IMPL")
    try:
        for name in _norm_operators():
            for key in KERNEL_KEYS:
                with contextlib.suppress(RuntimeError):  # no such key in this build of PyTorch
                    library.impl(name, refusing(name), key)
        yield
    finally:
        library._destroy()


@contextlib.contextmanager
def _watched(function: str, *, autograd: bool = True) -> Iterator[None]:
    with contextlib.ExitStack() as stack:
        stack.enter_context(_no_new_threads())
        stack.enter_context(_no_norm_kernels(function))
        if not autograd:
            stack.enter_context(_no_autograd_anywhere(function))
            stack.enter_context(
                torch.autograd.graph.saved_tensors_hooks(_refuse_autograd(function), lambda t: t)
            )
        stack.enter_context(_Watch(function, autograd=autograd))
        yield


def _channel_view(values: Tensor, x: Tensor) -> Tensor:
    """A ``(C,)`` tensor shaped to broadcast against ``(N, C)`` or ``(N, C, H, W)``."""
    return values.reshape(1, -1, *([1] * (x.dim() - 2)))


@course_reference("batchnorm_forward")
def batchnorm_forward_by_formula(
    x: Tensor,
    gamma: Tensor,
    beta: Tensor,
    running_mean: Tensor,
    running_var: Tensor,
    training: bool,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    """Batch norm with PyTorch's conventions and the signature of hw4's ``batchnorm_forward``,
    written out (no library kernel): the tests stand it in for the student's function while they
    test ``BatchNorm2d``. ``x`` is ``(N, C)`` or ``(N, C, H, W)``; the running statistics
    ``(C,)`` are updated in place in training mode (unbiased variance over the ``N*H*W`` values
    of a channel)."""
    dims = (0,) if x.dim() == 2 else (0, 2, 3)
    if training:
        count = x.numel() // x.shape[1]
        mean = x.mean(dim=dims)
        var = x.var(dim=dims, correction=0)
        with torch.no_grad():
            running_mean.mul_(1 - momentum).add_(momentum * mean)
            running_var.mul_(1 - momentum).add_(momentum * var * count / (count - 1))
    else:
        mean, var = running_mean, running_var
    x_hat = (x - _channel_view(mean, x)) / torch.sqrt(_channel_view(var, x) + eps)
    return _channel_view(gamma, x) * x_hat + _channel_view(beta, x)


def forward_calls(
    forward: Callable[..., Any],
    batches: Sequence[Tensor],
    gamma: Tensor,
    beta: Tensor,
    running_mean: Tensor,
    running_var: Tensor,
    training: bool,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> dict[str, Any]:
    """Call ``forward(x, gamma, beta, running_mean, running_var, training, momentum=...,
    eps=...)`` once per ``x`` of ``batches``, with autograd recording, on running statistics
    made here (copies of the given ones, shared by the calls).

    Returns:
        ``{"outputs": [what each call returned], "running_mean": [tensor after each call],
        "running_var": [...], "inputs_after": [each x, gamma, beta after the last call]}``.
    """
    __tracebackhide__ = True  # a student's traceback shows their code, not the probe
    mean, var = running_mean.clone(), running_var.clone()
    inputs = [x.clone() for x in batches]
    gamma, beta = gamma.clone(), beta.clone()
    outputs, means, variances = [], [], []
    for x in inputs:
        with torch.enable_grad(), _watched("batchnorm_forward"):
            outputs.append(forward(x, gamma, beta, mean, var, training, momentum=momentum, eps=eps))
        means.append(mean.clone())
        variances.append(var.clone())
    return {
        "outputs": outputs,
        "running_mean": means,
        "running_var": variances,
        "inputs_after": [*inputs, gamma, beta],
    }


def backward_call(
    backward: Callable[..., Any], grad_out: Tensor, x: Tensor, gamma: Tensor, eps: float = 1e-5
) -> Any:
    """``backward(grad_out, x, gamma, eps=eps)``: what it returns, computed without PyTorch's
    normalisation kernels and without autograd."""
    __tracebackhide__ = True  # a student's traceback shows their code, not the probe
    with _watched("batchnorm_backward", autograd=False):
        return backward(grad_out.clone(), x.clone(), gamma.clone(), eps=eps)


@contextlib.contextmanager
def _default_dtype(dtype: torch.dtype | None) -> Iterator[None]:
    saved = torch.get_default_dtype()
    if dtype is not None:
        torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(saved)


def _snapshot(value: Any) -> Any:
    """A copy of a tensor as it is now (a module's tensors change in place later)."""
    return value.detach().clone() if isinstance(value, Tensor) else value


def _tensor_attributes(module: nn.Module) -> dict[str, Tensor | None]:
    """Copies of the layer's tensors under the names of :data:`STATE_NAMES`, however they are
    stored (parameter, buffer or plain attribute); ``None`` when missing or not a tensor."""
    found = {}
    for name in STATE_NAMES:
        value = getattr(module, name, None)
        found[name] = _snapshot(value) if isinstance(value, Tensor) else None
    return found


def _observe(module: nn.Module) -> dict[str, Any]:
    return {
        "state_dict": {key: _snapshot(value) for key, value in module.state_dict().items()},
        "attributes": _tensor_attributes(module),
        "parameters": [name for name, _ in module.named_parameters()],
        "buffers": [name for name, _ in module.named_buffers()],
    }


def _set_tensors(module: nn.Module, values: dict[str, Tensor]) -> None:
    with torch.no_grad():
        for name, value in values.items():
            target = getattr(module, name, None)
            if not isinstance(target, Tensor):
                raise AttributeError(
                    f"the layer has no tensor attribute {name!r}: keep the names weight, bias, "
                    "running_mean and running_var."
                )
            target.copy_(value)


def _step(module: nn.Module, step: Sequence[Any]) -> tuple[nn.Module, dict[str, Any]]:
    __tracebackhide__ = True  # a student's traceback shows their code, not the probe
    kind = step[0]
    observation: dict[str, Any] = {"step": kind}
    if kind in ("train", "eval"):
        module.train(kind == "train")
        with torch.no_grad():
            observation["output"] = module(step[1].clone())
    elif kind == "backward":
        _, mode, x, grad_out = step
        module.train(mode == "train")
        module.zero_grad(set_to_none=True)
        x = x.clone().requires_grad_(True)
        with torch.enable_grad():
            out = module(x)
            (out * grad_out).sum().backward()  # out.backward(grad_out) would import sympy
        observation["output"] = out
        observation["grad_x"] = x.grad
        observation["grads"] = {name: _snapshot(p.grad) for name, p in module.named_parameters()}
    elif kind == "to":
        module = module.to(step[1])
    elif kind == "load":
        module.load_state_dict(step[1])
    else:
        raise ValueError(f"module_script: unknown step {kind!r}")
    return module, observation


def module_script(
    factory: Callable[..., nn.Module],
    args: Sequence[Any],
    kwargs: dict[str, Any],
    script: Sequence[tuple],
    *,
    seed: int = 0,
    default_dtype: torch.dtype | None = None,
    initial: dict[str, Tensor] | None = None,
    library_allowed: bool = False,
) -> list[dict[str, Any]]:
    """Build ``factory(*args, **kwargs)`` (global seed ``seed``, with ``default_dtype`` as
    torch's default dtype while it is built), copy ``initial`` into its tensors of the same
    names (e.g. ``{"weight": ..., "running_var": ...}``), then run ``script`` step by step,
    refusing PyTorch's normalisation kernels unless ``library_allowed`` (the checker's run of
    ``nn.BatchNorm2d``):

    - ``("train", x)`` / ``("eval", x)``: ``train()`` / ``eval()``, then ``out = layer(x)``
      without gradients;
    - ``("backward", mode, x, grad_out)``: as above in ``mode`` (``"train"`` or ``"eval"``) but
      with autograd, then the backward pass of ``(out * grad_out).sum()`` (``grad_out`` is
      dL/d(out));
    - ``("to", dtype)``: ``layer.to(dtype)``;
    - ``("load", state_dict)``: ``layer.load_state_dict(state_dict)`` (strict).

    Returns:
        One observation per step, preceded by one of the new layer: ``{"step": kind, "class":
        [the classes of the layer's type, most derived first, as "module.qualname"],
        "state_dict": {...}, "attributes": {name: tensor or None} for :data:`STATE_NAMES`,
        "parameters": [names], "buffers": [names]}``, plus ``"output"`` for passes and
        ``"grad_x"`` and ``"grads"`` (parameter name -> gradient or ``None``) for backward
        steps.
    """
    __tracebackhide__ = True  # a student's traceback shows their code, not the probe
    watch = contextlib.nullcontext() if library_allowed else _watched("BatchNorm2d")
    with watch:
        torch.manual_seed(seed)
        with _default_dtype(default_dtype):
            module = factory(*args, **kwargs)
        if not isinstance(module, nn.Module):
            raise TypeError(f"the layer is a {type(module).__name__}, expected an nn.Module.")
        if initial:
            _set_tensors(module, initial)
        classes = [f"{kind.__module__}.{kind.__qualname__}" for kind in type(module).__mro__]
        observations = [{"step": "new", "class": classes, **_observe(module)}]
        for step in script:
            module, observation = _step(module, step)
            observation.update(_observe(module))
            observations.append(observation)
    return observations
