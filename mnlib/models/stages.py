"""The stage table shared by ResNet, MobileNetV1 and MobileNetV2, and the CIFAR stride rule.

A paper's architecture table lists *stages*: runs of identical blocks at one resolution. Each
model keeps its table as data (a tuple of :class:`Stage`) and builds it with
:func:`repeat_block`. MobileNetV3 and V4, whose blocks differ within a stage, list one row per
block instead, grouped by stage the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple, TypeVar

from torch import nn


class Stage(NamedTuple):
    """One row of a paper's table: ``repeats`` blocks in a row, all ``channels`` wide."""

    channels: int  # the stage's width (ResNet: the width of its 3×3 convs)
    repeats: int  # how many blocks (the paper's "n")
    stride: int  # stride of the first block; the others have stride 1 (the paper's "s")
    expansion: float = 1  # inverted residuals: hidden width = expansion × input width ("t")


def repeat_block(
    make_block: Callable[..., nn.Module],
    in_channels: int,
    out_channels: int,
    stage: Stage,
) -> nn.Sequential:
    """``stage.repeats`` blocks ``make_block(in, out, stride=…)``: the first maps ``in → out``
    with ``stage.stride``, the others ``out → out`` with stride 1."""
    blocks = [make_block(in_channels, out_channels, stride=stage.stride)]
    blocks += [make_block(out_channels, out_channels, stride=1) for _ in range(stage.repeats - 1)]
    return nn.Sequential(*blocks)


RowT = TypeVar("RowT", bound=tuple)  # a NamedTuple table row with a ``stride`` field


def without_first_downsampling(rows: Sequence[RowT]) -> tuple[RowT, ...]:
    """The rows with the first stride-2 row set to stride 1.

    This is how the course adapts an ImageNet MobileNet to 32×32 CIFAR images: the stem and
    the first downsampling block keep stride 1, so the total stride falls from 32 to 8 and a
    32×32 image ends as a 4×4 map, while every layer and weight shape stays the same (as
    chenyaofo/pytorch-cifar-models does for MobileNetV2).
    """
    first = next(i for i, row in enumerate(rows) if row.stride == 2)
    return (*rows[:first], rows[first]._replace(stride=1), *rows[first + 1 :])


def stages_without_first_downsampling(
    stages: Sequence[Sequence[RowT]],
) -> tuple[tuple[RowT, ...], ...]:
    """:func:`without_first_downsampling` on a table of stages that lists every block."""
    rows = without_first_downsampling([row for stage in stages for row in stage])
    grouped, start = [], 0
    for stage in stages:
        grouped.append(tuple(rows[start : start + len(stage)]))
        start += len(stage)
    return tuple(grouped)
