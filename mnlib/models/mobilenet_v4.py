"""MobileNetV4 Conv-S/M/L and Hybrid-M/L (Qin et al., "MobileNetV4: Universal Models for the
Mobile Ecosystem", ECCV 2024).

The block tables are in :mod:`mnlib.models.mobilenet_v4_specs`; :class:`MobileNetV4` builds
any of them. Around the stages:

* stem: 3×3 conv, stride 2, 3 → 32 (Large: 24) channels, BN, activation;
* head ("efficient head" of MobileNetV3): global average pool *first*, then a 1×1 conv
  960 → 1280 with BN and activation on the 1×1 map; then dropout and the linear classifier.

Activation: ReLU, except GELU in Hybrid-L. BatchNorm eps 1e-5, momentum 0.1; no conv has a bias.
The hybrids put a LayerScale (γ₀ = 1e-5) on every UIB and MQA block. Weight for weight
compatible with timm's ``mobilenetv4_*``.

These are the released specifications (timm and the authors' TensorFlow code). Their
parameter and MAC counts differ a little from the paper's table: 3.77 M / 9.72 M / 32.59 M /
11.07 M / 37.76 M parameters against the paper's 3.8 / 9.2 / 31 / 10.5 / 35.9 M.
"""

from __future__ import annotations

import torch
from torch import nn

from mnlib.blocks.attention import MobileMQA
from mnlib.blocks.conv import ActivationFactory, ConvBNAct, make_divisible
from mnlib.blocks.fused_ib import FusedInvertedBottleneck
from mnlib.blocks.uib import UniversalInvertedBottleneck
from mnlib.models.checks import check_dropout, check_image_batch, check_width_mult
from mnlib.models.init import init_tensorflow_style
from mnlib.models.mobilenet_v4_specs import (
    CONV_LARGE,
    CONV_MEDIUM,
    CONV_SMALL,
    HYBRID_LARGE,
    HYBRID_MEDIUM,
    UIB,
    Conv,
    FusedIB,
    MobileNetV4Config,
    Row,
)
from mnlib.models.registry import register_model
from mnlib.models.stages import stages_without_first_downsampling
from mnlib.models.weights import Reference, build_model

HEAD_CHANNELS = 1280  # width of the 1×1 conv after pooling; width_mult does not scale it (timm)


def make_block(
    row: Row,
    in_channels: int,
    out_channels: int,
    stride: int,
    activation: ActivationFactory,
    layer_scale_init: float | None,
) -> nn.Module:
    """Build the block a table row describes (channels already scaled by ``width_mult``)."""
    if isinstance(row, Conv):
        return ConvBNAct(in_channels, out_channels, row.kernel, stride, activation=activation)
    if isinstance(row, FusedIB):  # the stem-side blocks carry no layer scale
        return FusedInvertedBottleneck(
            in_channels,
            out_channels,
            kernel_size=row.kernel,
            expansion=row.expansion,
            stride=stride,
            activation=activation,
        )
    if isinstance(row, UIB):
        return UniversalInvertedBottleneck(
            in_channels,
            out_channels,
            start_kernel=row.start,
            middle_kernel=row.middle,
            expansion=row.expansion,
            stride=stride,
            activation=activation,
            layer_scale_init=layer_scale_init,
        )
    if in_channels != out_channels or stride != 1:
        raise ValueError(
            f"an MQA block keeps width and map size; got {in_channels} → {out_channels} channels "
            f"and stride {stride}"
        )
    return MobileMQA(
        in_channels,
        num_heads=row.heads,
        head_dim=row.head_dim,
        kv_stride=row.kv_stride,
        layer_scale_init=layer_scale_init,
    )


class MobileNetV4(nn.Module):
    """A MobileNetV4 built from a :class:`MobileNetV4Config`.

    Shapes: ``[N, 3, H, W] → [N, num_classes]``. The total stride is 32 (8 with ``cifar=True``),
    so ``H`` and ``W`` must be at least 32 (8); the attention blocks work at any map size.

    ``width_mult`` scales every block's output width to ``make_divisible(c * width_mult)``, as
    timm's ``round_chs_fn`` does; the hidden widths follow from the expansion ratios. As in timm,
    the stem is scaled only when ``width_mult >= 1`` and the 1280-wide head conv, the attention
    heads and head dims are never scaled.

    ``cifar=True``: the stem and the first stride-2 block (the first block of stage 0) keep
    stride 1, so a 32×32 image ends as a 4×4 map instead of 1×1; every layer and weight shape
    stays the same.

    Weight init follows timm's ``_init_weight_goog`` (the TensorFlow reference): see
    :meth:`_init_weights`.
    """

    def __init__(
        self,
        config: MobileNetV4Config,
        num_classes: int = 1000,
        *,
        cifar: bool = False,
        width_mult: float = 1.0,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        check_width_mult(width_mult)
        check_dropout(dropout)
        self.config = config
        act, layer_scale_init = config.activation, config.layer_scale_init

        stem_channels = config.stem_channels
        if width_mult >= 1.0:  # timm's fix_stem: a narrower network keeps the full stem
            stem_channels = make_divisible(stem_channels * width_mult)
        stem_stride = 1 if cifar else 2
        self.stem = ConvBNAct(3, stem_channels, 3, stem_stride, activation=act)

        table = stages_without_first_downsampling(config.stages) if cifar else config.stages
        stages = []
        channels, total_stride = stem_channels, stem_stride
        for rows in table:
            blocks = []
            for row in rows:
                out_channels = make_divisible(row.out * width_mult)
                blocks.append(
                    make_block(row, channels, out_channels, row.stride, act, layer_scale_init)
                )
                channels, total_stride = out_channels, total_stride * row.stride
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.min_size = total_stride  # the input size that ends as a 1×1 map

        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = ConvBNAct(channels, HEAD_CHANNELS, 1, activation=act)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(HEAD_CHANNELS, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        """timm's TensorFlow-style init (``_init_weight_goog``), then Xavier for attention.

        See :func:`~mnlib.models.init.init_tensorflow_style`. timm then re-initialises every
        conv of the attention blocks Xavier-uniform, which it found more stable; LayerScale γ
        keeps its 1e-5.
        """
        init_tensorflow_style(self)
        for module in self.modules():
            if isinstance(module, MobileMQA):
                module.reset_parameters()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image_batch(x, channels=3, min_size=self.min_size, model=self.config.name)
        x = self.stem(x)  # [N, 32 | 24, H/2, W/2]
        x = self.stages(x)  # [N, 960, H/32, W/32]
        x = self.pool(x)  # [N, 960, 1, 1]: pool first, so the head conv costs almost nothing
        x = self.head(x)  # [N, 1280, 1, 1]
        return self.classifier(self.dropout(x.flatten(1)))  # [N, num_classes]


def build_v4(
    config: MobileNetV4Config,
    num_classes: int,
    cifar: bool,
    width_mult: float,
    dropout: float,
    pretrained: bool,
) -> MobileNetV4:
    """:func:`~mnlib.models.weights.build_model` for one of the five MobileNetV4 tables."""
    return build_model(
        MobileNetV4,
        config,
        reference=Reference("timm", config.timm_name),
        pretrained=pretrained,
        num_classes=num_classes,
        cifar=cifar,
        width_mult=width_mult,
        dropout=dropout,
    )


@register_model
def mobilenet_v4_conv_small(
    num_classes: int = 1000,
    *,
    cifar: bool = False,
    width_mult: float = 1.0,
    dropout: float = 0.0,
    pretrained: bool = False,
) -> MobileNetV4:
    """MNv4-Conv-S = timm ``mobilenetv4_conv_small``; ``dropout`` 0 as in timm.

    3,774,024 parameters at 1000 classes; 2,505,834 with ``cifar=True`` and 10 classes.
    Paper: 73.8 % ImageNet top-1 at 224×224.
    """
    return build_v4(CONV_SMALL, num_classes, cifar, width_mult, dropout, pretrained)


@register_model
def mobilenet_v4_conv_medium(
    num_classes: int = 1000,
    *,
    cifar: bool = False,
    width_mult: float = 1.0,
    dropout: float = 0.0,
    pretrained: bool = False,
) -> MobileNetV4:
    """MNv4-Conv-M = timm ``mobilenetv4_conv_medium``; ``dropout`` 0 as in timm.

    9,715,512 parameters at 1000 classes; 8,447,322 with ``cifar=True`` and 10 classes.
    Paper: 79.9 % ImageNet top-1 at 256×256.
    """
    return build_v4(CONV_MEDIUM, num_classes, cifar, width_mult, dropout, pretrained)


@register_model
def mobilenet_v4_conv_large(
    num_classes: int = 1000,
    *,
    cifar: bool = False,
    width_mult: float = 1.0,
    dropout: float = 0.0,
    pretrained: bool = False,
) -> MobileNetV4:
    """MNv4-Conv-L = timm ``mobilenetv4_conv_large``; ``dropout`` 0 as in timm.

    32,590,864 parameters at 1000 classes; 31,322,674 with ``cifar=True`` and 10 classes.
    Paper: 82.9 % ImageNet top-1 at 384×384.
    """
    return build_v4(CONV_LARGE, num_classes, cifar, width_mult, dropout, pretrained)


@register_model
def mobilenet_v4_hybrid_medium(
    num_classes: int = 1000,
    *,
    cifar: bool = False,
    width_mult: float = 1.0,
    dropout: float = 0.0,
    pretrained: bool = False,
) -> MobileNetV4:
    """MNv4-Hybrid-M = timm ``mobilenetv4_hybrid_medium``; ``dropout`` 0 as in timm.

    11,074,648 parameters at 1000 classes; 9,806,458 with ``cifar=True`` and 10 classes.
    Paper: 80.7 % ImageNet top-1 at 256×256.
    """
    return build_v4(HYBRID_MEDIUM, num_classes, cifar, width_mult, dropout, pretrained)


@register_model
def mobilenet_v4_hybrid_large(
    num_classes: int = 1000,
    *,
    cifar: bool = False,
    width_mult: float = 1.0,
    dropout: float = 0.0,
    pretrained: bool = False,
) -> MobileNetV4:
    """MNv4-Hybrid-L = timm ``mobilenetv4_hybrid_large``; ``dropout`` 0 as in timm.

    37,764,624 parameters at 1000 classes; 36,496,434 with ``cifar=True`` and 10 classes.
    Paper: 83.4 % ImageNet top-1 at 384×384 (87.0 % with the paper's distillation).
    """
    return build_v4(HYBRID_LARGE, num_classes, cifar, width_mult, dropout, pretrained)
