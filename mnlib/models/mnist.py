"""The Part I models for MNIST (1×28×28 digits, 10 classes): an MLP and a small CNN."""

from __future__ import annotations

import torch
from torch import nn

from mnlib.models.checks import check_dropout, check_image_batch
from mnlib.models.registry import register_model


class MLP(nn.Module):
    """Flatten the image, then fully connected layers with ReLU and dropout.

    Shapes: ``[N, 1, 28, 28] → [N, 784] → [N, hidden[0]] → … → [N, num_classes]``.
    """

    def __init__(
        self,
        num_classes: int = 10,
        hidden: tuple[int, ...] = (512, 256),
        dropout: float = 0.2,
        image_size: int = 28,
    ) -> None:
        super().__init__()
        self.image_size = image_size
        widths = (image_size * image_size, *hidden)
        layers: list[nn.Module] = [nn.Flatten()]
        for width_in, width_out in zip(widths[:-1], widths[1:], strict=True):
            layers += [nn.Linear(width_in, width_out), nn.ReLU(inplace=True), nn.Dropout(dropout)]
        layers.append(nn.Linear(widths[-1], num_classes))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image_batch(x, channels=1, min_size=self.image_size, model="MLP", exact=True)
        return self.layers(x)


# Three conv stages, each halving the map: (out_channels, kernel) per stage.
CNN_STAGES: tuple[tuple[int, int], ...] = (
    (16, 3),  # 28×28 → 14×14
    (32, 3),  # 14×14 → 7×7
    (64, 3),  # 7×7 → 3×3
)


def conv_stage(in_channels: int, out_channels: int, kernel_size: int) -> nn.Sequential:
    """conv k×k → max-pool 2×2 → BatchNorm → ReLU: ``[N, C_in, H, W] → [N, C_out, H/2, W/2]``.

    Pooling comes *before* BatchNorm and ReLU. ReLU commutes with max-pooling exactly, and
    BatchNorm nearly does (a per-channel affine map, increasing when its scale is positive), so
    the network computes almost the same function, while BatchNorm and ReLU touch 4× fewer
    values. That is the reason for the order: on a CPU these elementwise passes over memory are
    a large share of a small network's work.
    """
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False),
        nn.MaxPool2d(2),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class CNN(nn.Module):
    """A small CNN: three conv stages (:func:`conv_stage`), then one linear layer.

    Shapes: ``[N, 1, 28, 28] → [N, 16, 14, 14] → [N, 32, 7, 7] → [N, 64, 3, 3] → [N, 576]
    → [N, num_classes]``. 29,178 parameters and about 1.9 M multiply-adds per image.

    The weights are stored channels-last (NHWC), the layout oneDNN's CPU convolutions are
    written for; for a 1-channel input NCHW and NHWC are the same bytes, so nothing else
    changes.
    """

    def __init__(self, num_classes: int = 10, dropout: float = 0.0) -> None:
        super().__init__()
        stages: list[nn.Module] = []
        in_channels = 1
        for out_channels, kernel_size in CNN_STAGES:
            stages.append(conv_stage(in_channels, out_channels, kernel_size))
            in_channels = out_channels
        self.features = nn.Sequential(*stages)
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Dropout(dropout), nn.Linear(in_channels * 3 * 3, num_classes)
        )
        self.to(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image_batch(x, channels=1, min_size=28, model="CNN")
        return self.classifier(self.features(x))


@register_model
def mlp(
    num_classes: int = 10, *, hidden: tuple[int, ...] = (512, 256), dropout: float = 0.2
) -> MLP:
    """Chapter 2's MLP for MNIST: 784 → 512 → 256 → 10 with ReLU and dropout 0.2."""
    return MLP(num_classes, hidden=hidden, dropout=check_dropout(dropout))


@register_model
def cnn(num_classes: int = 10, *, dropout: float = 0.0) -> CNN:
    """Chapter 3's CNN for MNIST (see :class:`CNN`)."""
    return CNN(num_classes, dropout=check_dropout(dropout))
