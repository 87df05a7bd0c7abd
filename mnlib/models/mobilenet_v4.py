"""MobileNetV4 Conv-S/M/L and Hybrid-M/L (Qin et al., "MobileNetV4: Universal Models for the
Mobile Ecosystem", ECCV 2024).

The five tables below list every block of the released models, one row per block, grouped in
the five stages of timm's ``mobilenetv4_*`` (whose ImageNet weights load here, see
``reference_key_map``). Four kinds of row:

* ``Conv(kernel, out, stride)``: conv, BN, activation (Conv-S's first stages and the last 1×1);
* ``FusedIB(kernel, expansion, out, stride)``:
  :class:`~mnlib.blocks.fused_ib.FusedInvertedBottleneck`;
* ``UIB(start, middle, expansion, out, stride)``: a
  :class:`~mnlib.blocks.uib.UniversalInvertedBottleneck` whose two optional depthwise kernels
  decide the kind: both → ExtraDW, middle only → IB, start only → ConvNeXt, none → FFN;
* ``MQA(heads, head_dim, kv_stride, out)``: :class:`~mnlib.blocks.attention.MobileMQA`
  (hybrids only; ``kv_stride=2`` downsamples keys and values).

``expansion`` multiplies the block's *input* width. Around the stages:

* stem: 3×3 conv, stride 2, 3 → 32 (Large: 24) channels, BN, activation;
* head ("efficient head" of MobileNetV3): global average pool *first*, then a 1×1 conv
  960 → 1280 with BN and activation on the 1×1 map, dropout, linear classifier.

Activation: ReLU, except GELU in Hybrid-L. BatchNorm eps 1e-5, momentum 0.1; no conv has a bias.
The hybrids put a LayerScale (γ₀ = 1e-5) on every UIB and MQA block.

These are the released specifications (timm and the authors' TensorFlow code). Their
parameter and MAC counts differ a little from the paper's table: 3.77 M / 9.72 M / 32.59 M /
11.07 M / 37.76 M parameters against the paper's 3.8 / 9.2 / 31 / 10.5 / 35.9 M.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from mnlib.blocks.attention import MobileMQA
from mnlib.blocks.conv import ActivationFactory, ConvBNAct, make_divisible
from mnlib.blocks.fused_ib import FusedInvertedBottleneck
from mnlib.blocks.uib import UniversalInvertedBottleneck
from mnlib.models.checks import (
    check_dropout,
    check_image_batch,
    check_pretrained_layout,
    check_width_mult,
)
from mnlib.models.init import init_tensorflow_style
from mnlib.models.registry import register_model
from mnlib.models.weights import expand_module_map, load_pretrained

HEAD_CHANNELS = 1280  # width of the 1×1 conv after pooling; width_mult does not scale it (timm)


class Conv(NamedTuple):
    """A table row: k×k conv → BN → activation, no residual."""

    kernel: int
    out: int
    stride: int = 1


class FusedIB(NamedTuple):
    """A table row: fused inverted bottleneck (full k×k expansion conv, then a 1×1 projection)."""

    kernel: int
    expansion: float
    out: int
    stride: int = 1


class UIB(NamedTuple):
    """A table row: universal inverted bottleneck; ``None`` marks an absent depthwise conv."""

    start: int | None
    middle: int | None
    expansion: float
    out: int
    stride: int = 1


class MQA(NamedTuple):
    """A table row: Mobile multi-query attention (keeps width and map size: out = in, stride 1)."""

    heads: int
    head_dim: int
    kv_stride: int
    out: int
    stride: int = 1


Row = Conv | FusedIB | UIB | MQA


class MobileNetV4Config(NamedTuple):
    """Everything that differs between the five models."""

    name: str  # our registry name
    timm_name: str  # the reference in timm
    stem_channels: int
    activation: ActivationFactory
    layer_scale_init: float | None  # γ₀ of the LayerScale on UIB and MQA blocks; None: none
    stages: tuple[tuple[Row, ...], ...]


# Each comment gives the feature map a stage *receives* at 224×224 input.
CONV_SMALL = MobileNetV4Config(
    "mobilenet_v4_conv_small",
    "mobilenetv4_conv_small",
    stem_channels=32,
    activation=nn.ReLU,
    layer_scale_init=None,
    stages=(
        (  # 112×112;   kernel, out, stride
            Conv(3, 32, 2),
            Conv(1, 32),
        ),
        (  # 56×56
            Conv(3, 96, 2),
            Conv(1, 64),
        ),
        (  # 28×28;     start, middle, expansion, out, stride
            UIB(5, 5, 3, 96, 2),  # ExtraDW
            UIB(None, 3, 2, 96),  # IB
            UIB(None, 3, 2, 96),  # IB
            UIB(None, 3, 2, 96),  # IB
            UIB(None, 3, 2, 96),  # IB
            UIB(3, None, 4, 96),  # ConvNeXt
        ),
        (  # 14×14
            UIB(3, 3, 6, 128, 2),  # ExtraDW
            UIB(5, 5, 4, 128),  # ExtraDW
            UIB(None, 5, 4, 128),  # IB
            UIB(None, 5, 3, 128),  # IB
            UIB(None, 3, 4, 128),  # IB
            UIB(None, 3, 4, 128),  # IB
        ),
        (  # 7×7
            Conv(1, 960),
        ),
    ),
)

CONV_MEDIUM = MobileNetV4Config(
    "mobilenet_v4_conv_medium",
    "mobilenetv4_conv_medium",
    stem_channels=32,
    activation=nn.ReLU,
    layer_scale_init=None,
    stages=(
        (  # 112×112;   kernel, expansion, out, stride
            FusedIB(3, 4, 48, 2),
        ),
        (  # 56×56;     start, middle, expansion, out, stride
            UIB(3, 5, 4, 80, 2),  # ExtraDW
            UIB(3, 3, 2, 80),  # ExtraDW
        ),
        (  # 28×28
            UIB(3, 5, 6, 160, 2),  # ExtraDW
            UIB(3, 3, 4, 160),  # ExtraDW
            UIB(3, 3, 4, 160),  # ExtraDW
            UIB(3, 5, 4, 160),  # ExtraDW
            UIB(3, 3, 4, 160),  # ExtraDW
            UIB(3, None, 4, 160),  # ConvNeXt
            UIB(None, None, 2, 160),  # FFN
            UIB(3, None, 4, 160),  # ConvNeXt
        ),
        (  # 14×14
            UIB(5, 5, 6, 256, 2),  # ExtraDW
            UIB(5, 5, 4, 256),  # ExtraDW
            UIB(3, 5, 4, 256),  # ExtraDW
            UIB(3, 5, 4, 256),  # ExtraDW
            UIB(None, None, 4, 256),  # FFN
            UIB(3, None, 4, 256),  # ConvNeXt
            UIB(3, 5, 2, 256),  # ExtraDW
            UIB(5, 5, 4, 256),  # ExtraDW
            UIB(None, None, 4, 256),  # FFN
            UIB(None, None, 4, 256),  # FFN
            UIB(5, None, 2, 256),  # ConvNeXt
        ),
        (  # 7×7
            Conv(1, 960),
        ),
    ),
)

CONV_LARGE = MobileNetV4Config(
    "mobilenet_v4_conv_large",
    "mobilenetv4_conv_large",
    stem_channels=24,
    activation=nn.ReLU,
    layer_scale_init=None,
    stages=(
        (  # 112×112;   kernel, expansion, out, stride
            FusedIB(3, 4, 48, 2),
        ),
        (  # 56×56;     start, middle, expansion, out, stride
            UIB(3, 5, 4, 96, 2),  # ExtraDW
            UIB(3, 3, 4, 96),  # ExtraDW
        ),
        (  # 28×28
            UIB(3, 5, 4, 192, 2),  # ExtraDW
            UIB(3, 3, 4, 192),  # ExtraDW
            UIB(3, 3, 4, 192),  # ExtraDW
            UIB(3, 3, 4, 192),  # ExtraDW
            UIB(3, 5, 4, 192),  # ExtraDW
            UIB(5, 3, 4, 192),  # ExtraDW
            UIB(5, 3, 4, 192),  # ExtraDW
            UIB(5, 3, 4, 192),  # ExtraDW
            UIB(5, 3, 4, 192),  # ExtraDW
            UIB(5, 3, 4, 192),  # ExtraDW
            UIB(3, None, 4, 192),  # ConvNeXt
        ),
        (  # 14×14
            UIB(5, 5, 4, 512, 2),  # ExtraDW
            UIB(5, 5, 4, 512),  # ExtraDW
            UIB(5, 5, 4, 512),  # ExtraDW
            UIB(5, 5, 4, 512),  # ExtraDW
            UIB(5, None, 4, 512),  # ConvNeXt
            UIB(5, 3, 4, 512),  # ExtraDW
            UIB(5, None, 4, 512),  # ConvNeXt
            UIB(5, None, 4, 512),  # ConvNeXt
            UIB(5, 3, 4, 512),  # ExtraDW
            UIB(5, 5, 4, 512),  # ExtraDW
            UIB(5, None, 4, 512),  # ConvNeXt
            UIB(5, None, 4, 512),  # ConvNeXt
            UIB(5, None, 4, 512),  # ConvNeXt
        ),
        (  # 7×7
            Conv(1, 960),
        ),
    ),
)

HYBRID_MEDIUM = MobileNetV4Config(
    "mobilenet_v4_hybrid_medium",
    "mobilenetv4_hybrid_medium",
    stem_channels=32,
    activation=nn.ReLU,
    layer_scale_init=1e-5,
    stages=(
        (  # 112×112;   kernel, expansion, out, stride
            FusedIB(3, 4, 48, 2),
        ),
        (  # 56×56;     start, middle, expansion, out, stride
            UIB(3, 5, 4, 80, 2),  # ExtraDW
            UIB(3, 3, 2, 80),  # ExtraDW
        ),
        (  # 28×28;     MQA: heads, head_dim, kv_stride, out
            UIB(3, 5, 6, 160, 2),  # ExtraDW
            UIB(None, None, 2, 160),  # FFN
            UIB(3, 3, 4, 160),  # ExtraDW
            UIB(3, 5, 4, 160),  # ExtraDW
            MQA(4, 64, 2, 160),
            UIB(3, 3, 4, 160),  # ExtraDW
            MQA(4, 64, 2, 160),
            UIB(3, None, 4, 160),  # ConvNeXt
            MQA(4, 64, 2, 160),
            UIB(3, 3, 4, 160),  # ExtraDW
            MQA(4, 64, 2, 160),
            UIB(3, None, 4, 160),  # ConvNeXt
        ),
        (  # 14×14
            UIB(5, 5, 6, 256, 2),  # ExtraDW
            UIB(5, 5, 4, 256),  # ExtraDW
            UIB(3, 5, 4, 256),  # ExtraDW
            UIB(3, 5, 4, 256),  # ExtraDW
            UIB(None, None, 2, 256),  # FFN
            UIB(3, 5, 2, 256),  # ExtraDW
            UIB(None, None, 2, 256),  # FFN
            UIB(None, None, 4, 256),  # FFN
            MQA(4, 64, 1, 256),
            UIB(3, None, 4, 256),  # ConvNeXt
            MQA(4, 64, 1, 256),
            UIB(5, 5, 4, 256),  # ExtraDW
            MQA(4, 64, 1, 256),
            UIB(5, None, 4, 256),  # ConvNeXt
            MQA(4, 64, 1, 256),
            UIB(5, None, 4, 256),  # ConvNeXt
        ),
        (  # 7×7
            Conv(1, 960),
        ),
    ),
)

HYBRID_LARGE = MobileNetV4Config(
    "mobilenet_v4_hybrid_large",
    "mobilenetv4_hybrid_large",
    stem_channels=24,
    activation=nn.GELU,
    layer_scale_init=1e-5,
    stages=(
        (  # 112×112;   kernel, expansion, out, stride
            FusedIB(3, 4, 48, 2),
        ),
        (  # 56×56;     start, middle, expansion, out, stride
            UIB(3, 5, 4, 96, 2),  # ExtraDW
            UIB(3, 3, 4, 96),  # ExtraDW
        ),
        (  # 28×28;     MQA: heads, head_dim, kv_stride, out
            UIB(3, 5, 4, 192, 2),  # ExtraDW
            UIB(3, 3, 4, 192),  # ExtraDW
            UIB(3, 3, 4, 192),  # ExtraDW
            UIB(3, 3, 4, 192),  # ExtraDW
            UIB(3, 5, 4, 192),  # ExtraDW
            UIB(5, 3, 4, 192),  # ExtraDW
            UIB(5, 3, 4, 192),  # ExtraDW
            MQA(8, 48, 2, 192),
            UIB(5, 3, 4, 192),  # ExtraDW
            MQA(8, 48, 2, 192),
            UIB(5, 3, 4, 192),  # ExtraDW
            MQA(8, 48, 2, 192),
            UIB(5, 3, 4, 192),  # ExtraDW
            MQA(8, 48, 2, 192),
            UIB(3, None, 4, 192),  # ConvNeXt
        ),
        (  # 14×14
            UIB(5, 5, 4, 512, 2),  # ExtraDW
            UIB(5, 5, 4, 512),  # ExtraDW
            UIB(5, 5, 4, 512),  # ExtraDW
            UIB(5, 5, 4, 512),  # ExtraDW
            UIB(5, None, 4, 512),  # ConvNeXt
            UIB(5, 3, 4, 512),  # ExtraDW
            UIB(5, None, 4, 512),  # ConvNeXt
            UIB(5, None, 4, 512),  # ConvNeXt
            UIB(5, 3, 4, 512),  # ExtraDW
            UIB(5, 5, 4, 512),  # ExtraDW
            MQA(8, 64, 1, 512),
            UIB(5, None, 4, 512),  # ConvNeXt
            MQA(8, 64, 1, 512),
            UIB(5, None, 4, 512),  # ConvNeXt
            MQA(8, 64, 1, 512),
            UIB(5, None, 4, 512),  # ConvNeXt
            MQA(8, 64, 1, 512),
            UIB(5, None, 4, 512),  # ConvNeXt
        ),
        (  # 7×7
            Conv(1, 960),
        ),
    ),
)


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

    ``cifar=True`` removes the first two down-samplings (the stem's stride and that of the first
    block of stage 0), so a 32×32 image ends as a 4×4 map instead of 1×1; every layer and weight
    shape stays the same.

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
        act = config.activation

        stem_channels = config.stem_channels
        if width_mult >= 1.0:  # timm's fix_stem: a narrower network keeps the full stem
            stem_channels = make_divisible(stem_channels * width_mult)
        stem_stride = 1 if cifar else 2
        self.stem = ConvBNAct(3, stem_channels, 3, stem_stride, activation=act)

        stages = []
        channels, total_stride = stem_channels, stem_stride
        for stage_index, rows in enumerate(config.stages):
            blocks = []
            for block_index, row in enumerate(rows):
                first_block = stage_index == 0 and block_index == 0
                stride = 1 if cifar and first_block else row.stride
                out_channels = make_divisible(row.out * width_mult)
                blocks.append(
                    make_block(row, channels, out_channels, stride, act, config.layer_scale_init)
                )
                channels, total_stride = out_channels, total_stride * stride
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

    def reference_key_map(self) -> dict[str, str]:
        """Own state-dict key → key in timm's ``MobileNetV3`` class, for ``load_reference_weights``.

        timm names the stem ``conv_stem``/``bn1``, the stages ``blocks.<stage>.<block>`` and
        the head ``conv_head``/``norm_head``; inside a block see :data:`TIMM_BLOCK_NAMES`.
        """
        modules = {
            "stem.conv": "conv_stem",
            "stem.bn": "bn1",
            "head.conv": "conv_head",
            "head.bn": "norm_head",
            "classifier": "classifier",
        }
        for stage_index, stage in enumerate(self.stages):
            for block_index, block in enumerate(stage):
                position = f"{stage_index}.{block_index}"
                for ours, theirs in TIMM_BLOCK_NAMES[type(block)].items():
                    modules[f"stages.{position}.{ours}"] = f"blocks.{position}.{theirs}"
        return expand_module_map(self, modules)


# Inside one block: our module name → timm's module name (parameter names are the same).
TIMM_BLOCK_NAMES: dict[type[nn.Module], dict[str, str]] = {
    ConvBNAct: {"conv": "conv", "bn": "bn1"},  # timm ConvBnAct
    FusedInvertedBottleneck: {  # timm EdgeResidual
        "conv_exp.conv": "conv_exp",
        "conv_exp.bn": "bn1",
        "pw_proj.conv": "conv_pwl",
        "pw_proj.bn": "bn2",
    },
    UniversalInvertedBottleneck: {  # timm UniversalInvertedResidual: same names
        "dw_start.conv": "dw_start.conv",
        "dw_start.bn": "dw_start.bn",
        "pw_exp.conv": "pw_exp.conv",
        "pw_exp.bn": "pw_exp.bn",
        "dw_mid.conv": "dw_mid.conv",
        "dw_mid.bn": "dw_mid.bn",
        "pw_proj.conv": "pw_proj.conv",
        "pw_proj.bn": "pw_proj.bn",
        "layer_scale": "layer_scale",
    },
    MobileMQA: {  # timm MobileAttention with a MultiQueryAttention2d called "attn"
        "norm": "norm",
        "query": "attn.query.proj",
        "key_down.conv": "attn.key.down_conv",
        "key_down.bn": "attn.key.norm",
        "key": "attn.key.proj",
        "value_down.conv": "attn.value.down_conv",
        "value_down.bn": "attn.value.norm",
        "value": "attn.value.proj",
        "output": "attn.output.proj",
        "layer_scale": "layer_scale",
    },
}


def _build(
    config: MobileNetV4Config,
    num_classes: int,
    cifar: bool,
    width_mult: float,
    dropout: float | None,
    pretrained: bool,
) -> MobileNetV4:
    if pretrained:
        check_pretrained_layout(
            config.name, num_classes=num_classes, cifar=cifar, width_mult=width_mult
        )
    model = MobileNetV4(
        config,
        num_classes,
        cifar=cifar,
        width_mult=width_mult,
        dropout=0.0 if dropout is None else dropout,  # timm's default drop_rate
    )
    if pretrained:
        load_pretrained(model, "timm", config.timm_name)
    return model


@register_model
def mobilenet_v4_conv_small(
    num_classes: int = 1000,
    *,
    cifar: bool = False,
    width_mult: float = 1.0,
    dropout: float | None = None,
    pretrained: bool = False,
) -> nn.Module:
    """MNv4-Conv-S, ↔ timm ``mobilenetv4_conv_small``.

    3,774,024 parameters at 1000 classes; 2,505,834 with ``cifar=True`` and 10 classes.
    Paper: 73.8 % ImageNet top-1 at 224×224.
    """
    return _build(CONV_SMALL, num_classes, cifar, width_mult, dropout, pretrained)


@register_model
def mobilenet_v4_conv_medium(
    num_classes: int = 1000,
    *,
    cifar: bool = False,
    width_mult: float = 1.0,
    dropout: float | None = None,
    pretrained: bool = False,
) -> nn.Module:
    """MNv4-Conv-M, ↔ timm ``mobilenetv4_conv_medium``.

    9,715,512 parameters at 1000 classes; 8,447,322 with ``cifar=True`` and 10 classes.
    Paper: 79.9 % ImageNet top-1 at 256×256.
    """
    return _build(CONV_MEDIUM, num_classes, cifar, width_mult, dropout, pretrained)


@register_model
def mobilenet_v4_conv_large(
    num_classes: int = 1000,
    *,
    cifar: bool = False,
    width_mult: float = 1.0,
    dropout: float | None = None,
    pretrained: bool = False,
) -> nn.Module:
    """MNv4-Conv-L, ↔ timm ``mobilenetv4_conv_large``.

    32,590,864 parameters at 1000 classes; 31,322,674 with ``cifar=True`` and 10 classes.
    Paper: 82.9 % ImageNet top-1 at 384×384.
    """
    return _build(CONV_LARGE, num_classes, cifar, width_mult, dropout, pretrained)


@register_model
def mobilenet_v4_hybrid_medium(
    num_classes: int = 1000,
    *,
    cifar: bool = False,
    width_mult: float = 1.0,
    dropout: float | None = None,
    pretrained: bool = False,
) -> nn.Module:
    """MNv4-Hybrid-M, ↔ timm ``mobilenetv4_hybrid_medium``.

    11,074,648 parameters at 1000 classes; 9,806,458 with ``cifar=True`` and 10 classes.
    Paper: 80.7 % ImageNet top-1 at 256×256.
    """
    return _build(HYBRID_MEDIUM, num_classes, cifar, width_mult, dropout, pretrained)


@register_model
def mobilenet_v4_hybrid_large(
    num_classes: int = 1000,
    *,
    cifar: bool = False,
    width_mult: float = 1.0,
    dropout: float | None = None,
    pretrained: bool = False,
) -> nn.Module:
    """MNv4-Hybrid-L, ↔ timm ``mobilenetv4_hybrid_large``.

    37,764,624 parameters at 1000 classes; 36,496,434 with ``cifar=True`` and 10 classes.
    Paper: 83.4 % ImageNet top-1 at 384×384 (87.0 % with the paper's distillation).
    """
    return _build(HYBRID_LARGE, num_classes, cifar, width_mult, dropout, pretrained)
