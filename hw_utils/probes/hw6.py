"""Probes of hw6 (transfer learning): a backbone with a head ``model.fc``, built from a state the
test sends, passed through the student's functions, then trained and observed.

The checker computes what the observations must be with the course's references
(:mod:`hw_utils.transfer`) on fresh models of its own (:func:`build`, :func:`load`).
:func:`random_state` makes the states the tests send: random weights *and* random batch-norm
statistics, so that every tensor that must not move is recognisable.

The observations read the model's tensors directly from its modules (:func:`tensors`), never
through methods the student's code could have replaced on the model (``state_dict``,
``named_parameters``); the training loop calls ``model.train()`` as every training loop does.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hw_utils.models.resnet import resnet_small

BATCH_COUNTER = "num_batches_tracked"


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Inside: one torch thread (the tensors of the tests are tiny: more threads only wait for
    each other, most of all on a busy machine); afterwards the global random generator is as
    it was before."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.random.fork_rng(devices=[]):
            yield
    finally:
        torch.set_num_threads(threads)


def build(arch: dict[str, Any]) -> nn.Module:
    """A float64 ``resnet_small(**arch)``; with ``arch["head_hidden"] = h`` its head is instead
    ``fc = Sequential(Linear(features, h), BatchNorm1d(h), ReLU(), Linear(h, num_classes))``.
    Leaves the global random generator as it was."""
    arch = dict(arch)
    hidden = arch.pop("head_hidden", None)
    with quiet():
        model = resnet_small(**arch)
        if hidden:
            model.fc = nn.Sequential(
                nn.Linear(model.fc.in_features, hidden),
                nn.BatchNorm1d(hidden),
                nn.ReLU(),
                nn.Linear(hidden, arch["num_classes"]),
            )
    return model.double()


def _walk(module: nn.Module, prefix: str = "") -> Iterator[tuple[str, nn.Module]]:
    yield prefix, module
    for name, child in vars(module)["_modules"].items():
        if child is not None:
            yield from _walk(child, f"{prefix}{name}.")


def tensors(model: nn.Module) -> dict[str, Tensor]:
    """Copies of every parameter and buffer of ``model`` by state-dict name
    (``layer1.0.bn1.weight``), read from the modules' own tables."""
    found: dict[str, Tensor] = {}
    for prefix, module in _walk(model):
        for table in ("_parameters", "_buffers"):
            for name, value in vars(module)[table].items():
                if value is not None:
                    found[f"{prefix}{name}"] = value.detach().clone()
    return found


def batch_norm_names(arch: dict[str, Any]) -> dict[str, bool]:
    """The batch-norm layers of :func:`build` ``(arch)`` by module name (``layer1.0.bn1``),
    ``True`` for those inside the head ``fc``."""
    return {
        name.removesuffix("."): name.startswith("fc.")
        for name, module in _walk(build(arch))
        if isinstance(module, nn.modules.batchnorm._BatchNorm)
    }


def random_state(arch: dict[str, Any], seed: int) -> dict[str, Tensor]:
    """Tensors for :func:`build` ``(arch)``, float64, drawn from ``seed``: weights and biases
    normal (He-scaled), batch-norm weights in [0.5, 1.5], running means normal, running
    variances in [0.5, 2], batch counters in 1..1000."""
    generator = torch.Generator().manual_seed(seed)
    bn_weights = {f"{name}.weight" for name in batch_norm_names(arch)}
    state = {}
    for key, value in tensors(build(arch)).items():
        shape = tuple(value.shape)
        if key.endswith(BATCH_COUNTER):
            state[key] = torch.randint(1, 1000, shape, generator=generator)
        elif key.endswith("running_var"):
            state[key] = 0.5 + 1.5 * torch.rand(shape, generator=generator, dtype=torch.float64)
        elif key.endswith("running_mean"):
            state[key] = 0.3 * torch.randn(shape, generator=generator, dtype=torch.float64)
        elif key in bn_weights:
            state[key] = 0.5 + torch.rand(shape, generator=generator, dtype=torch.float64)
        elif value.ndim > 1:
            scale = (2.0 / value[0].numel()) ** 0.5
            state[key] = scale * torch.randn(shape, generator=generator, dtype=torch.float64)
        else:
            state[key] = 0.2 * torch.randn(shape, generator=generator, dtype=torch.float64)
    return state


def load(arch: dict[str, Any], state: dict[str, Tensor]) -> nn.Module:
    """:func:`build` ``(arch)`` holding ``state`` (batch counters may be missing)."""
    model = build(arch)
    missing, unexpected = model.load_state_dict(state, strict=False)
    wrong = [k for k in missing if not k.endswith(BATCH_COUNTER)] + list(unexpected)
    if wrong:
        raise KeyError(f"the state does not fit the architecture: {sorted(wrong)[:4]}")
    return model


def _returned_model(value: Any, function: Callable[..., Any], model: nn.Module) -> nn.Module:
    """``model``, after checking that ``function`` returned it (it works in place)."""
    if value is not model:
        name = getattr(function, "__name__", "the function")
        what = "None" if value is None else f"a different {type(value).__name__}"
        raise TypeError(
            f"{name} returned {what}, expected the model it was given, changed in place: end "
            "with `return model`."
        )
    return model


def _sgd_step(loss: Tensor, parameters: list[Tensor], lr: float) -> None:
    """One step of plain SGD over ``parameters`` (those without a gradient are skipped, as
    ``torch.optim.SGD`` does; it is not used because its first use imports torch's compiler,
    seconds of a test's time)."""
    for parameter in parameters:
        parameter.grad = None
    loss.backward()
    with torch.no_grad():
        for parameter in parameters:
            if parameter.grad is not None:
                parameter.sub_(lr * parameter.grad)


def train_steps(
    freeze: Callable[..., nn.Module] | None,
    replace: Callable[[nn.Module, int], nn.Module] | None,
    trainable: Callable[[nn.Module], Any],
    *,
    arch: dict[str, Any],
    state: dict[str, Tensor],
    inputs: Sequence[Tensor],
    labels: Sequence[Tensor],
    x_out: Tensor,
    train_bn: bool | None = None,
    num_classes: int | None = None,
    replace_first: bool = False,
    head_init: dict[str, Tensor] | None = None,
    requires_grad: dict[str, bool] | None = None,
    lr: float = 0.5,
) -> dict[str, Any]:
    """A plain training loop on a model prepared by ``freeze`` and ``replace``.

    The model is :func:`load` ``(arch, state)``. Then ``freeze(model)`` (with ``train_bn=`` when
    given) and ``replace(model, num_classes)``, in that order or the other with
    ``replace_first``, each skipped when ``None`` and each required to return the model it was
    given (a ``TypeError`` otherwise); the model is converted to float64 (a new head
    may be float32); ``head_init`` (if given) is loaded into the new head; every parameter whose
    name starts with a key of ``requires_grad`` gets that flag. Then, for each batch
    ``(inputs[i], labels[i])``: ``model.train()``, forward, and when ``trainable(model)`` is not
    empty a cross-entropy step of plain SGD with learning rate ``lr`` over ``trainable(model)``
    (``torch.optim.SGD``'s step: a parameter without a gradient stays as it is).

    Returns:
        ``{"head": the new head's tensors right after it was made (None without replace),
        "returned": what ``trainable(model)`` returned, as a list, "tensors": the model's
        :func:`tensors` after the steps, "eval_out" / "train_out": scores for ``x_out`` after the
        steps, without gradients, after ``model.eval()`` and then after ``model.train()``}``.
    """
    with quiet():
        torch.manual_seed(0)
        model = load(arch, state)
        steps = [("replace", replace), ("freeze", freeze)]
        replaced = False
        for role, function in steps if replace_first else reversed(steps):
            if function is None:
                continue
            if role == "freeze":
                kwargs = {} if train_bn is None else {"train_bn": train_bn}
                model = _returned_model(function(model, **kwargs), function, model)
            else:
                model = _returned_model(function(model, num_classes), function, model)
                replaced = True
        model = model.double()
        head = None
        if replaced:
            if head_init is not None:
                model.fc.load_state_dict(head_init)
            head = tensors(model.fc)
        for prefix, flag in (requires_grad or {}).items():
            for module_name, module in _walk(model):
                for name, parameter in vars(module)["_parameters"].items():
                    if parameter is not None and f"{module_name}{name}".startswith(prefix):
                        parameter.requires_grad_(flag)
        parameters = list(trainable(model))
        for parameter in parameters:
            if not isinstance(parameter, Tensor):
                raise TypeError(
                    f"{getattr(trainable, '__name__', 'trainable')} returned a "
                    f"{type(parameter).__name__} in its list, expected the model's parameters."
                )
        for x, y in zip(inputs, labels, strict=True):
            model.train()
            loss = F.cross_entropy(model(x), y)
            if parameters:
                _sgd_step(loss, parameters, lr)
        after = tensors(model)
        with torch.no_grad():
            model.eval()
            eval_out = model(x_out)
            model.train()
            train_out = model(x_out)
    return {
        "head": head,
        "returned": [p.detach().clone() if isinstance(p, Tensor) else p for p in parameters],
        "tensors": after,
        "train_out": train_out,
        "eval_out": eval_out,
    }


def features(
    extract: Callable[..., Tensor],
    *,
    arch: dict[str, Any],
    state: dict[str, Tensor],
    images: Tensor,
    training: bool,
    batch_size: int | None = None,
) -> dict[str, Any]:
    """``extract(model, images[, batch_size=...])`` on :func:`load` ``(arch, state)``, the model
    first put in training mode (``training``) or eval mode.

    Returns:
        ``{"features": what extract returned, "tensors": the model's :func:`tensors` after the
        call, "out": the model's scores for ``images[:2]`` right after, without gradients, in
        whatever mode the call left the model}``.
    """
    with quiet():
        model = load(arch, state)
        model.train(training)
        kwargs = {} if batch_size is None else {"batch_size": batch_size}
        result = extract(model, images, **kwargs)
        after = tensors(model)
        with torch.no_grad():
            out = model(images[:2])
    return {"features": result, "tensors": after, "out": out}
