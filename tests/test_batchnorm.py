"""Tests of mnlib.train.batchnorm (precise BN) and fit(..., precise_bn=True)."""

import datetime
import os
import tempfile
import time

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from mnlib.train import evaluate, fit, recompute_batchnorm_statistics
from mnlib.train.batchnorm import batchnorm_layers

SPAWN_TIMEOUT = 180  # seconds; two ranks take ~5 s idle


def small_net() -> nn.Module:
    """[N, 3, 8, 8] → [N, 4]: conv, BN, ReLU, depthwise conv, BN, pool, linear."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1, bias=False),
        nn.BatchNorm2d(6),
        nn.ReLU(),
        nn.Conv2d(6, 6, 3, padding=1, groups=6, bias=False),
        nn.BatchNorm2d(6),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(6, 4),
    )


def batches(count: int, size: int = 5, seed: int = 1) -> list[tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(seed)
    return [
        (3 * torch.randn(size, 3, 8, 8, generator=generator) + 2, torch.randint(0, 4, (size,)))
        for _ in range(count)
    ]


def statistics_by_hand(model: nn.Module, data) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Each BN's input mean and unbiased variance per batch, averaged over the batches."""
    inputs = {layer: [] for layer in batchnorm_layers(model)}
    hooks = [
        layer.register_forward_pre_hook(lambda m, args: inputs[m].append(args[0]))
        for layer in inputs
    ]
    model.train()
    with torch.no_grad():
        for images, _ in data:
            model(images)
    for hook in hooks:
        hook.remove()
    return [
        (
            torch.stack([x.mean((0, 2, 3)) for x in seen]).mean(0),
            torch.stack([x.var((0, 2, 3), unbiased=True) for x in seen]).mean(0),
        )
        for seen in inputs.values()
    ]


def buffers(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: value.clone() for name, value in model.named_buffers()}


def test_statistics_are_the_average_over_the_loader_and_nothing_else_changes():
    model, data = small_net(), batches(3)
    expected = statistics_by_hand(small_net(), data)  # the same weights, measured by hand
    weights = {name: p.clone() for name, p in model.named_parameters()}
    model.eval()

    assert recompute_batchnorm_statistics(model, data) == 2

    for layer, (mean, var) in zip(batchnorm_layers(model), expected, strict=True):
        torch.testing.assert_close(layer.running_mean, mean)
        torch.testing.assert_close(layer.running_var, var)
        assert layer.momentum == 0.1  # restored after the pass
    assert not model.training  # the mode the model had
    assert all(torch.equal(p, weights[name]) for name, p in model.named_parameters())


def test_recomputed_statistics_make_eval_mode_agree_with_batch_statistics():
    """One batch in the loader: eval mode then normalizes exactly as train mode did."""
    model, data = small_net(), batches(1, size=16)
    recompute_batchnorm_statistics(model, data)
    images = data[0][0]
    with torch.no_grad():
        model.train()
        with_batch_statistics = model(images)
        model.eval()
        with_running_statistics = model(images)
    # Only the variance differs: unbiased (running) against biased (batch), n = 16 · 64.
    torch.testing.assert_close(with_running_statistics, with_batch_statistics, atol=1e-3, rtol=0)


def test_an_empty_loader_is_an_error_and_leaves_the_model_as_it_was():
    model = small_net()
    fit_once = batches(2)
    recompute_batchnorm_statistics(model, fit_once)  # statistics that are not the reset ones
    before = buffers(model)
    model.eval()
    with pytest.raises(ValueError, match="no batches"):
        recompute_batchnorm_statistics(model, [])
    after = buffers(model)
    assert all(torch.equal(before[name], after[name]) for name in before)
    assert all(layer.momentum == 0.1 for layer in batchnorm_layers(model))
    assert not model.training


def test_a_loader_that_fails_midway_leaves_the_model_as_it_was():
    model = small_net()
    before = buffers(model)

    def failing():
        yield from batches(2)
        raise OSError("disk gone")

    with pytest.raises(OSError, match="disk gone"):
        recompute_batchnorm_statistics(model, failing())
    after = buffers(model)
    assert all(torch.equal(before[name], after[name]) for name in before)
    assert all(layer.momentum == 0.1 for layer in batchnorm_layers(model))


def test_a_model_without_batchnorm_is_left_alone():
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 4))
    assert recompute_batchnorm_statistics(model, batches(2)) == 0


def test_fit_with_precise_bn_validates_with_the_recomputed_statistics():
    data, val = batches(4, size=8), batches(2, size=8, seed=2)
    model = small_net()
    history = fit(model, data, val, epochs=2, lr=0.05, progress=False, precise_bn=True)
    after_fit = buffers(model)
    # Measuring again with the final weights over the same (unshuffled) data changes nothing.
    recompute_batchnorm_statistics(model, data)
    again = buffers(model)
    for name in after_fit:
        torch.testing.assert_close(again[name], after_fit[name])
    assert history.val_accuracy[-1] == evaluate(model, val)["accuracy"]


def test_fit_without_precise_bn_keeps_the_moving_averages():
    data = batches(4, size=8)
    model = small_net()
    fit(model, data, epochs=1, lr=0.05, progress=False)
    moving = buffers(model)
    recompute_batchnorm_statistics(model, data)
    assert not torch.allclose(moving["1.running_var"], model[1].running_var)


def test_fit_rejects_a_precise_bn_that_is_not_a_bool():
    with pytest.raises(TypeError, match="precise_bn"):
        fit(small_net(), batches(2), epochs=1, progress=False, precise_bn="yes")


def _rank_process(rank: int, world: int, store: str, results: str) -> None:
    dist.init_process_group(
        "gloo",
        init_method=f"file://{store}",
        rank=rank,
        world_size=world,
        timeout=datetime.timedelta(seconds=60),  # a lost peer fails the test, never hangs it
    )
    try:
        model = small_net()  # the same weights on every rank
        shard = batches(2, seed=10 + rank)  # each rank its own images
        recompute_batchnorm_statistics(model, shard)
        torch.save({"shard": shard, "buffers": buffers(model)}, f"{results}/{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_under_two_processes_every_rank_ends_with_the_average_of_the_ranks():
    world = 2
    with tempfile.TemporaryDirectory() as folder:
        store = os.path.join(folder, "store")
        processes = mp.spawn(_rank_process, args=(world, store, folder), nprocs=world, join=False)
        deadline = time.monotonic() + SPAWN_TIMEOUT
        while not processes.join(timeout=1):  # raises if a rank failed
            assert time.monotonic() < deadline, f"the 2 ranks did not finish in {SPAWN_TIMEOUT} s"
        results = [torch.load(f"{folder}/{rank}.pt") for rank in range(world)]
    per_rank = [statistics_by_hand(small_net(), result["shard"]) for result in results]
    for index, name in enumerate(["1", "4"]):  # the two BatchNorm layers of small_net
        mean = (per_rank[0][index][0] + per_rank[1][index][0]) / 2
        var = (per_rank[0][index][1] + per_rank[1][index][1]) / 2
        for result in results:
            torch.testing.assert_close(result["buffers"][f"{name}.running_mean"], mean)
            torch.testing.assert_close(result["buffers"][f"{name}.running_var"], var)
