"""The specification tables of MobileNetV4 Conv-S/M/L and Hybrid-M/L (Qin et al., 2024).

One row per block, grouped in the five stages of timm's ``mobilenetv4_*`` (the released
specifications: timm and the authors' TensorFlow code). Four kinds of row:

* ``Conv(kernel, out, stride)``: conv, BN, activation (Conv-S's first stages and the last 1×1);
* ``FusedIB(kernel, expansion, out, stride)``:
  :class:`~mnlib.blocks.fused_ib.FusedInvertedBottleneck`;
* ``UIB(start, middle, expansion, out, stride)``: a
  :class:`~mnlib.blocks.uib.UniversalInvertedBottleneck` whose two optional depthwise kernels
  decide the kind: both → ExtraDW, middle only → IB, start only → ConvNeXt, none → FFN;
* ``MQA(heads, head_dim, kv_stride, out)``: :class:`~mnlib.blocks.attention.MobileMQA`
  (hybrids only; ``kv_stride=2`` downsamples keys and values).

``expansion`` multiplies the block's *input* width. :mod:`mnlib.models.mobilenet_v4` builds a
model from a :class:`MobileNetV4Config`.
"""

from __future__ import annotations

from typing import NamedTuple

from torch import nn

from mnlib.blocks.conv import ActivationFactory


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
