"""MobileNetV1 (Howard et al., "MobileNets: Efficient Convolutional Neural Networks for Mobile
Vision Applications", arXiv:1704.04861, 2017).

A plain stack of 13 depthwise-separable convolutions (:class:`DepthwiseSeparableConv`) after one
ordinary 3×3 conv; no shortcuts. Weight for weight compatible with timm's ``mobilenetv1_100``:

* ReLU6 instead of the paper's ReLU (as in timm and TF-slim);
* the 13th separable layer has stride 1 (paper Table 1 prints "s2", but its input and output
  are both 7×7; every implementation uses stride 1);
* no extra 1×1 "head" conv before pooling (timm's ``mobilenetv1_100h`` has one).

``cifar=True`` changes only the stem's stride (2 → 1), as kuangliu/pytorch-cifar does: total
stride 16, a 2×2 last map at 32×32.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn

from mnlib.blocks.conv import ConvBNAct, make_divisible
from mnlib.blocks.separable import DepthwiseSeparableConv
from mnlib.models.checks import (
    check_dropout,
    check_image_batch,
    check_pretrained_layout,
    check_width_mult,
)
from mnlib.models.init import init_tensorflow_style
from mnlib.models.registry import register_model
from mnlib.models.weights import expand_module_map, load_pretrained


class Stage(NamedTuple):
    """Consecutive depthwise-separable layers with the same output width."""

    out_channels: int  # c: channels after the pointwise conv
    repeats: int  # n: how many layers
    stride: int  # s: stride of the first layer's depthwise conv (the others have stride 1)


STEM_CHANNELS = 32  # paper Table 1, first row: "Conv / s2, 3×3×3×32"

# Paper Table 1, grouped into runs of equal width as timm does. Every depthwise kernel is 3×3.
# fmt: off
MOBILENET_V1_STAGES = (
    #        c  n  s      output at 224
    Stage(  64, 1, 1),  # 112×112
    Stage( 128, 2, 2),  # 56×56
    Stage( 256, 2, 2),  # 28×28
    Stage( 512, 6, 2),  # 14×14  (the stride-2 layer, then the paper's "5×" rows)
    Stage(1024, 2, 2),  # 7×7    (the second layer has stride 1, see the module docstring)
)
# fmt: on


class MobileNetV1(nn.Module):
    """Stem conv → 13 depthwise-separable layers → global average pool → dropout → linear.

    Shapes (224×224): ``[N, 3, 224, 224] → stem [N, 32, 112, 112] → [N, 64, 112, 112]
    → [N, 128, 56, 56] → [N, 256, 28, 28] → [N, 512, 14, 14] → [N, 1024, 7, 7] → pool
    [N, 1024] → [N, num_classes]``. 4,231,976 parameters and 569 M MACs with 1000 classes.

    ``width_mult`` (the paper's α, §3.3) multiplies every width, rounded with ``make_divisible``
    as timm does. ``cifar=True`` makes the stem stride 1.
    """

    def __init__(
        self,
        num_classes: int = 1000,
        *,
        cifar: bool = False,
        width_mult: float = 1.0,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        check_width_mult(width_mult)
        check_dropout(dropout)
        stem_stride = 1 if cifar else 2
        in_channels = make_divisible(STEM_CHANNELS * width_mult)
        self.stem = ConvBNAct(3, in_channels, 3, stem_stride, activation=nn.ReLU6)

        stage_modules = []
        for stage in MOBILENET_V1_STAGES:
            out_channels = make_divisible(stage.out_channels * width_mult)
            layers = []
            for index in range(stage.repeats):
                stride = stage.stride if index == 0 else 1
                layers.append(DepthwiseSeparableConv(in_channels, out_channels, stride))
                in_channels = out_channels
            stage_modules.append(nn.Sequential(*layers))
        self.stages = nn.Sequential(*stage_modules)

        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(in_channels, num_classes)

        # The smallest input that still reaches the classifier as a 1×1 map.
        self.min_size = stem_stride * math.prod(stage.stride for stage in MOBILENET_V1_STAGES)
        # As timm: a depthwise 3×3 conv gets fan_out 9, not torchvision's 9·channels.
        init_tensorflow_style(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image_batch(x, channels=3, min_size=self.min_size, model=type(self).__name__)
        x = self.stages(self.stem(x))
        x = torch.flatten(self.pool(x), 1)
        return self.classifier(self.dropout(x))

    def reference_key_map(self) -> dict[str, str]:
        """Own state-dict key → timm ``mobilenetv1_100`` key.

        timm names the stem ``conv_stem``/``bn1`` and groups the 13 layers into
        ``blocks.{stage}.{layer}`` (``conv_dw``, ``bn1``, ``conv_pw``, ``bn2``), as ``stages`` does.
        """
        modules = {"stem.conv": "conv_stem", "stem.bn": "bn1"}  # own module → timm module
        for s, stage in enumerate(self.stages):
            for b in range(len(stage)):
                ours, theirs = f"stages.{s}.{b}", f"blocks.{s}.{b}"
                modules[f"{ours}.depthwise.conv"] = f"{theirs}.conv_dw"
                modules[f"{ours}.depthwise.bn"] = f"{theirs}.bn1"
                modules[f"{ours}.pointwise.conv"] = f"{theirs}.conv_pw"
                modules[f"{ours}.pointwise.bn"] = f"{theirs}.bn2"
        modules["classifier"] = "classifier"
        return expand_module_map(self, modules)


@register_model
def mobilenet_v1(
    num_classes: int = 1000,
    *,
    cifar: bool = False,
    width_mult: float = 1.0,
    dropout: float | None = None,
    pretrained: bool = False,
) -> MobileNetV1:
    """MobileNetV1 1.0 = timm ``mobilenetv1_100`` (see :class:`MobileNetV1`).

    ``cifar=True``: stem stride 1 (3,217,226 parameters with 10 classes). ``dropout`` defaults to
    0, as in timm. ``pretrained=True`` loads timm's ImageNet weights (needs the internet).
    """
    if pretrained:
        check_pretrained_layout(
            "mobilenet_v1", num_classes=num_classes, cifar=cifar, width_mult=width_mult
        )
    model = MobileNetV1(
        num_classes,
        cifar=cifar,
        width_mult=width_mult,
        dropout=0.0 if dropout is None else dropout,
    )
    if pretrained:
        load_pretrained(model, "timm", "mobilenetv1_100")
    return model
