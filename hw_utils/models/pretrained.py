"""Pretrained backbones: the course's own, shipped with the package, and torchvision's ImageNet
ResNet-18, downloaded when online.

The course's backbone (``"shapes"``) is a :func:`hw_utils.models.resnet_small` pretrained on some
of the shape classes by ``python -m hw_utils.models.pretrain``, which writes two files to
``hw_utils/assets/``: the weights ``<name>.pt`` (a state dict) and the record ``<name>.json``
saying how they were made (architecture, classes, data, training, accuracy) and their SHA-256.
:func:`load_pretrained` refuses weights whose hash differs from the record's, with a message that
says how to get the right file back.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import nn

from hw_utils.models.resnet import ResNet, resnet_small

__all__ = [
    "ASSETS",
    "BACKBONES",
    "COURSE_BACKBONE",
    "PretrainedRecord",
    "PretrainedWeightsError",
    "load_backbone",
    "load_pretrained",
    "read_record",
    "sha256_of",
]

ASSETS = Path(__file__).resolve().parent.parent / "assets"
"""The package's data folder, ``hw_utils/assets``."""

COURSE_BACKBONE = "shapes_resnet"
"""File name (without suffix) of the course's pretrained backbone in :data:`ASSETS`."""

BACKBONES: tuple[str, ...] = ("shapes", "imagenet")
"""Names :func:`load_backbone` knows."""

REBUILD = "python -m hw_utils.models.pretrain"


class PretrainedWeightsError(RuntimeError):
    """Pretrained weights are missing, changed, or cannot be downloaded; the message says what to
    do."""


class PretrainedRecord(NamedTuple):
    """How a pretrained backbone was made (the ``<name>.json`` beside its weights)."""

    name: str
    weights: str
    """File name of the state dict, beside the record."""
    sha256: str
    """Hex SHA-256 of the weights file."""
    architecture: dict[str, Any]
    """Keyword arguments of :func:`hw_utils.models.resnet_small`."""
    pretrain_classes: tuple[str, ...]
    """The shape classes it was trained on, in label order."""
    transfer_classes: tuple[str, ...]
    """The other shape classes, never seen in pretraining."""
    data: dict[str, Any]
    training: dict[str, Any]
    result: dict[str, Any]
    """``val_accuracy`` (percent, on held-out images of the pretraining classes), ``seconds``..."""
    software: dict[str, Any]

    def to_json(self) -> str:
        return json.dumps(self._asdict(), indent=1) + "\n"


def sha256_of(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _restore_hint(path: Path) -> str:
    return (
        f"It ships with the course package: restore it from the course repository (git checkout "
        f"-- {path.parent.name}/{path.name} in hw_utils, or reinstall the package with pip), or "
        f"rebuild weights and record together with `{REBUILD}`."
    )


def read_record(
    name: str = COURSE_BACKBONE, folder: str | os.PathLike = ASSETS
) -> PretrainedRecord:
    """The record ``<folder>/<name>.json`` of a pretrained backbone."""
    path = Path(folder) / f"{name}.json"
    if not path.is_file():
        raise PretrainedWeightsError(
            f"No record of the pretrained backbone {name!r}: {path} is missing. "
            + _restore_hint(path)
        )
    data = json.loads(path.read_text(encoding="utf-8"))
    data["pretrain_classes"] = tuple(data["pretrain_classes"])
    data["transfer_classes"] = tuple(data["transfer_classes"])
    return PretrainedRecord(**data)


def load_pretrained(name: str = COURSE_BACKBONE, folder: str | os.PathLike = ASSETS) -> ResNet:
    """The pretrained backbone ``name`` of ``folder`` (its head ``fc`` classifies the record's
    ``pretrain_classes``), on the CPU in eval mode, after checking the weights' SHA-256 against
    the record.

    Raises:
        PretrainedWeightsError: the record or the weights are missing, or the weights' hash
            differs from the record's (the message says how to restore them).
    """
    record = read_record(name, folder)
    path = Path(folder) / record.weights
    if not path.is_file():
        raise PretrainedWeightsError(
            f"The weights of the pretrained backbone {name!r} are missing: {path} does not "
            "exist. " + _restore_hint(path)
        )
    found = sha256_of(path)
    if found != record.sha256:
        raise PretrainedWeightsError(
            f"The weights {path} have changed: their SHA-256 is {found[:16]}..., the record "
            f"{path.with_suffix('.json').name} expects {record.sha256[:16]}... (a partial copy, a "
            "Git LFS pointer, or an edit). " + _restore_hint(path)
        )
    model = resnet_small(**record.architecture)
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model.eval()


def _imagenet_resnet18(download: bool) -> nn.Module:
    from torchvision.models import ResNet18_Weights, resnet18

    weights = ResNet18_Weights.IMAGENET1K_V1
    cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name
    fixes = (
        f"Fixes: call load_backbone('imagenet', download=True) on a machine with internet (it "
        f"downloads 45 MB once into {cached.parent}); or copy {cached.name} there from a machine "
        "that has it; or work offline with load_backbone('shapes')."
    )
    if not cached.is_file() and not download:
        raise PretrainedWeightsError(
            f"torchvision's ImageNet ResNet-18 weights are not in {cached.parent} and "
            f"download=False. {fixes}"
        )
    try:
        return resnet18(weights=weights, progress=False).eval()
    except (OSError, RuntimeError) as error:  # urllib's URLError is an OSError
        raise PretrainedWeightsError(
            f"torchvision's ImageNet ResNet-18 weights could not be loaded ({error}). {fixes}"
        ) from error


def load_backbone(name: str = "shapes", *, download: bool = False) -> nn.Module:
    """A pretrained backbone with a head ``model.fc``, on the CPU in eval mode.

    Args:
        name: ``"shapes"``: the course's own :func:`load_pretrained` (offline, about 0.3 M
            parameters, pretrained on 32 x 32 shape images); ``"imagenet"``: torchvision's
            ResNet-18 with its ImageNet weights (11.7 M parameters; needs them in torch's cache or
            ``download``).
        download: for ``"imagenet"``, let torchvision download the weights when they are not in
            its cache (needs internet).

    Raises:
        PretrainedWeightsError: the weights are missing, changed or cannot be downloaded.
    """
    if name == "shapes":
        return load_pretrained()
    if name == "imagenet":
        return _imagenet_resnet18(download)
    raise ValueError(f"load_backbone: unknown backbone {name!r}; choose one of {BACKBONES}.")
