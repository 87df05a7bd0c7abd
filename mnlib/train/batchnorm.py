"""Re-estimate BatchNorm's running statistics from the current weights ("precise BN").

In training mode a BatchNorm layer normalizes with the statistics of the batch and keeps an
exponential moving average of them, ``running = 0.9 · running + 0.1 · batch``, starting from
mean 0 and variance 1; in evaluation mode it normalizes with that average. After a few
thousand steps the average has long forgotten its start. After a few dozen it has not: a
running variance that started at 1 forgets it as ``0.9^steps``, and MobileNets' depthwise
convolutions, initialised as torchvision does (Kaiming normal with ``fan_out = channels × 9``,
which counts every channel although each filter sees one), produce outputs of variance ~1e-3.
Forty-eight steps leave a running variance more than ten times too large in the last blocks,
and the network that reaches 50 % training accuracy predicts one class in evaluation mode.

:func:`recompute_batchnorm_statistics` throws the moving averages away and measures the
statistics again, as a plain average over the batches of a loader, with the weights as they
are now: *precise BN*, as Facebook AI Research's pycls and fvcore call it, analysed by Wu and
Johnson ("Rethinking 'Batch' in BatchNorm", 2021). PyTorch ships the pass as
:func:`torch.optim.swa_utils.update_bn`, used here.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn
from torch.optim.swa_utils import update_bn

from mnlib.train import distributed


def batchnorm_layers(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """Every BatchNorm layer (1-d, 2-d, 3-d, SyncBatchNorm) of ``model`` that tracks running
    statistics, in module order."""
    return [
        module
        for module in model.modules()
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.track_running_stats
    ]


def recompute_batchnorm_statistics(
    model: nn.Module,
    loader: Iterable[tuple[torch.Tensor, torch.Tensor]],
    *,
    device: str | torch.device | None = None,
) -> int:
    """Replace every BatchNorm's running mean and variance by their average over ``loader``.

    One forward pass over ``loader`` (batches of images [B, C, H, W] and labels, usually the
    training loader) without gradients; each batch's mean and (unbiased) variance count
    equally. The weights do not change and the model keeps its train/eval mode. Under
    ``torchrun`` each rank measures its shard and the statistics are averaged across ranks, so
    every rank ends with the same ones.

    Returns the number of BatchNorm layers updated (0 for a model without any).

    Raises:
        ValueError: if ``loader`` yields no batch (the statistics would be left at their reset
            values, mean 0 and variance 1: a silently wrong model). On this or any error during
            the pass the previous statistics are put back.
    """
    layers = batchnorm_layers(model)
    if not layers:
        return 0
    # Everything update_bn changes, to put back if the pass fails.
    saved = [
        ([buffer.clone() for buffer in _statistics(layer)], layer.momentum) for layer in layers
    ]
    was_training, seen = model.training, 0

    def counted() -> Iterable[tuple[torch.Tensor, torch.Tensor]]:
        nonlocal seen
        for batch in loader:
            seen += 1
            yield batch

    try:
        update_bn(counted(), model, device=device)
        if seen == 0:
            raise ValueError(
                "the loader yielded no batches; BatchNorm statistics need at least one"
            )
    except BaseException:
        with torch.no_grad():  # leave the model as it was, not with half-measured statistics
            for layer, (buffers, momentum) in zip(layers, saved, strict=True):
                for buffer, old in zip(_statistics(layer), buffers, strict=True):
                    buffer.copy_(old)
                layer.momentum = momentum  # update_bn sets it to None during the pass
        model.train(was_training)
        raise
    if distributed.is_distributed():
        world = distributed.world_size()
        for layer in layers:  # each rank saw the same number of batches (shards are padded)
            mean, var = distributed.all_reduce_sum(layer.running_mean, layer.running_var)
            layer.running_mean.copy_(mean / world)
            layer.running_var.copy_(var / world)
    return len(layers)


def _statistics(layer: nn.modules.batchnorm._BatchNorm) -> list[torch.Tensor]:
    """The buffers a BatchNorm layer updates in training mode."""
    return [layer.running_mean, layer.running_var, layer.num_batches_tracked]
