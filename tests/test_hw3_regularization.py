"""hw3's additions to hw_utils: the trainer's penalty argument, the course's penalties and
loaders (hw_utils.regularization), the augmentation reference and the probes of hw3."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from hw_utils import regularization as R
from hw_utils.data import BatchLoader, ImageDataset, random_flip_crop
from hw_utils.probes import hw3 as P
from hw_utils.references import all_references
from hw_utils.training import fit, train_epoch

CPU = torch.device("cpu")


pytestmark = pytest.mark.usefixtures("single_thread")


def _dataset(count=12, seed=0):
    generator = torch.Generator().manual_seed(seed)
    images = torch.rand(count, 3, 4, 4, generator=generator)
    return ImageDataset(images, torch.arange(count) % 3, ("a", "b", "c"))


def _model(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(48, 5), nn.ReLU(), nn.Linear(5, 3))


# ---- train_epoch / fit: penalty ------------------------------------------------------------


def test_train_epoch_steps_on_loss_plus_penalty_and_reports_the_loss_alone():
    data = _dataset()
    model, reference = _model(), _model()
    penalty = lambda m: 0.3 * sum((p**2).sum() for p in m.parameters())
    result = train_epoch(
        model,
        BatchLoader(data, 12),
        nn.CrossEntropyLoss(),
        torch.optim.SGD(model.parameters(), lr=0.1),
        CPU,
        penalty=penalty,
    )
    loss = F.cross_entropy(reference(data.images), data.labels)
    grads = torch.autograd.grad(loss + penalty(reference), list(reference.parameters()))
    for p, q, g in zip(model.parameters(), reference.parameters(), grads, strict=True):
        assert torch.allclose(p, q - 0.1 * g, atol=1e-6)
    assert result.loss == pytest.approx(loss.item(), rel=1e-6), "the penalty is not reported"


def test_fit_passes_the_penalty_on_and_none_changes_nothing():
    data = _dataset()
    runs = {}
    for name, penalty in (("none", None), ("zero", lambda m: 0.0 * R.l2_penalty(m, 1.0))):
        model = _model()
        fit(
            model,
            BatchLoader(data, 4, shuffle=True),
            BatchLoader(data, 12),
            nn.CrossEntropyLoss(),
            torch.optim.SGD(model.parameters(), lr=0.1),
            2,
            CPU,
            progress=False,
            penalty=penalty,
        )
        runs[name] = [p.detach() for p in model.parameters()]
    strong = _model()
    fit(
        strong,
        BatchLoader(data, 4, shuffle=True),
        BatchLoader(data, 12),
        nn.CrossEntropyLoss(),
        torch.optim.SGD(strong.parameters(), lr=0.1),
        2,
        CPU,
        progress=False,
        penalty=lambda m: R.l2_penalty(m, 5.0),
    )
    assert all(torch.equal(a, b) for a, b in zip(runs["none"], runs["zero"], strict=True))
    assert strong[1].weight.abs().sum() < runs["none"][0].abs().sum()


@pytest.mark.parametrize("bad", [lambda m: 0.5, lambda m: torch.ones(2, requires_grad=True)])
def test_a_penalty_that_is_not_a_scalar_tensor_is_a_clear_error(bad):
    model = _model()
    with pytest.raises(ValueError, match="scalar tensor"):
        train_epoch(
            model,
            BatchLoader(_dataset(), 6),
            nn.CrossEntropyLoss(),
            torch.optim.SGD(model.parameters(), lr=0.1),
            CPU,
            penalty=bad,
        )


# ---- hw_utils.regularization ---------------------------------------------------------------


def _net():
    torch.manual_seed(1)
    return nn.Sequential(
        nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU()),
        nn.Flatten(),
        nn.Linear(16, 3),
    ).double()


def test_penalties_sum_the_conv_and_linear_weights_only_nested_too():
    model = _net()
    with torch.no_grad():
        model[0][1].weight.fill_(3.0)  # batch norm's scale: never penalised
    conv, linear = model[0][0].weight, model[2].weight
    squares = (conv**2).sum() + (linear**2).sum()
    assert R.penalised_weights(model) == [conv, linear]
    assert torch.allclose(R.l2_penalty(model, 0.2), 0.1 * squares)
    assert torch.allclose(R.l1_penalty(model, 0.2), 0.2 * (conv.abs().sum() + linear.abs().sum()))
    assert R.l2_penalty(model, 0.2).ndim == 0 and R.l2_penalty(model, 0.2).dtype == torch.float64
    assert R.l2_penalty(nn.Sequential(nn.ReLU()), 0.1).item() == 0.0


def test_l2_penalty_is_sgd_weight_decay_on_the_weights():
    x = torch.randn(5, 3, 4, 4, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 0, 1])
    ours, torchs = _net(), _net()
    weights = R.penalised_weights(torchs)
    others = [p for p in torchs.parameters() if all(p is not w for w in weights)]
    sgd = torch.optim.SGD(
        [{"params": weights, "weight_decay": 0.3}, {"params": others, "weight_decay": 0.0}],
        lr=0.5,
    )
    F.cross_entropy(torchs(x), y).backward()
    sgd.step()
    plain = torch.optim.SGD(ours.parameters(), lr=0.5)
    (F.cross_entropy(ours(x), y) + R.l2_penalty(ours, 0.3)).backward()
    plain.step()
    for a, b in zip(ours.parameters(), torchs.parameters(), strict=True):
        assert torch.allclose(a, b, rtol=1e-12, atol=1e-12)


def test_make_loaders_augments_and_shuffles_training_batches_only():
    train, val = _dataset(12, seed=0), _dataset(6, seed=1)
    mark = lambda images, generator=None: images + 10
    train_loader, val_loader = R.make_loaders(train, val, 4, transform=mark, seed=3)
    first = torch.cat([images for images, _ in train_loader])
    second = torch.cat([images for images, _ in train_loader])
    assert bool((first >= 10).all()) and not torch.equal(first, second)
    assert torch.equal(torch.cat([images for images, _ in val_loader]), val.images)


# ---- the reference and the probes ----------------------------------------------------------


def test_random_flip_crop_is_the_course_reference_for_augment_batch():
    references = all_references()
    assert references["hw_utils.data.augment.random_flip_crop"] == "augment_batch"
    assert references["hw_utils.regularization.l2_penalty"] == "l2_penalty"
    assert references["hw_utils.regularization.make_loaders"] == "make_loaders"


def test_penalty_model_is_seeded_and_randomises_batch_norm():
    layers = [("conv", 2, 3, 3, True), ("bn", 3), ("block", [("linear", 4, 2, False)])]
    a, b = P.penalty_model(layers, 5), P.penalty_model(layers, 5)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    assert not torch.equal(a[1].weight, torch.ones(3)) and a[0].weight.dtype == torch.float64
    with pytest.raises(ValueError, match="unknown layer kind"):
        P.penalty_model([("dense", 3)], 0)


def test_penalty_probes_report_value_gradient_and_step():
    layers = [("conv", 2, 3, 3, True), ("bn", 3), ("flatten",), ("linear", 48, 4, True)]
    report = P.penalty_report(R.l2_penalty, layers, 0, 0.5)
    model = P.penalty_model(layers, 0)
    assert torch.allclose(report["value"], R.l2_penalty(model, 0.5))
    assert torch.allclose(report["grads"]["0.weight"], 0.5 * model[0].weight)
    assert report["grads"]["0.bias"] is None
    assert P.penalty_report(lambda m, s: 1.0, layers, 0, 0.5)["grads"] == {}
    x, y = torch.randn(3, 2, 6, 6, dtype=torch.float64), torch.tensor([0, 1, 3])
    stepped = P.penalised_sgd_step(R.l2_penalty, layers, 0, 0.5, 0.1, x, y)
    loss = F.cross_entropy(model(x), y) + R.l2_penalty(model, 0.5)
    grads = dict(
        zip(
            dict(model.named_parameters()),
            torch.autograd.grad(loss, list(model.parameters())),
            strict=True,
        )
    )
    for name, p in model.named_parameters():
        assert torch.allclose(stepped[name], p - 0.1 * grads[name])


def test_dropout_probes_follow_the_modes_and_reach_the_input():
    x = torch.randn(20, 30, dtype=torch.float64)
    report = P.dropout_outputs(nn.Dropout, 0.5, x, 0, modes=[True, False, True])
    first, evaluated, third = report["outputs"]
    assert torch.equal(evaluated, x) and torch.equal(report["input_after"], x)
    assert bool((first == 0).any()) and not torch.equal(first, third)
    grad = torch.randn(20, 30, dtype=torch.float64)
    back = P.dropout_gradient(nn.Dropout, 0.5, x, grad, 0)
    assert torch.allclose(back["grad"], torch.where(back["output"] != 0, 2 * grad, 0 * grad))
    assert P.dropout_gradient(lambda p: nn.Identity(), 0.5, x, grad, 0)["grad"] is not None
    detached = P.dropout_gradient(lambda p: _Detach(), 0.5, x, grad, 0)
    assert detached["grad"] is None


def test_dropout_probes_list_the_torch_functions_called_whatever_the_route():
    x = torch.randn(6, 7)
    library = P.dropout_outputs(nn.Dropout, 0.5, x, 0)["torch_functions"]
    private = P.dropout_outputs(lambda p: _Private(p), 0.5, x, 0)["torch_functions"]
    honest = P.dropout_gradient(lambda p: _Honest(p), 0.5, x, torch.ones(6, 7), 0)
    assert any("dropout" in name for name in library)
    assert any("dropout" in name for name in private)
    assert not any("dropout" in name for name in honest["torch_functions"])
    assert "torch.rand_like" in honest["torch_functions"]


class _Private(nn.Module):
    def __init__(self, p):
        super().__init__()
        self.p = p

    def forward(self, x):
        return torch.ops.aten.dropout(x, self.p, self.training)


class _Honest(_Private):
    def forward(self, x):
        return x * (torch.rand_like(x) >= self.p) / (1 - self.p)


class _Detach(nn.Module):
    def forward(self, x):
        return x.detach()


def test_augment_probe_seeds_the_generator_and_the_global_one():
    x = torch.rand(6, 3, 8, 8)
    report = P.augment_outputs(random_flip_crop, x, [(1, 0), (1, 5), (None, 2), (None, 2)])
    same_generator, other_global, global_a, global_b = report["outputs"]
    assert torch.equal(same_generator, other_global) and torch.equal(global_a, global_b)
    assert all(torch.equal(after, x) for after in report["inputs_after"])


def test_loader_probe_marks_the_transformed_batches():
    train, val = _dataset(10, seed=0), _dataset(5, seed=1)
    passes = P.loader_passes(
        R.make_loaders, (train.images, train.labels), (val.images, val.labels), 4, True
    )
    assert len(passes) == 2
    train_images = torch.cat([images for images, _ in passes[0]["train"]])
    assert bool((train_images >= P.MARK).all()) and bool((train_images < P.MARK + 2).all())
    assert torch.equal(torch.cat([images for images, _ in passes[1]["val"]]), val.images)
    plain = P.loader_passes(
        R.make_loaders, (train.images, train.labels), (val.images, val.labels), 4, False
    )
    assert bool((torch.cat([images for images, _ in plain[0]["train"]]) <= 1).all())
