"""The classic path, for teaching and comparison: ``DataLoader`` + per-sample PIL transforms.

This is the pipeline of most PyTorch tutorials: a ``Dataset`` returns one image at a time as a
PIL image, torchvision transforms turn it into a normalized tensor (and augment it), and a
``DataLoader`` collates samples into batches, optionally in worker processes. To keep the
comparison with :mod:`mnlib.data.fast` honest, :class:`ArrayImageDataset` does exactly what
``torchvision.datasets.MNIST`` and ``CIFAR10`` do: the whole split sits in memory as a uint8
array and each sample is wrapped in a PIL image on request (no file decoding per sample).
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, Sampler
from torchvision import transforms

from mnlib.data.batch_ops import AUGMENTATIONS
from mnlib.data.sources import IMAGE_SHAPES, MEAN, STD, check_name
from mnlib.data.splits import Loaders, check_bool, check_int, split_data
from mnlib.train import distributed


class ArrayImageDataset(Dataset):
    """uint8 images ``[N, C, H, W]`` served one at a time as ``(transform(PIL image), label)``."""

    def __init__(
        self, images: torch.Tensor, labels: torch.Tensor, transform: Callable | None = None
    ) -> None:
        # Stored like torchvision's CIFAR10.data: [N, H, W, C] numpy, or [N, H, W] for grey.
        pixels = images.permute(0, 2, 3, 1).numpy()
        self.data = np.ascontiguousarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels)
        self.targets = labels.tolist()
        self.transform = transform

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[object, int]:
        image = Image.fromarray(self.data[index])  # mode "L" for grey, "RGB" for colour
        if self.transform is not None:
            image = self.transform(image)
        return image, self.targets[index]


class ShardSampler(Sampler[int]):
    """Rank ``rank``'s indices of a data set of ``size`` samples: the classic path's sharding.

    The same shards as the fast path (:func:`mnlib.train.distributed.shard_positions` of one
    permutation seeded by ``(seed, epoch)``, or of ``0..size-1`` without shuffling). Like
    ``DistributedSampler`` it needs ``set_epoch(epoch)`` before each epoch (``fit`` calls it);
    unlike it, ``pad=False`` gives every image to exactly one rank, so evaluation counts each
    image once.
    """

    def __init__(
        self, size: int, rank: int, world_size: int, *, shuffle: bool, pad: bool, seed: int = 0
    ) -> None:
        self.size, self.rank, self.world_size = size, rank, world_size
        self.shuffle, self.pad, self.seed, self.epoch = shuffle, pad, seed, 0
        self.positions = distributed.shard_positions(size, rank, world_size, pad=pad)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.positions)

    def __iter__(self):
        if self.shuffle:
            mixed = np.random.SeedSequence([self.seed, self.epoch]).generate_state(1)[0]
            order = torch.randperm(self.size, generator=torch.Generator().manual_seed(int(mixed)))
        else:
            order = torch.arange(self.size)
        return iter(order[self.positions].tolist())


def classic_transforms(name: str, *, augment: bool) -> transforms.Compose:
    """Per-sample transforms: [RandomCrop(+flip) when augmenting,] ToTensor, Normalize.

    The augmentation is the per-image form of the fast path's ``AUGMENTATIONS[name]``.
    """
    check_name(name)
    steps: list[Callable] = []
    if augment:
        augmentation = AUGMENTATIONS[name]
        size = IMAGE_SHAPES[name][1:]
        steps.append(transforms.RandomCrop(size, padding=augmentation.max_shift))
        if augmentation.flip:
            steps.append(transforms.RandomHorizontalFlip())
    steps += [transforms.ToTensor(), transforms.Normalize(MEAN[name], STD[name])]
    return transforms.Compose(steps)


def classic_loaders(
    name: str,
    batch_size: int = 128,
    *,
    augment: bool = False,
    subset: int | None = None,
    val_size: int = 5000,
    test_subset: int | None = None,
    num_workers: int = 0,
    root: str | os.PathLike | None = None,
    seed: int = 0,
    split_seed: int = 0,
) -> Loaders:
    """``Loaders(train, val, test)``: ``torch.utils.data.DataLoader`` s with per-sample transforms.

    The same images as :func:`mnlib.data.loaders` with the same ``subset``, ``val_size``,
    ``test_subset``, ``seed`` and ``split_seed`` (see :mod:`mnlib.data.splits`). Batches are
    ``(images float32 [B, C, H, W], labels int64 [B])`` on the CPU; move them to the device in
    the training loop. Only ``train`` shuffles (in an order seeded by ``seed``) and augments
    (with torch's global random state, like any torchvision transform).

    Under ``torchrun`` each loader yields only this rank's shard (:class:`ShardSampler`), with
    ``batch_size`` images per rank and batch; one process keeps the textbook shuffle.
    """
    check_int(batch_size, "batch_size", minimum=1)  # before any data is loaded
    check_int(num_workers, "num_workers", minimum=0)
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
    options = {
        "batch_size": batch_size,
        "num_workers": num_workers,
        "persistent_workers": num_workers > 0,  # keep the workers alive between epochs
        "pin_memory": torch.cuda.is_available(),  # page-locked batches copy faster to the GPU
    }
    plain = classic_transforms(name, augment=False)
    datasets = {
        "train": ArrayImageDataset(*data["train"], classic_transforms(name, augment=augment)),
        "val": ArrayImageDataset(*data["val"], plain),
        "test": ArrayImageDataset(*data["test"], plain),
    }
    rank, world = distributed.rank(), distributed.world_size()
    if world == 1:
        return Loaders(
            train=DataLoader(
                datasets["train"],
                shuffle=True,
                generator=torch.Generator().manual_seed(seed),
                **options,
            ),
            val=DataLoader(datasets["val"], **options),
            test=DataLoader(datasets["test"], **options),
        )

    def shard(part: str, training: bool) -> DataLoader:
        sampler = ShardSampler(
            len(datasets[part]), rank, world, shuffle=training, pad=training, seed=seed
        )
        return DataLoader(datasets[part], sampler=sampler, **options)

    return Loaders(train=shard("train", True), val=shard("val", False), test=shard("test", False))
