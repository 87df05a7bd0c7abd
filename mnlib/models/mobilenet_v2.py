"""MobileNetV2 (Sandler et al., "MobileNetV2: Inverted Residuals and Linear Bottlenecks",
CVPR 2018).

A 3×3 stem conv, 17 inverted residual blocks (:class:`InvertedResidual`), a 1×1 conv to 1280
channels, then pooling and a linear classifier. Weight for weight compatible with torchvision's
``mobilenet_v2`` (ReLU6 everywhere except the linear bottlenecks, dropout 0.2 before the
classifier).

``cifar=True`` applies the two stride changes used by chenyaofo/pytorch-cifar-models: stem stride
2 → 1 and the first block of the 24-channel stage stride 2 → 1. Total stride 8, a 4×4 last map
at 32×32; every layer and weight shape (except the classifier's) stays as in torchvision.

``roadmap_mobilenet_v2`` is the simplified CIFAR-10 network of the course's source roadmap, kept
so that chapter 7 can measure the roadmap's claims: the same class built from another stage
table (:data:`ROADMAP_MOBILENET_V2_STAGES`, 15 blocks instead of 17) with a stride-1 stem.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import partial

import torch
from torch import nn

from mnlib.blocks.conv import ConvBNAct, make_divisible
from mnlib.blocks.inverted_residual import InvertedResidual
from mnlib.models.checks import check_dropout, check_image_batch, check_width_mult
from mnlib.models.init import init_torchvision_style
from mnlib.models.registry import register_model
from mnlib.models.stages import Stage, repeat_block, without_first_downsampling
from mnlib.models.weights import Reference, build_model

STEM_CHANNELS = 32  # Table 2, first row: conv2d 3×3, 32 channels, stride 2
LAST_CHANNELS = 1280  # Table 2, the conv2d 1×1 before pooling

# Paper Table 2, one bottleneck row per stage (all depthwise kernels are 3×3).
# fmt: off
MOBILENET_V2_STAGES = (
    #     c (channels)  n (repeats)  s (stride)  t (expansion)    input at 224
    Stage(          16,           1,          1,  expansion=1),  # 112²×32
    Stage(          24,           2,          2,  expansion=6),  # 112²×16
    Stage(          32,           3,          2,  expansion=6),  # 56²×24
    Stage(          64,           4,          2,  expansion=6),  # 28²×32
    Stage(          96,           3,          1,  expansion=6),  # 14²×64
    Stage(         160,           3,          2,  expansion=6),  # 14²×96
    Stage(         320,           1,          1,  expansion=6),  # 7²×160
)
# fmt: on

# The source roadmap's simplified CIFAR-10 MobileNetV2, as its code lists the blocks (in, out,
# stride, t): the paper's table with one block fewer in the 64- and the 96-channel stages
# (15 blocks, not 17), the paper's ImageNet strides, and a 3×3 stem of stride 1. Total stride
# 16: a 32×32 image ends as a 2×2 map. 2,064,138 parameters with 10 classes.
# fmt: off
ROADMAP_MOBILENET_V2_STAGES = (
    #     c (channels)  n (repeats)  s (stride)  t (expansion)    input at 32
    Stage(          16,           1,          1,  expansion=1),  # 32²×32
    Stage(          24,           2,          2,  expansion=6),  # 32²×16
    Stage(          32,           3,          2,  expansion=6),  # 16²×24
    Stage(          64,           3,          2,  expansion=6),  # 8²×32
    Stage(          96,           2,          1,  expansion=6),  # 4²×64
    Stage(         160,           3,          2,  expansion=6),  # 4²×96
    Stage(         320,           1,          1,  expansion=6),  # 2²×160
)
# fmt: on


class MobileNetV2(nn.Module):
    """Stem → inverted residual stages → last 1×1 conv to 1280 → pool → dropout → linear.

    Shapes (224×224): ``[N, 3, 224, 224] → stem [N, 32, 112, 112] → [N, 16, 112, 112]
    → [N, 24, 56, 56] → [N, 32, 28, 28] → [N, 64, 14, 14] → [N, 96, 14, 14] → [N, 160, 7, 7]
    → [N, 320, 7, 7] → last_conv [N, 1280, 7, 7] → pool [N, 1280] → [N, num_classes]``.
    3,504,872 parameters and 301 M MACs with 1000 classes.

    ``width_mult`` multiplies the stem and every block's output width, rounded with
    ``make_divisible`` as torchvision does; the last conv has ``1280 × max(1, width_mult)``
    channels (the paper, §6.1, does not shrink it for small multipliers). ``cifar=True``: the
    stem and the first stride-2 stage (24 channels) keep stride 1.

    ``stages`` replaces the paper's table (a tuple of :class:`Stage`, e.g.
    :data:`ROADMAP_MOBILENET_V2_STAGES`) and ``stem_stride`` the stem's stride (default 2, or 1
    with ``cifar=True``); the paper's network needs neither.
    """

    def __init__(
        self,
        num_classes: int = 1000,
        *,
        cifar: bool = False,
        width_mult: float = 1.0,
        dropout: float = 0.2,
        stages: Sequence[Stage] = MOBILENET_V2_STAGES,
        stem_stride: int | None = None,
    ) -> None:
        super().__init__()
        check_width_mult(width_mult)
        check_dropout(dropout)
        if not stages or not all(isinstance(stage, Stage) for stage in stages):
            raise ValueError(f"stages must be a non-empty sequence of Stage rows, got {stages!r}")
        if stem_stride is None:
            stem_stride = 1 if cifar else 2
        elif stem_stride not in (1, 2):
            raise ValueError(f"stem_stride must be 1 or 2, got {stem_stride!r}")
        table = without_first_downsampling(stages) if cifar else tuple(stages)
        in_channels = make_divisible(STEM_CHANNELS * width_mult)
        self.stem = ConvBNAct(3, in_channels, 3, stem_stride, activation=nn.ReLU6)

        stages = []
        for stage in table:
            out_channels = make_divisible(stage.channels * width_mult)
            block = partial(InvertedResidual, expand_ratio=stage.expansion)
            stages.append(repeat_block(block, in_channels, out_channels, stage))
            in_channels = out_channels
        self.stages = nn.Sequential(*stages)

        last_channels = make_divisible(LAST_CHANNELS * max(1.0, width_mult))
        self.last_conv = ConvBNAct(in_channels, last_channels, 1, activation=nn.ReLU6)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(last_channels, num_classes)

        # The smallest input that still reaches the classifier as a 1×1 map.
        self.min_size = stem_stride * math.prod(stage.stride for stage in table)
        init_torchvision_style(self, linear_std=0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image_batch(x, channels=3, min_size=self.min_size, model=type(self).__name__)
        x = self.last_conv(self.stages(self.stem(x)))
        x = torch.flatten(self.pool(x), 1)
        return self.classifier(self.dropout(x))


@register_model
def mobilenet_v2(
    num_classes: int = 1000,
    *,
    cifar: bool = False,
    width_mult: float = 1.0,
    dropout: float = 0.2,
    pretrained: bool = False,
) -> MobileNetV2:
    """MobileNetV2 = torchvision ``mobilenet_v2`` (see :class:`MobileNetV2`).

    ``cifar=True``: stem and 24-channel stage with stride 1 (2,236,682 parameters with 10
    classes). ``dropout`` defaults to 0.2, as in torchvision. ``pretrained=True`` loads
    torchvision's ImageNet weights (needs the internet).
    """
    return build_model(
        MobileNetV2,
        reference=Reference("torchvision", "mobilenet_v2"),
        pretrained=pretrained,
        num_classes=num_classes,
        cifar=cifar,
        width_mult=width_mult,
        dropout=dropout,
    )


@register_model
def roadmap_mobilenet_v2(
    num_classes: int = 10,
    *,
    cifar: bool = True,
    width_mult: float = 1.0,
    dropout: float = 0.0,
) -> MobileNetV2:
    """The source roadmap's simplified CIFAR-10 MobileNetV2 (2,064,138 parameters, 10 classes).

    :class:`MobileNetV2` built from :data:`ROADMAP_MOBILENET_V2_STAGES` with a 3×3 stride-1
    stem: ``[N, 3, 32, 32] → stem [N, 32, 32, 32] → … → [N, 320, 2, 2] → last_conv
    [N, 1280, 2, 2] → [N, num_classes]``. The roadmap has no dropout, hence ``dropout=0.0``.
    It is a 32×32 design from the start: ``cifar`` must stay True (it is accepted so that code
    that builds every CIFAR model with ``cifar=True`` builds this one too).
    """
    if not cifar:
        raise ValueError(
            "roadmap_mobilenet_v2 is defined for 32×32 CIFAR images only (cifar=True); "
            "for the paper's ImageNet network use mobilenet_v2"
        )
    return MobileNetV2(
        num_classes,
        width_mult=width_mult,
        dropout=dropout,
        stages=ROADMAP_MOBILENET_V2_STAGES,
        stem_stride=1,
    )
