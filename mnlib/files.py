"""Crash-safe file writes, shared by the data cache and the training checkpoints."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch


def save_atomic(obj: Any, path: str | Path) -> None:
    """``torch.save(obj, path)`` so that ``path`` is either the old file or the complete new one.

    The data goes to a temporary file in the same folder, which then replaces ``path`` in one
    step (``os.replace``). A crash or a Colab disconnect during the write leaves the previous
    file intact and no temporary file behind, never half a file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            torch.save(obj, file)
            file.flush()
            os.fsync(file.fileno())  # on disk before the rename, not just in the OS cache
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
