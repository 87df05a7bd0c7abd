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

import torch
from torch import nn

from mnlib.blocks.conv import ConvBNAct, make_divisible
from mnlib.blocks.separable import DepthwiseSeparableConv
from mnlib.models.checks import check_dropout, check_image_batch, check_width_mult
from mnlib.models.init import init_tensorflow_style
from mnlib.models.registry import register_model
from mnlib.models.stages import Stage, repeat_block
from mnlib.models.weights import Reference, build_model

STEM_CHANNELS = 32  # paper Table 1, first row: "Conv / s2, 3×3×3×32"

# Paper Table 1, grouped into runs of equal width as timm does. Every depthwise kernel is 3×3.
# fmt: off
MOBILENET_V1_STAGES = (
    #     channels  repeats  stride      output at 224
    Stage(      64,       1,      1),  # 112×112
    Stage(     128,       2,      2),  # 56×56
    Stage(     256,       2,      2),  # 28×28
    Stage(     512,       6,      2),  # 14×14  (the stride-2 layer, then the paper's "5×" rows)
    Stage(    1024,       2,      2),  # 7×7    (the second layer has stride 1, see above)
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

        stages = []
        for stage in MOBILENET_V1_STAGES:
            out_channels = make_divisible(stage.channels * width_mult)
            stages.append(repeat_block(DepthwiseSeparableConv, in_channels, out_channels, stage))
            in_channels = out_channels
        self.stages = nn.Sequential(*stages)

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


@register_model
def mobilenet_v1(
    num_classes: int = 1000,
    *,
    cifar: bool = False,
    width_mult: float = 1.0,
    dropout: float = 0.0,
    pretrained: bool = False,
) -> MobileNetV1:
    """MobileNetV1 1.0 = timm ``mobilenetv1_100`` (see :class:`MobileNetV1`).

    ``cifar=True``: stem stride 1 (3,217,226 parameters with 10 classes). ``dropout`` defaults to
    0, as in timm. ``pretrained=True`` loads timm's ImageNet weights (needs the internet).
    """
    return build_model(
        MobileNetV1,
        reference=Reference("timm", "mobilenetv1_100"),
        pretrained=pretrained,
        num_classes=num_classes,
        cifar=cifar,
        width_mult=width_mult,
        dropout=dropout,
    )
