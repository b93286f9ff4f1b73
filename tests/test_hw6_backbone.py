"""The course's backbone: the small ResNet, its shipped weights and their record, the SHA-256
check, the pretraining script (on its tiny setting) and the ImageNet path up to the download."""

from __future__ import annotations

import shutil
import urllib.error

import pytest
import torch
from conftest import REPO
from torch import nn

from hw_utils.data import SHAPE_CLASSES
from hw_utils.manifest import load_manifest
from hw_utils.models import (
    BasicBlock,
    PretrainedWeightsError,
    ResNet,
    load_backbone,
    load_pretrained,
    read_record,
    resnet_small,
)
from hw_utils.models import pretrain as pretrain_script
from hw_utils.models.pretrained import ASSETS, COURSE_BACKBONE, sha256_of

pytestmark = pytest.mark.usefixtures("single_thread")


# ---- the architecture ---------------------------------------------------------------------


def test_resnet_follows_torchvision_names_and_shapes():
    model = resnet_small(5, widths=(4, 8, 12), blocks=(2, 1, 1))
    names = dict(model.named_modules())
    assert isinstance(names["layer1.1"], BasicBlock) and "layer1.2" not in names
    assert isinstance(names["layer2.0.downsample.0"], nn.Conv2d)
    assert names["layer1.0"].downsample is None, "same shape: identity shortcut"
    assert isinstance(model.fc, nn.Linear) and model.fc.in_features == 12
    assert model(torch.rand(2, 3, 32, 32)).shape == (2, 5)
    assert model(torch.rand(2, 3, 20, 28)).shape == (2, 5), "global pooling: any image size"


def test_stem_stride_halves_every_stage():
    seen = {}
    model = resnet_small(2, widths=(4, 4, 4), stem_stride=2)
    model.layer3.register_forward_hook(lambda m, i, o: seen.update(shape=tuple(o.shape)))
    model(torch.rand(1, 3, 32, 32))
    assert seen["shape"] == (1, 4, 4, 4)


def test_blocks_start_near_the_identity():
    """The last batch norm of every residual branch starts at zero (the branch adds nothing)."""
    model = resnet_small(2, widths=(4, 8, 8))
    assert all(torch.all(b.bn2.weight == 0) for b in model.modules() if isinstance(b, BasicBlock))


@pytest.mark.parametrize(
    ("widths", "blocks"), [((), ()), ((4, 8), (1,)), ((4, 0), (1, 1)), ((4, 8), (1, 0))]
)
def test_bad_architectures_are_refused(widths, blocks):
    with pytest.raises(ValueError, match="same length"):
        ResNet(3, widths=widths, blocks=blocks)


# ---- the shipped weights ------------------------------------------------------------------


def test_shipped_backbone_matches_its_record():
    record = read_record()
    assert sha256_of(ASSETS / record.weights) == record.sha256
    model = load_pretrained()
    assert not model.training, "a pretrained backbone comes in eval mode"
    assert model.fc.out_features == len(record.pretrain_classes)
    assert sum(p.numel() for p in model.parameters()) == record.result["parameters"]
    assert 100_000 <= record.result["parameters"] <= 1_000_000, "a few hundred thousand"
    assert (ASSETS / record.weights).stat().st_size < 4 * 2**20
    assert record.result["val_accuracy"] >= 85


def test_transfer_classes_are_the_unseen_ones():
    record = read_record()
    assert not set(record.pretrain_classes) & set(record.transfer_classes)
    assert sorted(record.pretrain_classes + record.transfer_classes) == sorted(SHAPE_CLASSES)
    assert len(record.transfer_classes) >= 4


def test_every_checkpoint_of_the_manifest_ships_and_loads():
    named = [c for a in load_manifest(REPO).values() for c in a.checkpoints]
    assert f"{COURSE_BACKBONE}.pt" in named
    for checkpoint in named:
        assert (ASSETS / checkpoint).is_file(), checkpoint
        record = read_record(checkpoint.removesuffix(".pt"))
        assert sha256_of(ASSETS / checkpoint) == record.sha256


@pytest.fixture
def assets_copy(tmp_path):
    folder = tmp_path / "assets"
    folder.mkdir()
    for suffix in (".pt", ".json"):
        shutil.copy(ASSETS / f"{COURSE_BACKBONE}{suffix}", folder)
    return folder


def test_missing_weights_say_how_to_restore_them(assets_copy):
    (assets_copy / f"{COURSE_BACKBONE}.pt").unlink()
    with pytest.raises(PretrainedWeightsError, match="missing") as error:
        load_pretrained(folder=assets_copy)
    assert "git checkout" in str(error.value) and "python -m hw_utils.models.pretrain" in str(
        error.value
    )


def test_changed_weights_are_refused(assets_copy):
    path = assets_copy / f"{COURSE_BACKBONE}.pt"
    data = bytearray(path.read_bytes())
    data[-20] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(PretrainedWeightsError, match=r"have changed.*SHA-256"):
        load_pretrained(folder=assets_copy)


def test_missing_record_is_a_clear_error(assets_copy):
    (assets_copy / f"{COURSE_BACKBONE}.json").unlink()
    with pytest.raises(PretrainedWeightsError, match="No record"):
        load_pretrained(folder=assets_copy)


# ---- the pretraining script ---------------------------------------------------------------


def test_pretraining_script_runs_and_is_reproducible(tmp_path, capsys):
    for run in ("a", "b"):
        assert pretrain_script.main(["--tiny", "--out", str(tmp_path / run)]) == 0
    printed = capsys.readouterr().out
    assert "validation accuracy" in printed and "sha256" in printed
    first, second = (read_record(COURSE_BACKBONE, tmp_path / run) for run in ("a", "b"))
    assert first.sha256 == second.sha256, "same seed, same machine: same weights"
    assert first.data["train_size"] == pretrain_script.TINY.train_size
    assert first.pretrain_classes == pretrain_script.PRETRAIN_CLASSES
    model = load_pretrained(COURSE_BACKBONE, tmp_path / "a")
    assert model(torch.rand(2, 3, 32, 32)).shape == (2, len(first.pretrain_classes))


def test_shipped_record_was_made_by_the_full_setting():
    record = read_record()
    full = pretrain_script.FULL
    assert record.data["train_size"] == full.train_size
    assert record.training["epochs"] == full.epochs
    assert record.architecture["widths"] == list(full.widths)
    assert record.pretrain_classes == full.classes


# ---- ImageNet ResNet-18, up to the download -----------------------------------------------


@pytest.fixture
def empty_torch_hub(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "hub"))

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    return tmp_path / "hub"


def test_imagenet_backbone_without_download_names_the_fixes(empty_torch_hub):
    with pytest.raises(PretrainedWeightsError, match="download=False") as error:
        load_backbone("imagenet")
    assert "download=True" in str(error.value) and "load_backbone('shapes')" in str(error.value)


def test_imagenet_backbone_offline_is_a_clear_error(empty_torch_hub):
    with pytest.raises(PretrainedWeightsError, match=r"could not be loaded.*no network"):
        load_backbone("imagenet", download=True)


def test_unknown_backbone():
    with pytest.raises(ValueError, match="choose one of"):
        load_backbone("vgg")
