"""A small configurable CNN for the experiments (32 x 32 RGB inputs by default)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from torch import nn


def small_cnn(
    num_classes: int,
    *,
    in_channels: int = 3,
    input_size: int = 32,
    channels: Sequence[int] = (32, 64),
    hidden: int = 128,
    batch_norm: bool = False,
    dropout: float = 0.0,
    norm: Callable[[int], nn.Module] | None = None,
    dropout_layer: Callable[[float], nn.Module] = nn.Dropout,
) -> nn.Sequential:
    """``[Conv3x3(pad 1) -> [norm] -> ReLU -> MaxPool2d(2)] * len(channels) -> Flatten ->
    Linear(hidden) -> ReLU -> [dropout] -> Linear(num_classes)``.

    Args:
        num_classes: outputs (raw scores, no softmax).
        in_channels, input_size: the images are ``(N, in_channels, input_size, input_size)``;
            ``input_size`` must be divisible by ``2 ** len(channels)``.
        channels: output channels of each conv block.
        hidden: units of the hidden Linear layer (0: none, the features go straight to the
            output layer).
        batch_norm: put ``norm(channels)`` after each convolution (``nn.BatchNorm2d`` unless
            ``norm`` is given).
        dropout: probability of the dropout after the hidden layer (0: none).
        norm: the normalisation layer after each convolution, ``norm(channels) -> nn.Module``
            (it sees ``(N, channels, H, W)``).
        dropout_layer: the dropout layer to use, ``dropout_layer(p) -> nn.Module``.

    Returns:
        An ``nn.Sequential`` mapping ``(N, C, H, W)`` to scores ``(N, num_classes)``; convolutions
        that feed a normalisation layer have no bias (it would be cancelled).
    """
    if not channels:
        raise ValueError("small_cnn: give at least one conv block in channels.")
    if input_size % 2 ** len(channels):
        raise ValueError(
            f"small_cnn: input_size {input_size} is not divisible by 2 ** {len(channels)}: use "
            "fewer conv blocks or another input size."
        )
    layers: list[nn.Module] = []
    previous = in_channels
    for width in channels:
        layers.append(nn.Conv2d(previous, width, 3, padding=1, bias=not batch_norm))
        if batch_norm:
            layers.append(norm(width) if norm else nn.BatchNorm2d(width))
        layers += [nn.ReLU(), nn.MaxPool2d(2)]
        previous = width
    features = previous * (input_size // 2 ** len(channels)) ** 2
    layers.append(nn.Flatten())
    if hidden:
        layers += [nn.Linear(features, hidden), nn.ReLU()]
        if dropout:
            layers.append(dropout_layer(dropout))
        features = hidden
    layers.append(nn.Linear(features, num_classes))
    return nn.Sequential(*layers)
