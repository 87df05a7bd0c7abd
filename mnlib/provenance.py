"""Where a recorded number came from: the device, the mnlib commit, and an atomic JSON write.

The scripts in ``benchmarks/`` store results (accuracy curves, latency tables) as JSON files
that a chapter may quote; each file says on which machine and from which commit it was made.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import tempfile
from pathlib import Path

import torch

REPOSITORY = Path(__file__).resolve().parents[1]


def cpu_name() -> str:
    """The CPU's model name from ``/proc/cpuinfo`` (Linux), else what ``platform`` knows."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def device_description(device: torch.device, threads: int | None = None) -> str:
    """``"cuda (NVIDIA H200)"`` or ``"cpu (<model name>, 2 threads)"``."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    threads = torch.get_num_threads() if threads is None else threads
    return f"{device.type} ({cpu_name()}, {threads} threads)"


def git_commit(root: str | Path = REPOSITORY) -> dict[str, str | bool | None]:
    """The commit checked out in ``root`` and whether tracked files differ from it.

    ``{"commit": None, "dirty": None}`` when git or the repository is missing (e.g. mnlib
    installed from a wheel).
    """

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
        except OSError:  # no git installed, or no such folder
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": git("rev-parse", "HEAD"), "dirty": None if status is None else bool(status)}


def write_json_atomic(data: dict, path: str | Path) -> None:
    """Write ``data`` so that ``path`` is either absent, the old file, or the complete new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w") as file:
            json.dump(data, file, indent=1)
            file.write("\n")
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
