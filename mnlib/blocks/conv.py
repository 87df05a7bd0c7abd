"""Convolution → BatchNorm → activation, the unit every model in the course is made of."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

from torch import nn

ActivationFactory = Callable[[], nn.Module]


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round a channel count to the nearest multiple of ``divisor``, as torchvision and timm do.

    Never returns less than ``min_value`` (default ``divisor``), and never rounds *down* by more
    than 10 %: if it would, one more ``divisor`` is added. Multiples of 8 suit the vector units
    of the hardware, which is why the reference implementations round this way.

    >>> make_divisible(72 / 4), make_divisible(30), make_divisible(4)
    (24, 32, 8)
    """
    min_value = divisor if min_value is None else min_value
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


class ConvBNAct(nn.Sequential):
    """A ``k×k`` convolution (no bias), BatchNorm, then an optional activation.

    Shapes: ``[N, in_channels, H, W] → [N, out_channels, ceil(H/stride), ceil(W/stride)]``.
    Padding is symmetric, ``(k - 1) // 2``, as in torchvision and timm.
    ``groups=in_channels`` makes it a depthwise convolution.
    State-dict keys: ``conv.weight`` and the BatchNorm keys ``bn.weight``, ``bn.bias``,
    ``bn.running_mean``, ``bn.running_var``, ``bn.num_batches_tracked``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        groups: int = 1,
        *,
        activation: ActivationFactory | None = nn.ReLU,
        bn_eps: float = 1e-5,
        bn_momentum: float = 0.1,
    ) -> None:
        padding = (kernel_size - 1) // 2
        super().__init__(
            OrderedDict(
                conv=nn.Conv2d(
                    in_channels,
                    out_channels,
                    kernel_size,
                    stride=stride,
                    padding=padding,
                    groups=groups,
                    bias=False,  # the BatchNorm that follows has its own bias
                ),
                bn=nn.BatchNorm2d(out_channels, eps=bn_eps, momentum=bn_momentum),
                act=activation() if activation is not None else nn.Identity(),
            )
        )
