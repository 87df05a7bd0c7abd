"""MobileNetV3-Large and -Small (Howard et al., "Searching for MobileNetV3", ICCV 2019).

The two tables below are the paper's Tables 1 (Large) and 2 (Small), one row per "bneck"
(:class:`~mnlib.blocks.inverted_residual_v3.InvertedResidualV3`), grouped into stages by the
resolution they work at. Around the bottlenecks:

* stem: 3×3 conv, stride 2, 3 → 16 channels, BN, h-swish;
* last conv: 1×1 to 6 × the last bottleneck's width (Large 160 → 960, Small 96 → 576), BN, h-swish;
* head, after global average pooling: the paper's first "NBN" 1×1 conv on the pooled vector
  (here ``nn.Linear``, with bias, no BN): 960 → 1280 (Small 576 → 1024), h-swish; then dropout
  and the classifier (the second "NBN" conv).

h-swish appears only in the second half of the network (paper §5.2): the first bottlenecks use
plain ReLU ("RE"), the later ones h-swish ("HS"). Weight for weight compatible with
torchvision's ``mobilenet_v3_large``/``mobilenet_v3_small``.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import NamedTuple

import torch
from torch import nn

from mnlib.blocks.conv import ActivationFactory, ConvBNAct, make_divisible
from mnlib.blocks.inverted_residual_v3 import InvertedResidualV3
from mnlib.models.checks import check_dropout, check_image_batch, check_width_mult
from mnlib.models.init import init_torchvision_style
from mnlib.models.registry import register_model
from mnlib.models.stages import stages_without_first_downsampling
from mnlib.models.weights import Reference, build_model

RE = nn.ReLU  # the paper's "RE" (plain ReLU, not ReLU6)
HS = nn.Hardswish  # the paper's "HS": x · ReLU6(x + 3) / 6
# BatchNorm as the paper trained it (TensorFlow's defaults, kept by torchvision). The eps
# changes eval outputs, so it matters for loading weights.
BN_EPS = 1e-3
BN_MOMENTUM = 0.01


class Bneck(NamedTuple):
    """One row of the paper's tables: a bottleneck block."""

    in_channels: int
    expanded_channels: int  # the paper's "exp size"
    out_channels: int  # the paper's "#out"
    kernel_size: int
    use_se: bool
    activation: ActivationFactory  # the paper's "NL": RE or HS
    stride: int


# Paper Table 1, one tuple per stage. The comment is the input feature map at 224×224.
# fmt: off
LARGE_STAGES = (
    (   #     in  exp  out  k  SE     NL  s
        Bneck(16,  16,  16, 3, False, RE, 1),  # 112²
    ),
    (
        Bneck(16,  64,  24, 3, False, RE, 2),  # 112²
        Bneck(24,  72,  24, 3, False, RE, 1),  # 56²
    ),
    (
        Bneck(24,  72,  40, 5, True,  RE, 2),  # 56²
        Bneck(40, 120,  40, 5, True,  RE, 1),  # 28²
        Bneck(40, 120,  40, 5, True,  RE, 1),  # 28²
    ),
    (
        Bneck(40, 240,  80, 3, False, HS, 2),  # 28²
        Bneck(80, 200,  80, 3, False, HS, 1),  # 14²
        Bneck(80, 184,  80, 3, False, HS, 1),  # 14²
        Bneck(80, 184,  80, 3, False, HS, 1),  # 14²
        Bneck(80, 480, 112, 3, True,  HS, 1),  # 14²
        Bneck(112, 672, 112, 3, True, HS, 1),  # 14²
    ),
    (
        Bneck(112, 672, 160, 5, True, HS, 2),  # 14²
        Bneck(160, 960, 160, 5, True, HS, 1),  # 7²
        Bneck(160, 960, 160, 5, True, HS, 1),  # 7²
    ),
)
LARGE_HEAD_CHANNELS = 1280

# Paper Table 2.
SMALL_STAGES = (
    (   #     in  exp  out  k  SE     NL  s
        Bneck(16,  16,  16, 3, True,  RE, 2),  # 112²
    ),
    (
        Bneck(16,  72,  24, 3, False, RE, 2),  # 56²
        Bneck(24,  88,  24, 3, False, RE, 1),  # 28²
    ),
    (
        Bneck(24,  96,  40, 5, True,  HS, 2),  # 28²
        Bneck(40, 240,  40, 5, True,  HS, 1),  # 14²
        Bneck(40, 240,  40, 5, True,  HS, 1),  # 14²
        Bneck(40, 120,  48, 5, True,  HS, 1),  # 14²
        Bneck(48, 144,  48, 5, True,  HS, 1),  # 14²
    ),
    (
        Bneck(48, 288,  96, 5, True,  HS, 2),  # 14²
        Bneck(96, 576,  96, 5, True,  HS, 1),  # 7²
        Bneck(96, 576,  96, 5, True,  HS, 1),  # 7²
    ),
)
# fmt: on
SMALL_HEAD_CHANNELS = 1024

LAST_CONV_EXPANSION = 6  # last 1×1 conv: 6 × the last bottleneck's width (160 → 960, 96 → 576)


class MobileNetV3(nn.Module):
    """MobileNetV3 built from a table of stages of :class:`Bneck` rows.

    Shapes: ``[N, 3, H, W] → stem [N, 16, H/2, W/2] → stages [N, 160 | 96, H/32, W/32]
    → last_conv [N, 960 | 576, H/32, W/32] → pool [N, 960 | 576] → head [N, 1280 | 1024]
    → [N, num_classes]``. The total stride is 32 (8 with ``cifar=True``), so ``H`` and ``W``
    must be at least 32 (8).

    ``width_mult`` scales every channel count, rounded by ``make_divisible(c * width_mult, 8)``
    (torchvision's ``adjust_channels``; the head width shrinks with it too). ``cifar=True``: the
    stem and the first stride-2 bottleneck keep stride 1, so a 32×32 image ends as a 4×4 map
    instead of 1×1; every layer and weight shape stays.
    """

    def __init__(
        self,
        stages: tuple[tuple[Bneck, ...], ...],
        head_channels: int,
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
        if cifar:
            stages = stages_without_first_downsampling(stages)

        def scaled(channels: int) -> int:
            return make_divisible(channels * width_mult, 8)

        bn = {"bn_eps": BN_EPS, "bn_momentum": BN_MOMENTUM}
        first = stages[0][0]
        self.stem = ConvBNAct(3, scaled(first.in_channels), 3, stem_stride, activation=HS, **bn)
        stage_modules = []
        for stage in stages:
            blocks = [
                InvertedResidualV3(
                    scaled(row.in_channels),
                    scaled(row.expanded_channels),
                    scaled(row.out_channels),
                    row.kernel_size,
                    row.stride,
                    use_se=row.use_se,
                    activation=row.activation,
                    **bn,
                )
                for row in stage
            ]
            stage_modules.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stage_modules)

        last_in = scaled(stages[-1][-1].out_channels)
        last_out = LAST_CONV_EXPANSION * last_in
        self.last_conv = ConvBNAct(last_in, last_out, 1, activation=HS, **bn)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Sequential(
            OrderedDict(fc=nn.Linear(last_out, scaled(head_channels)), act=HS())
        )
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(scaled(head_channels), num_classes)

        # The smallest input that still reaches the classifier as a 1×1 map.
        self.min_size = stem_stride * math.prod(row.stride for stage in stages for row in stage)
        init_torchvision_style(self, linear_std=0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image_batch(x, channels=3, min_size=self.min_size, model=type(self).__name__)
        x = self.last_conv(self.stages(self.stem(x)))
        x = torch.flatten(self.pool(x), 1)
        return self.classifier(self.dropout(self.head(x)))


def build_v3(
    stages: tuple[tuple[Bneck, ...], ...],
    head_channels: int,
    reference: str,
    num_classes: int,
    cifar: bool,
    width_mult: float,
    dropout: float,
    pretrained: bool,
) -> MobileNetV3:
    """:func:`~mnlib.models.weights.build_model` for Large or Small; ``reference`` is the
    torchvision name."""
    return build_model(
        MobileNetV3,
        stages,
        head_channels,
        reference=Reference("torchvision", reference),
        pretrained=pretrained,
        num_classes=num_classes,
        cifar=cifar,
        width_mult=width_mult,
        dropout=dropout,
    )


@register_model
def mobilenet_v3_large(
    num_classes: int = 1000,
    *,
    cifar: bool = False,
    width_mult: float = 1.0,
    dropout: float = 0.2,
    pretrained: bool = False,
) -> MobileNetV3:
    """MobileNetV3-Large (paper Table 1) = torchvision ``mobilenet_v3_large``.

    5,483,032 parameters at 1000 classes; 4,214,842 with ``cifar=True`` and 10 classes.
    ``dropout`` defaults to 0.2, as in torchvision.
    """
    return build_v3(
        LARGE_STAGES,
        LARGE_HEAD_CHANNELS,
        "mobilenet_v3_large",
        num_classes,
        cifar,
        width_mult,
        dropout,
        pretrained,
    )


@register_model
def mobilenet_v3_small(
    num_classes: int = 1000,
    *,
    cifar: bool = False,
    width_mult: float = 1.0,
    dropout: float = 0.2,
    pretrained: bool = False,
) -> MobileNetV3:
    """MobileNetV3-Small (paper Table 2) = torchvision ``mobilenet_v3_small``.

    2,542,856 parameters at 1000 classes; 1,528,106 with ``cifar=True`` and 10 classes.
    ``dropout`` defaults to 0.2, as in torchvision.
    """
    return build_v3(
        SMALL_STAGES,
        SMALL_HEAD_CHANNELS,
        "mobilenet_v3_small",
        num_classes,
        cifar,
        width_mult,
        dropout,
        pretrained,
    )
