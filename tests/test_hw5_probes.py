"""hw5's probes: an optimizer run from data (the tests compare the student's with torch.optim's
through it), the in-place call of adam_update, the course's adam_update stand-in, and the watch
that reports PyTorch's own optimizers running inside a student's."""

import _thread
import contextlib
import sys
import threading

import pytest
import torch
from torch import nn
from torch.optim.adam import _single_tensor_adam

from hw_utils.boundary import calls
from hw_utils.probes import hw5
from hw_utils.references import all_references

pytestmark = pytest.mark.usefixtures("single_thread")


def _problem(steps=6, seed=0, shapes=((3, 2), (4,)), missing=()):
    generator = torch.Generator().manual_seed(seed)
    params = [torch.randn(s, generator=generator, dtype=torch.float64) for s in shapes]
    grads = [
        [
            None if (k, i) in missing else torch.randn(s, generator=generator, dtype=torch.float64)
            for i, s in enumerate(shapes)
        ]
        for k in range(steps)
    ]
    return params, grads


class StandInAdam(torch.optim.Optimizer):
    """Adam written with the course's adam_update (what a correct student class does)."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps, "weight_decay": 0.0})

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = torch.tensor(0.0)
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                state["step"] += 1
                hw5.adam_update(
                    p,
                    p.grad,
                    state["exp_avg"],
                    state["exp_avg_sq"],
                    int(state["step"]),
                    group["lr"],
                    *group["betas"],
                    group["eps"],
                )
        return loss


def _assert_same_runs(a, b):
    for step_a, step_b in zip(a["params"], b["params"], strict=True):
        for x, y in zip(step_a, step_b, strict=True):
            torch.testing.assert_close(x, y, rtol=1e-12, atol=1e-12)


def test_run_optimizer_records_every_step_and_the_state_dict():
    params, grads = _problem(missing={(1, 1)})
    report = hw5.run_optimizer(torch.optim.SGD, params, grads, {"lr": 0.1, "foreach": False})
    assert len(report["params"]) == 6 and report["losses"] == [None] * 6
    expected = params[0] - 0.1 * sum(g[0] for g in grads)
    torch.testing.assert_close(report["params"][-1][0], expected)
    second = params[1] - 0.1 * sum(g[1] for g in grads if g[1] is not None)
    torch.testing.assert_close(report["params"][-1][1], second)
    assert report["state_dict"]["param_groups"][0]["lr"] == 0.1
    assert report["borrowed"] == [], "nothing is watched unless asked"


def test_the_course_adam_update_matches_torch_step_for_step_groups_gaps_and_schedules():
    params, grads = _problem(steps=9, missing={(0, 1), (1, 1), (5, 0)})
    groups = [{"params": [params[0]], "lr": 0.05, "betas": (0.8, 0.95)}, {"params": [params[1]]}]
    options = {"scheduler": ("StepLR", {"step_size": 3, "gamma": 0.5})}
    ours = hw5.run_optimizer(StandInAdam, groups, grads, {"lr": 0.01, "eps": 1e-3}, **options)
    theirs = hw5.run_optimizer(
        torch.optim.Adam, groups, grads, {"lr": 0.01, "eps": 1e-3, "foreach": False}, **options
    )
    _assert_same_runs(ours, theirs)
    for index in (0, 1):
        assert float(ours["state_dict"]["state"][index]["step"]) == float(
            theirs["state_dict"]["state"][index]["step"]
        )


def test_state_dicts_cross_between_torch_and_an_optimizer_of_ones_own():
    params, grads = _problem(steps=8)
    head = hw5.run_optimizer(torch.optim.Adam, params, grads[:4], {"lr": 0.02, "foreach": False})
    middle = head["params"][-1]
    ours = hw5.run_optimizer(StandInAdam, middle, grads[4:], {}, state_dict=head["state_dict"])
    theirs = hw5.run_optimizer(
        torch.optim.Adam, middle, grads[4:], {"foreach": False}, state_dict=head["state_dict"]
    )
    _assert_same_runs(ours, theirs)
    back = hw5.run_optimizer(torch.optim.Adam, middle, grads[4:], {}, state_dict=ours["state_dict"])
    assert len(back["params"]) == 4


def test_closure_steps_record_the_loss_and_the_calls():
    params, grads = _problem(steps=3)
    report = hw5.run_optimizer(torch.optim.SGD, params, grads, {"lr": 0.1}, closure=True)
    assert report["closure_calls"] == [1, 1, 1]
    first = sum(float((p * g).sum()) for p, g in zip(params, grads[0], strict=True))
    assert report["losses"][0] == pytest.approx(first)
    plain = hw5.run_optimizer(torch.optim.SGD, params, grads, {"lr": 0.1})
    _assert_same_runs(report, plain)


def test_set_lr_writes_the_rates_before_the_step_and_unknown_schedulers_are_refused():
    params, grads = _problem(steps=3)
    report = hw5.run_optimizer(torch.optim.SGD, params, grads, {"lr": 0.1}, set_lr={1: [0.5]})
    assert report["lrs"] == [[0.1], [0.5], [0.5]]
    with pytest.raises(ValueError, match="unknown scheduler"):
        hw5.run_optimizer(torch.optim.SGD, params, grads, {"lr": 0.1}, scheduler=("LambdaLR", {}))


def test_a_state_dict_that_is_not_data_comes_back_as_a_message():
    class Odd(StandInAdam):
        def state_dict(self):
            return {"state": {0: {"step": object()}}, "param_groups": []}

    params, grads = _problem(steps=1)
    report = hw5.run_optimizer(Odd, params, grads, {})
    assert "not_data" in report["state_dict"]
    assert len(report["params"]) == 1


def test_call_in_place_returns_the_tensors_after_the_call():
    param, grad = torch.ones(3, dtype=torch.float64), torch.full((3,), 2.0, dtype=torch.float64)
    zeros = torch.zeros(3, dtype=torch.float64)
    kwargs = {"step": 1, "lr": 0.1, "beta1": 0.9, "beta2": 0.999, "eps": 0.0}
    report = hw5.call_in_place(hw5.adam_update, [param, grad, zeros, zeros], kwargs)
    new_param, same_grad, exp_avg, exp_avg_sq = report["tensors"]
    torch.testing.assert_close(new_param, torch.full((3,), 0.9, dtype=torch.float64))
    torch.testing.assert_close(exp_avg, 0.1 * grad)
    torch.testing.assert_close(exp_avg_sq, 0.001 * grad**2)
    assert torch.equal(same_grad, grad) and torch.equal(param, torch.ones(3, dtype=torch.float64))
    assert report["returned"] == "NoneType"


class Subclassed(torch.optim.Adam):
    pass


class Delegating(torch.optim.Optimizer):
    """Hands the work to a torch.optim.Adam it keeps."""

    def __init__(self, params, lr=1e-3):
        super().__init__(params, {"lr": lr})
        self.inner = torch.optim.Adam(self.param_groups, foreach=False)

    def step(self, closure=None):
        return self.inner.step(closure)


def _fused_update(param, grad, exp_avg, exp_avg_sq, step, lr, beta1, beta2, eps, kernel=None):
    kernel = kernel or torch._fused_adam_
    kernel(
        [param],
        [grad],
        [exp_avg],
        [exp_avg_sq],
        [],
        [torch.tensor(float(step))],
        lr=lr,
        beta1=beta1,
        beta2=beta2,
        weight_decay=0.0,
        eps=eps,
        amsgrad=False,
        maximize=False,
    )


@pytest.mark.parametrize("optimizer_class", [Subclassed, Delegating])
def test_while_watching_torchs_optimizer_refuses_however_it_is_reached(optimizer_class):
    params, grads = _problem(steps=2)
    with pytest.raises(RuntimeError, match="PyTorch's own optimizer ran inside yours"):
        hw5.run_optimizer(optimizer_class, params, grads, {"lr": 0.1}, watch=True)
    unwatched = hw5.run_optimizer(optimizer_class, params, grads, {"lr": 0.1})
    assert len(unwatched["params"]) == 2, "PyTorch's code is restored after the watch"
    honest = hw5.run_optimizer(StandInAdam, params, grads, {"lr": 0.1}, watch=True)
    assert honest["borrowed"] == [], "the base class and the course's update are not borrowed"


def _fused_update_caught(*args, **kwargs):
    """The fused kernel tried; what it raises is swallowed."""
    with contextlib.suppress(RuntimeError):
        _fused_update(*args, **kwargs)


UPDATE_TENSORS = [torch.ones(2), torch.ones(2), torch.zeros(2), torch.zeros(2)]
UPDATE_KWARGS = {"step": 1, "lr": 0.1, "beta1": 0.9, "beta2": 0.99, "eps": 1e-8}


def test_the_watch_reports_a_fused_kernel_and_restores_the_profile_hooks():
    report = hw5.call_in_place(_fused_update_caught, UPDATE_TENSORS, UPDATE_KWARGS, watch=True)
    assert report["borrowed"] == ["torch._fused_adam_"]
    assert torch.equal(report["tensors"][0], torch.ones(2)), "the kernel refused to run"
    assert sys.getprofile() is None and threading.getprofile() is None


@pytest.mark.parametrize(
    "kernel",
    [None, torch.ops.aten._fused_adam_, torch.ops.aten._fused_adam_.default],
    ids=["torch", "ops", "overload"],
)
def test_while_watching_a_fused_kernel_refuses_however_it_is_reached(kernel):
    kwargs = {**UPDATE_KWARGS, "kernel": kernel}
    with pytest.raises(RuntimeError, match="PyTorch's own optimizer ran inside yours"):
        hw5.call_in_place(_fused_update, UPDATE_TENSORS, kwargs, watch=True)
    unwatched = hw5.call_in_place(_fused_update, UPDATE_TENSORS, kwargs)
    assert not torch.equal(unwatched["tensors"][0], torch.ones(2)), "restored afterwards"


def _in_raw_thread(function):
    """``function`` run in a thread started with ``_thread`` (no profile hook reaches it); an
    exception stays in the thread."""

    def threaded(*args, **kwargs):
        done = _thread.allocate_lock()
        done.acquire()

        def work():
            try:
                function(*args, **kwargs)
            except RuntimeError:
                pass
            finally:
                done.release()

        _thread.start_new_thread(work, ())
        done.acquire()

    return threaded


def test_while_watching_a_fused_kernel_refuses_even_in_another_thread():
    threaded = _in_raw_thread(_fused_update)
    watched = hw5.call_in_place(threaded, UPDATE_TENSORS, UPDATE_KWARGS, watch=True)
    assert torch.equal(watched["tensors"][0], torch.ones(2)), "the update did not happen"
    unwatched = hw5.call_in_place(threaded, UPDATE_TENSORS, UPDATE_KWARGS)
    assert not torch.equal(unwatched["tensors"][0], torch.ones(2)), "restored afterwards"


def test_every_name_to_forbid_resolves_and_forbidding_them_stops_torchs_adam():
    assert "torch.optim.adam.adam" in hw5.TORCH_IMPLEMENTATIONS
    request = {"forbidden": [(calls.FUNCTION, path) for path in hw5.TORCH_IMPLEMENTATIONS]}
    with calls._patched({}, request):
        p = nn.Parameter(torch.zeros(2))
        p.grad = torch.ones(2)
        optimizer = Subclassed([p])
        with pytest.raises(calls.ForbiddenCallError, match=r"torch\.optim\.adam\.adam"):
            optimizer.step()
    torch.optim.Adam([p]).step()  # restored


def test_the_stand_in_is_a_course_reference_for_adam_update():
    assert all_references()["hw_utils.probes.hw5.adam_update"] == "adam_update"


def test_construct_reports_the_exception_and_what_ran():
    params, _ = _problem(steps=0)
    report = hw5.construct(Subclassed, params, {"lr": -1.0}, watch=True)
    assert report["raised"][:2] == ["ValueError", "Exception"]
    assert "torch.optim.adam.Adam.__init__" in report["borrowed"]
    honest = hw5.construct(StandInAdam, params, {"lr": 0.1}, watch=True)
    assert honest == {"raised": [], "message": "", "borrowed": []}


def _functional_update(param, grad, exp_avg, exp_avg_sq, step, lr, beta1, beta2, eps):
    """Torch's functional Adam, imported (captured) before the watch starts."""
    _single_tensor_adam(
        [param],
        [grad],
        [exp_avg],
        [exp_avg_sq],
        [],
        [torch.tensor(float(step - 1))],
        None,
        None,
        amsgrad=False,
        has_complex=False,
        beta1=beta1,
        beta2=beta2,
        lr=lr,
        weight_decay=0.0,
        eps=eps,
        maximize=False,
        capturable=False,
        differentiable=False,
        decoupled_weight_decay=False,
    )


def test_while_watching_torchs_implementations_refuse_to_run_even_in_another_thread():
    threaded = _in_raw_thread(_functional_update)
    watched = hw5.call_in_place(threaded, UPDATE_TENSORS, UPDATE_KWARGS, watch=True)
    assert torch.equal(watched["tensors"][2], torch.zeros(2)), "the update did not happen"
    unwatched = hw5.call_in_place(threaded, UPDATE_TENSORS, UPDATE_KWARGS)
    assert not torch.equal(unwatched["tensors"][2], torch.zeros(2)), "restored afterwards"
