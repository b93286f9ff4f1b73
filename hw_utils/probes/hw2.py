"""Probes and stand-ins of hw2_cnn_architecture (see :mod:`hw_utils.probes`).

- Layers: :func:`model_layers` builds a model with the student's ``build_cnn`` or
  ``ConvClassifier``, describes the layers under test (:func:`describe_layer`, for the hint) and
  runs them with the test's parameters on the test's input (for the verdict); the test builds
  the expected layers from their descriptions (:func:`build_described`) and compares.
- Training: the tiny seeded dataset and model of the tests (:func:`tiny_dataset`,
  :func:`tiny_model`, also used by the checker to compute expectations), parameters after an
  epoch, an epoch's result, the modes a :class:`ModeProbe` sees, ``fit`` with scripted epochs.
- Initialisation: the weights after ``init_weights`` on a model described as data.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from hw_utils.checks import CheckFailed
from hw_utils.data import BatchLoader, ImageDataset
from hw_utils.probes.common import build_layers, one_thread
from hw_utils.references import course_reference
from hw_utils.training import EpochResult

# ---- Part 1: layers -------------------------------------------------------------------------


@course_reference("spatial_size_after")
def spatial_size_after_by_pytorch(confs: list[tuple[str, dict]], input_size: int) -> int:
    """PyTorch's answer for ``spatial_size_after``: a zero image run through real conv and pool
    ops. Raises ``ValueError`` when a layer does not fit."""
    __tracebackhide__ = True
    x = torch.zeros(1, 1, input_size, input_size)
    for kind, conf in confs:
        try:
            if kind == "C":
                kernel = torch.zeros(1, 1, conf["kernel"], conf["kernel"])
                x = F.conv2d(
                    x, kernel, stride=conf.get("stride", 1), padding=conf.get("padding", 0)
                )
            elif kind == "P":
                x = F.max_pool2d(x, conf["kernel"], conf.get("stride", conf["kernel"]))
        except RuntimeError as error:
            raise ValueError(f"spatial_size_after: a layer does not fit ({error})") from None
    return x.shape[-1]


def _size(value: Any) -> str:
    """3 or (3, 3) -> "3"; (3, 2) -> "(3, 2)"."""
    if isinstance(value, tuple | list):
        return str(value[0]) if len(set(value)) == 1 else str(tuple(value))
    return str(value)


def describe_layer(layer: nn.Module) -> str:
    """A short description of one layer: its type and the arguments that matter here, e.g.
    ``Conv2d(3->8, kernel=3, stride=1, padding=0)``; :func:`build_described` reads it back."""
    __tracebackhide__ = True
    if isinstance(layer, nn.Conv2d):
        return (
            f"Conv2d({layer.in_channels}->{layer.out_channels}, kernel={_size(layer.kernel_size)}, "
            f"stride={_size(layer.stride)}, padding={_size(layer.padding)})"
        )
    if isinstance(layer, nn.BatchNorm2d):
        return f"BatchNorm2d({layer.num_features})"
    if isinstance(layer, nn.MaxPool2d):
        return f"MaxPool2d(kernel={_size(layer.kernel_size)}, stride={_size(layer.stride)})"
    if isinstance(layer, nn.Linear):
        return f"Linear({layer.in_features}->{layer.out_features})"
    if isinstance(layer, nn.Dropout):
        return f"Dropout(p={layer.p})"
    return type(layer).__name__


_DESCRIBED = {"Conv2d", "BatchNorm2d", "MaxPool2d", "Linear", "Dropout", "ReLU", "Flatten"}
_DESCRIPTION = re.compile(r"(\w+)(?:\((.*)\))?")


def build_described(descriptions: Sequence[str]) -> nn.Sequential:
    """The ``nn.Sequential`` of the layers that :func:`describe_layer` describes, in order
    (``"Conv2d(3->8, kernel=3, stride=1, padding=0)"``, ``"ReLU"``, ...), with PyTorch's
    default initialisation."""
    __tracebackhide__ = True
    layers = []
    for text in descriptions:
        match = _DESCRIPTION.fullmatch(text)
        if not match or match.group(1) not in _DESCRIBED:
            raise ValueError(f"build_described: cannot build {text!r}.")
        call = ast.parse(f"f({(match.group(2) or '').replace('->', ', ')})", mode="eval").body
        args = [ast.literal_eval(arg) for arg in call.args]
        kwargs = {
            "kernel_size" if k.arg == "kernel" else k.arg: ast.literal_eval(k.value)
            for k in call.keywords
        }
        layers.append(getattr(nn, match.group(1))(*args, **kwargs))
    return nn.Sequential(*layers)


PARAMETER_KINDS = {"Conv2d": nn.Conv2d, "Linear": nn.Linear, "BatchNorm2d": nn.BatchNorm2d}
"""The layers whose parameters a test sets (by kind, in ``modules()`` order)."""


def load_parameters(module: nn.Module, parameters: dict[str, list[list[torch.Tensor]]]) -> str:
    """Copy ``parameters[kind][i]`` (the ``i``-th layer of that kind: its weight and bias, as
    ``parameters(recurse=False)`` lists them) into the layers of ``module``; ``""`` when done,
    else what does not fit (the layers are then partly set)."""
    __tracebackhide__ = True
    for kind, values in parameters.items():
        layers = [m for m in module.modules() if isinstance(m, PARAMETER_KINDS[kind])]
        if len(layers) != len(values):
            return f"the model has {len(layers)} {kind} layers, expected {len(values)}."
        for index, (layer, tensors) in enumerate(zip(layers, values, strict=True)):
            own = list(layer.parameters(recurse=False))
            shapes = [tuple(p.shape) for p in own]
            wanted = [tuple(t.shape) for t in tensors]
            if shapes != wanted:
                return f"{kind} layer {index} has parameters of shapes {shapes}, expected {wanted}."
            with torch.no_grad():
                for p, value in zip(own, tensors, strict=True):
                    p.copy_(value)
    return ""


def _error(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"


def _part(model: Any, part: str) -> list[nn.Module] | None:
    """The layers under test: ``"features"`` (of an ``nn.Sequential``: those before its first
    Flatten or Linear), ``"head"`` (from its first Flatten, else its first Linear), an attribute
    that is an ``nn.Sequential`` (its layers), or ``"model"`` (the model itself)."""
    if part == "model":
        return [model]
    if part in ("features", "head"):
        if not isinstance(model, nn.Sequential):
            return None
        layers = list(model)
        kinds = (nn.Flatten, nn.Linear) if part == "features" else (nn.Flatten,)
        ends = [i for i, layer in enumerate(layers) if isinstance(layer, kinds)]
        if part == "head" and not ends:
            ends = [i for i, layer in enumerate(layers) if isinstance(layer, nn.Linear)]
        start = ends[0] if ends else len(layers)
        return layers[:start] if part == "features" else layers[start:]
    sequential = getattr(model, part, None)
    return list(sequential) if isinstance(sequential, nn.Sequential) else None


@one_thread()
def model_layers(
    factory: Callable[..., Any],
    args: Sequence[Any],
    part: str,
    parameters: dict[str, list[list[torch.Tensor]]] | None = None,
    x: torch.Tensor | None = None,
    *,
    images: torch.Tensor | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Build ``factory(*args)`` (global seed ``seed``) and observe the layers ``part`` of it
    (see ``_part``).

    - ``images``: first, the whole model's output on them, in eval mode, without gradients;
    - ``parameters``, ``x``: then the layers of ``part`` in float64, training mode, with the
      test's ``parameters`` (:func:`load_parameters`), run on ``x`` (global seed ``seed``
      before the pass, so dropout draws what the test's own layers draw).

    Returns:
        ``{"class": the model's type name, "sequentials": {attribute: type name} of its
        ``feature_extractor`` and ``classifier``, "layers": [descriptions] or None, "scores",
        "scores_error", "output", "error"}``; an error is ``"TypeName: message"``, or ``None``.
    """
    __tracebackhide__ = True  # builds the student's model: its errors show their code
    torch.manual_seed(seed)
    model = factory(*args)
    report: dict[str, Any] = {
        "class": type(model).__name__,
        "sequentials": {
            name: type(getattr(model, name, None)).__name__
            for name in ("feature_extractor", "classifier")
        },
        "layers": None,
        "scores": None,
        "scores_error": None,
        "output": None,
        "error": None,
    }
    if images is not None:
        try:
            model.eval()
            with torch.no_grad():
                report["scores"] = model(images)
        except Exception as error:
            report["scores_error"] = _error(error)
    layers = _part(model, part)
    if layers is None or parameters is None or x is None:
        return report
    report["layers"] = [describe_layer(layer) for layer in layers] if part != "model" else None
    module = model if part == "model" else nn.Sequential(*layers)
    try:
        module.double().train()
        report["error"] = load_parameters(module, parameters) or None
        if report["error"] is None:
            torch.manual_seed(seed)
            with torch.no_grad():
                report["output"] = module(x)
    except Exception as error:
        report["error"] = _error(error)
    return report


@one_thread()
def seeded_output(
    factory: Callable[..., nn.Module],
    args: Sequence[Any],
    kwargs: dict[str, Any],
    x: torch.Tensor,
    seed: int = 0,
) -> dict[str, Any]:
    """Build ``factory(*args, **kwargs)`` with global seed ``seed`` and run it in float64 on
    ``x``, without gradients: ``{"printed": repr(model), "output": model(x)}``."""
    __tracebackhide__ = True
    torch.manual_seed(seed)
    model = factory(*args, **kwargs)
    with torch.no_grad():
        output = model.double()(x.double())
    return {"printed": repr(model), "output": output}


# ---- Part 3: training ---------------------------------------------------------------------


def tiny_dataset(num_samples: int = 10, num_classes: int = 3, seed: int = 0) -> ImageDataset:
    """``num_samples`` random 3x2x2 images, labels 0, 1, ..., num_classes - 1 in turn."""
    __tracebackhide__ = True
    generator = torch.Generator().manual_seed(seed)
    images = torch.rand(num_samples, 3, 2, 2, generator=generator)
    labels = torch.arange(num_samples) % num_classes
    return ImageDataset(images, labels, tuple(f"class {k}" for k in range(num_classes)))


def tiny_model(num_classes: int = 3, seed: int = 0) -> nn.Sequential:
    """Flatten + Linear(12, num_classes) with large seeded weights: the scores differ a lot from
    sample to sample, so the loss differs per sample and only some predictions are right."""
    __tracebackhide__ = True
    generator = torch.Generator().manual_seed(seed)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, num_classes))
    with torch.no_grad():
        model[1].weight.copy_(2 * torch.randn(num_classes, 12, generator=generator))
        model[1].bias.copy_(torch.randn(num_classes, generator=generator))
    return model


@one_thread()
def train_epoch_parameters(
    train_epoch: Callable[..., Any], batch_size: int, lr: float, stale_grad: float | None = None
) -> list[torch.Tensor]:
    """The parameters of ``tiny_model()`` after ``train_epoch(model, BatchLoader(tiny_dataset(),
    batch_size), nn.CrossEntropyLoss(), SGD(lr), "cpu")``; with ``stale_grad``, every ``.grad``
    holds that value before the epoch (as if left over from earlier)."""
    __tracebackhide__ = True
    dataset, model = tiny_dataset(), tiny_model()
    if stale_grad is not None:
        for p in model.parameters():
            p.grad = torch.full_like(p, stale_grad)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    train_epoch(model, BatchLoader(dataset, batch_size), nn.CrossEntropyLoss(), optimizer, "cpu")
    return [p.detach() for p in model.parameters()]


@one_thread()
def epoch_result(
    function: Callable[..., Any],
    num_samples: int,
    batch_size: int,
    num_classes: int = 3,
    seed: int = 0,
    lr: float | None = None,
) -> Any:
    """What ``function`` returns for ``tiny_model(num_classes, seed)`` on
    ``BatchLoader(tiny_dataset(num_samples, num_classes, seed), batch_size)`` with
    ``nn.CrossEntropyLoss()`` on the CPU: called as ``train_epoch`` (with an SGD optimizer of
    learning rate ``lr``; 0 keeps the model as it is) or, without ``lr``, as ``evaluate``."""
    __tracebackhide__ = True
    dataset, model = tiny_dataset(num_samples, num_classes, seed), tiny_model(num_classes, seed)
    loader, loss_fn = BatchLoader(dataset, batch_size), nn.CrossEntropyLoss()
    if lr is None:
        return function(model, loader, loss_fn, "cpu")
    return function(model, loader, loss_fn, torch.optim.SGD(model.parameters(), lr=lr), "cpu")


class ModeProbe(nn.Module):
    """A tiny model that records, at every forward, whether it was in training mode and whether
    autograd was recording."""

    def __init__(self, num_classes: int = 3) -> None:
        super().__init__()
        self.inner = tiny_model(num_classes)
        self.seen: list[tuple[bool, bool]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append((self.training, torch.is_grad_enabled()))
        return self.inner(x)


@one_thread()
def forward_modes(
    function: Callable[..., Any], train: bool, lr: float | None = None
) -> dict[str, Any]:
    """Call ``function`` on a :class:`ModeProbe` put in training mode (``train``) or eval mode,
    with ``BatchLoader(tiny_dataset(), 4)`` and ``nn.CrossEntropyLoss()`` on the CPU: as
    ``train_epoch`` (an SGD optimizer of learning rate ``lr``) or, without ``lr``, as
    ``evaluate``. A crash after the model ran is ignored here (the metric tests report it); an
    untouched stub's ``NotImplementedError`` is not.

    Returns:
        ``{"seen": [(training, grad enabled) at each forward], "before": parameters before,
        "after": parameters after, "grads": their .grad (None when unset)}``.
    """
    __tracebackhide__ = True
    probe = ModeProbe()
    probe.train(train)
    before = [p.detach().clone() for p in probe.parameters()]
    args: list[Any] = [probe, BatchLoader(tiny_dataset(), 4), nn.CrossEntropyLoss()]
    if lr is not None:
        args.append(torch.optim.SGD(probe.parameters(), lr=lr))
    try:
        function(*args, "cpu")
    except (NotImplementedError, CheckFailed):
        raise
    except Exception:
        pass
    return {
        "seen": list(probe.seen),
        "before": before,
        "after": [p.detach() for p in probe.parameters()],
        "grads": [p.grad for p in probe.parameters()],
    }


_script: dict[str, Any] = {"train_losses": [], "val_losses": [], "loaders": {}, "log": []}
"""What :func:`scripted_fit` set up for the stand-ins: their losses, loaders and calls."""


def _scripted(function: str, loader: Any, losses: list[float], accuracy: float) -> EpochResult:
    log = _script["log"]
    epoch = sum(1 for entry in log if entry[0] == function)
    if epoch >= len(losses):
        advice = ": call it once per epoch, on val_loader." if function == "evaluate" else "."
        raise CheckFailed(f"fit called {function} more than epochs={len(losses)} times{advice}")
    name = next((n for n, known in _script["loaders"].items() if known is loader), None)
    log.append((function, name or "another loader"))
    return EpochResult(losses[epoch], accuracy + epoch)


@course_reference("train_epoch")
def scripted_train_epoch(model, loader, loss_fn, optimizer, device) -> EpochResult:
    """Stand-in for ``train_epoch`` in ``fit``'s tests: at epoch k (from 0) it returns
    ``EpochResult(train_losses[k], 50 + k)`` of :func:`scripted_fit` and logs the call."""
    __tracebackhide__ = True
    return _scripted("train_epoch", loader, _script["train_losses"], 50.0)


@course_reference("evaluate")
def scripted_evaluate(model, loader, loss_fn, device) -> EpochResult:
    """Stand-in for ``evaluate`` in ``fit``'s tests: at epoch k it returns
    ``EpochResult(val_losses[k], 40 + k)`` of :func:`scripted_fit` and logs the call."""
    __tracebackhide__ = True
    return _scripted("evaluate", loader, _script["val_losses"], 40.0)


@one_thread()
def scripted_fit(
    fit: Callable[..., Any],
    train_losses: list[float],
    val_losses: list[float],
    epochs: int,
    early_stopping: int | None,
) -> dict[str, Any]:
    """``fit(tiny_model(), train_loader, val_loader, nn.CrossEntropyLoss(), SGD, epochs, "cpu",
    early_stopping=early_stopping)`` while :func:`scripted_train_epoch` and
    :func:`scripted_evaluate` stand in for the student's (the test puts them in place with
    ``student.standing_in``) and replay ``train_losses`` and ``val_losses``.

    Returns:
        ``{"result": what fit returned, "calls": [(function, "train_loader", "val_loader" or
        "another loader"), ...] in order}``.
    """
    __tracebackhide__ = True
    train_loader, val_loader = ["training batches"], ["validation batches"]
    _script.update(
        train_losses=list(train_losses),
        val_losses=list(val_losses),
        loaders={"train_loader": train_loader, "val_loader": val_loader},
        log=[],
    )
    model = tiny_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    result = fit(
        model,
        train_loader,
        val_loader,
        nn.CrossEntropyLoss(),
        optimizer,
        epochs,
        "cpu",
        early_stopping=early_stopping,
    )
    return {"result": result, "calls": list(_script["log"])}


# ---- Part 4: initialisation -----------------------------------------------------------------


@one_thread()
def initialised_weights(
    init_weights: Callable[..., Any],
    spec: Any,
    scheme: str,
    seed: int = 0,
    init_seed: int | None = None,
) -> dict[str, Any]:
    """Build :func:`~hw_utils.probes.common.build_layers` ``(spec)`` (global seed ``seed``), then
    call ``init_weights(model, scheme)`` (after ``torch.manual_seed(init_seed)`` when given).

    Returns:
        ``{"layers": [descriptions], "weights": [...], "biases": [tensor or None]}`` of the
        model's Conv2d and Linear layers, in ``model.modules()`` order.
    """
    __tracebackhide__ = True
    torch.manual_seed(seed)
    model = build_layers(spec)
    if init_seed is not None:
        torch.manual_seed(init_seed)
    init_weights(model, scheme)
    layers = [m for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    return {
        "layers": [describe_layer(layer) for layer in layers],
        "weights": [layer.weight for layer in layers],
        "biases": [layer.bias for layer in layers],
    }
