"""Helpers shared by the model tests: realistic random weights for weight-for-weight checks."""

from __future__ import annotations

import torch
from torch import nn


@torch.no_grad()
def randomize_(
    model: nn.Module, x: torch.Tensor, seed: int = 0, *, variance_boost: float = 0.01
) -> nn.Module:
    """Seeded random biases, layer-scale γ, BN affine parameters and BN statistics, in place.

    Freshly initialised BN layers are identities in eval mode and biases are zero, so a wrong
    mapping of those would go unnoticed. The running statistics start from a train-mode pass
    over ``x`` (so they have the scale of each BN's real input), then every channel's variance
    is scaled by a random factor in [1, 2], raised by a random share (around
    ``variance_boost``) of its layer's mean variance, so that no channel amplifies float
    rounding, and its mean shifted at random. Raising variances shrinks activations layer by
    layer: the default keeps the features of deep plain networks clearly input-dependent;
    attention needs ``variance_boost=1`` (large activations make its softmax amplify rounding).
    Purely random statistics would let activations grow by orders of magnitude, and the output
    of a deep network would then hardly depend on its input. Returns the model in eval mode.
    """
    generator = torch.Generator().manual_seed(seed)

    def uniform(like: torch.Tensor, low: float, high: float) -> torch.Tensor:
        return low + (high - low) * torch.rand(like.shape, generator=generator)

    for name, parameter in model.named_parameters():
        if name.endswith("gamma"):
            parameter.copy_(uniform(parameter, 0.5, 1.0))
    for module in model.modules():
        if isinstance(module, nn.Conv2d | nn.Linear) and module.bias is not None:
            module.bias.copy_(0.05 * torch.randn(module.bias.shape, generator=generator))
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    momenta = [norm.momentum for norm in norms]
    for norm in norms:
        norm.weight.copy_(uniform(norm.weight, 0.75, 1.25))
        norm.bias.copy_(0.1 * torch.randn(norm.bias.shape, generator=generator))
        norm.momentum = 1.0  # the train-mode pass below *sets* the running statistics
    model.train()(x)
    for norm, momentum in zip(norms, momenta, strict=True):
        norm.momentum = momentum
        boost = variance_boost * norm.running_var.mean() * uniform(norm.running_var, 0.5, 1.5)
        norm.running_var.mul_(uniform(norm.running_var, 1.0, 2.0)).add_(boost)
        shift = torch.randn(norm.running_mean.shape, generator=generator)
        norm.running_mean.add_(0.1 * norm.running_var.sqrt() * shift)
    return model.eval()


def image_batch(channels: int = 3, size: int = 32, batch: int = 2, seed: int = 0) -> torch.Tensor:
    """A seeded random batch ``[batch, channels, size, size]``."""
    return torch.randn(batch, channels, size, size, generator=torch.Generator().manual_seed(seed))


def features_and_logits(
    model: nn.Module, body: nn.Module, x: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The output of ``body`` (a part of ``model``, captured by a hook) and the logits."""
    captured = []
    handle = body.register_forward_hook(lambda module, inputs, output: captured.append(output))
    try:
        with torch.no_grad():
            logits = model(x)
    finally:
        handle.remove()
    return captured[0], logits
