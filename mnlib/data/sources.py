"""The two data sets of the course, where they come from, and their decoded uint8 tensors.

Where the data is read from (the *data root*): the ``root`` argument, else the environment
variable ``MNLIB_DATA``, else ``~/.cache/mnlib/data`` (honouring ``XDG_CACHE_HOME``). In that root:

* MNIST: torchvision's raw IDX files in ``ROOT/MNIST/raw/``; when they are missing,
  ``torchvision.datasets.MNIST(ROOT, download=True)`` downloads them there.
* CIFAR-10: the course's offline copy, a JPEG tree ``ROOT/cifar10/{train,test}/<class>/*.jpg``
  whose class folders sort alphabetically into the standard label order; when it is missing,
  ``torchvision.datasets.CIFAR10(ROOT, download=True)`` (the pickled batches).

The decoded arrays are cached once per data set and split (see :mod:`mnlib.data.cache`); the
cache is rebuilt when a source file changes. A truncated or corrupt source file is a ValueError
that names it.
MNIST: LeCun, Cortes and Burges. CIFAR-10: Krizhevsky, "Learning Multiple Layers of Features
from Tiny Images" (2009).
"""

from __future__ import annotations

import math
import os
import struct
from pathlib import Path

import numpy as np
import torch
import torchvision
from PIL import Image

from mnlib.data.cache import (
    Arrays,
    cache_dir,
    load_checked,
    save_cache,
    source_fingerprint,
    user_cache_dir,
)

DATASETS = ("mnist", "cifar10")
SPLITS = ("train", "test")

CLASS_NAMES: dict[str, tuple[str, ...]] = {
    "mnist": tuple(str(digit) for digit in range(10)),
    "cifar10": (
        "airplane", "automobile", "bird", "cat", "deer",
        "dog", "frog", "horse", "ship", "truck",
    ),
}  # fmt: skip

# Per-channel mean and standard deviation of the training images, pixel values scaled to [0, 1].
MEAN: dict[str, tuple[float, ...]] = {"mnist": (0.1307,), "cifar10": (0.4914, 0.4822, 0.4465)}
STD: dict[str, tuple[float, ...]] = {"mnist": (0.3081,), "cifar10": (0.2470, 0.2435, 0.2616)}

IMAGE_SHAPES: dict[str, tuple[int, int, int]] = {"mnist": (1, 28, 28), "cifar10": (3, 32, 32)}
SPLIT_SIZES: dict[str, dict[str, int]] = {
    "mnist": {"train": 60_000, "test": 10_000},
    "cifar10": {"train": 50_000, "test": 10_000},
}


def check_name(name: str) -> str:
    """``name`` if it is a known data set, else a ValueError listing the known ones."""
    if name not in DATASETS:
        raise ValueError(f"unknown data set {name!r}; choose one of {', '.join(DATASETS)}")
    return name


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The data root: ``root``, else ``MNLIB_DATA``, else ``~/.cache/mnlib/data``."""
    chosen = root if root is not None else os.environ.get("MNLIB_DATA") or None
    if chosen is None:
        return user_cache_dir() / "data"
    return Path(chosen).expanduser()


def load_tensors(
    name: str, split: str, *, root: str | os.PathLike | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """One split of a data set as ``(images, labels)``, read once and then from the cache.

    Returns ``images`` as uint8 ``[N, C, H, W]`` (MNIST ``[60000, 1, 28, 28]`` for train,
    CIFAR-10 ``[50000, 3, 32, 32]``) and ``labels`` as int64 ``[N]`` in ``0..9``, on the CPU.
    Raises FileNotFoundError when the data is neither in the root nor downloadable, and
    ValueError naming the file when a source file is truncated or corrupt.
    """
    check_name(name)
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    root_path = data_root(root)
    cache_file = cache_dir(root_path) / f"{name}-{split}.pt"

    def is_valid(arrays: Arrays) -> bool:
        return _has_expected_shape(arrays, name, split)

    arrays = load_checked(cache_file, _fingerprint(name, split, root_path), is_valid)
    if arrays is None:
        images, labels = _read_source(name, split, root_path)
        arrays = {"images": images, "labels": labels}
        if not is_valid(arrays):
            raise RuntimeError(
                f"{name} {split} read from {root_path} has images {tuple(images.shape)} "
                f"{images.dtype} and {labels.numel()} labels; expected "
                f"{(SPLIT_SIZES[name][split], *IMAGE_SHAPES[name])} uint8"
            )
        # Fingerprinted after reading: a download may just have created the source files.
        save_cache(cache_file, arrays, _fingerprint(name, split, root_path))
    return arrays["images"], arrays["labels"]


def _has_expected_shape(arrays: Arrays, name: str, split: str) -> bool:
    """Whether ``arrays`` holds a full, well-formed split (catches truncated or foreign files)."""
    images, labels = arrays.get("images"), arrays.get("labels")
    if not isinstance(images, torch.Tensor) or not isinstance(labels, torch.Tensor):
        return False
    size = SPLIT_SIZES[name][split]
    return (
        images.dtype == torch.uint8
        and tuple(images.shape) == (size, *IMAGE_SHAPES[name])
        and labels.dtype == torch.int64
        and tuple(labels.shape) == (size,)
        and int(labels.min()) >= 0
        and int(labels.max()) < len(CLASS_NAMES[name])
    )


def _fingerprint(name: str, split: str, root: Path) -> str:
    """The :func:`source_fingerprint` of the files one split is read from."""
    return source_fingerprint(_source_files(name, split, root), root)


def _source_files(name: str, split: str, root: Path) -> list[str]:
    """The paths of the files :func:`_read_source` reads for one split, in a fixed order."""
    if name == "mnist":
        return [str(path) for path in _mnist_files(root, split == "train")]
    jpeg_folder = root / "cifar10" / split
    if jpeg_folder.is_dir():
        # os.scandir and plain strings, not Path.glob: 50,000 Path objects take a second.
        class_folders = sorted(entry.path for entry in os.scandir(jpeg_folder) if entry.is_dir())
        return [
            entry.path
            for folder in class_folders
            for entry in sorted(os.scandir(folder), key=lambda entry: entry.name)
            if entry.name.endswith(".jpg")
        ]
    batches = [f"data_batch_{number}" for number in range(1, 6)] if split == "train" else []
    return [str(root / "cifar-10-batches-py" / file) for file in batches or ["test_batch"]]


def _read_source(name: str, split: str, root: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """Decode one split from the offline layout in ``root``, else with torchvision's download."""
    train = split == "train"
    if name == "mnist":
        return _read_mnist(root, train)
    if (root / "cifar10" / split).is_dir():
        return _read_cifar10_jpeg_tree(root / "cifar10" / split)
    return _read_cifar10_batches(root, train)


def _mnist_files(root: Path, train: bool) -> tuple[Path, Path]:
    """The raw IDX files of one MNIST split: ``(images, labels)`` in ``root/MNIST/raw``."""
    prefix = "train" if train else "t10k"
    raw = root / "MNIST" / "raw"
    return raw / f"{prefix}-images-idx3-ubyte", raw / f"{prefix}-labels-idx1-ubyte"


def _read_mnist(root: Path, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST from the IDX files in ``root/MNIST/raw``, downloaded there by torchvision if missing.

    Returns images uint8 ``[N, 1, 28, 28]`` and labels int64 ``[N]``.
    """
    images_file, labels_file = _mnist_files(root, train)
    if not (images_file.exists() and labels_file.exists()):
        try:  # torchvision downloads the four files into root/MNIST/raw
            torchvision.datasets.MNIST(str(root), train=train, download=True)
        except (OSError, RuntimeError) as error:  # no network, no write access, bad checksum
            raise _missing_data_error("mnist", root, [root / "MNIST" / "raw"], error) from error
    images = read_idx(images_file, dims=3)  # [N, 28, 28]
    labels = read_idx(labels_file, dims=1)  # [N]
    return images.unsqueeze(1).contiguous(), labels.long()


def read_idx(path: Path, dims: int) -> torch.Tensor:
    """The uint8 array ``[d1, ..., d_dims]`` stored in an IDX file (the format of MNIST's files).

    An IDX file is a 4-byte magic number (0, 0, 0x08 for unsigned bytes, the number of
    dimensions), one big-endian int32 per dimension, then the values. Raises ValueError naming
    the file when it is truncated, too long or not an IDX file of ``dims`` dimensions.
    """
    data = path.read_bytes()
    header_size = 4 + 4 * dims
    if len(data) < header_size or data[:4] != bytes([0, 0, 0x08, dims]):
        raise ValueError(
            f"{path} is corrupt or not an MNIST IDX file: it should start with a {header_size}-"
            f"byte header for {dims}-dimensional uint8 data. Delete it so that it is downloaded "
            "again, or copy it again from the course's offline data folder."
        )
    shape = struct.unpack(f">{dims}I", data[4:header_size])
    expected_size = header_size + math.prod(shape)
    if len(data) != expected_size:
        problem = "truncated" if len(data) < expected_size else "longer than its header says"
        raise ValueError(
            f"{path} is {problem}: its header announces {' x '.join(map(str, shape))} values "
            f"({expected_size:,} bytes in all) but the file has {len(data):,} bytes. Delete it "
            "so that it is downloaded again, or copy it again from the course's offline data "
            "folder."
        )
    return torch.frombuffer(bytearray(data), dtype=torch.uint8, offset=header_size).view(shape)


def _read_cifar10_batches(root: Path, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """CIFAR-10 via torchvision's pickled batches in ``root/cifar-10-batches-py`` (downloaded)."""
    try:
        cifar = torchvision.datasets.CIFAR10(str(root), train=train, download=True)
    except (OSError, RuntimeError) as error:
        split = "train" if train else "test"
        tried = [root / "cifar10" / split, root / "cifar-10-batches-py"]
        raise _missing_data_error("cifar10", root, tried, error) from error
    images = torch.from_numpy(cifar.data).permute(0, 3, 1, 2).contiguous()  # NHWC → NCHW
    return images, torch.tensor(cifar.targets, dtype=torch.int64)


def _read_cifar10_jpeg_tree(folder: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """Decode ``folder/<class>/*.jpg`` (the layout ``torchvision.datasets.ImageFolder`` reads).

    Returns images uint8 ``[N, 3, 32, 32]`` and labels int64 ``[N]``.
    """
    classes = sorted(entry.name for entry in folder.iterdir() if entry.is_dir())
    if tuple(classes) != CLASS_NAMES["cifar10"]:
        raise RuntimeError(
            f"{folder} should hold one folder per CIFAR-10 class "
            f"({', '.join(CLASS_NAMES['cifar10'])}); found {', '.join(classes) or 'none'}"
        )
    images, labels = [], []
    for label, class_name in enumerate(classes):
        for file in sorted((folder / class_name).glob("*.jpg")):
            images.append(_decode_cifar10_jpeg(file))
            labels.append(label)
    pixels = torch.from_numpy(np.stack(images))  # [N, H, W, C]
    return pixels.permute(0, 3, 1, 2).contiguous(), torch.tensor(labels, dtype=torch.int64)


def _decode_cifar10_jpeg(file: Path) -> np.ndarray:
    """One CIFAR-10 JPEG as uint8 ``[32, 32, 3]``; ValueError naming the file if it is not one."""
    try:
        with Image.open(file) as image:  # PIL, the decoder ImageFolder uses
            pixels = np.asarray(image.convert("RGB"))
    except (OSError, SyntaxError) as error:  # truncated data, not an image at all
        raise ValueError(
            f"cannot decode {file}: {error}. The file is truncated or corrupt; copy it again "
            "from the course's offline data folder."
        ) from error
    if pixels.shape != (32, 32, 3):
        height, width = pixels.shape[:2]
        raise ValueError(
            f"{file} is {width}x{height} pixels; CIFAR-10 images are 32x32. Copy it again "
            "from the course's offline data folder."
        )
    return pixels


def _missing_data_error(
    name: str, root: Path, tried: list[Path], error: Exception
) -> FileNotFoundError:
    """A FileNotFoundError that says where we looked, why the download failed and what to do."""
    dataset_class = "MNIST" if name == "mnist" else "CIFAR10"
    env_value = os.environ.get("MNLIB_DATA")
    env_text = f"MNLIB_DATA={env_value!r}" if env_value else "MNLIB_DATA is not set"
    return FileNotFoundError(
        f"{name} is not in the data root {root} and could not be downloaded.\n"
        f"  looked in: {', '.join(str(path) for path in tried)}\n"
        f"  download:  torchvision.datasets.{dataset_class}({str(root)!r}, download=True) "
        f"failed with {type(error).__name__}: {str(error).strip()}\n"
        f"  ({env_text}; the data root is the root= argument, else MNLIB_DATA, "
        f"else {user_cache_dir() / 'data'})\n"
        "Fix: connect to the internet so torchvision can download the data into the data root, "
        "or set MNLIB_DATA (or root=) to the course's offline data folder, which holds "
        "MNIST/raw/ (the four IDX files) and cifar10/{train,test}/<class>/*.jpg."
    )
