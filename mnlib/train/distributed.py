"""Data-parallel training across processes: who am I, which images are mine, what is the total.

``torchrun --nproc_per_node=N script.py`` starts N copies of the same script. Each copy (a
*rank*) holds the whole model, trains on its own share of every batch, and after each backward
pass ``DistributedDataParallel`` averages the gradients of all ranks, so every rank makes the
same update. This module holds the three pieces mnlib needs for that:

* where this process stands: :func:`rank`, :func:`world_size`, :func:`is_main_process`,
  read from the environment torchrun sets (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ...);
  :func:`init_from_env` joins the process group they describe;
* which images are this rank's: :func:`shard_positions` cuts one epoch's order into disjoint
  interleaved shards, so that batch k of every rank together is batch k of one process;
* what the totals are: :func:`all_reduce_sum` adds numbers (correct predictions, images)
  across ranks, so an accuracy is the exact global one, not a mean of per-rank means.

Run without torchrun, the world is one rank and every function is a no-op.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist

TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


def launched_by_torchrun() -> bool:
    """True when this process was started by ``torchrun`` (it sets ``RANK`` and friends)."""
    return all(name in os.environ for name in TORCHRUN_VARIABLES)


def world_size() -> int:
    """How many processes train together (1 outside torchrun)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return int(os.environ.get("WORLD_SIZE", 1)) if launched_by_torchrun() else 1


def rank() -> int:
    """This process's number among them, 0 to world_size() - 1 (0 outside torchrun)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank()
    return int(os.environ.get("RANK", 0)) if launched_by_torchrun() else 0


def local_rank() -> int:
    """This process's number on its own machine: the GPU it should use (0 outside torchrun)."""
    return int(os.environ.get("LOCAL_RANK", 0)) if launched_by_torchrun() else 0


def is_main_process() -> bool:
    """True on rank 0, the one process that prints, writes checkpoints and saves results."""
    return rank() == 0


def is_distributed() -> bool:
    """True when more than one process trains (and the process group is up)."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def init_from_env(backend: str | None = None) -> bool:
    """Join the process group torchrun describes in the environment; True if distributed.

    Safe to call many times (:func:`mnlib.train.fit` and :func:`mnlib.data.loaders` both
    call it). Outside torchrun it does nothing and returns False. The backend is NCCL when
    each rank on this machine has a GPU of its own, gloo (CPU tensors) otherwise. With GPUs,
    rank ``LOCAL_RANK`` is pinned to GPU ``LOCAL_RANK``, so ``"cuda"`` means a different GPU in
    every process.
    """
    if not launched_by_torchrun() or int(os.environ["WORLD_SIZE"]) == 1:
        return False
    # Every rank must pick the same backend: NCCL only if each local rank has its own GPU.
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", 1))
    use_gpu = torch.cuda.is_available() and torch.cuda.device_count() >= local_world
    if use_gpu:
        torch.cuda.set_device(local_rank())  # before any CUDA tensor is made
    if not dist.is_initialized():
        dist.init_process_group(backend=backend or ("nccl" if use_gpu else "gloo"))
    return True


def shard_positions(size: int, rank: int, world_size: int, *, pad: bool) -> torch.Tensor:
    """The positions in an epoch's order of ``size`` images that rank ``rank`` takes: [M] int64.

    Rank r takes positions r, r + w, r + 2w, ... (w = ``world_size``). Interleaving means that
    batch k of each rank (b images each) together is exactly positions k*b*w ... (k+1)*b*w - 1:
    the batch of b*w images one process would have taken. ``pad=True`` (training) first repeats
    the first positions until ``size`` is a multiple of w, as ``DistributedSampler`` does, so that
    every rank runs the same number of steps (an extra step on one rank would wait forever for
    the others' gradients). ``pad=False`` (evaluation) counts every image exactly once.
    """
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"rank must be in [0, world_size); got rank {rank}, world {world_size}")
    positions = torch.arange(size)
    if pad and size % world_size:
        extra = world_size - size % world_size  # fewer than world_size repeats
        positions = torch.cat([positions, positions.repeat(extra // size + 1)[:extra]])
    return positions[rank::world_size]


def all_reduce_sum(*values: torch.Tensor) -> list[torch.Tensor]:
    """Each tensor summed over all ranks (every rank gets the totals); unchanged if not distributed.

    Sum counts and sums, never means: the mean accuracy over ranks is wrong as soon as ranks
    hold different numbers of images, (correct_0 + correct_1) / (n_0 + n_1) is always right.
    Tensors may live on any device the backend supports (the CPU for gloo, CUDA for NCCL).
    """
    if not is_distributed():
        return list(values)
    stacked = torch.stack([value.double() for value in values])  # one message, not one per value
    dist.all_reduce(stacked, op=dist.ReduceOp.SUM)
    return [total.to(value.dtype) for total, value in zip(stacked, values, strict=True)]


def barrier() -> None:
    """Wait until every rank gets here (no-op when not distributed)."""
    if is_distributed():
        dist.barrier()


def gather_objects(value: object) -> list[object]:
    """``[value of rank 0, value of rank 1, ...]`` on every rank; ``[value]`` if not distributed."""
    if not is_distributed():
        return [value]
    gathered: list[object] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, value)
    return gathered
