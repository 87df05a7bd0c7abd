"""A checked on-disk cache for decoded data sets: one ``.pt`` file per data set and split.

Decoding CIFAR-10's 60,000 JPEGs takes seconds; reading one ``torch.save`` file takes a fraction
of a second. The cache lives in a per-user folder (``MNLIB_CACHE``, else
``$XDG_CACHE_HOME/mnlib/arrays``, else ``~/.cache/mnlib/arrays``), one subfolder per data root,
so the data root itself may be read-only.

A cache file is only used when it can be trusted. Besides the arrays it stores

* ``"sha256"``, a hash of the arrays' bytes: a file damaged on disk (a flipped block, a
  truncated copy) no longer matches it;
* ``"source"``, a fingerprint of the source files (name, size and modification time of each):
  a replaced or re-downloaded data set no longer matches it;
* ``"format"``, so that files written by an older mnlib are rebuilt, not misread.

On any mismatch :func:`load_checked` warns, naming the file, and the caller rebuilds it. Writes
are atomic (:func:`mnlib.files.save_atomic`); when the cache folder is not writable the data is
used without caching, with one warning.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import torch

from mnlib.files import save_atomic

Arrays = dict[str, torch.Tensor]

CACHE_FORMAT = 2  # bump when the layout of a cache file changes: older files are rebuilt
ARRAY_KEYS = ("images", "labels")

_unwritable_folders: set[Path] = set()  # warned about once each


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


def content_hash(arrays: Arrays) -> str:
    """SHA-256 of the bytes of ``arrays["images"]`` and ``arrays["labels"]`` (~0.1 s per 150 MB)."""
    digest = hashlib.sha256()
    for key in ARRAY_KEYS:
        values = arrays[key].contiguous().numpy()
        digest.update(f"{key} {values.dtype} {values.shape}\n".encode())
        digest.update(values.reshape(-1).view(np.uint8))  # the raw bytes, without a copy
    return digest.hexdigest()


def source_fingerprint(files: Iterable[str | os.PathLike], root: str | os.PathLike) -> str:
    """A hash of the path, size and modification time of each source file (missing ones too).

    It changes when a file is replaced, edited, added or removed, without reading the files:
    about 0.2 s for CIFAR-10's 50,000 training JPEGs. Paths are taken relative to the data
    ``root``, so the same folder reached through another path (a symbolic link) matches.
    """
    prefix = os.fspath(root)
    lines = []
    for file in files:
        name = os.fspath(file).removeprefix(prefix)
        try:
            status = os.stat(file)
            lines.append(f"{name}\t{status.st_size}\t{status.st_mtime_ns}\n")
        except FileNotFoundError:
            lines.append(f"{name}\tmissing\n")
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def load_checked(path: Path, source: str, is_valid: Callable[[Arrays], bool]) -> Arrays | None:
    """The arrays cached at ``path``, or None (with a warning naming the file) when untrusted.

    ``source`` is the current :func:`source_fingerprint`; ``is_valid`` checks shapes and dtypes.
    Returns None quietly when there is no cache file yet.
    """
    if not path.is_file():
        return None
    try:
        stored = torch.load(path, weights_only=True)
    except Exception as error:  # a damaged zip archive raises several different error types
        _warn_rebuild(path, f"is corrupt ({type(error).__name__}: {error})")
        return None
    problem = _problem_with(stored, source, is_valid)
    if problem is not None:
        _warn_rebuild(path, problem)
        return None
    return {key: stored[key] for key in ARRAY_KEYS}


def _problem_with(stored: object, source: str, is_valid: Callable[[Arrays], bool]) -> str | None:
    """Why a loaded cache file cannot be used, or None when it can."""
    if not isinstance(stored, dict) or stored.get("format") != CACHE_FORMAT:
        return f"was written in another format (not mnlib cache format {CACHE_FORMAT})"
    if stored.get("source") != source:
        return "was built from source files that have changed since (size or modification time)"
    if not all(isinstance(stored.get(key), torch.Tensor) for key in ARRAY_KEYS):
        return "holds unexpected data"
    if stored.get("sha256") != content_hash(stored):
        return "is corrupt: its content does not match the SHA-256 stored with it"
    if not is_valid(stored):
        return "holds arrays of unexpected shapes or values"
    return None


def _warn_rebuild(path: Path, problem: str) -> None:
    warnings.warn(f"cache file {path} {problem}; rebuilding it", stacklevel=4)


def save_cache(path: Path, arrays: Arrays, source: str) -> None:
    """Write ``arrays`` with their hash and ``source`` fingerprint to ``path``, atomically.

    When the cache folder cannot be written (read-only, full disk, a file in the way), warns
    once per folder and returns: the data is then used without caching.
    """
    stored = {"format": CACHE_FORMAT, "source": source, "sha256": content_hash(arrays), **arrays}
    try:
        save_atomic(stored, path)
    except OSError as error:
        if path.parent not in _unwritable_folders:
            _unwritable_folders.add(path.parent)
            warnings.warn(
                f"cannot write the data cache {path} ({type(error).__name__}: {error}); "
                "loading without the cache, so the data is decoded again next time. "
                "Set MNLIB_CACHE to a writable folder to cache it.",
                stacklevel=3,
            )
