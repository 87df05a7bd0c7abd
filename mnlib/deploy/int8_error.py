"""Why a layer loses accuracy under INT8: its weight ranges and its quantization error.

INT8 stores a tensor as ``round(x / scale) + zero_point`` with 256 levels. One ``scale`` must
cover the tensor's whole range, so values in a narrow sub-range get few levels. These functions
simulate that in PyTorch ("fake quantization": quantize, then dequantize at once) layer by
layer, on a copy of the model whose BatchNorms are folded into the convolutions, as they are
in the exported ONNX graph.
"""

from __future__ import annotations

import copy
from typing import NamedTuple

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

INT8_LEVELS = 255  # symmetric int8 weights use -127..127; uint8 activations 0..255


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """A copy of ``model`` (eval mode) where every Conv2d directly followed by a BatchNorm2d
    in its parent module has the BatchNorm folded into its weight and bias, and the
    BatchNorm is replaced by ``nn.Identity``. Same outputs, up to float rounding.

    Folding multiplies each output channel's filter by ``gamma / sqrt(var + eps)``: channels
    whose BatchNorm scales differ end up with weights of very different sizes.
    """
    folded = copy.deepcopy(model).cpu().eval()
    for parent in folded.modules():
        children = list(parent.named_children())
        for (conv_name, conv), (bn_name, bn) in zip(children, children[1:], strict=False):
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                setattr(parent, conv_name, fuse_conv_bn_eval(conv, bn))
                setattr(parent, bn_name, nn.Identity())
    return folded


def weight_range_spread(weight: torch.Tensor) -> float:
    """Largest / median per-output-channel range (max - min) of a weight [out, ...].

    1 means every channel spans the same range; 50 means that with one scale for the whole
    tensor (per-tensor quantization) a typical channel uses about 1/50 of the 255 levels.
    """
    if weight.dim() < 2:
        raise ValueError(f"expected a weight [out, ...], got shape {tuple(weight.shape)}")
    flat = weight.detach().flatten(1)
    ranges = flat.amax(dim=1) - flat.amin(dim=1)  # [out]
    median = ranges.median()
    if median <= 0:
        raise ValueError("the median channel range is 0: the weight is (mostly) constant")
    return float(ranges.max() / median)


def fake_quantize_weight(weight: torch.Tensor, per_channel: bool) -> torch.Tensor:
    """``weight`` [out, ...] rounded to symmetric int8 and back: one scale per output channel
    (``per_channel``) or one for the whole tensor, scale = max |w| / 127."""
    flat = weight.detach().flatten(1)
    max_abs = flat.abs().amax(dim=1, keepdim=True) if per_channel else flat.abs().amax()
    scale = (max_abs / (INT8_LEVELS // 2)).clamp(min=1e-12)  # [out, 1] or a 0-d tensor
    return ((flat / scale).round().clamp(-127, 127) * scale).view_as(weight)


def fake_quantize_activation(x: torch.Tensor) -> torch.Tensor:
    """``x`` (any shape) rounded to uint8 and back with one scale and zero point for the whole
    tensor from its min and max, as ONNX Runtime's MinMax calibration does."""
    low, high = min(float(x.min()), 0.0), max(float(x.max()), 0.0)  # the range must include 0
    scale = max((high - low) / INT8_LEVELS, 1e-12)
    zero_point = round(-low / scale)
    return ((x / scale).round() + zero_point).clamp(0, INT8_LEVELS).sub(zero_point) * scale


def weight_quantization_error(weight: torch.Tensor, per_channel: bool = True) -> float:
    """Relative error ||w_q - w|| / ||w|| of int8 ``weight`` [out, ...] (see
    :func:`fake_quantize_weight`)."""
    error = (fake_quantize_weight(weight, per_channel) - weight).norm()
    return float(error / weight.norm().clamp(min=1e-12))


class LayerError(NamedTuple):
    """One convolution's quantization error, measured on a batch (:func:`layer_errors`)."""

    name: str  # the module's name in the model
    kind: str  # "depthwise", "pointwise" (1×1) or "full" (k×k over all channels)
    weight_error: float  # relative error of its int8 weights
    output_error: float  # relative error of its output with int8 weights and int8 input


def conv_kind(conv: nn.Conv2d) -> str:
    """'depthwise' (one filter per channel), 'pointwise' (1×1) or 'full'."""
    if conv.groups > 1 and conv.groups == conv.in_channels:
        return "depthwise"
    return "pointwise" if conv.kernel_size == (1, 1) else "full"


def layer_errors(
    model: nn.Module, images: torch.Tensor, per_channel: bool = True
) -> list[LayerError]:
    """The quantization error of every Conv2d of ``model`` (BatchNorm folded) on ``images``
    [N, C, H, W], one layer at a time: its input quantized to uint8 (per tensor), its weight
    to int8 (per channel or per tensor), compared with the float output of the same layer.

    Errors are relative L2 norms ||y_q - y|| / ||y||, so layers of any size compare.
    """
    if images.dim() != 4:
        raise ValueError(f"images must be [N, C, H, W], got shape {tuple(images.shape)}")
    folded = fold_batchnorm(model)
    results: list[LayerError] = []

    def measure(name: str, conv: nn.Conv2d):
        def hook(module: nn.Conv2d, inputs: tuple[torch.Tensor], output: torch.Tensor) -> None:
            weight = fake_quantize_weight(module.weight, per_channel)
            quantized = module._conv_forward(
                fake_quantize_activation(inputs[0]), weight, module.bias
            )
            error = (quantized - output).norm() / output.norm().clamp(min=1e-12)
            results.append(
                LayerError(
                    name,
                    conv_kind(module),
                    weight_quantization_error(module.weight, per_channel),
                    float(error),
                )
            )

        return conv.register_forward_hook(hook)

    handles = [
        measure(name, module)
        for name, module in folded.named_modules()
        if isinstance(module, nn.Conv2d)
    ]
    try:
        with torch.no_grad():
            folded(images.cpu())
    finally:
        for handle in handles:
            handle.remove()
    return results
