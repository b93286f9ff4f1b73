"""The probes of hw4_batchnorm (hw_utils.probes.hw4): what they observe and what they refuse."""

from __future__ import annotations

import contextlib
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils._python_dispatch import _get_current_dispatch_mode_stack, _pop_mode_temporarily

from hw_utils.probes import hw4
from hw_utils.references import all_references

_THREAD_START = threading.Thread.start


def _data(*shape: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return 2 * torch.randn(*shape, generator=generator, dtype=torch.float64) + 1


def _state(channels: int) -> tuple[torch.Tensor, ...]:
    gamma = torch.linspace(0.5, 2.0, channels, dtype=torch.float64)
    beta = torch.linspace(-1.0, 1.0, channels, dtype=torch.float64)
    mean = torch.linspace(-0.5, 0.5, channels, dtype=torch.float64)
    var = torch.linspace(0.5, 1.5, channels, dtype=torch.float64)
    return gamma, beta, mean, var


@pytest.mark.parametrize("shape", [(5, 3), (2, 3, 4, 5)])
@pytest.mark.parametrize("training", [True, False])
def test_the_formula_reference_is_pytorchs_batch_norm(shape, training):
    x = _data(*shape)
    gamma, beta, mean, var = _state(shape[1])
    mine_mean, mine_var = mean.clone(), var.clone()
    out = hw4.batchnorm_forward_by_formula(x, gamma, beta, mine_mean, mine_var, training, 0.3, 0.01)
    want = F.batch_norm(x, mean, var, gamma, beta, training, 0.3, 0.01)
    torch.testing.assert_close(out, want)
    torch.testing.assert_close(mine_mean, mean)
    torch.testing.assert_close(mine_var, var)
    assert all_references()["hw_utils.probes.hw4.batchnorm_forward_by_formula"] == (
        "batchnorm_forward"
    )


def test_forward_calls_reports_outputs_and_running_statistics_after_each_call():
    batches = [_data(4, 2, 3, 3, seed=k) for k in range(2)]
    gamma, beta, mean, var = _state(2)
    report = hw4.forward_calls(
        hw4.batchnorm_forward_by_formula, batches, gamma, beta, mean, var, True, momentum=0.2
    )
    running_mean, running_var = mean.clone(), var.clone()
    for k, x in enumerate(batches):
        want = F.batch_norm(x, running_mean, running_var, gamma, beta, True, 0.2, 1e-5)
        torch.testing.assert_close(report["outputs"][k], want)
        torch.testing.assert_close(report["running_mean"][k], running_mean)
        torch.testing.assert_close(report["running_var"][k], running_var)
    assert torch.equal(mean, _state(2)[2]), "the caller's tensors are never touched"
    assert all(
        torch.equal(a, b)
        for a, b in zip(report["inputs_after"], [*batches, gamma, beta], strict=True)
    )


def test_forward_calls_sees_a_function_that_rebinds_instead_of_updating_in_place():
    def rebinds(x, gamma, beta, running_mean, running_var, training, momentum=0.1, eps=1e-5):
        running_mean = running_mean * 0 + 5  # a local name only
        return x

    gamma, beta, mean, var = _state(3)
    report = hw4.forward_calls(rebinds, [_data(4, 3)], gamma, beta, mean, var, True)
    assert torch.equal(report["running_mean"][0], mean)


LIBRARY_NORMS = {
    "F.batch_norm": lambda x, g: F.batch_norm(x, None, None, g, None, True),
    "torch.batch_norm": lambda x, g: torch.batch_norm(
        x, g, None, None, None, True, 0.1, 1e-5, False
    ),
    "torch.ops.aten": lambda x, g: torch.ops.aten.native_batch_norm(
        x, g, None, None, None, True, 0.1, 1e-5
    )[0],
    "torch._C": lambda x, g: torch._C._VariableFunctions.native_batch_norm(
        x, g, None, None, None, True, 0.1, 1e-5
    )[0],
    "nn.BatchNorm2d": lambda x, g: nn.BatchNorm2d(x.shape[1]).double()(x),
    "F.instance_norm": lambda x, g: F.instance_norm(x),
    "F.group_norm": lambda x, g: F.group_norm(x, 1),
    "F.layer_norm": lambda x, g: F.layer_norm(x, x.shape[1:]),
}


@pytest.mark.parametrize("library", list(LIBRARY_NORMS))
def test_forward_calls_refuses_pytorchs_normalisation_however_it_is_reached(library):
    def borrowed(x, gamma, beta, running_mean, running_var, training, momentum=0.1, eps=1e-5):
        return LIBRARY_NORMS[library](x, gamma)

    gamma, beta, mean, var = _state(3)
    with pytest.raises(hw4.LibraryNormError, match="compute it yourself"):
        hw4.forward_calls(borrowed, [_data(2, 3, 2, 2)], gamma, beta, mean, var, True)
    out = F.batch_norm(_data(4, 3), None, None, gamma, None, True)
    assert out.shape == (4, 3), "after the probe, PyTorch's batch norm works again"


def _gradients_by_formula(grad_out, x, gamma, eps=1e-5):
    dims = (0, 2, 3)
    x_hat = (x - x.mean(dims, keepdim=True)) / torch.sqrt(
        x.var(dims, keepdim=True, correction=0) + eps
    )
    g = grad_out * gamma.reshape(1, -1, 1, 1)
    inv_std = 1 / torch.sqrt(x.var(dims, keepdim=True, correction=0) + eps)
    grad_x = inv_std * (
        g - g.mean(dims, keepdim=True) - x_hat * (g * x_hat).mean(dims, keepdim=True)
    )
    return grad_x, (grad_out * x_hat).sum(dims), grad_out.sum(dims)


def test_backward_call_returns_what_the_function_returns():
    x, grad_out = _data(2, 3, 2, 2, seed=1), _data(2, 3, 2, 2, seed=2)
    gamma = _state(3)[0]
    got = hw4.backward_call(_gradients_by_formula, grad_out, x, gamma, eps=0.01)
    want = _gradients_by_formula(grad_out, x, gamma, eps=0.01)
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b)


def _by_autograd(grad_out, x, gamma, eps=1e-5):
    x = x.clone().requires_grad_(True)
    gamma = gamma.clone().requires_grad_(True)
    beta = torch.zeros_like(gamma, requires_grad=True)
    out = F.batch_norm(x, None, None, gamma, beta, True, 0.0, eps)
    return torch.autograd.grad(out, (x, gamma, beta), grad_out)


def _by_vjp(grad_out, x, gamma, eps=1e-5):
    def forward(x, gamma):
        mean = x.mean((0, 2, 3), keepdim=True)
        var = x.var((0, 2, 3), keepdim=True, correction=0)
        return gamma.reshape(1, -1, 1, 1) * (x - mean) / torch.sqrt(var + eps)

    _, pullback = torch.func.vjp(forward, x, gamma)
    grad_x, grad_gamma = pullback(grad_out)
    return grad_x, grad_gamma, grad_out.sum((0, 2, 3))


def _by_backward_kernel(grad_out, x, gamma, eps=1e-5):
    mean = x.mean((0, 2, 3))
    invstd = 1 / torch.sqrt(x.var((0, 2, 3), correction=0) + eps)
    return torch.ops.aten.native_batch_norm_backward(
        grad_out, x, gamma, None, None, mean, invstd, True, eps, [True, True, True]
    )


@pytest.mark.parametrize("backward", [_by_autograd, _by_vjp, _by_backward_kernel])
def test_backward_call_refuses_autograd_and_pytorchs_backward_kernel(backward):
    x, grad_out = _data(2, 3, 2, 2, seed=1), _data(2, 3, 2, 2, seed=2)
    with pytest.raises((hw4.LibraryNormError, RuntimeError)) as caught:
        hw4.backward_call(backward, grad_out, x, _state(3)[0])
    assert (
        "by hand" in str(caught.value)
        or "compute it yourself" in str(caught.value)
        or ("saved tensor hooks" in str(caught.value))
    )


class OwnLayer(nn.Module):
    """A correct batch-norm layer of the kind students write."""

    def __init__(self, num_features, eps=1e-5, momentum=0.1):
        super().__init__()
        self.eps, self.momentum = eps, momentum
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    def forward(self, x):
        if self.training:
            self.num_batches_tracked += 1
        return hw4.batchnorm_forward_by_formula(
            x, self.weight, self.bias, self.running_mean, self.running_var, self.training,
            self.momentum, self.eps,
        )  # fmt: skip


class PlainAttributes(OwnLayer):
    def __init__(self, num_features, eps=1e-5, momentum=0.1):
        nn.Module.__init__(self)
        self.eps, self.momentum = eps, momentum
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.running_mean = torch.zeros(num_features)
        self.running_var = torch.ones(num_features)
        self.num_batches_tracked = torch.tensor(0)


def _script(shape=(3, 2, 2, 3)):
    return [
        ("backward", "train", _data(*shape, seed=1), _data(*shape, seed=2)),
        ("train", _data(*shape, seed=3)),
        ("eval", _data(*shape, seed=4)),
        ("to", torch.float64),
        ("train", _data(*shape, seed=5)),
    ]


def test_module_script_observes_a_correct_layer_as_pytorchs():
    args, kwargs = (2,), {"eps": 0.01, "momentum": 0.3}
    initial = {"weight": torch.tensor([1.5, -0.5]), "running_var": torch.tensor([2.0, 0.5])}
    options = {"default_dtype": torch.float64, "initial": initial}
    got = hw4.module_script(OwnLayer, args, kwargs, _script(), **options)
    want = hw4.module_script(
        nn.BatchNorm2d, args, kwargs, _script(), library_allowed=True, **options
    )
    assert torch.get_default_dtype() == torch.float32, "the default dtype is restored"
    assert got[0]["class"][-2:] == ["torch.nn.modules.module.Module", "builtins.object"]
    assert [o["step"] for o in got] == ["new", "backward", "train", "eval", "to", "train"]
    counts = [int(o["state_dict"]["num_batches_tracked"]) for o in got]
    assert counts == [0, 1, 2, 2, 2, 3], "each observation is a snapshot of its step"
    for mine, theirs in zip(got, want, strict=True):
        assert mine["parameters"] == theirs["parameters"] == ["weight", "bias"]
        assert mine["buffers"] == theirs["buffers"]
        assert sorted(mine["state_dict"]) == sorted(theirs["state_dict"])
        for key, value in theirs["state_dict"].items():
            torch.testing.assert_close(mine["state_dict"][key], value)
        if "output" in theirs:
            torch.testing.assert_close(mine["output"], theirs["output"])
    torch.testing.assert_close(got[1]["grad_x"], want[1]["grad_x"])
    for name in ("weight", "bias"):
        torch.testing.assert_close(got[1]["grads"][name], want[1]["grads"][name])


def test_module_script_shows_plain_attributes_missing_from_state_dict_and_left_behind_by_to():
    got = hw4.module_script(PlainAttributes, (2,), {}, _script())
    assert sorted(got[-1]["state_dict"]) == ["bias", "weight"]
    assert got[-1]["buffers"] == []
    assert got[-1]["attributes"]["running_mean"].dtype == torch.float32


def test_module_script_loads_a_state_dict_and_refuses_pytorchs_layer_unless_allowed():
    trained = nn.BatchNorm2d(2)
    trained(_data(4, 2, 2, 2).float())
    script = [("load", trained.state_dict()), ("eval", _data(3, 2, 2, 2).float())]
    got = hw4.module_script(OwnLayer, (2,), {}, script)
    torch.testing.assert_close(got[-1]["output"], trained.eval()(_data(3, 2, 2, 2).float()))

    class Inherits(nn.BatchNorm2d):
        pass

    with pytest.raises(hw4.LibraryNormError):
        hw4.module_script(Inherits, (2,), {}, [("train", _data(3, 2, 2, 2).float())])
    with pytest.raises(AttributeError, match="running_var"):
        hw4.module_script(nn.Identity, (), {}, [], initial={"running_var": torch.ones(2)})


def _library_batch_norm(x: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
    return torch.batch_norm(x, gamma, None, None, None, True, 0.1, 1e-5, False)


_SCRIPTED = {}


def _scripted_batch_norm(x, gamma):
    """PyTorch's batch norm run by the TorchScript interpreter (compiled on the first call)."""
    if not _SCRIPTED:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch.jit.script is deprecated
            _SCRIPTED["function"] = torch.jit.script(_library_batch_norm)
    return _SCRIPTED["function"](x, gamma)


def _without_torch_function(x, gamma):
    with torch._C.DisableTorchFunction():
        return F.batch_norm(x, None, None, gamma, None, True)


def _in_a_thread(x, gamma):
    box = {}
    worker = threading.Thread(
        target=lambda: box.update(y=F.batch_norm(x, None, None, gamma, training=True))
    )
    worker.start()
    worker.join()
    return box["y"]


_POOL = ThreadPoolExecutor(1)


def _in_a_pool_thread(x, gamma):
    """PyTorch's batch norm in a worker thread that started before the probe (on the first call,
    outside it): the probe's dispatch mode is per thread, its kernel refusal is not."""
    return _POOL.submit(
        torch.ops.aten.native_batch_norm, x, gamma, None, None, None, True, 0.1, 1e-5
    ).result()[0]


def _mode_popped(x, gamma):
    """PyTorch's batch norm with the probe's dispatch mode taken off the thread's mode stack."""
    watched = bool(_get_current_dispatch_mode_stack())
    with _pop_mode_temporarily() if watched else contextlib.nullcontext():
        return F.batch_norm(x, None, None, gamma, None, True)


@pytest.mark.parametrize(
    "borrow",
    [_scripted_batch_norm, _without_torch_function, _in_a_thread, _in_a_pool_thread, _mode_popped],
    ids=["TorchScript", "DisableTorchFunction", "thread", "pool thread", "mode popped"],
)
def test_forward_calls_refuses_pytorchs_batch_norm_behind_the_usual_escapes(borrow):
    def borrowed(x, gamma, beta, running_mean, running_var, training, momentum=0.1, eps=1e-5):
        return borrow(x, gamma)

    gamma, beta, mean, var = _state(3)
    borrow(_data(2, 3, 2, 2), gamma)  # works outside the probe (and compiles TorchScript first)
    with pytest.raises(RuntimeError) as caught:  # TorchScript reports a RuntimeError of its own
        hw4.forward_calls(borrowed, [_data(2, 3, 2, 2)], gamma, beta, mean, var, True)
    assert borrow is _scripted_batch_norm or isinstance(caught.value, hw4.LibraryNormError)
    assert threading.Thread.start is _THREAD_START, "threads start again after the probe"
    assert borrow(_data(2, 3), gamma).shape == (2, 3), "PyTorch's kernels work after the probe"


def _autograd_under_own_hooks(grad_out, x, gamma, eps=1e-5):
    with torch.autograd.graph.saved_tensors_hooks(lambda t: t, lambda t: t):
        x = x.clone().requires_grad_(True)
        mean = x.mean((0, 2, 3), keepdim=True)
        out = (x - mean) / torch.sqrt(x.var((0, 2, 3), keepdim=True, correction=0) + eps)
        (grad_x,) = torch.autograd.grad(out, x, grad_out)
    return grad_x, grad_out.sum((0, 2, 3)), grad_out.sum((0, 2, 3))


def test_backward_call_refuses_autograd_under_the_students_own_saved_tensor_hooks():
    x, grad_out = _data(2, 3, 2, 2, seed=1), _data(2, 3, 2, 2, seed=2)
    with pytest.raises(hw4.LibraryNormError, match="by hand"):
        hw4.backward_call(_autograd_under_own_hooks, grad_out, x, _state(3)[0])


def _hat(x, eps):
    mean = x.mean((0, 2, 3), keepdim=True)
    return (x - mean) / torch.sqrt(x.var((0, 2, 3), keepdim=True, correction=0) + eps)


def _grad_x_by_jvp(jvp):
    """batchnorm_backward with grad_x from one forward-mode product per element of x."""

    def backward(grad_out, x, gamma, eps=1e-5):
        grad_x = torch.zeros_like(x)
        for i in range(x.numel()):
            tangent = torch.zeros_like(x)
            tangent.view(-1)[i] = 1
            grad_x.view(-1)[i] = (jvp(lambda z: _hat(z, eps), x, tangent) * grad_out).sum()
        grad_x *= gamma.reshape(1, -1, 1, 1)
        return grad_x, (grad_out * _hat(x, eps)).sum((0, 2, 3)), grad_out.sum((0, 2, 3))

    return backward


def _forward_ad_jvp(f, x, tangent):
    with torch.autograd.forward_ad.dual_level():
        dual = f(torch.autograd.forward_ad.make_dual(x, tangent))
        return torch.autograd.forward_ad.unpack_dual(dual).tangent


def _func_jvp(f, x, tangent):
    return torch.func.jvp(f, (x,), (tangent,))[1]


def _autograd_in_a_pool_thread(grad_out, x, gamma, eps=1e-5):
    def work():
        x_ = x.clone().requires_grad_(True)
        (grad_x,) = torch.autograd.grad(_hat(x_, eps), x_, grad_out * gamma.reshape(1, -1, 1, 1))
        return grad_x

    grad_x = _POOL.submit(work).result()
    return grad_x, (grad_out * _hat(x, eps)).sum((0, 2, 3)), grad_out.sum((0, 2, 3))


@pytest.mark.parametrize(
    "backward",
    [_grad_x_by_jvp(_forward_ad_jvp), _grad_x_by_jvp(_func_jvp), _autograd_in_a_pool_thread],
    ids=["forward_ad", "torch.func.jvp", "pool thread"],
)
@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated")  # forward AD's first use
def test_backward_call_refuses_forward_mode_and_autograd_in_another_thread(backward):
    x, grad_out = _data(2, 3, 2, 2, seed=1), _data(2, 3, 2, 2, seed=2)
    gamma = _state(3)[0]
    x_ = x.clone().requires_grad_(True)
    gamma_ = gamma.clone().requires_grad_(True)
    beta_ = torch.zeros_like(gamma, requires_grad=True)
    out = F.batch_norm(x_, None, None, gamma_, beta_, True)
    wanted = torch.autograd.grad(out, (x_, gamma_, beta_), grad_out)
    for got, want in zip(backward(grad_out, x, gamma), wanted, strict=True):
        torch.testing.assert_close(got, want)  # the attack is right outside the probe
    with pytest.raises(hw4.LibraryNormError, match="by hand"):
        hw4.backward_call(backward, grad_out, x, gamma)
    for got, want in zip(backward(grad_out, x, gamma), wanted, strict=True):
        torch.testing.assert_close(got, want)  # and works again after it
