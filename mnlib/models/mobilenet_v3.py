"""MobileNetV3-Large and -Small (Howard et al., "Searching for MobileNetV3", ICCV 2019).

The two tables below are the paper's Tables 1 (Large) and 2 (Small), one row per "bneck"
(:class:`~mnlib.blocks.inverted_residual_v3.InvertedResidualV3`), in torchvision's layout so that
torchvision's ImageNet weights load (``reference_key_map``). Around the bottlenecks:

* stem: 3×3 conv, stride 2, 3 → 16 channels, BN, h-swish;
* last conv: 1×1 to 6 × the last bottleneck's width (Large 160 → 960, Small 96 → 576), BN, h-swish;
* head: global average pool, then the paper's two "NBN" 1×1 convs on the pooled vector (here
  ``nn.Linear``, with bias, no BN): 960 → 1280 (Small 576 → 1024), h-swish, dropout, → classes.

h-swish appears only in the second half of the network (paper §5.2): the first bottlenecks use
plain ReLU ("RE"), the later ones h-swish ("HS").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import nn

from mnlib.blocks.conv import ActivationFactory, ConvBNAct, make_divisible
from mnlib.blocks.inverted_residual_v3 import BN_EPS, BN_MOMENTUM, InvertedResidualV3
from mnlib.models.checks import (
    check_dropout,
    check_image_batch,
    check_pretrained_layout,
    check_width_mult,
)
from mnlib.models.init import init_torchvision_style
from mnlib.models.registry import register_model
from mnlib.models.weights import expand_module_map, load_pretrained, numbered_conv_bn

RE = nn.ReLU  # the paper's "RE" (plain ReLU, not ReLU6)
HS = nn.Hardswish  # the paper's "HS": x · ReLU6(x + 3) / 6


class Bneck(NamedTuple):
    """One row of the paper's tables: a bottleneck block."""

    in_channels: int
    expanded_channels: int  # the paper's "exp size"
    out_channels: int  # the paper's "#out"
    kernel_size: int
    use_se: bool
    activation: ActivationFactory  # the paper's "NL": RE or HS
    stride: int


# Paper Table 1. The comment is the input feature map at 224×224.
LARGE_BLOCKS = (
    #     in  exp  out  k  SE     NL  s
    Bneck(16, 16, 16, 3, False, RE, 1),  # 112²
    Bneck(16, 64, 24, 3, False, RE, 2),  # 112²
    Bneck(24, 72, 24, 3, False, RE, 1),  # 56²
    Bneck(24, 72, 40, 5, True, RE, 2),  # 56²
    Bneck(40, 120, 40, 5, True, RE, 1),  # 28²
    Bneck(40, 120, 40, 5, True, RE, 1),  # 28²
    Bneck(40, 240, 80, 3, False, HS, 2),  # 28²
    Bneck(80, 200, 80, 3, False, HS, 1),  # 14²
    Bneck(80, 184, 80, 3, False, HS, 1),  # 14²
    Bneck(80, 184, 80, 3, False, HS, 1),  # 14²
    Bneck(80, 480, 112, 3, True, HS, 1),  # 14²
    Bneck(112, 672, 112, 3, True, HS, 1),  # 14²
    Bneck(112, 672, 160, 5, True, HS, 2),  # 14²
    Bneck(160, 960, 160, 5, True, HS, 1),  # 7²
    Bneck(160, 960, 160, 5, True, HS, 1),  # 7²
)
LARGE_HEAD_CHANNELS = 1280

# Paper Table 2.
SMALL_BLOCKS = (
    #     in  exp  out  k  SE     NL  s
    Bneck(16, 16, 16, 3, True, RE, 2),  # 112²
    Bneck(16, 72, 24, 3, False, RE, 2),  # 56²
    Bneck(24, 88, 24, 3, False, RE, 1),  # 28²
    Bneck(24, 96, 40, 5, True, HS, 2),  # 28²
    Bneck(40, 240, 40, 5, True, HS, 1),  # 14²
    Bneck(40, 240, 40, 5, True, HS, 1),  # 14²
    Bneck(40, 120, 48, 5, True, HS, 1),  # 14²
    Bneck(48, 144, 48, 5, True, HS, 1),  # 14²
    Bneck(48, 288, 96, 5, True, HS, 2),  # 14²
    Bneck(96, 576, 96, 5, True, HS, 1),  # 7²
    Bneck(96, 576, 96, 5, True, HS, 1),  # 7²
)
SMALL_HEAD_CHANNELS = 1024

LAST_CONV_EXPANSION = 6  # last 1×1 conv: 6 × the last bottleneck's width (160 → 960, 96 → 576)


class MobileNetV3(nn.Module):
    """MobileNetV3 built from a table of :class:`Bneck` rows.

    Shapes: ``[N, 3, H, W] → [N, num_classes]``. The total stride is 32 (8 with ``cifar=True``),
    so ``H`` and ``W`` must be at least 32 (8).

    ``width_mult`` scales every channel count, rounded by ``make_divisible(c * width_mult, 8)``
    (torchvision's ``adjust_channels``; the head width shrinks with it too). ``cifar=True``
    removes the first two down-samplings, the stem's and the first stride-2 bottleneck's,
    so a 32×32 image ends as a 4×4 map instead of 1×1; every layer and weight shape stays.
    """

    def __init__(
        self,
        blocks: Sequence[Bneck],
        head_channels: int,
        num_classes: int = 1000,
        *,
        width_mult: float = 1.0,
        dropout: float = 0.2,
        cifar: bool = False,
    ) -> None:
        super().__init__()
        check_width_mult(width_mult)
        check_dropout(dropout)
        self.min_size = 8 if cifar else 32

        def scaled(channels: int) -> int:
            return make_divisible(channels * width_mult, 8)

        bn = {"bn_eps": BN_EPS, "bn_momentum": BN_MOMENTUM}
        self.stem = ConvBNAct(
            3, scaled(blocks[0].in_channels), 3, stride=1 if cifar else 2, activation=HS, **bn
        )

        # CIFAR (architectures.md §10): the stem and this block keep stride 1, total stride 32 → 8.
        first_downsampling = next(i for i, row in enumerate(blocks) if row.stride == 2)
        self.blocks = nn.Sequential(
            *(
                InvertedResidualV3(
                    scaled(row.in_channels),
                    scaled(row.expanded_channels),
                    scaled(row.out_channels),
                    row.kernel_size,
                    stride=1 if cifar and i == first_downsampling else row.stride,
                    use_se=row.use_se,
                    activation=row.activation,
                )
                for i, row in enumerate(blocks)
            )
        )

        last_in = scaled(blocks[-1].out_channels)
        last_out = LAST_CONV_EXPANSION * last_in
        self.last_conv = ConvBNAct(last_in, last_out, 1, activation=HS, **bn)

        self.head = nn.Linear(last_out, scaled(head_channels))
        self.head_act = HS()
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(scaled(head_channels), num_classes)
        init_torchvision_style(self, linear_std=0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image_batch(x, channels=3, min_size=self.min_size, model="MobileNetV3")
        x = self.stem(x)  # [N, 16, H/2, W/2]
        x = self.blocks(x)  # [N, 160 | 96, H/32, W/32]
        x = self.last_conv(x)  # [N, 960 | 576, H/32, W/32]
        x = x.mean(dim=(2, 3))  # global average pool: [N, 960 | 576]
        x = self.dropout(self.head_act(self.head(x)))  # [N, 1280 | 1024]
        return self.classifier(x)  # [N, num_classes]

    def reference_key_map(self) -> dict[str, str]:
        """Own state-dict key → torchvision key, for ``load_reference_weights``.

        torchvision keeps stem, bottlenecks and last conv in one ``features`` Sequential
        (``features.0``, ``features.1`` … ``features.n``, ``features.n+1``). It numbers the
        layers of a conv unit (``0`` conv, ``1`` BN) and those of a bottleneck's ``block``,
        counting only the layers that exist: ``block.0`` is the expand conv, or the depthwise
        conv when there is no expansion. Its head is ``classifier.0`` and ``classifier.3``
        (``1`` and ``2`` are h-swish and dropout). Parameter names inside a layer
        (``weight``, ``running_mean``, ...) are the same on both sides.
        """
        modules = {
            **numbered_conv_bn("stem", "features.0"),
            **numbered_conv_bn("last_conv", f"features.{len(self.blocks) + 1}"),
            "head": "classifier.0",
            "classifier": "classifier.3",
        }
        for i, block in enumerate(self.blocks):
            own, reference = f"blocks.{i}", f"features.{i + 1}.block"
            layers = [
                name
                for name, present in [
                    ("expand", block.expands),
                    ("depthwise", True),
                    ("se", block.use_se),
                    ("project", True),
                ]
                if present
            ]
            for position, name in enumerate(layers):
                if name == "se":
                    modules[f"{own}.se.fc1"] = f"{reference}.{position}.fc1"
                    modules[f"{own}.se.fc2"] = f"{reference}.{position}.fc2"
                else:
                    modules.update(numbered_conv_bn(f"{own}.{name}", f"{reference}.{position}"))
        return expand_module_map(self, modules)


def _build(
    name: str,
    blocks: Sequence[Bneck],
    head_channels: int,
    num_classes: int,
    cifar: bool,
    width_mult: float,
    dropout: float | None,
    pretrained: bool,
) -> MobileNetV3:
    if pretrained:
        check_pretrained_layout(name, num_classes=num_classes, cifar=cifar, width_mult=width_mult)
    model = MobileNetV3(
        blocks,
        head_channels,
        num_classes,
        width_mult=width_mult,
        dropout=0.2 if dropout is None else dropout,  # torchvision's default
        cifar=cifar,
    )
    if pretrained:
        load_pretrained(model, "torchvision", name)
    return model


@register_model
def mobilenet_v3_large(
    num_classes: int = 1000,
    *,
    cifar: bool = False,
    width_mult: float = 1.0,
    dropout: float | None = None,
    pretrained: bool = False,
) -> nn.Module:
    """MobileNetV3-Large (paper Table 1), ↔ torchvision ``mobilenet_v3_large``.

    5,483,032 parameters at 1000 classes; 4,214,842 with ``cifar=True`` and 10 classes.
    """
    return _build(
        "mobilenet_v3_large",
        LARGE_BLOCKS,
        LARGE_HEAD_CHANNELS,
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
    dropout: float | None = None,
    pretrained: bool = False,
) -> nn.Module:
    """MobileNetV3-Small (paper Table 2), ↔ torchvision ``mobilenet_v3_small``.

    2,542,856 parameters at 1000 classes; 1,528,106 with ``cifar=True`` and 10 classes.
    """
    return _build(
        "mobilenet_v3_small",
        SMALL_BLOCKS,
        SMALL_HEAD_CHANNELS,
        num_classes,
        cifar,
        width_mult,
        dropout,
        pretrained,
    )
