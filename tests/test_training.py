"""The reference trainer: per-sample averaging, percent accuracy, train/eval modes, gradients,
early stopping, the progress bar's stream, and that it can fit a tiny dataset."""

import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from hw_utils.training import (
    EpochResult,
    FitResult,
    choose_device,
    count_parameters,
    evaluate,
    fit,
    predict,
    seed_everything,
    train_epoch,
)

CPU = torch.device("cpu")


pytestmark = pytest.mark.usefixtures("single_thread")


class Offset(nn.Module):
    """Scores = inputs + a learnable per-class offset (zero at start): the inputs are the logits."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.offset = nn.Parameter(torch.zeros(num_classes))

    def forward(self, x):
        return x + self.offset


class ModeProbe(nn.Module):
    """Records ``self.training`` and whether autograd is on at every forward."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.inner = Offset(num_classes)
        self.seen: list[tuple[bool, bool]] = []

    def forward(self, x):
        self.seen.append((self.training, torch.is_grad_enabled()))
        return self.inner(x)


def logit_batches(batch_size: int = 4):
    """10 samples of 3 classes in batches 4, 4, 2; logits chosen so that exactly 6 are right."""
    generator = torch.Generator().manual_seed(0)
    labels = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])
    logits = torch.randn(10, 3, generator=generator)
    right = torch.tensor([1, 1, 0, 1, 0, 1, 0, 1, 1, 0], dtype=torch.bool)
    target = torch.where(right, labels, (labels + 1) % 3)
    logits[torch.arange(10), target] += 5.0  # argmax is the target class
    batches = [
        (logits[i : i + batch_size], labels[i : i + batch_size]) for i in range(0, 10, batch_size)
    ]
    return logits, labels, batches


def frozen_sgd(model: nn.Module) -> torch.optim.Optimizer:
    return torch.optim.SGD(model.parameters(), lr=0.0)


@pytest.mark.parametrize("runner", ["train_epoch", "evaluate"])
def test_loss_is_mean_over_samples_and_accuracy_in_percent(runner):
    logits, labels, batches = logit_batches()
    model = Offset(3)
    if runner == "train_epoch":
        result = train_epoch(model, batches, nn.CrossEntropyLoss(), frozen_sgd(model), CPU)
    else:
        result = evaluate(model, batches, nn.CrossEntropyLoss(), CPU)

    per_sample = F.cross_entropy(logits, labels).item()
    per_batch = np.mean([F.cross_entropy(x, y).item() for x, y in batches])
    assert abs(per_sample - per_batch) > 1e-2, "the data must tell the two averages apart"
    assert isinstance(result, EpochResult)
    assert isinstance(result.loss, float) and isinstance(result.accuracy, float)
    assert result.loss == pytest.approx(per_sample, rel=1e-6)
    assert result.accuracy == pytest.approx(60.0)


def test_train_epoch_takes_one_clean_sgd_step_per_batch():
    torch.manual_seed(1)
    data = [(torch.randn(5, 4), torch.randint(0, 3, (5,))) for _ in range(3)]
    model = nn.Linear(4, 3)
    reference = nn.Linear(4, 3)
    reference.load_state_dict(model.state_dict())
    for p in model.parameters():  # stale gradients that a missing zero_grad would add in
        p.grad = torch.full_like(p, 10.0)

    train_epoch(
        model, data, nn.CrossEntropyLoss(), torch.optim.SGD(model.parameters(), lr=0.1), CPU
    )

    for x, y in data:
        reference.zero_grad()
        F.cross_entropy(reference(x), y).backward()
        with torch.no_grad():
            for p in reference.parameters():
                p -= 0.1 * p.grad
    for name, p in model.named_parameters():
        torch.testing.assert_close(p, dict(reference.named_parameters())[name], msg=name)


def test_train_epoch_switches_to_train_mode_and_evaluate_to_eval_without_grad():
    _, _, batches = logit_batches()
    model = ModeProbe(3)
    model.eval()
    train_epoch(model, batches, nn.CrossEntropyLoss(), frozen_sgd(model), CPU)
    assert model.seen == [(True, True)] * 3
    model.seen.clear()
    evaluate(model, batches, nn.CrossEntropyLoss(), CPU)
    assert model.seen == [(False, False)] * 3
    model.train()
    model.seen.clear()
    labels, _ = predict(model, batches, CPU)
    assert model.seen == [(False, False)] * 3
    assert labels.shape == (10,)


def test_batchnorm_statistics_update_in_training_only():
    torch.manual_seed(2)
    data = [(torch.randn(8, 4) * 3 + 5, torch.randint(0, 2, (8,))) for _ in range(2)]
    model = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    batch_norm = model[1]
    model.eval()
    train_epoch(model, data, nn.CrossEntropyLoss(), frozen_sgd(model), CPU)
    assert batch_norm.num_batches_tracked.item() == 2
    after_training = batch_norm.running_mean.clone()
    evaluate(model, data, nn.CrossEntropyLoss(), CPU)
    assert batch_norm.num_batches_tracked.item() == 2
    torch.testing.assert_close(batch_norm.running_mean, after_training)


def test_evaluate_and_predict_are_deterministic_with_dropout():
    torch.manual_seed(3)
    x, y = torch.randn(32, 6), torch.randint(0, 3, (32,))
    model = nn.Sequential(nn.Linear(6, 64), nn.Dropout(0.5), nn.Linear(64, 3))
    loader = DataLoader(TensorDataset(x, y), batch_size=10)
    model.train()
    first = evaluate(model, loader, nn.CrossEntropyLoss(), CPU)
    model.train()
    second = evaluate(model, loader, nn.CrossEntropyLoss(), CPU)
    assert first == second
    model.train()
    labels, predictions = predict(model, loader, "cpu")
    torch.testing.assert_close(labels, y)
    torch.testing.assert_close(predictions, model(x).argmax(dim=1))
    assert predictions.dtype == torch.int64


class ScriptedLoader:
    """One single-sample batch per pass whose loss under ``first_score_loss`` is scripted."""

    def __init__(self, losses: list[float]) -> None:
        self.losses = losses
        self.passes = 0

    def __iter__(self):
        loss = self.losses[self.passes]
        self.passes += 1
        yield torch.tensor([[loss, 0.0]]), torch.tensor([0])


def first_score_loss(scores, labels):
    return scores[:, 0].mean()


def scripted_fit(val_losses, early_stopping, epochs=10):
    model = Offset(2)
    train = ScriptedLoader([1.0] * epochs)  # the training loss never improves after epoch 1
    val = ScriptedLoader(val_losses)
    return fit(
        model,
        train,
        val,
        first_score_loss,
        frozen_sgd(model),
        epochs,
        CPU,
        early_stopping=early_stopping,
        progress=False,
    )


VAL_LOSSES = [5.0, 4.0, 3.0, 3.5, 3.2, 3.1, 3.0, 2.9, 2.8, 2.7]
"""Best at epoch 3; epochs 4-7 bring no new best (epoch 7 only ties it); epoch 8 improves."""

SAWTOOTH = [5.0, 5.5, 4.0, 4.5, 3.5, 3.6, 3.7, 3.8, 3.9, 4.0]
"""New bests at epochs 1, 3 and 5, each after one worse epoch; none after epoch 5."""


@pytest.mark.parametrize(
    ("val_losses", "patience", "expected_epochs"),
    [
        (VAL_LOSSES, 1, 4),
        (VAL_LOSSES, 3, 6),
        (VAL_LOSSES, 4, 7),
        (VAL_LOSSES, 5, 10),
        (SAWTOOTH, 2, 7),
    ],
)
def test_early_stopping_watches_the_validation_loss(val_losses, patience, expected_epochs):
    result = scripted_fit(val_losses, patience)
    assert result.num_epochs == expected_epochs
    assert result.val_loss == pytest.approx(val_losses[:expected_epochs])
    assert result.train_loss == pytest.approx([1.0] * expected_epochs)
    assert len(result.train_acc) == len(result.val_acc) == expected_epochs


def test_without_early_stopping_every_epoch_runs():
    result = scripted_fit([5.0] * 6, None, epochs=6)
    assert isinstance(result, FitResult)
    assert result.num_epochs == 6


def test_fit_steps_the_scheduler_once_per_epoch():
    torch.manual_seed(4)
    data = [(torch.randn(4, 3), torch.randint(0, 2, (4,)))]
    model = nn.Linear(3, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.8)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    fit(
        model,
        data,
        data,
        nn.CrossEntropyLoss(),
        optimizer,
        3,
        CPU,
        scheduler=scheduler,
        progress=False,
    )
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.1)


def test_fit_reports_progress_on_stdout_only(capfd):
    result = scripted_fit(VAL_LOSSES, 3)
    out, err = capfd.readouterr()
    assert (out, err) == ("", ""), "progress=False must print nothing"

    model = Offset(2)
    fit(
        model,
        ScriptedLoader([1.0] * 10),
        ScriptedLoader(VAL_LOSSES),
        first_score_loss,
        frozen_sgd(model),
        10,
        CPU,
        early_stopping=3,
    )
    out, err = capfd.readouterr()
    assert err == ""
    assert "val_loss=3.1000" in out and "train_acc=" in out and "val_acc=" in out
    assert f"{result.num_epochs}/10" in out
    assert "Early stopping after epoch 6" in out


def test_fit_overfits_a_tiny_random_dataset():
    seed_everything(5)
    images = torch.rand(40, 1, 6, 6)
    labels = torch.randint(0, 4, (40,))
    loader = DataLoader(TensorDataset(images, labels), batch_size=16, shuffle=True)
    model = nn.Sequential(nn.Flatten(), nn.Linear(36, 64), nn.ReLU(), nn.Linear(64, 4))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    result = fit(model, loader, loader, nn.CrossEntropyLoss(), optimizer, 40, CPU, progress=False)
    assert result.train_acc[-1] == 100.0
    assert result.val_acc[-1] == 100.0
    assert result.val_loss[-1] < 0.1 * result.val_loss[0]


@pytest.mark.parametrize(("argument", "value"), [("epochs", 0), ("early_stopping", 0)])
def test_fit_rejects_non_positive_counts(argument, value):
    model = Offset(2)
    kwargs = {"epochs": 3, "early_stopping": None, argument: value}
    with pytest.raises(ValueError, match=argument):
        fit(model, [], [], first_score_loss, frozen_sgd(model), device=CPU, **kwargs)


def test_bad_loaders_and_losses_get_clear_errors():
    model = Offset(3)
    loss_fn = nn.CrossEntropyLoss()
    with pytest.raises(ValueError, match="no samples"):
        evaluate(model, [], loss_fn, CPU)
    with pytest.raises(TypeError, match=r"\(inputs, labels\) pairs"):
        evaluate(model, [torch.zeros(2, 3)], loss_fn, CPU)
    _, _, batches = logit_batches()
    with pytest.raises(ValueError, match="reduction='mean'"):
        evaluate(model, batches, nn.CrossEntropyLoss(reduction="none"), CPU)


def test_count_parameters_counts_trainable_ones_by_default():
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    model[0].requires_grad_(False)
    assert count_parameters(model) == 4 * 2 + 2
    assert count_parameters(model, trainable_only=False) == 3 * 4 + 4 + 4 * 2 + 2


def test_seed_everything_makes_every_generator_repeat():
    def draw():
        return random.random(), np.random.rand(), torch.rand(1).item()

    seed_everything(123)
    first = draw()
    seed_everything(123)
    assert draw() == first


def test_choose_device_prefers_cuda_then_mps(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert choose_device() == torch.device("cpu")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert choose_device() == torch.device("mps")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert choose_device() == torch.device("cuda")
