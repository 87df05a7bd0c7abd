"""How large a model is on disk: the file, and the file after general-purpose compression."""

from __future__ import annotations

import zlib
from pathlib import Path

MEGABYTE = 1_000_000  # decimal megabytes, as file managers and download pages count them


def file_megabytes(path: str | Path) -> float:
    """Size of the file at ``path`` in MB (10^6 bytes)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no model file at {path}")
    return path.stat().st_size / MEGABYTE


def compressed_megabytes(path: str | Path, level: int = 6) -> float:
    """Size in MB of the file at ``path`` after zlib compression (what a .zip download costs).

    Zeros compress well and random-looking float32 weights do not, so this is where
    unstructured pruning saves space: the file stays as large, its compressed copy shrinks.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no model file at {path}")
    return len(zlib.compress(path.read_bytes(), level)) / MEGABYTE
