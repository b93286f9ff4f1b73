"""The reference trainer with hw5's needs: any ``torch.optim.Optimizer`` (a student's own class)
and learning-rate schedulers stepped per batch (``train_epoch(scheduler=...)``,
``fit(scheduler_interval="batch")``) as well as per epoch."""

import pytest
import torch
from torch import nn

from hw_utils.training import fit, train_epoch

CPU = torch.device("cpu")


class PlainSGD(torch.optim.Optimizer):
    """A minimal optimizer of one's own: ``p -= lr * grad``, reading ``lr`` at every step."""

    def __init__(self, params, lr):
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.add_(p.grad, alpha=-group["lr"])


def _data(batches: int, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    return [
        (torch.randn(4, 3, generator=generator), torch.randint(0, 2, (4,), generator=generator))
        for _ in range(batches)
    ]


def _model(seed: int = 0) -> nn.Linear:
    torch.manual_seed(seed)
    return nn.Linear(3, 2)


def test_fit_trains_with_an_optimizer_of_ones_own_like_torchs():
    data = _data(3)
    ours, theirs = _model(), _model()
    for model, optimizer in (
        (ours, PlainSGD(ours.parameters(), lr=0.3)),
        (theirs, torch.optim.SGD(theirs.parameters(), lr=0.3)),
    ):
        fit(model, data, data, nn.CrossEntropyLoss(), optimizer, 2, CPU, progress=False)
    for a, b in zip(ours.parameters(), theirs.parameters(), strict=True):
        torch.testing.assert_close(a, b)


class RecordingSGD(PlainSGD):
    """PlainSGD that notes the learning rate of every step."""

    def __init__(self, params, lr):
        super().__init__(params, lr)
        self.seen = []

    def step(self, closure=None):
        self.seen.append(self.param_groups[0]["lr"])
        return super().step(closure)


def test_train_epoch_steps_a_scheduler_after_every_optimizer_step():
    model = _model()
    optimizer = RecordingSGD(model.parameters(), lr=1.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda k: 0.5**k)
    train_epoch(model, _data(3), nn.CrossEntropyLoss(), optimizer, CPU, scheduler=scheduler)
    assert optimizer.seen == [1.0, 0.5, 0.25], "each batch steps with the rate before its step"
    assert optimizer.param_groups[0]["lr"] == 0.125


def test_train_epoch_without_a_scheduler_keeps_the_rate():
    model = _model()
    optimizer = PlainSGD(model.parameters(), lr=0.7)
    train_epoch(model, _data(2), nn.CrossEntropyLoss(), optimizer, CPU)
    assert optimizer.param_groups[0]["lr"] == 0.7


@pytest.mark.parametrize(("interval", "expected_lr"), [("epoch", 0.5**2), ("batch", 0.5**6)])
def test_fit_steps_the_scheduler_per_epoch_or_per_batch(interval, expected_lr):
    data = _data(3)
    model = _model()
    optimizer = PlainSGD(model.parameters(), lr=1.0)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    fit(
        model,
        data,
        data,
        nn.CrossEntropyLoss(),
        optimizer,
        2,
        CPU,
        scheduler=scheduler,
        scheduler_interval=interval,
        progress=False,
    )
    assert optimizer.param_groups[0]["lr"] == pytest.approx(expected_lr)


def test_fit_rejects_an_unknown_interval_and_a_plateau_scheduler_per_batch():
    data = _data(1)
    model = _model()
    optimizer = PlainSGD(model.parameters(), lr=0.1)
    args = (model, data, data, nn.CrossEntropyLoss(), optimizer, 1, CPU)
    with pytest.raises(ValueError, match="'epoch' or 'batch'"):
        fit(*args, scheduler=None, scheduler_interval="step", progress=False)
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer)
    with pytest.raises(ValueError, match="ReduceLROnPlateau"):
        fit(*args, scheduler=plateau, scheduler_interval="batch", progress=False)
