"""Where a recorded number came from: the device, the mnlib commit, and an atomic JSON write.

The scripts in ``benchmarks/`` store results (accuracy curves, latency tables) as JSON files
that a chapter may quote; each file says on which machine and from which commit it was made.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import torch

from mnlib.files import written_atomically

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


def provenance(
    device: str,
    script: str,
    argv: list[str],
    started: datetime.datetime,
    **versions: str,
) -> dict:
    """What a results file records about its run: ``device`` (:func:`device_description`),
    torch, Python and any other ``versions`` (``torchvision="0.29.1"``), the mnlib commit, the
    UTC start time and the command line (``python <script> <argv...>``)."""
    return {
        "device": device,
        "torch": torch.__version__,
        **versions,
        "python": sys.version.split()[0],
        "mnlib": git_commit(),
        "date_utc": started.isoformat(timespec="seconds"),
        "command": " ".join(["python", script, *argv]),
    }


def write_json_atomic(data: dict, path: str | Path) -> None:
    """Write ``data`` so that ``path`` is either absent, the old file, or the complete new one."""
    with written_atomically(path) as temporary, open(temporary, "w") as file:
        json.dump(data, file, indent=1)
        file.write("\n")
        file.flush()
        os.fsync(file.fileno())
