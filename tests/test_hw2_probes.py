"""hw2's probes and stand-ins (hw_utils.probes.hw2)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from hw_utils import training
from hw_utils.checks import CheckFailed
from hw_utils.probes import hw2
from hw_utils.references import all_references
from hw_utils.training import EpochResult, FitResult


def test_spatial_size_after_by_pytorch():
    confs = [("C", {"kernel": 3, "padding": 1}), ("P", {"kernel": 2}), ("C", {"kernel": 3})]
    assert hw2.spatial_size_after_by_pytorch([*confs, ("L", {"units": 8})], 32) == 14
    with pytest.raises(ValueError, match="does not fit"):
        hw2.spatial_size_after_by_pytorch([("P", {"kernel": 2})] * 5, 16)


def test_build_described_reads_back_describe_layer():
    model = nn.Sequential(
        nn.Conv2d(3, 8, (3, 2), stride=2, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Dropout(0.25),
        nn.MaxPool2d(2, 1),
        nn.Flatten(),
        nn.Linear(40, 5),
    )
    descriptions = [hw2.describe_layer(layer) for layer in model]
    assert descriptions[0] == "Conv2d(3->8, kernel=(3, 2), stride=2, padding=1)"
    rebuilt = hw2.build_described(descriptions)
    assert [hw2.describe_layer(layer) for layer in rebuilt] == descriptions
    with pytest.raises(ValueError, match="cannot build"):
        hw2.build_described(["Softmax(dim=1)"])


def _cnn():
    return nn.Sequential(
        nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3), nn.ReLU(), nn.Dropout(0.5), nn.Flatten(),
        nn.Linear(12, 4),
    )  # fmt: skip


def test_model_layers_runs_the_part_under_test_with_the_tests_parameters():
    expected = ["Conv2d(2->3, kernel=3, stride=1, padding=0)", "BatchNorm2d(3)", "ReLU"]
    expected.append("Dropout(p=0.5)")
    reference = hw2.build_described(expected).double()
    for p in reference.parameters():
        nn.init.normal_(p)
    parameters = {
        kind: [list(m.parameters(recurse=False)) for m in reference.modules() if isinstance(m, k)]
        for kind, k in hw2.PARAMETER_KINDS.items()
    }
    x = torch.rand(2, 2, 4, 4, dtype=torch.float64)
    report = hw2.model_layers(_cnn, (), "features", parameters, x, images=torch.rand(3, 2, 4, 4))
    assert report["class"] == "Sequential" and report["layers"] == expected
    assert report["scores"].shape == (3, 4) and report["error"] is None
    torch.manual_seed(0)  # the probe's seed before its pass: the same dropout
    with torch.no_grad():
        assert torch.allclose(report["output"], reference.train()(x))
    flat, linear = torch.rand(2, 12, dtype=torch.float64), [torch.ones(4, 12), torch.zeros(4)]
    head = hw2.model_layers(_cnn, (), "head", {"Linear": [linear]}, flat)
    assert head["layers"] == ["Flatten", "Linear(12->4)"]
    assert torch.allclose(head["output"], flat.sum(dim=1, keepdim=True).expand(2, 4))


def test_model_layers_reports_parameters_that_do_not_fit():
    x = torch.rand(2, 2, 4, 4, dtype=torch.float64)
    report = hw2.model_layers(_cnn, (), "features", {"Conv2d": []}, x)
    assert report["output"] is None
    assert report["error"] == "the model has 1 Conv2d layers, expected 0."
    wrong = {"Conv2d": [[torch.zeros(3, 2, 2, 2), torch.zeros(3)]]}
    error = hw2.model_layers(_cnn, (), "features", wrong, x)["error"]
    assert "shapes [(3, 2, 3, 3), (3,)]" in error
    assert hw2.model_layers(lambda: nn.Linear(2, 2), (), "features", {}, x)["layers"] is None


def test_training_probes_observe_the_reference_trainer():
    before = [p.detach() for p in hw2.tiny_model().parameters()]
    after = hw2.train_epoch_parameters(training.train_epoch, batch_size=4, lr=0.5)
    assert all(not torch.equal(a, b) for a, b in zip(after, before, strict=True))
    result = hw2.epoch_result(training.evaluate, num_samples=7, batch_size=3)
    assert isinstance(result, EpochResult) and 0 <= result.accuracy <= 100
    modes = hw2.forward_modes(training.train_epoch, train=False, lr=0.1)
    assert modes["seen"] and all(mode == (True, True) for mode in modes["seen"])
    modes = hw2.forward_modes(training.evaluate, train=True)
    assert modes["seen"] and all(mode == (False, False) for mode in modes["seen"])
    assert modes["grads"] == [None, None] and all(
        torch.equal(a, b) for a, b in zip(modes["after"], modes["before"], strict=True)
    )


def _fit_with(helpers):
    """A fit that calls the train_epoch and evaluate of ``helpers`` (as a notebook's globals)."""

    def fit(model, train_loader, val_loader, loss_fn, optimizer, epochs, device, early_stopping):
        train, val = [], []
        for _ in range(epochs):
            train.append(helpers["train_epoch"](model, train_loader, loss_fn, optimizer, device))
            val.append(helpers["evaluate"](model, val_loader, loss_fn, device))
        return FitResult(
            epochs,
            [r.loss for r in train],
            [r.accuracy for r in train],
            [r.loss for r in val],
            [r.accuracy for r in val],
        )

    return fit


def test_scripted_fit_replays_the_losses_and_logs_the_calls():
    helpers = {"train_epoch": hw2.scripted_train_epoch, "evaluate": hw2.scripted_evaluate}
    run = hw2.scripted_fit(_fit_with(helpers), [2.0, 1.5], [1.0, 0.9], 2, None)
    assert run["result"] == FitResult(2, [2.0, 1.5], [50.0, 51.0], [1.0, 0.9], [40.0, 41.0])
    assert run["calls"] == [
        ("train_epoch", "train_loader"),
        ("evaluate", "val_loader"),
        ("train_epoch", "train_loader"),
        ("evaluate", "val_loader"),
    ]
    with pytest.raises(CheckFailed, match="more than epochs=1 times"):
        hw2.scripted_fit(_fit_with(helpers), [2.0], [1.0], 2, None)


def test_initialised_weights_observes_every_conv_and_linear():
    def zeros(model, scheme):
        for m in model.modules():
            if isinstance(m, nn.Conv2d | nn.Linear):
                nn.init.zeros_(m.weight)

    spec = [("Conv2d", (3, 4, 3), {"bias": False}), [("Flatten", (), {}), ("Linear", (4, 2), {})]]
    report = hw2.initialised_weights(zeros, spec, "zeros")
    assert report["layers"] == ["Conv2d(3->4, kernel=3, stride=1, padding=0)", "Linear(4->2)"]
    assert all(not w.any() for w in report["weights"])
    assert report["biases"][0] is None and report["biases"][1].shape == (2,)


def test_stand_ins_are_course_references():
    references = all_references()
    for name, graded in [
        ("spatial_size_after_by_pytorch", "spatial_size_after"),
        ("scripted_train_epoch", "train_epoch"),
        ("scripted_evaluate", "evaluate"),
    ]:
        assert references[f"hw_utils.probes.hw2.{name}"] == graded
