"""The fast path: a whole split held as one uint8 tensor on the device, batched in place.

No ``DataLoader``, no worker processes, no PIL: each batch is an ``index_select`` from the
tensor, the augmentation and the normalization run on the whole batch at once (on the GPU
when there is one). This is how the fastest CIFAR-10 training scripts load data (Keller
Jordan's airbench, tysam-code's hlb-CIFAR10).

Reproducibility: epoch ``e`` of a loader with seed ``s`` always yields the same batches,
whatever ran before, because its permutation and augmentation come from a generator seeded
with ``(s, e)`` alone, never from the global random state. ``set_epoch`` picks the epoch, so a
resumed run sees the same batches as an uninterrupted one.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator

import numpy as np
import torch

from mnlib.config import get_device
from mnlib.data.batch_ops import AUGMENTATIONS, ShiftFlip, normalize
from mnlib.data.sources import CLASS_NAMES, check_name, load_tensors


class TensorLoader:
    """Batches ``(images, labels)`` from uint8 tensors held on one device.

    Yields ``images`` float32 ``[B, C, H, W]`` normalized with the data set's MEAN/STD and
    ``labels`` int64 ``[B]``, both on ``device``; the last batch may be smaller.
    ``len(loader)`` is the number of batches, ``loader.dataset_size`` the number of images.
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
    ) -> None:
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise TypeError(f"images must be uint8 [N, C, H, W]; got {images.dtype} {images.shape}")
        if len(labels) != len(images):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1; got {batch_size}")
        if seed < 0:
            raise ValueError(f"seed must be a non-negative integer; got {seed}")
        self.device = torch.device(device) if device is not None else get_device()
        self.images = images.to(self.device)
        self.labels = labels.to(self.device)
        self.name = check_name(name)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.augmentation = augmentation
        self.seed = seed
        self.epoch = 0  # the epoch the next pass over the data uses

    @property
    def dataset_size(self) -> int:
        """The number of images in one epoch."""
        return len(self.images)

    def __len__(self) -> int:
        """The number of batches in one epoch."""
        return math.ceil(self.dataset_size / self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        """Make the next pass yield epoch ``epoch``'s batches (like ``DistributedSampler``)."""
        if epoch < 0:
            raise ValueError(f"epoch must be non-negative; got {epoch}")
        self.epoch = epoch

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        # Not a generator function: the epoch is taken (and the counter advanced) at iter(),
        # not lazily at the first batch.
        epoch, self.epoch = self.epoch, self.epoch + 1
        return self._batches(epoch)

    def _batches(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order, offsets, flips = self._epoch_plan(epoch)
        for start in range(0, self.dataset_size, self.batch_size):
            index = order[start : start + self.batch_size]
            images = self.images.index_select(0, index)
            if self.augmentation is not None:
                stop = start + self.batch_size
                images = self.augmentation(images, offsets[start:stop], flips[start:stop])
            yield normalize(images, self.name), self.labels.index_select(0, index)

    def _epoch_plan(self, epoch: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The epoch's image order and augmentation parameters, drawn on the CPU in one go.

        Drawing on the CPU makes the batches the same on every device; moving the three
        tensors to the device once per epoch costs next to nothing.
        """
        n = self.dataset_size
        # SeedSequence mixes (seed, epoch) into one well-spread seed for a local generator.
        mixed = np.random.SeedSequence([self.seed, epoch]).generate_state(1)[0]
        generator = torch.Generator().manual_seed(int(mixed))
        order = torch.randperm(n, generator=generator) if self.shuffle else torch.arange(n)
        offsets = flips = torch.empty(0)
        if self.augmentation is not None:
            offsets, flips = self.augmentation.sample(n, generator)
        return order.to(self.device), offsets.to(self.device), flips.to(self.device)

    def __repr__(self) -> str:
        return (
            f"TensorLoader({self.name}, {self.dataset_size} images, batch_size={self.batch_size}, "
            f"{len(self)} batches, shuffle={self.shuffle}, augmentation={self.augmentation}, "
            f"seed={self.seed}, device={self.device})"
        )


def balanced_subset(labels: torch.Tensor, size: int, num_classes: int, seed: int) -> torch.Tensor:
    """Sorted indices of ``size // num_classes`` randomly chosen examples of every class.

    The choice depends only on ``labels`` and ``seed``. Raises ValueError when ``size`` is
    below ``num_classes`` or asks for more examples of a class than there are.
    """
    if size < num_classes:
        raise ValueError(
            f"subset={size} is too small: it needs at least one image per class, "
            f"so subset >= {num_classes}"
        )
    labels = labels.cpu()
    per_class = size // num_classes
    counts = torch.bincount(labels, minlength=num_classes)
    if per_class > int(counts.min()):
        raise ValueError(
            f"subset={size} asks for {per_class} images per class, but the smallest class has "
            f"{int(counts.min())}: use subset <= {int(counts.min()) * num_classes}"
        )
    generator = torch.Generator().manual_seed(seed)
    chosen = []
    for label in range(num_classes):
        members = (labels == label).nonzero().squeeze(1)
        chosen.append(members[torch.randperm(len(members), generator=generator)[:per_class]])
    return torch.cat(chosen).sort().values


def loaders(
    name: str,
    batch_size: int = 128,
    *,
    augment: bool = False,
    subset: int | None = None,
    root: str | os.PathLike | None = None,
    device: torch.device | str | None = None,
    seed: int = 0,
    test_subset: int | None = None,
) -> tuple[TensorLoader, TensorLoader]:
    """Fast ``(train_loader, test_loader)`` for ``"mnist"`` or ``"cifar10"``.

    The train loader reshuffles every epoch (seeded by ``seed`` and the epoch, see
    :class:`TensorLoader`) and, with ``augment``, applies ``AUGMENTATIONS[name]`` (CIFAR-10:
    4-pixel shift + flip; MNIST: 2-pixel shift). The test loader keeps the data set's order
    and never augments. ``subset``/``test_subset`` keep a seeded, class-balanced subset of
    the split (``N // 10`` images per class). ``device`` defaults to :func:`mnlib.get_device`.

    >>> train_loader, test_loader = loaders("mnist", batch_size=256, subset=6000)
    >>> images, labels = next(iter(train_loader))  # [256, 1, 28, 28] float32, [256] int64
    """
    check_name(name)
    device = torch.device(device) if device is not None else get_device()
    shared = {"name": name, "batch_size": batch_size, "seed": seed, "device": device}
    train_images, train_labels = _split_subset(name, "train", subset, root, seed)
    train_loader = TensorLoader(
        train_images,
        train_labels,
        shuffle=True,
        augmentation=AUGMENTATIONS[name] if augment else None,
        **shared,
    )
    test_images, test_labels = _split_subset(name, "test", test_subset, root, seed)
    test_loader = TensorLoader(test_images, test_labels, shuffle=False, **shared)
    return train_loader, test_loader


def _split_subset(
    name: str, split: str, size: int | None, root: str | os.PathLike | None, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """One split's uint8 images and labels, cut to a class-balanced subset when ``size`` is set."""
    images, labels = load_tensors(name, split, root=root)
    if size is None:
        return images, labels
    keep = balanced_subset(labels, size, len(CLASS_NAMES[name]), seed)
    return images[keep], labels[keep]
