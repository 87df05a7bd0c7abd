"""Quantization-aware training (QAT), written out: fake quantization with a straight-through
estimator, on a copy of the model whose BatchNorms are folded into the convolutions.

Post-training quantization rounds a network that never saw rounding. QAT fine-tunes it with the
rounding in the forward pass, so the weights can move to where rounding hurts least. Three
steps, each a few lines:

1. :func:`prepare_qat` folds every BatchNorm into its convolution (as the ONNX export does, so
   the weights trained are the weights that get rounded), then makes every convolution see
   int8-rounded weights (one scale per output channel) and uint8-rounded inputs (one scale per
   tensor), as ONNX Runtime's static quantization will round them;
2. the model trains as usual (:func:`mnlib.train.train_one_epoch`): rounding has a zero
   gradient almost everywhere, so the backward pass treats it as the identity, the
   *straight-through estimator* (Bengio et al. 2013; Jacob et al., CVPR 2018);
3. :func:`finish_qat` removes the rounding again and returns a plain float model to export
   and quantize with :func:`mnlib.deploy.quantize_int8`.

This is the idea in its plainest form, not a framework: PyTorch's own QAT APIs
(``torch.ao.quantization``) are deprecated and their successors (torchao, PT2E) still change
between releases.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrize

from mnlib.deploy.int8_error import fake_quantize_activation, fake_quantize_weight, fold_batchnorm


def straight_through(x: torch.Tensor, rounded: torch.Tensor) -> torch.Tensor:
    """``rounded`` in the forward pass, the identity's gradient (to ``x``) in the backward."""
    return x + (rounded - x).detach()


class FakeQuantizedWeight(nn.Module):
    """A parametrization: the weight [out, ...] as int8 per-channel rounding leaves it."""

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return straight_through(weight, fake_quantize_weight(weight, per_channel=True))


def _fake_quantize_input(conv: nn.Conv2d, inputs: tuple[torch.Tensor]) -> tuple[torch.Tensor]:
    """Forward pre-hook: the conv's input [N, C, H, W] rounded to uint8 (one scale)."""
    (x,) = inputs
    return (straight_through(x, fake_quantize_activation(x.detach())),)


def prepare_qat(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with BatchNorm folded and every ``nn.Conv2d`` fake-quantized.

    Outputs: the same logits [N, classes] as the model INT8 would give, up to the calibration
    (ranges here come from each batch itself, ONNX Runtime's from calibration images).
    The copy is on the CPU and in training mode; ``model`` is not changed.
    """
    prepared = fold_batchnorm(model)  # a copy, BatchNorms replaced by nn.Identity
    convolutions = [m for m in prepared.modules() if isinstance(m, nn.Conv2d)]
    if not convolutions:
        raise ValueError("the model has no nn.Conv2d to quantize")
    for conv in convolutions:
        parametrize.register_parametrization(conv, "weight", FakeQuantizedWeight())
        # Kept on the conv so that finish_qat removes this hook and no other.
        conv.qat_input_rounding = conv.register_forward_pre_hook(_fake_quantize_input)
    return prepared.train()


def finish_qat(prepared: nn.Module) -> nn.Module:
    """The model of :func:`prepare_qat` as a plain float model (eval mode), in place: the
    trained float weights, without the rounding, ready for export and INT8 quantization."""
    convolutions = [m for m in prepared.modules() if hasattr(m, "qat_input_rounding")]
    if not convolutions:
        raise ValueError("the model was not prepared with prepare_qat")
    for conv in convolutions:
        parametrize.remove_parametrizations(conv, "weight", leave_parametrized=False)
        conv.qat_input_rounding.remove()
        del conv.qat_input_rounding
    return prepared.eval()
