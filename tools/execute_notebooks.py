"""Execute chapter notebooks top to bottom, in place, and print each one's wall-clock runtime.

Used by ``make outputs`` (at ``MNLIB_BUDGET=standard``) to produce the outputs the book shows.
A notebook is written back only if every cell ran without error, and atomically.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

VOLATILE_CELL_METADATA = ("execution", "collapsed", "scrolled", "ExecuteTime")


def execute(path: Path, timeout: int) -> float:
    """Run one notebook with its folder as working directory; return the seconds it took."""
    notebook = nbformat.read(path, as_version=4)
    resources = {"metadata": {"path": path.parent}}
    client = NotebookClient(notebook, timeout=timeout, kernel_name="python3", resources=resources)
    start = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - start
    for cell in notebook.cells:
        for key in VOLATILE_CELL_METADATA:
            cell.metadata.pop(key, None)
    notebook.metadata.pop("widgets", None)
    handle, temporary = tempfile.mkstemp(suffix=".ipynb", dir=path.parent)
    with os.fdopen(handle, "w", encoding="utf-8") as file:
        nbformat.write(notebook, file)
    shutil.copymode(path, temporary)  # mkstemp makes the file private; keep the notebook's mode
    os.replace(temporary, path)
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per cell")
    args = parser.parse_args()
    budget = os.environ.get("MNLIB_BUDGET", "standard")
    for path in args.notebooks:
        seconds = execute(path, args.timeout)
        print(f"{path}: {seconds:.0f} s at budget {budget}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
