"""The fast path: a whole split held as one uint8 tensor on the device, batched in place.

No ``DataLoader``, no worker processes, no PIL: each batch is an ``index_select`` from the
tensor, the augmentation and the normalization run on the whole batch at once (on the GPU
when there is one). This is how the fastest CIFAR-10 training scripts load data (Keller
Jordan's airbench, tysam-code's hlb-CIFAR10).

Reproducibility: epoch ``e`` of a loader with seed ``s`` always yields the same batches,
whatever ran before, because its permutation and augmentation come from a generator seeded
with ``(s, e)`` alone, never from the global random state. ``set_epoch`` picks the epoch, so a
resumed run sees the same batches as an uninterrupted one.

Under ``torchrun`` (:mod:`mnlib.train.distributed`) every rank draws the same epoch order and
keeps only its own interleaved shard of it (:func:`~mnlib.train.distributed.shard_positions`):
batch k of all ranks together is batch k of a single process with ``batch_size * world_size``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator

import numpy as np
import torch

from mnlib.config import get_device
from mnlib.data.batch_ops import AUGMENTATIONS, ShiftFlip, normalize
from mnlib.data.sources import check_name
from mnlib.data.splits import Loaders, check_bool, check_int, split_data
from mnlib.train import distributed


class TensorLoader:
    """Batches ``(images, labels)`` from uint8 tensors held on one device.

    Yields ``images`` float32 ``[B, C, H, W]`` normalized with the data set's MEAN/STD and
    ``labels`` int64 ``[B]``, both on ``device``; the last batch may be smaller.
    ``len(loader)`` is the number of batches, ``loader.dataset_size`` the number of images.

    With ``world_size`` > 1 (default: torchrun's, via :mod:`mnlib.train.distributed`) the loader
    yields only rank ``rank``'s shard of every epoch, ``batch_size`` images per batch (the
    per-process batch; the global batch is ``batch_size * world_size``). A shuffling (training)
    loader pads the epoch so every rank has the same number of batches; a non-shuffling one
    (validation, test) gives every image to exactly one rank. ``loader.local_size`` is the
    number of images this rank sees per epoch.
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        *,
        name: str,
        batch_size: int,
        shuffle: bool,
        augmentation: ShiftFlip | None = None,
        seed: int = 0,
        device: torch.device | str | None = None,
        rank: int | None = None,
        world_size: int | None = None,
    ) -> None:
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise TypeError(f"images must be uint8 [N, C, H, W]; got {images.dtype} {images.shape}")
        if len(labels) != len(images):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.name = check_name(name)
        self.batch_size = check_int(batch_size, "batch_size", minimum=1)
        self.seed = check_int(seed, "seed", minimum=0)
        self.shuffle = check_bool(shuffle, "shuffle")
        self.augmentation = augmentation
        self.world_size = check_int(
            world_size if world_size is not None else distributed.world_size(),
            "world_size",
            minimum=1,
        )
        self.rank = check_int(rank if rank is not None else distributed.rank(), "rank", minimum=0)
        if self.rank >= self.world_size:
            raise ValueError(f"rank must be below world_size; got {self.rank} of {self.world_size}")
        self.images = images.to(device if device is not None else get_device())
        self.labels = labels.to(self.images.device)
        # The tensors' own device: "cuda" becomes "cuda:0", so it compares equal to theirs.
        self.device = self.images.device
        self.epoch = 0  # the epoch the next pass over the data uses

    @property
    def dataset_size(self) -> int:
        """The number of images in one epoch."""
        return len(self.images)

    @property
    def local_size(self) -> int:
        """The number of images this rank sees in one epoch (``dataset_size`` on one process)."""
        return len(self._positions())

    def __len__(self) -> int:
        """The number of batches in one epoch (on this rank)."""
        return math.ceil(self.local_size / self.batch_size)

    def _positions(self) -> torch.Tensor:
        """This rank's positions in the epoch's order [local_size] (all of them on one process)."""
        return distributed.shard_positions(
            self.dataset_size, self.rank, self.world_size, pad=self.shuffle
        )

    def set_epoch(self, epoch: int) -> None:
        """Make the next pass yield epoch ``epoch``'s batches (like ``DistributedSampler``)."""
        self.epoch = check_int(epoch, "epoch", minimum=0)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        # Not a generator function: the epoch is taken (and the counter advanced) at iter(),
        # not lazily at the first batch.
        epoch, self.epoch = self.epoch, self.epoch + 1
        return self._batches(epoch)

    def _batches(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order, offsets, flips = self._epoch_plan(epoch)
        for start in range(0, len(order), self.batch_size):
            index = order[start : start + self.batch_size]
            images = self.images.index_select(0, index)
            if self.augmentation is not None:
                stop = start + self.batch_size
                images = self.augmentation(images, offsets[start:stop], flips[start:stop])
            yield normalize(images, self.name), self.labels.index_select(0, index)

    def _epoch_plan(self, epoch: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """This rank's image order and augmentation parameters, drawn on the CPU in one go.

        Drawing on the CPU makes the batches the same on every device; the three tensors
        then move to the device once per epoch, not once per batch. Every rank draws the
        whole epoch with the same generator, then keeps its shard of it.
        """
        n = self.dataset_size
        # SeedSequence mixes (seed, epoch) into one well-spread seed for a local generator.
        mixed = np.random.SeedSequence([self.seed, epoch]).generate_state(1)[0]
        generator = torch.Generator().manual_seed(int(mixed))
        order = torch.randperm(n, generator=generator) if self.shuffle else torch.arange(n)
        offsets = flips = torch.empty(0)
        if self.augmentation is not None:
            offsets, flips = self.augmentation.sample(n, generator)
        if self.world_size > 1:
            mine = self._positions()
            order = order[mine]
            if self.augmentation is not None:
                offsets, flips = offsets[mine], flips[mine]
        return order.to(self.device), offsets.to(self.device), flips.to(self.device)

    def __repr__(self) -> str:
        return (
            f"TensorLoader({self.name}, {self.dataset_size} images, batch_size={self.batch_size}, "
            f"{len(self)} batches, shuffle={self.shuffle}, augmentation={self.augmentation}, "
            f"seed={self.seed}, device={self.device}"
            + (f", rank {self.rank} of {self.world_size}" if self.world_size > 1 else "")
            + ")"
        )


def loaders(
    name: str,
    batch_size: int = 128,
    *,
    augment: bool = False,
    subset: int | None = None,
    val_size: int = 5000,
    test_subset: int | None = None,
    root: str | os.PathLike | None = None,
    device: torch.device | str | None = None,
    seed: int = 0,
    split_seed: int = 0,
) -> Loaders:
    """Fast ``Loaders(train, val, test)``, three :class:`TensorLoader` s, for mnist or cifar10.

    * ``train``: the training images not in the validation split (MNIST 55,000, CIFAR-10 45,000
      with the default ``val_size``), or a class-balanced ``subset`` of them chosen by ``seed``.
      Reshuffled every epoch (seeded by ``seed`` and the epoch); with ``augment``,
      ``AUGMENTATIONS[name]`` (CIFAR-10: 4-pixel shift + flip; MNIST: 2-pixel shift).
    * ``val``: ``val_size`` training images, ``val_size / 10`` of each class, chosen by
      ``split_seed`` alone (:func:`mnlib.data.validation_split`): the same for every ``seed``.
    * ``test``: the test split (10,000 images), or a class-balanced ``test_subset`` of it
      chosen by ``split_seed``.

    ``val`` and ``test`` keep the data set's order and never augment. Every batch is
    ``(images float32 [B, C, H, W], labels int64 [B])`` on ``device`` (default
    :func:`mnlib.get_device`). The same arguments give the same images as
    :func:`mnlib.data.classic_loaders`.

    >>> train, val, test = loaders("mnist", batch_size=256, subset=6000)
    >>> images, labels = next(iter(train))  # [256, 1, 28, 28] float32, [256] int64
    >>> train.dataset_size, val.dataset_size, test.dataset_size
    (6000, 5000, 10000)
    """
    check_int(batch_size, "batch_size", minimum=1)  # before any data is loaded
    check_bool(augment, "augment")
    distributed.init_from_env()  # under torchrun: join the group, pin this rank's GPU
    data = split_data(
        name,
        subset=subset,
        val_size=val_size,
        test_subset=test_subset,
        root=root,
        seed=seed,
        split_seed=split_seed,
    )
    device = torch.device(device) if device is not None else get_device()
    shared = {"name": name, "batch_size": batch_size, "seed": seed, "device": device}
    augmentation = AUGMENTATIONS[name] if augment else None
    return Loaders(
        train=TensorLoader(*data["train"], shuffle=True, augmentation=augmentation, **shared),
        val=TensorLoader(*data["val"], shuffle=False, **shared),
        test=TensorLoader(*data["test"], shuffle=False, **shared),
    )
