"""MNIST and CIFAR-10 for the course: decoded once, cached, split, and batched fast.

One call gives the three loaders of a chapter:

>>> train, val, test = mnlib.data.loaders("mnist", batch_size=256)

``val`` is a class-balanced validation split carved from the training images (5,000 by
default), chosen by ``split_seed`` alone, never part of ``train``; ``test`` is the test split,
evaluated once at the end (:mod:`mnlib.data.splits`). Two ways to get batches:

* :func:`loaders` (the default in every chapter): each part as one uint8 tensor on the
  device, batches cut, augmented and normalized there (:mod:`mnlib.data.fast`).
* :func:`classic_loaders`: the textbook ``DataLoader`` with per-sample PIL transforms
  (:mod:`mnlib.data.classic`), same images, for teaching and for
  ``benchmarks/loader_throughput.py``.

Where the data comes from (:mod:`mnlib.data.sources`): the ``root`` argument, else
``MNLIB_DATA``, else ``~/.cache/mnlib/data`` (downloaded there by torchvision). The decoded
arrays are cached in ``MNLIB_CACHE``, else ``~/.cache/mnlib/arrays``, and checked on every load
(:mod:`mnlib.data.cache`).
"""

from mnlib.data.batch_ops import AUGMENTATIONS, ShiftFlip, normalize
from mnlib.data.classic import ArrayImageDataset, classic_loaders, classic_transforms
from mnlib.data.fast import TensorLoader, loaders
from mnlib.data.sources import CLASS_NAMES, DATASETS, MEAN, STD, data_root, load_tensors
from mnlib.data.splits import Loaders, balanced_subset, validation_split

__all__ = [
    "AUGMENTATIONS",
    "CLASS_NAMES",
    "DATASETS",
    "MEAN",
    "STD",
    "ArrayImageDataset",
    "Loaders",
    "ShiftFlip",
    "TensorLoader",
    "balanced_subset",
    "classic_loaders",
    "classic_transforms",
    "data_root",
    "load_tensors",
    "loaders",
    "normalize",
    "validation_split",
]
