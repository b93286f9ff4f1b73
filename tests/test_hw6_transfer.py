"""hw6's course references (freeze_backbone, replace_head, trainable_parameters,
extract_features) on the course's ResNet and on torchvision's ResNet-18, the reference trainer
with param groups on a frozen model, the few-label subsets, and the probes of hw6."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import resnet18

from hw_utils import transfer
from hw_utils.data import BatchLoader, DatasetUnavailableError, make_shapes
from hw_utils.models import read_record, resnet_small
from hw_utils.probes import hw6 as probes
from hw_utils.training import fit

ARCH = {"num_classes": 3, "widths": (4, 6, 8), "blocks": (1, 2, 1)}


pytestmark = pytest.mark.usefixtures("single_thread")


def _batch_norms(model):
    return [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]


def _stats(model):
    return [
        (m.running_mean.clone(), m.running_var.clone(), int(m.num_batches_tracked))
        for m in _batch_norms(model)
    ]


def _same(a, b):
    return all(
        torch.equal(x[0], y[0]) and torch.equal(x[1], y[1]) and x[2] == y[2]
        for x, y in zip(a, b, strict=True)
    )


@pytest.mark.parametrize(
    "make", [lambda: resnet_small(4, widths=(4, 8, 8)), lambda: resnet18(num_classes=4)]
)
def test_freeze_backbone_on_both_resnets(make):
    model = transfer.freeze_backbone(make())
    trainable = [name for name, p in model.named_parameters() if p.requires_grad]
    assert trainable == ["fc.weight", "fc.bias"]
    before = _stats(model)
    model.train()
    model(torch.rand(3, 3, 32, 32))
    assert _same(before, _stats(model)), "frozen BN keeps its statistics under model.train()"
    assert model.training and not any(m.training for m in _batch_norms(model))

    model = transfer.freeze_backbone(make(), train_bn=True)
    names = {name for name, p in model.named_parameters() if p.requires_grad}
    bn_names = {n for n, m in model.named_modules() if isinstance(m, nn.BatchNorm2d)}
    bn_parameters = {f"{n}.{p}" for n in bn_names for p in ("weight", "bias")}
    assert names == {"fc.weight", "fc.bias"} | bn_parameters
    before = _stats(model)
    model.train()
    model(torch.rand(3, 3, 32, 32))
    assert not _same(before, _stats(model)), "with train_bn the layers are ordinary batch norm"


@pytest.mark.parametrize(
    ("make", "in_features"),
    [(lambda: resnet_small(4, widths=(4, 8, 24)), 24), (lambda: resnet18(num_classes=4), 512)],
)
def test_replace_head_sizes_the_head_from_in_features(make, in_features):
    model = transfer.freeze_backbone(make())
    model = transfer.replace_head(model, 7)
    assert isinstance(model.fc, nn.Linear) and model.fc.weight.shape == (7, in_features)
    assert [n for n, p in model.named_parameters() if p.requires_grad] == ["fc.weight", "fc.bias"]
    assert model(torch.rand(2, 3, 32, 32)).shape == (2, 7)
    assert transfer.replace_head(resnet_small(2).double(), 3).fc.weight.dtype == torch.float64


def test_replace_head_needs_a_linear_head():
    model = resnet_small(2)
    model.fc = nn.Sequential(nn.Linear(128, 2))
    with pytest.raises(TypeError, match=r"not an nn\.Linear"):
        transfer.replace_head(model, 3)
    with pytest.raises(TypeError, match=r"no head model\.fc"):
        transfer.freeze_backbone(nn.Sequential(nn.Linear(2, 2)))


def test_head_batch_norm_stays_ordinary():
    model = probes.build({**ARCH, "head_hidden": 5})
    transfer.freeze_backbone(model)
    assert model.fc[1].weight.requires_grad
    model.train()
    assert model.fc[1].training and not model.bn1.training


def test_trainable_parameters_are_the_model_s_own_objects():
    model = transfer.freeze_backbone(resnet_small(3, widths=(4, 4, 4)), train_bn=True)
    params = transfer.trainable_parameters(model)
    own = [p for p in model.parameters() if p.requires_grad]
    assert len(params) == len(own) and all(a is b for a, b in zip(params, own, strict=True))


def test_a_frozen_copy_stays_frozen_and_independent():
    original = transfer.freeze_backbone(resnet_small(3, widths=(4, 4, 4)))
    clone = copy.deepcopy(original)
    clone.train()
    assert not clone.bn1.training
    original.bn1.train()
    assert not original.bn1.training
    clone.layer1[0].bn1.train(True)
    assert not clone.layer1[0].bn1.training and not original.layer1[0].bn1.training


def test_extract_features_is_the_input_of_fc_in_eval_mode():
    model = resnet_small(3, widths=(4, 6, 10)).train()
    images = torch.rand(7, 3, 16, 16)
    before = _stats(model)
    features = transfer.extract_features(model, images, batch_size=3)
    assert features.shape == (7, 10) and model.training and _same(before, _stats(model))
    model.eval()
    pooled = {}
    model.avgpool.register_forward_hook(lambda m, i, o: pooled.update(x=o.flatten(1)))
    model(images)
    torch.testing.assert_close(features, pooled["x"])
    assert not model._forward_hooks and not model.fc._forward_hooks, "hook removed"


def test_fit_does_not_undo_the_freeze():
    """The reference trainer calls model.train() every epoch: the frozen layers must stay so."""
    data = make_shapes(24, classes=3, image_size=16, seed=5)
    model = transfer.freeze_backbone(resnet_small(3, widths=(4, 6, 8)))
    before, conv = _stats(model), model.conv1.weight.clone()
    optimizer = torch.optim.SGD(transfer.trainable_parameters(model), lr=0.5)
    loader = BatchLoader(data, 8)
    fit(model, loader, loader, F.cross_entropy, optimizer, 2, "cpu", progress=False)
    assert _same(before, _stats(model)) and torch.equal(conv, model.conv1.weight)


def _groups(model):
    """A larger learning rate for the head than for the backbone."""
    head = [p for name, p in model.named_parameters() if name.startswith("fc.")]
    backbone = [p for name, p in model.named_parameters() if not name.startswith("fc.")]
    return [{"params": backbone, "lr": 0.01}, {"params": head, "lr": 0.5}]


def test_fit_trains_param_groups_with_their_own_learning_rates():
    data = make_shapes(24, classes=3, image_size=16, seed=5)
    model = resnet_small(3, widths=(4, 6, 8))
    reference, initial = copy.deepcopy(model), model.conv1.weight.clone()
    loader = BatchLoader(data, 8)
    optimizer = torch.optim.SGD(_groups(model), lr=1.0)
    fit(model, loader, loader, F.cross_entropy, optimizer, 2, "cpu", progress=False)
    by_hand = torch.optim.SGD(_groups(reference), lr=1.0)
    for _ in range(2):
        reference.train()
        for x, y in loader:
            by_hand.zero_grad()
            F.cross_entropy(reference(x), y).backward()
            by_hand.step()
    for name, value in model.state_dict().items():
        torch.testing.assert_close(value, reference.state_dict()[name], msg=name)
    assert not torch.equal(model.conv1.weight, initial)


# ---- few labels per class -----------------------------------------------------------------


def test_per_class_subset_is_balanced_nested_and_seeded():
    data = make_shapes(60, classes=3, image_size=8, seed=1)
    small = transfer.per_class_subset(data, 2, seed=4)
    large = transfer.per_class_subset(data, 5, seed=4)
    assert torch.bincount(small.labels).tolist() == [2, 2, 2]
    assert torch.bincount(large.labels).tolist() == [5, 5, 5]
    as_set = lambda d: {tuple(img.flatten()[:6].tolist()) for img in d.images}
    assert as_set(small) <= as_set(large)
    assert as_set(transfer.per_class_subset(data, 2, seed=5)) != as_set(small)
    with pytest.raises(ValueError, match="fewer than per_class=30"):
        transfer.per_class_subset(data, 30)
    with pytest.raises(ValueError, match="positive int"):
        transfer.per_class_subset(data, 0)


# ---- the probes ---------------------------------------------------------------------------


def _batches(seed, n=2, size=(4, 3, 10, 12)):
    g = torch.Generator().manual_seed(seed)
    xs = [torch.rand(size, generator=g, dtype=torch.float64) for _ in range(n)]
    ys = [torch.randint(0, 3, size[:1], generator=g) for _ in range(n)]
    return xs, ys


def test_random_state_fills_every_tensor_of_the_architecture():
    state = probes.random_state({**ARCH, "head_hidden": 4}, seed=3)
    model = probes.load({**ARCH, "head_hidden": 4}, state)
    assert set(state) == set(model.state_dict())
    assert all(torch.all(state[f"{n}.running_var"] >= 0.5) for n in probes.batch_norm_names(ARCH))
    assert not torch.equal(state["bn1.running_mean"], torch.zeros(4))


def test_train_steps_with_the_references_freezes_what_it_should():
    state = probes.random_state(ARCH, seed=1)
    xs, ys = _batches(2)
    result = probes.train_steps(
        transfer.freeze_backbone,
        None,
        transfer.trainable_parameters,
        arch=ARCH,
        state=state,
        inputs=xs,
        labels=ys,
        x_out=xs[0],
    )
    moved = {k for k, v in result["tensors"].items() if not torch.equal(v, state[k])}
    assert moved == {"fc.weight", "fc.bias"}
    torch.testing.assert_close(result["train_out"], result["eval_out"])
    assert [p.shape for p in result["returned"]] == [(3, 8), (3,)]


def test_probe_reads_tensors_past_a_lying_state_dict():
    state = probes.random_state(ARCH, seed=1)
    xs, ys = _batches(2)

    def lying_freeze(model, train_bn=False):
        model.requires_grad_(False).fc.requires_grad_(True)
        frozen = copy.deepcopy(model.state_dict())
        model.state_dict = lambda *a, **k: frozen
        return model

    result = probes.train_steps(
        lying_freeze, None, transfer.trainable_parameters,
        arch=ARCH, state=state, inputs=xs, labels=ys, x_out=xs[0],
    )  # fmt: skip
    assert not torch.equal(result["tensors"]["bn1.running_mean"], state["bn1.running_mean"])


def test_probe_order_head_init_and_requires_grad():
    state = probes.random_state(ARCH, seed=1)
    xs, ys = _batches(3)
    head = {
        "weight": torch.ones(5, 8, dtype=torch.float64),
        "bias": torch.zeros(5, dtype=torch.float64),
    }
    result = probes.train_steps(
        transfer.freeze_backbone, transfer.replace_head, transfer.trainable_parameters,
        arch=ARCH, state=state, inputs=xs, labels=[y % 5 for y in ys], x_out=xs[0],
        num_classes=5, replace_first=True, head_init=head, requires_grad={"layer3.": True},
    )  # fmt: skip
    assert torch.equal(result["head"]["weight"], head["weight"])
    moved = {k for k, v in result["tensors"].items() if k in state and not torch.equal(v, state[k])}
    assert any(k.startswith("layer3.") and k.endswith("conv1.weight") for k in moved)
    assert not any(k.startswith(("layer1.", "layer2.", "conv1")) for k in moved)


def test_features_probe_observes_mode_and_statistics():
    state = probes.random_state(ARCH, seed=1)
    xs, _ = _batches(1, size=(5, 3, 10, 12))
    result = probes.features(
        transfer.extract_features, arch=ARCH, state=state, images=xs[0], training=True,
        batch_size=2,
    )  # fmt: skip
    assert result["features"].shape == (5, 8)
    assert all(torch.equal(v, state[k]) for k, v in result["tensors"].items())
    model = probes.load(ARCH, state).train()
    with torch.no_grad():
        torch.testing.assert_close(result["out"], model(xs[0][:2]))


# ---- the transfer task --------------------------------------------------------------------


def test_shapes_transfer_task_uses_only_unseen_classes():
    task = transfer.transfer_task("shapes", pool_size=40, test_size=20)
    record = read_record()
    assert task.classes == record.transfer_classes and task.preprocess is None
    assert task.pool.classes == task.test.classes == record.transfer_classes
    assert len(task.pool) == 40 and len(task.test) == 20
    assert not torch.equal(task.pool.images[:20], task.test.images), "pool and test differ"


def test_imagenet_transfer_task_preprocesses_and_needs_cifar(tmp_path):
    images = torch.rand(2, 3, 32, 32)
    out = transfer.imagenet_preprocess(images)
    assert out.shape == (2, 3, transfer.IMAGENET_SIZE, transfer.IMAGENET_SIZE)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    # Bilinear upsampling keeps the corner pixel; then ImageNet's normalisation.
    torch.testing.assert_close(out[:, :, 0, 0], ((images - mean) / std)[:, :, 0, 0])
    with pytest.raises(DatasetUnavailableError, match="cifar10"):
        transfer.transfer_task("imagenet", pool_size=10, test_size=10, root=tmp_path)
    with pytest.raises(ValueError, match="choose one of"):
        transfer.transfer_task("mnist", pool_size=10, test_size=10)


def test_probe_requires_the_model_back():
    state = probes.random_state(ARCH, seed=1)
    xs, ys = _batches(1)
    for returned in (
        lambda model, train_bn=False: None,
        lambda model, train_bn=False: copy.deepcopy(model),
    ):
        with pytest.raises(TypeError, match="expected the model it was given"):
            probes.train_steps(
                returned, None, transfer.trainable_parameters,
                arch=ARCH, state=state, inputs=xs, labels=ys, x_out=xs[0],
            )  # fmt: skip
