"""Pruning: remove weights (unstructured) or whole channels (structured).

* :func:`magnitude_prune` sets the smallest weights to zero (``torch.nn.utils.prune``). The
  tensors keep their shapes and dense kernels multiply the zeros anyway: no speed-up.
* :func:`prune_hidden_channels` removes whole channels inside MobileNetV2's inverted residual
  blocks, so every tensor and every convolution gets smaller: a real speed-up.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.utils import prune

from mnlib.blocks.conv import ConvBNAct
from mnlib.blocks.inverted_residual import InvertedResidual


def _prunable(model: nn.Module) -> list[tuple[nn.Module, str]]:
    """(module, "weight") for every Conv2d and Linear layer of ``model``."""
    return [
        (module, "weight")
        for module in model.modules()
        if isinstance(module, (nn.Conv2d, nn.Linear))
    ]


def magnitude_prune(model: nn.Module, amount: float) -> nn.Module:
    """A copy of ``model`` with the fraction ``amount`` of its conv and linear weights, the
    smallest in absolute value across the whole network, set to zero.

    Global L1 pruning with ``torch.nn.utils.prune.global_unstructured``, then
    ``prune.remove`` to make the zeros permanent (plain weights again, no masks or hooks).
    """
    if not 0.0 <= amount < 1.0:
        raise ValueError(f"amount must be a fraction in [0, 1), got {amount!r}")
    pruned = copy.deepcopy(model)
    parameters = _prunable(pruned)
    if not parameters:
        raise ValueError(f"{type(model).__name__} has no Conv2d or Linear layer to prune")
    prune.global_unstructured(parameters, pruning_method=prune.L1Unstructured, amount=amount)
    for module, name in parameters:
        prune.remove(module, name)  # weight = weight_orig * mask, once and for all
    return pruned


def sparsity(model: nn.Module) -> float:
    """The fraction of the conv and linear weights of ``model`` that are exactly zero."""
    weights = [module.weight for module, _ in _prunable(model)]
    if not weights:
        raise ValueError(f"{type(model).__name__} has no Conv2d or Linear layer")
    zeros = sum(int((weight == 0).sum()) for weight in weights)
    return zeros / sum(weight.numel() for weight in weights)


def _select_conv(
    conv: nn.Conv2d, keep_out: torch.Tensor | None = None, keep_in: torch.Tensor | None = None
) -> nn.Conv2d:
    """A smaller Conv2d with only the output channels ``keep_out`` and, for a non-grouped
    conv, the input channels ``keep_in`` (index tensors); a depthwise conv keeps its
    ``groups == channels``."""
    weight = conv.weight.detach()  # [out, in / groups, k, k]
    if keep_out is not None:
        weight = weight[keep_out]
    if keep_in is not None:
        weight = weight[:, keep_in]
    depthwise = conv.groups > 1
    out_channels = weight.shape[0]
    in_channels = out_channels if depthwise else weight.shape[1]
    smaller = nn.Conv2d(
        in_channels,
        out_channels,
        conv.kernel_size,
        stride=conv.stride,
        padding=conv.padding,
        groups=out_channels if depthwise else 1,
        bias=False,
    )
    smaller.weight.data.copy_(weight)
    return smaller


def _select_batchnorm(bn: nn.BatchNorm2d, keep: torch.Tensor) -> nn.BatchNorm2d:
    """A BatchNorm2d over the channels ``keep`` only, with their statistics and parameters."""
    smaller = nn.BatchNorm2d(len(keep), eps=bn.eps, momentum=bn.momentum)
    for name in ("weight", "bias", "running_mean", "running_var"):
        getattr(smaller, name).data.copy_(getattr(bn, name).detach()[keep])
    return smaller


def _shrink(unit: ConvBNAct, keep_out: torch.Tensor | None, keep_in: torch.Tensor | None):
    unit.conv = _select_conv(unit.conv, keep_out, keep_in)
    if keep_out is not None:
        unit.bn = _select_batchnorm(unit.bn, keep_out)


def prune_hidden_channels(model: nn.Module, keep_fraction: float) -> nn.Module:
    """A copy of ``model`` whose :class:`InvertedResidual` blocks keep only ``keep_fraction``
    of their expanded ("hidden") channels, rounded to a multiple of 8 (at least 8).

    Which channels: those with the largest |scale| of the depthwise BatchNorm, the last
    multiplier a hidden channel sees before the projection (the network-slimming criterion).
    Removing hidden channel i deletes filter i of the expansion conv, channel i of the
    depthwise conv, and input channel i of the projection: ``[N, in, H, W] → [N, hidden', H, W]
    → [N, out, H', W']``. The block's input and output widths, and so the residual additions,
    stay the same. Blocks without an expansion conv (the first of MobileNetV2) are left as
    they are. Fine-tune afterwards: the removed channels did contribute.
    """
    if not 0.0 < keep_fraction <= 1.0:
        raise ValueError(f"keep_fraction must be in (0, 1], got {keep_fraction!r}")
    pruned = copy.deepcopy(model)
    blocks = [m for m in pruned.modules() if isinstance(m, InvertedResidual)]
    if not blocks:
        raise ValueError(f"{type(model).__name__} has no InvertedResidual block to prune")
    for block in blocks:
        if isinstance(block.expand, nn.Identity):
            continue  # its hidden channels are the block's input channels: not ours to remove
        hidden = block.depthwise.conv.out_channels
        keep_count = min(hidden, max(8, 8 * round(hidden * keep_fraction / 8)))
        importance = block.depthwise.bn.weight.detach().abs()  # [hidden]
        keep = importance.topk(keep_count).indices.sort().values
        _shrink(block.expand, keep_out=keep, keep_in=None)
        _shrink(block.depthwise, keep_out=keep, keep_in=None)
        _shrink(block.project, keep_out=None, keep_in=keep)
    return pruned
