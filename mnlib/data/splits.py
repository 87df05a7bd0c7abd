"""Which images each loader gets: the validation split, class-balanced subsets, argument checks.

Every data set comes as a training split and a test split. The loaders use three parts:

* **val**: ``val_size`` training images, the same number from every class, chosen by
  ``split_seed`` alone (:func:`validation_split`). Runs with different ``seed`` s are therefore
  compared on the same validation images, and hyperparameters are chosen on them, never on
  the test split.
* **train**: the other training images, or a ``subset`` of them (:func:`balanced_subset`,
  chosen by ``seed``). Never a validation image.
* **test**: the test split, or a ``test_subset`` of it (chosen by ``split_seed``, so that every
  run is evaluated on the same test images).

The fast and the classic loaders both call :func:`split_data`, so they see the same images.
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Iterable
from typing import NamedTuple

import torch

from mnlib.data.sources import CLASS_NAMES, check_name, load_tensors

Batches = Iterable[tuple[torch.Tensor, torch.Tensor]]


class Loaders(NamedTuple):
    """The three loaders of a data set, unpacked as ``train, val, test = loaders(...)``.

    Each yields ``(images float32 [B, C, H, W], labels int64 [B])`` batches.
    """

    train: Batches
    val: Batches
    test: Batches


def check_int(value: object, argument: str, minimum: int | None = None) -> int:
    """``value`` if it is an int (not a bool, not a float) of at least ``minimum``.

    Raises TypeError or ValueError naming ``argument``, so a bad argument fails when it is
    passed, not at the first batch.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{argument} must be an int; got {value!r} ({type(value).__name__})")
    if minimum is not None and value < minimum:
        raise ValueError(f"{argument} must be at least {minimum}; got {value}")
    return int(value)


def check_bool(value: object, argument: str) -> bool:
    """``value`` if it is a bool; TypeError naming ``argument`` otherwise (``augment="no"``...)."""
    if not isinstance(value, bool):
        raise TypeError(f"{argument} must be True or False; got {value!r}")
    return value


def validation_split(
    labels: torch.Tensor, val_size: int, num_classes: int, split_seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(train_indices, val_indices)``: a class-balanced validation split of ``labels`` ``[N]``.

    ``val_indices`` (int64 ``[val_size]``, sorted) holds ``val_size // num_classes`` randomly
    chosen images of every class (the first ``val_size % num_classes`` classes one more);
    ``train_indices`` (int64 ``[N - val_size]``, sorted) holds all the others. The choice
    depends only on ``labels``, ``val_size`` and ``split_seed``, and a smaller ``val_size``
    picks a subset of a larger one's images. Raises ValueError when ``val_size`` is below
    ``num_classes`` or would leave a class with no training image.
    """
    check_int(val_size, "val_size")
    check_int(split_seed, "split_seed", minimum=0)
    if val_size < num_classes:
        raise ValueError(
            f"val_size={val_size} is too small: the validation split needs at least one image "
            f"per class, so val_size >= {num_classes}"
        )
    labels = labels.cpu()
    counts = torch.bincount(labels, minlength=num_classes).tolist()
    share, extra = divmod(val_size, num_classes)
    quotas = [share + (label < extra) for label in range(num_classes)]
    emptied = [label for label in range(num_classes) if quotas[label] >= counts[label]]
    if emptied:
        label = min(emptied, key=lambda label: counts[label])  # the smallest such class
        raise ValueError(
            f"val_size={val_size} takes {quotas[label]} images of class {label} for validation, "
            f"but it has only {counts[label]}, which leaves none for training: "
            f"use val_size <= {num_classes * (min(counts) - 1)}"
        )
    val_indices = _random_members(labels, quotas, split_seed)
    is_val = torch.zeros(len(labels), dtype=torch.bool)
    is_val[val_indices] = True
    return (~is_val).nonzero().squeeze(1), val_indices


def balanced_subset(
    labels: torch.Tensor, size: int, num_classes: int, seed: int, *, argument: str = "size"
) -> torch.Tensor:
    """Sorted indices (int64 ``[size]``) of a seeded, class-balanced subset of ``labels`` ``[N]``.

    Every class gets the same number of images, ``size // num_classes`` (the first
    ``size % num_classes`` classes one more), except that a class with fewer images than its
    share gives all it has and the others share the rest. So the subset has exactly ``size``
    images, is exactly balanced when every class has enough, and ``size = N`` is all of them.
    The choice depends only on ``labels``, ``size`` and ``seed``. Errors name ``argument``.
    """
    check_int(size, argument)
    check_int(seed, "seed", minimum=0)
    if size < num_classes:
        raise ValueError(
            f"{argument}={size} is too small: it needs at least one image per class, "
            f"so {argument} >= {num_classes}"
        )
    if size > len(labels):
        raise ValueError(f"{argument}={size} is more than the {len(labels)} images available")
    labels = labels.cpu()
    counts = torch.bincount(labels, minlength=num_classes).tolist()
    return _random_members(labels, _balanced_quotas(counts, size), seed)


def _balanced_quotas(counts: list[int], size: int) -> list[int]:
    """How many images of each class make a subset of ``size`` as balanced as ``counts`` allow.

    Water filling: share what is left equally among the classes that still have images, until
    nothing is left. Each round either places everything or exhausts at least one class.
    """
    quotas = [0] * len(counts)
    left = size
    while left > 0:
        open_classes = [label for label, count in enumerate(counts) if quotas[label] < count]
        share, extra = divmod(left, len(open_classes))
        for rank, label in enumerate(open_classes):
            take = min(share + (rank < extra), counts[label] - quotas[label])
            quotas[label] += take
            left -= take
    return quotas


def _random_members(labels: torch.Tensor, quotas: list[int], seed: int) -> torch.Tensor:
    """Sorted indices of ``quotas[c]`` random images of each class ``c``, drawn with ``seed``.

    One permutation per class, whatever the quotas: a smaller quota takes a prefix of the
    same permutation, so its images are a subset of a larger quota's.
    """
    generator = torch.Generator().manual_seed(seed)
    # A stable sort groups the indices by class, each group in increasing order.
    counts = torch.bincount(labels, minlength=len(quotas)).tolist()
    by_class = labels.sort(stable=True).indices.split(counts)
    chosen = []
    for members, quota in zip(by_class, quotas, strict=True):
        chosen.append(members[torch.randperm(len(members), generator=generator)[:quota]])
    return torch.cat(chosen).sort().values


def split_data(
    name: str,
    *,
    subset: int | None,
    val_size: int,
    test_subset: int | None,
    root: str | os.PathLike | None,
    seed: int,
    split_seed: int,
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """``{"train", "val", "test"}`` → ``(images uint8 [N, C, H, W], labels int64 [N])`` on the CPU.

    See the module docstring for which images each part holds.
    """
    check_name(name)
    check_int(seed, "seed", minimum=0)
    num_classes = len(CLASS_NAMES[name])
    images, labels = load_tensors(name, "train", root=root)
    train_indices, val_indices = validation_split(labels, val_size, num_classes, split_seed)
    if subset is not None:
        check_int(subset, "subset")
        if subset > len(train_indices):
            raise ValueError(
                f"subset={subset} is more than the {len(train_indices)} training images left "
                f"after the validation split (val_size={val_size}): use subset <= "
                f"{len(train_indices)}, or a smaller val_size"
            )
        pool_labels = labels[train_indices]
        chosen = balanced_subset(pool_labels, subset, num_classes, seed, argument="subset")
        train_indices = train_indices[chosen]
    test_images, test_labels = load_tensors(name, "test", root=root)
    if test_subset is not None:
        test_indices = balanced_subset(
            test_labels, test_subset, num_classes, split_seed, argument="test_subset"
        )
        test_images, test_labels = test_images[test_indices], test_labels[test_indices]
    return {
        "train": (images[train_indices], labels[train_indices]),
        "val": (images[val_indices], labels[val_indices]),
        "test": (test_images, test_labels),
    }
