"""MNIST and CIFAR-10 for the course: decoded once, cached, and batched fast.

Two ways to get batches:

* :func:`loaders` (the default in every chapter): the whole split as one uint8 tensor on the
  device, batches cut, augmented and normalized there (:mod:`mnlib.data.fast`).
* :func:`classic_loaders`: the textbook ``DataLoader`` with per-sample PIL transforms
  (:mod:`mnlib.data.classic`), for teaching and for ``benchmarks/loader_throughput.py``.

Where the data comes from (:mod:`mnlib.data.sources`): the ``root`` argument, else
``MNLIB_DATA``, else ``~/.cache/mnlib/data`` (downloaded there by torchvision). The decoded
arrays are cached in ``MNLIB_CACHE``, else ``~/.cache/mnlib/arrays`` (:mod:`mnlib.data.cache`).
"""

from mnlib.data.batch_ops import AUGMENTATIONS, ShiftFlip, normalize
from mnlib.data.classic import ArrayImageDataset, classic_loaders, classic_transforms
from mnlib.data.fast import TensorLoader, balanced_subset, loaders
from mnlib.data.sources import CLASS_NAMES, DATASETS, MEAN, STD, data_root, load_tensors

__all__ = [
    "AUGMENTATIONS",
    "CLASS_NAMES",
    "DATASETS",
    "MEAN",
    "STD",
    "ArrayImageDataset",
    "ShiftFlip",
    "TensorLoader",
    "balanced_subset",
    "classic_loaders",
    "classic_transforms",
    "data_root",
    "load_tensors",
    "loaders",
    "normalize",
]
