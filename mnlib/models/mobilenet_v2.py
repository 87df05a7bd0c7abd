"""MobileNetV2 (Sandler et al., "MobileNetV2: Inverted Residuals and Linear Bottlenecks",
CVPR 2018).

A 3×3 stem conv, 17 inverted residual blocks (:class:`InvertedResidual`), a 1×1 conv to 1280
channels, then pooling and a linear classifier. Weight for weight compatible with torchvision's
``mobilenet_v2`` (ReLU6 everywhere except the linear bottlenecks, dropout 0.2 before the
classifier).

``cifar=True`` applies the two stride changes used by chenyaofo/pytorch-cifar-models: stem stride
2 → 1 and the first block of the 24-channel stage stride 2 → 1. Total stride 8, a 4×4 last map
at 32×32; every layer and weight shape (except the classifier's) stays as in torchvision.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn

from mnlib.blocks.conv import ConvBNAct, make_divisible
from mnlib.blocks.inverted_residual import InvertedResidual
from mnlib.models.checks import (
    check_dropout,
    check_image_batch,
    check_pretrained_layout,
    check_width_mult,
)
from mnlib.models.init import init_torchvision_style
from mnlib.models.registry import register_model
from mnlib.models.weights import expand_module_map, load_pretrained, numbered_conv_bn


class Stage(NamedTuple):
    """One bottleneck row of paper Table 2: ``n`` inverted residual blocks in a row."""

    t: int  # expansion ratio: hidden width = t × input width
    c: int  # output channels
    n: int  # number of blocks
    s: int  # stride of the first block (the others have stride 1)


STEM_CHANNELS = 32  # Table 2, first row: conv2d 3×3, 32 channels, stride 2
LAST_CHANNELS = 1280  # Table 2, the conv2d 1×1 before pooling

# Paper Table 2 (all depthwise kernels are 3×3).
# fmt: off
MOBILENET_V2_STAGES = (
    #     t    c  n  s      input at 224
    Stage(1,  16, 1, 1),  # 112²×32
    Stage(6,  24, 2, 2),  # 112²×16
    Stage(6,  32, 3, 2),  # 56²×24
    Stage(6,  64, 4, 2),  # 28²×32
    Stage(6,  96, 3, 1),  # 14²×64
    Stage(6, 160, 3, 2),  # 14²×96
    Stage(6, 320, 1, 1),  # 7²×160
)
# fmt: on
# CIFAR: the 24-channel stage keeps its input size (and the stem gets stride 1, below).
MOBILENET_V2_CIFAR_STAGES = (
    MOBILENET_V2_STAGES[0],
    MOBILENET_V2_STAGES[1]._replace(s=1),
    *MOBILENET_V2_STAGES[2:],
)


class MobileNetV2(nn.Module):
    """Stem → inverted residual stages → 1×1 conv to 1280 → pool → dropout → linear.

    Shapes (224×224): ``[N, 3, 224, 224] → stem [N, 32, 112, 112] → [N, 16, 112, 112]
    → [N, 24, 56, 56] → [N, 32, 28, 28] → [N, 64, 14, 14] → [N, 96, 14, 14] → [N, 160, 7, 7]
    → [N, 320, 7, 7] → head [N, 1280, 7, 7] → pool [N, 1280] → [N, num_classes]``.
    3,504,872 parameters and 301 M MACs with 1000 classes.

    ``width_mult`` multiplies the stem and every block's output width, rounded with
    ``make_divisible`` as torchvision does; the last conv has ``1280 × max(1, width_mult)``
    channels (the paper, §6.1, does not shrink it for small multipliers).
    """

    def __init__(
        self,
        num_classes: int = 1000,
        *,
        cifar: bool = False,
        width_mult: float = 1.0,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        check_width_mult(width_mult)
        check_dropout(dropout)
        stem_stride = 1 if cifar else 2
        stages = MOBILENET_V2_CIFAR_STAGES if cifar else MOBILENET_V2_STAGES
        in_channels = make_divisible(STEM_CHANNELS * width_mult)
        self.stem = ConvBNAct(3, in_channels, 3, stem_stride, activation=nn.ReLU6)

        stage_modules = []
        for stage in stages:
            out_channels = make_divisible(stage.c * width_mult)
            blocks = []
            for index in range(stage.n):
                stride = stage.s if index == 0 else 1
                blocks.append(InvertedResidual(in_channels, out_channels, stride, stage.t))
                in_channels = out_channels
            stage_modules.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stage_modules)

        last_channels = make_divisible(LAST_CHANNELS * max(1.0, width_mult))
        self.head = ConvBNAct(in_channels, last_channels, 1, activation=nn.ReLU6)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(last_channels, num_classes)

        # The smallest input that still reaches the classifier as a 1×1 map.
        self.min_size = stem_stride * math.prod(stage.s for stage in stages)
        init_torchvision_style(self, linear_std=0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image_batch(x, channels=3, min_size=self.min_size, model=type(self).__name__)
        x = self.head(self.stages(self.stem(x)))
        x = torch.flatten(self.pool(x), 1)
        return self.classifier(self.dropout(x))

    def reference_key_map(self) -> dict[str, str]:
        """Own state-dict key → torchvision ``mobilenet_v2`` key.

        torchvision keeps one flat ``features`` list: ``features.0`` is the stem, ``features.1``
        to ``features.17`` the blocks, ``features.18`` the last 1×1 conv. Inside a block, ``conv``
        is a flat list too: [expand (absent when t = 1)], depthwise, project conv, project BN.
        """
        modules = numbered_conv_bn("stem", "features.0")  # own module → torchvision module
        index = 1  # position in torchvision's `features`
        for s, stage in enumerate(self.stages):
            for b, block in enumerate(stage):
                ours, theirs = f"stages.{s}.{b}", f"features.{index}.conv"
                position = 0  # position in torchvision's `conv` list
                if isinstance(block.expand, ConvBNAct):
                    modules.update(numbered_conv_bn(f"{ours}.expand", f"{theirs}.0"))
                    position = 1
                modules.update(numbered_conv_bn(f"{ours}.depthwise", f"{theirs}.{position}"))
                modules[f"{ours}.project.conv"] = f"{theirs}.{position + 1}"
                modules[f"{ours}.project.bn"] = f"{theirs}.{position + 2}"
                index += 1
        modules.update(numbered_conv_bn("head", f"features.{index}"))
        modules["classifier"] = "classifier.1"  # classifier.0 is the Dropout
        return expand_module_map(self, modules)


@register_model
def mobilenet_v2(
    num_classes: int = 1000,
    *,
    cifar: bool = False,
    width_mult: float = 1.0,
    dropout: float | None = None,
    pretrained: bool = False,
) -> MobileNetV2:
    """MobileNetV2 = torchvision ``mobilenet_v2`` (see :class:`MobileNetV2`).

    ``cifar=True``: stem and 24-channel stage with stride 1 (2,236,682 parameters with 10
    classes). ``dropout`` defaults to 0.2, as in torchvision. ``pretrained=True`` loads
    torchvision's ImageNet weights (needs the internet).
    """
    if pretrained:
        check_pretrained_layout(
            "mobilenet_v2", num_classes=num_classes, cifar=cifar, width_mult=width_mult
        )
    model = MobileNetV2(
        num_classes,
        cifar=cifar,
        width_mult=width_mult,
        dropout=0.2 if dropout is None else dropout,
    )
    if pretrained:
        load_pretrained(model, "torchvision", "mobilenet_v2")
    return model
