"""Building blocks of ResNet and MobileNetV1–V4, one idea per module."""

from mnlib.blocks.attention import MobileMQA
from mnlib.blocks.conv import ConvBNAct, make_divisible
from mnlib.blocks.fused_ib import FusedInvertedBottleneck
from mnlib.blocks.inverted_residual import InvertedResidual
from mnlib.blocks.inverted_residual_v3 import InvertedResidualV3
from mnlib.blocks.layer_scale import LayerScale
from mnlib.blocks.residual import BasicBlock, Bottleneck, ZeroPadShortcut
from mnlib.blocks.separable import DepthwiseSeparableConv
from mnlib.blocks.squeeze_excite import SqueezeExcite
from mnlib.blocks.uib import UniversalInvertedBottleneck

__all__ = [
    "BasicBlock",
    "Bottleneck",
    "ConvBNAct",
    "DepthwiseSeparableConv",
    "FusedInvertedBottleneck",
    "InvertedResidual",
    "InvertedResidualV3",
    "LayerScale",
    "MobileMQA",
    "SqueezeExcite",
    "UniversalInvertedBottleneck",
    "ZeroPadShortcut",
    "make_divisible",
]
