"""Probes of hw5_adam: an optimizer driven by the test's gradients, observed as data.

An optimizer cannot cross the grading boundary, but everything it does can: the test sends the
initial parameters and a sequence of gradients (tensors, some ``None``), :func:`run_optimizer`
builds the parameters, the optimizer (and a learning-rate scheduler) from them where the student's
code runs, feeds the gradients one step at a time, and returns the parameters after every step and
the optimizer's ``state_dict()``. The checker runs the same probe with ``torch.optim.Adam`` (or
``AdamW``, ``SGD``) on the same data itself and compares; a ``state_dict`` (data) travels in both
directions to check that the two optimizers can continue each other's runs.

A student's optimizer must not hand the work to PyTorch's. :data:`TORCH_IMPLEMENTATIONS` lists
PyTorch's implementations by name, for the tests to forbid while the student's code runs
(``student.forbidding``); with ``watch=True`` a probe also reports every such implementation that
ran during the probe (``"borrowed"``), however it was reached (a reference captured before the
test, a subclass, a fused kernel), observed with a profile hook, and PyTorch's implementations
refuse to run at all while it watches (the Python functions' code is swapped for one that
raises, the fused kernels' dispatcher entries too), even from a thread the profile hook does
not see.
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import inspect
import math
import sys
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from hw_utils.boundary.data import NotDataError, to_data
from hw_utils.references import course_reference

SCHEDULERS = (
    "ConstantLR",
    "CosineAnnealingLR",
    "ExponentialLR",
    "LinearLR",
    "MultiStepLR",
    "PolynomialLR",
    "StepLR",
)
"""The ``torch.optim.lr_scheduler`` classes :func:`run_optimizer` can attach, by name."""

TORCH_IMPLEMENTATIONS: tuple[str, ...] = (
    "torch.optim.Adam",
    "torch.optim.AdamW",
    "torch.optim.SGD",
    "torch.optim.adam.Adam",
    "torch.optim.adam.adam",
    "torch.optim.adam._single_tensor_adam",
    "torch.optim.adam._multi_tensor_adam",
    "torch.optim.adam._fused_adam",
    "torch.optim.adamw.Adam",
    "torch.optim.adamw.AdamW",
    "torch.optim.adamw.adam",
    "torch.optim.adamw.adamw",
    "torch.optim.sgd.SGD",
    "torch.optim.sgd.sgd",
    "torch.optim.sgd._single_tensor_sgd",
    "torch.optim.sgd._multi_tensor_sgd",
    "torch.optim.sgd._fused_sgd",
    "torch.optim._functional.adam",
    "torch.optim._functional.adamw",
    "torch.optim._functional.sgd",
    "torch._fused_adam_",
    "torch._fused_adamw_",
    "torch._fused_sgd_",
)
"""PyTorch's Adam, AdamW and SGD (classes, functional forms, kernels) under every public or
private name they have in this version of PyTorch (names it lacks are left out): what a
student's optimizer must not call while the tests watch."""


ALLOWED_OPTIM_MODULES = ("torch.optim", "torch.optim.optimizer", "torch.optim.lr_scheduler")
"""Modules of ``torch.optim`` whose code an optimizer of one's own runs honestly (the base class,
the schedulers); code of every other module of ``torch.optim`` is an optimizer of PyTorch's."""

FUSED_KERNELS = ("_fused_adam", "_fused_sgd")
"""Name prefixes of PyTorch's fused optimizer kernels (``torch._fused_adamw_``...)."""


PYTHON_IMPLEMENTATIONS = (
    "torch.optim.adam._single_tensor_adam",
    "torch.optim.adam._multi_tensor_adam",
    "torch.optim.adam._fused_adam",
    "torch.optim.sgd._single_tensor_sgd",
    "torch.optim.sgd._multi_tensor_sgd",
    "torch.optim.sgd._fused_sgd",
)
"""The Python functions that do the arithmetic of PyTorch's Adam, AdamW and SGD (every public
entry point ends in one of them)."""


def _refuse(*args: Any, **kwargs: Any) -> None:
    raise RuntimeError(
        "PyTorch's own optimizer ran inside yours, which these tests do not allow: write the "
        "update yourself."
    )


def _implementation(path: str) -> Any:
    module_name, _, name = path.rpartition(".")
    function = getattr(importlib.import_module(module_name), name, None)
    return function if inspect.isfunction(function) and not function.__code__.co_freevars else None


# The function objects themselves, found when this module is imported (before a test replaces
# the names with stubs): a reference a student captured is one of these objects.
_IMPLEMENTATIONS = tuple(
    f for f in (_implementation(path) for path in PYTHON_IMPLEMENTATIONS) if f is not None
)


# PyTorch's fused optimizer kernels as operators of its dispatcher (``_fused_adam_``,
# ``_fused_adamw.out``...): every way of calling one (``torch._fused_adam_``, ``torch.ops.aten``,
# a reference captured before the test, from any thread) ends in the dispatcher's entry.
_FUSED_OPERATORS = tuple(
    sorted(
        name.removeprefix("aten::")
        for name in torch._C._dispatch_get_all_op_names()
        if name.removeprefix("aten::").startswith(FUSED_KERNELS)
    )
)


@contextlib.contextmanager
def _disarmed() -> Iterator[None]:
    """Inside the block, PyTorch's optimizer implementations raise instead of computing, under
    any name and in any thread: the Python function objects themselves run :func:`_refuse`'s
    code, and the fused kernels' dispatcher entries for CPU and CUDA tensors are
    :func:`_refuse` (the original kernels come back when the overriding library is destroyed)."""
    swapped = [(function, function.__code__) for function in _IMPLEMENTATIONS]
    kernels = torch.library.Library("aten", "IMPL")
    try:
        for function, _ in swapped:
            function.__code__ = _refuse.__code__
        for operator in _FUSED_OPERATORS:
            for device in ("CPU", "CUDA"):
                kernels.impl(operator, _refuse, device)
        yield
    finally:
        kernels._destroy()
        for function, code in swapped:
            function.__code__ = code


@contextlib.contextmanager
def _watching(borrowed: set[str]) -> Iterator[None]:
    """Inside the block, add to ``borrowed`` the name of every PyTorch optimizer implementation
    that runs (Python functions of ``torch.optim`` outside :data:`ALLOWED_OPTIM_MODULES`, and
    the fused kernels), in this thread and in threads started meanwhile."""

    def hook(frame: Any, event: str, arg: Any) -> None:
        if event == "call":
            module = frame.f_globals.get("__name__") or ""
            if module.startswith("torch.optim.") and module not in ALLOWED_OPTIM_MODULES:
                borrowed.add(f"{module}.{frame.f_code.co_qualname}")
        elif event == "c_call":
            name = getattr(arg, "__name__", "") or ""
            if name.startswith(FUSED_KERNELS):
                borrowed.add(f"torch.{name}")

    previous, previous_threads = sys.getprofile(), threading.getprofile()
    sys.setprofile(hook)
    threading.setprofile(hook)
    try:
        with _disarmed():
            yield
    finally:
        sys.setprofile(previous)
        threading.setprofile(previous_threads)


def _exists(path: str) -> bool:
    module_name, _, attribute = path.rpartition(".")
    try:
        return hasattr(importlib.import_module(module_name), attribute)
    except ImportError:
        return False


TORCH_IMPLEMENTATIONS = tuple(path for path in TORCH_IMPLEMENTATIONS if _exists(path))


def _parameters(params: Sequence[Any]) -> tuple[list[Any], list[nn.Parameter]]:
    """``(what the optimizer gets, every parameter in order)`` from tensors or groups of them.

    ``params`` is a list of tensors (one group) or of dicts ``{"params": [tensors], **options}``
    (param groups); every tensor becomes a fresh ``nn.Parameter``.
    """
    if all(isinstance(p, Tensor) for p in params):
        flat = [nn.Parameter(p.detach().clone()) for p in params]
        return flat, flat
    groups: list[dict[str, Any]] = []
    flat = []
    for group in params:
        members = [nn.Parameter(p.detach().clone()) for p in group["params"]]
        flat += members
        groups.append({**group, "params": members})
    return groups, flat


def _scheduler(optimizer: Any, spec: tuple[str, dict[str, Any]] | None) -> Any:
    if spec is None:
        return None
    name, kwargs = spec
    if name not in SCHEDULERS:
        raise ValueError(f"run_optimizer: unknown scheduler {name!r}; one of {SCHEDULERS}.")
    return getattr(torch.optim.lr_scheduler, name)(optimizer, **kwargs)


def _closure(flat: list[nn.Parameter], grads: Sequence[Tensor | None], calls: list[int]):
    """A closure that, like a real one, recomputes a loss whose gradient is ``grads``: the loss
    ``sum_i <p_i, g_i>`` over the parameters with a gradient, backpropagated."""

    def closure() -> Tensor:
        calls[-1] += 1
        for p in flat:
            p.grad = None
        loss = torch.zeros((), dtype=flat[0].dtype)
        for p, g in zip(flat, grads, strict=True):
            if g is not None:
                loss = loss + (p * g).sum()
        if loss.requires_grad:
            loss.backward()
        return loss

    return closure


def _as_data(value: Any, what: str) -> Any:
    """``value`` as data, or ``{"not_data": message}`` (so the other observations still come
    back when, say, only the state dict holds an object)."""
    try:
        return to_data(value, what)
    except NotDataError as error:
        return {"not_data": str(error)}


def run_optimizer(
    optimizer_class: Callable[..., torch.optim.Optimizer],
    params: Sequence[Any],
    grads: Sequence[Sequence[Tensor | None]],
    kwargs: dict[str, Any] | None = None,
    *,
    scheduler: tuple[str, dict[str, Any]] | None = None,
    set_lr: dict[int, Sequence[float]] | None = None,
    closure: bool = False,
    state_dict: dict[str, Any] | None = None,
    as_iterator: bool = False,
    watch: bool = False,
) -> dict[str, Any]:
    """Build ``optimizer_class(params, **kwargs)`` and take one step per entry of ``grads``.

    Args:
        optimizer_class: the optimizer (the student's class, or ``torch.optim.Adam``...).
        params: the initial parameters: a list of tensors (one group), or a list of param
            groups ``{"params": [tensors], "lr": ..., ...}``. They become fresh parameters.
        grads: one list per step with one gradient per parameter (in the order of ``params``,
            group after group); ``None`` leaves that parameter without a gradient for the step.
        kwargs: keyword arguments of the constructor (``lr``, ``betas``...).
        scheduler: ``(name, kwargs)`` of a ``torch.optim.lr_scheduler`` class in
            :data:`SCHEDULERS`, stepped after every optimizer step.
        set_lr: ``{step index: [lr of each group]}``, written into ``param_groups`` before that
            step (what ``ReduceLROnPlateau`` or a hand-made schedule does).
        closure: step with ``optimizer.step(closure)``, a closure that computes a loss whose
            gradients are the step's ``grads`` (before the call every gradient is ``None``).
        state_dict: loaded (a copy of it) with ``optimizer.load_state_dict`` right after
            construction.
        as_iterator: pass the parameters (or groups) as an iterator, as ``model.parameters()``
            does, instead of a list.
        watch: report the PyTorch optimizer implementations that ran (see the module).

    Returns:
        ``{"params": [[each parameter after step k] for each step], "lrs": [[lr of each group
        before step k]], "losses": [what step() returned, a float or None], "closure_calls":
        [calls of the closure in step k], "state_dict": optimizer.state_dict() at the end,
        "borrowed": [sorted names of PyTorch's implementations that ran; empty unless
        watch]}``; a state dict that is not data comes back as ``{"not_data": message}``.
    """
    __tracebackhide__ = True  # a student's traceback goes from the test to their own code
    given, flat = _parameters(params)
    trajectory: list[list[Tensor]] = []
    lrs: list[list[float]] = []
    losses: list[Any] = []
    calls: list[int] = []
    borrowed: set[str] = set()
    watcher = _watching(borrowed) if watch else contextlib.nullcontext()
    # warnings: a scheduler's advice on stderr would zero a test cell
    with watcher, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        optimizer = optimizer_class(iter(given) if as_iterator else given, **(kwargs or {}))
        if state_dict is not None:  # a copy: loading may keep the given tensors as the state
            optimizer.load_state_dict(copy.deepcopy(state_dict))
        schedule = _scheduler(optimizer, scheduler)
        for index, step_grads in enumerate(grads):
            if set_lr and index in set_lr:
                for group, lr in zip(optimizer.param_groups, set_lr[index], strict=True):
                    group["lr"] = lr
            lrs.append([float(group["lr"]) for group in optimizer.param_groups])
            calls.append(0)
            if closure:
                for p in flat:
                    p.grad = None
                result = optimizer.step(_closure(flat, step_grads, calls))
            else:
                for p, g in zip(flat, step_grads, strict=True):
                    p.grad = None if g is None else g.detach().clone()
                result = optimizer.step()
            losses.append(float(result) if isinstance(result, Tensor | float | int) else None)
            trajectory.append([p.detach().clone() for p in flat])
            if schedule is not None:
                schedule.step()
        saved = _as_data(optimizer.state_dict(), "the optimizer's state_dict()")
    return {
        "params": trajectory,
        "lrs": lrs,
        "losses": losses,
        "closure_calls": calls,
        "state_dict": saved,
        "borrowed": sorted(borrowed),
    }


def construct(
    optimizer_class: Callable[..., torch.optim.Optimizer],
    params: Sequence[Any],
    kwargs: dict[str, Any],
    *,
    watch: bool = False,
) -> dict[str, Any]:
    """Build ``optimizer_class(params, **kwargs)`` (e.g. with a bad hyper-parameter) and report
    what happened, an exception included.

    Returns:
        ``{"raised": the names of the exception's classes, most derived first ([] when the
        constructor returned), "message": its message, "borrowed": PyTorch optimizer
        implementations that ran, as in run_optimizer}``.
    """
    __tracebackhide__ = True
    given, _ = _parameters(params)
    borrowed: set[str] = set()
    raised: list[str] = []
    message = ""
    with _watching(borrowed) if watch else contextlib.nullcontext(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            optimizer_class(given, **kwargs)
        except NotImplementedError:
            raise  # an untouched stub stops the test with its own message
        except Exception as error:
            raised = [kind.__name__ for kind in type(error).__mro__]
            message = str(error)
    return {"raised": raised, "message": message, "borrowed": sorted(borrowed)}


def call_in_place(
    function: Callable[..., Any],
    tensors: Sequence[Tensor],
    kwargs: dict[str, Any],
    *,
    watch: bool = False,
) -> dict[str, Any]:
    """``function(*copies_of_tensors, **kwargs)``, for a function that updates its tensor
    arguments in place.

    Returns:
        ``{"tensors": the copies after the call, "returned": type name of the return value,
        "borrowed": PyTorch optimizer implementations that ran, as in run_optimizer}``.
    """
    __tracebackhide__ = True
    copies = [t.detach().clone() for t in tensors]
    borrowed: set[str] = set()
    with _watching(borrowed) if watch else contextlib.nullcontext():
        returned = function(*copies, **kwargs)
    return {"tensors": copies, "returned": type(returned).__name__, "borrowed": sorted(borrowed)}


@course_reference("adam_update")
def adam_update(
    param: Tensor,
    grad: Tensor,
    exp_avg: Tensor,
    exp_avg_sq: Tensor,
    step: int,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
) -> None:
    """The course's ``adam_update``: one Adam update of ``param``, ``exp_avg`` and
    ``exp_avg_sq`` in place (a correct stand-in, so the optimizer classes are tested alone).

    ``step`` is the number of this update, counting from 1 (an int, a float or a 0-d tensor).
    """
    step = float(step)
    exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)
    exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    denominator = (exp_avg_sq.sqrt() / math.sqrt(1 - beta2**step)).add_(eps)
    param.addcdiv_(exp_avg, denominator, value=-lr / (1 - beta1**step))
