"""Crash-safe file writes, shared by the data cache, the checkpoints, ONNX files and results."""

from __future__ import annotations

import os
import re
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

# Temporary files are named ".<target name>.pid<writer's PID>.<random>.tmp", so that anyone
# can tell which file and which process they belong to (``ls -a`` shows them).
_TEMPORARY_NAME = re.compile(r"^\.(?P<target>.+)\.pid(?P<pid>\d+)\.[a-z0-9_]+\.tmp$")

# A temporary untouched for this long is stale even if its PID is alive: the PID may have been
# reused, or the file may come from another machine sharing the folder (Google Drive on Colab).
STALE_AFTER_SECONDS = 3600


@contextmanager
def written_atomically(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path in ``path``'s folder; on success it replaces ``path`` in one step.

    The temporary is named ``.<name>.pid<PID>.<random>.tmp``: a crash at any moment leaves the
    previous file intact, never half a file. An exception removes the temporary file; a hard
    kill (``kill -9``, a lost Colab session, a power cut) cannot, so the temporary stays until
    the next write into the same folder removes it (:func:`remove_stale_temporaries`). For
    writers that take a file name (``torch.onnx.export``, ONNX Runtime's quantizer) as well as
    for :func:`save_atomic`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path.parent)
    handle, temporary = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.pid{os.getpid()}.", suffix=".tmp"
    )
    os.close(handle)
    try:
        yield Path(temporary)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def save_atomic(obj: Any, path: str | Path) -> None:
    """``torch.save(obj, path)`` so that ``path`` is either the old file or the complete new one
    (:func:`written_atomically`)."""
    with written_atomically(path) as temporary, open(temporary, "wb") as file:
        torch.save(obj, file)
        file.flush()
        os.fsync(file.fileno())  # on disk before the rename, not just in the OS cache


def remove_stale_temporaries(folder: str | Path) -> list[Path]:
    """Delete the temporaries that killed :func:`save_atomic` calls left in ``folder``.

    A temporary is stale when the process named by its PID no longer runs on this machine,
    or when nobody has written to it for ``STALE_AFTER_SECONDS``. The temporaries of writers
    still running (another process, another thread) are kept. Returns the deleted paths.
    """
    removed = []
    for entry in os.scandir(folder):
        match = _TEMPORARY_NAME.match(entry.name)
        if match is None or not _is_stale(entry, int(match["pid"])):
            continue
        try:
            os.unlink(entry.path)
        except FileNotFoundError:  # another writer removed it first
            continue
        removed.append(Path(entry.path))
    return removed


def _is_stale(entry: os.DirEntry, pid: int) -> bool:
    try:
        idle_seconds = time.time() - entry.stat().st_mtime
    except FileNotFoundError:  # renamed or removed since the folder was listed
        return False
    return idle_seconds > STALE_AFTER_SECONDS or not _process_is_running(pid)


def _process_is_running(pid: int) -> bool:
    """Whether a process with this PID exists on this machine (signal 0 checks, sends nothing)."""
    if os.name == "nt":  # on Windows os.kill(pid, 0) would send CTRL+C: rely on the age alone
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, but belongs to another user
        return True
    except OSError:  # e.g. an out-of-range PID from another machine
        return False
    return True
