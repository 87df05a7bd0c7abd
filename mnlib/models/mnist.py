"""The Part I models for MNIST (1×28×28 digits, 10 classes): an MLP and a small CNN."""

from __future__ import annotations

import torch
from torch import nn

from mnlib.blocks.conv import ConvBNAct
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
        check_image_batch(x, channels=1, min_size=self.image_size, model="MLP")
        if x.shape[-2:] != (self.image_size, self.image_size):
            raise ValueError(
                f"MLP expects {self.image_size}×{self.image_size} images; got "
                f"{x.shape[-2]}×{x.shape[-1]}"
            )
        return self.layers(x)


# Three conv stages, each halving the map: (out_channels, kernel) per stage.
CNN_STAGES: tuple[tuple[int, int], ...] = (
    (16, 3),  # 28×28 → 14×14
    (32, 3),  # 14×14 → 7×7
    (64, 3),  # 7×7 → 3×3
)


class CNN(nn.Module):
    """A small CNN: three stages of conv 3×3 → BatchNorm → ReLU → max-pool 2×2, then a linear layer.

    Shapes: ``[N, 1, 28, 28] → [N, 16, 14, 14] → [N, 32, 7, 7] → [N, 64, 3, 3] → [N, 576]
    → [N, num_classes]``. About 24 k parameters and 1.9 M multiply-adds per image.
    """

    def __init__(self, num_classes: int = 10, dropout: float = 0.0) -> None:
        super().__init__()
        stages: list[nn.Module] = []
        in_channels = 1
        for out_channels, kernel_size in CNN_STAGES:
            stages += [ConvBNAct(in_channels, out_channels, kernel_size), nn.MaxPool2d(2)]
            in_channels = out_channels
        self.features = nn.Sequential(*stages)
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Dropout(dropout), nn.Linear(in_channels * 3 * 3, num_classes)
        )

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
