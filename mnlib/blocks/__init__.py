"""Building blocks of ResNet and MobileNetV1–V4, one idea per module."""

from mnlib.blocks.conv import ConvBNAct, make_divisible
from mnlib.blocks.inverted_residual import InvertedResidual
from mnlib.blocks.inverted_residual_v3 import InvertedResidualV3
from mnlib.blocks.residual import BasicBlock, Bottleneck, ZeroPadShortcut
from mnlib.blocks.separable import DepthwiseSeparableConv
from mnlib.blocks.squeeze_excite import SqueezeExcite

__all__ = [
    "BasicBlock",
    "Bottleneck",
    "ConvBNAct",
    "DepthwiseSeparableConv",
    "InvertedResidual",
    "InvertedResidualV3",
    "SqueezeExcite",
    "ZeroPadShortcut",
    "make_divisible",
]
