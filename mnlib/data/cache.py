"""A crash-safe on-disk cache for decoded data sets: one ``.pt`` file per data set and split.

Decoding CIFAR-10's 60,000 JPEGs takes seconds; reading one ``torch.save`` file takes a fraction
of a second. The cache lives in a per-user folder (``MNLIB_CACHE``, else
``$XDG_CACHE_HOME/mnlib/arrays``, else ``~/.cache/mnlib/arrays``), one subfolder per data root,
so the data root itself may be read-only.

Writes are atomic (:func:`mnlib.files.save_atomic`): a crash mid-write never leaves a
half-written cache file, and a corrupt one is detected and rebuilt.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Callable
from pathlib import Path

import torch

Arrays = dict[str, torch.Tensor]


def user_cache_dir() -> Path:
    """The per-user cache folder: ``$XDG_CACHE_HOME/mnlib``, else ``~/.cache/mnlib``."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "mnlib"


def cache_dir(root: Path) -> Path:
    """The folder that caches the data sets read from ``root`` (one folder per resolved root)."""
    base = os.environ.get("MNLIB_CACHE") or user_cache_dir() / "arrays"
    resolved = str(root.expanduser().resolve())
    key = hashlib.sha256(resolved.encode()).hexdigest()[:12]
    return Path(base).expanduser() / f"{root.name or 'root'}-{key}"


def load_checked(path: Path, is_valid: Callable[[Arrays], bool]) -> Arrays | None:
    """The arrays stored at ``path``; None when the file is missing or corrupt (with a warning)."""
    if not path.exists():
        return None
    try:
        arrays = torch.load(path, weights_only=True)
    except Exception as error:  # a damaged zip archive raises several different error types
        warnings.warn(f"cache file {path} is corrupt ({error}); rebuilding it", stacklevel=3)
        return None
    if not isinstance(arrays, dict) or not is_valid(arrays):
        warnings.warn(f"cache file {path} holds unexpected data; rebuilding it", stacklevel=3)
        return None
    return arrays
