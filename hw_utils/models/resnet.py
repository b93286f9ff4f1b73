"""A small ResNet in torchvision's conventions, for 32 x 32 images (the course's own backbone).

The layout follows ``torchvision.models.resnet`` so that code written for it (``model.fc`` as the
head, ``model.layer1``...) works on both::

    conv1 -> bn1 -> relu -> layer1 -> layer2 -> layer3 -> avgpool -> flatten -> fc

``conv1`` is a 3 x 3 convolution (ImageNet ResNets use 7 x 7 with stride 2 and a max pool, too
coarse for 32 x 32 images); each ``layer<k>`` is a sequence of :class:`BasicBlock` (two 3 x 3
convolutions with batch norm and an identity shortcut, or a 1 x 1 convolution with batch norm as
``downsample`` where the shape changes), the first block of ``layer2`` and ``layer3`` halving the
resolution. ``avgpool`` is a global average pool, so ``fc`` sees ``fc.in_features = widths[-1]``
features whatever the image size. This is the CIFAR ResNet family of He et al. (2016), whose
ResNet-20 is ``resnet_small(widths=(16, 32, 64), blocks=(3, 3, 3))``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

__all__ = ["BasicBlock", "ResNet", "resnet_small"]


def _conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    """``relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))``, torchvision's BasicBlock.

    ``shortcut`` is the identity, or ``downsample`` (1 x 1 convolution with ``stride``, then batch
    norm) when ``stride != 1`` or the number of channels changes. Input ``(N, in_channels, H, W)``,
    output ``(N, channels, ceil(H / stride), ceil(W / stride))``.
    """

    expansion = 1

    def __init__(self, in_channels: int, channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = _conv3x3(in_channels, channels, stride)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(channels, channels)
        self.bn2 = nn.BatchNorm2d(channels)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_channels != channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(channels),
            )
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    """A ResNet for small images: stem, ``len(widths)`` stages of :class:`BasicBlock`, global
    average pool, linear head ``fc``.

    Args:
        num_classes: outputs of ``fc`` (raw scores).
        widths: channels of each stage; stage ``k > 0`` halves the resolution.
        blocks: number of blocks in each stage (same length as ``widths``).
        in_channels: channels of the input images.
        stem_stride: stride of ``conv1`` (2 halves the resolution of every stage, and the cost).

    Maps ``(N, in_channels, H, W)`` to ``(N, num_classes)``; ``fc`` sees the ``(N, widths[-1])``
    globally pooled features.
    """

    def __init__(
        self,
        num_classes: int,
        widths: Sequence[int] = (32, 64, 128),
        blocks: Sequence[int] = (1, 1, 1),
        in_channels: int = 3,
        stem_stride: int = 1,
    ) -> None:
        super().__init__()
        widths, blocks = tuple(widths), tuple(blocks)
        if not widths or len(widths) != len(blocks) or min(widths) < 1 or min(blocks) < 1:
            raise ValueError(
                f"ResNet: widths {widths} and blocks {blocks} must be non-empty, positive and of "
                "the same length (one entry per stage), e.g. widths=(32, 64, 128), "
                "blocks=(1, 1, 1)."
            )
        self.widths, self.blocks = widths, blocks
        self.conv1 = _conv3x3(in_channels, widths[0], stem_stride)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        previous = widths[0]
        for stage, (width, count) in enumerate(zip(widths, blocks, strict=True)):
            stride = 1 if stage == 0 else 2
            layers = [BasicBlock(previous, width, stride)]
            layers += [BasicBlock(width, width) for _ in range(count - 1)]
            self.add_module(f"layer{stage + 1}", nn.Sequential(*layers))
            previous = width
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(previous, num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        # Each residual branch starts as (almost) nothing: the blocks begin near the identity.
        for module in self.modules():
            if isinstance(module, BasicBlock):
                nn.init.zeros_(module.bn2.weight)

    def forward(self, x: Tensor) -> Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        for k in range(len(self.widths)):
            x = getattr(self, f"layer{k + 1}")(x)
        return self.fc(torch.flatten(self.avgpool(x), 1))


def resnet_small(
    num_classes: int,
    *,
    widths: Sequence[int] = (32, 64, 128),
    blocks: Sequence[int] = (1, 1, 1),
    in_channels: int = 3,
    stem_stride: int = 1,
) -> ResNet:
    """The course's backbone architecture: :class:`ResNet` with these arguments (by default
    three stages of one block, 32/64/128 channels)."""
    return ResNet(
        num_classes, widths=widths, blocks=blocks, in_channels=in_channels, stem_stride=stem_stride
    )
