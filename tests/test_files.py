"""mnlib.files.save_atomic: the old file or the complete new one, and no temporaries that stay.

A killed writer cannot clean up after itself; these tests kill one for real (SIGKILL) and check
that the next write removes what it left, and only that.
"""

import os
import signal
import subprocess
import sys
import time

import pytest
import torch

import mnlib.files
from mnlib.files import STALE_AFTER_SECONDS, remove_stale_temporaries, save_atomic

# A writer that hangs half-way through torch.save until it is killed. It loads mnlib/files.py
# on its own (not the whole mnlib package) so that it starts quickly.
HANGING_WRITER = """
import importlib.util, sys, time
from pathlib import Path
import torch

spec = importlib.util.spec_from_file_location("files", sys.argv[1])
files = importlib.util.module_from_spec(spec)
spec.loader.exec_module(files)

def hanging_save(obj, file):
    file.write(b"PK" + bytes(1_000_000))  # the first megabyte of the archive...
    file.flush()
    Path(sys.argv[3]).touch()  # ...then tell the test and wait to be killed
    time.sleep(120)

torch.save = hanging_save
files.save_atomic({"epoch": 2}, sys.argv[2])
"""


def temporaries(folder):
    return sorted(path.name for path in folder.iterdir() if path.name.endswith(".tmp"))


def test_a_writer_killed_mid_write_leaves_a_temporary_that_the_next_write_removes(tmp_path):
    target = tmp_path / "checkpoint.pt"
    save_atomic({"epoch": 1}, target)
    ready = tmp_path / "ready"
    command = [sys.executable, "-c", HANGING_WRITER, mnlib.files.__file__, str(target), str(ready)]
    writer = subprocess.Popen(command)
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert writer.poll() is None, "the writer exited before it was killed"
            assert time.monotonic() < deadline, "the writer never started writing"
            time.sleep(0.05)
    finally:
        writer.send_signal(signal.SIGKILL)  # kill -9: no except, no finally runs in the writer
        writer.wait()
    [leftover] = temporaries(tmp_path)
    assert leftover.startswith(f".checkpoint.pt.pid{writer.pid}.")  # easy to find and to clean
    assert torch.load(target, weights_only=True) == {"epoch": 1}  # the old file is intact

    save_atomic({"epoch": 3}, target)
    assert temporaries(tmp_path) == []
    assert torch.load(target, weights_only=True) == {"epoch": 3}


def test_only_the_temporaries_of_dead_or_long_idle_writers_are_removed(tmp_path):
    finished = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead_writer = tmp_path / f".model.pt.pid{int(finished.stdout)}.k3j9x2a1.tmp"
    live_writer = tmp_path / f".model.pt.pid{os.getpid()}.q8w7e6r5.tmp"  # e.g. another thread
    idle_writer = tmp_path / f".other.pt.pid{os.getpid()}.z1x2c3v4.tmp"
    not_ours = [tmp_path / ".model.pt.tmp", tmp_path / "model.pt.pid1.abc.tmp", tmp_path / "a.pt"]
    for path in [dead_writer, live_writer, idle_writer, *not_ours]:
        path.write_bytes(b"part of a file")
    long_ago = time.time() - STALE_AFTER_SECONDS - 60
    os.utime(idle_writer, (long_ago, long_ago))

    removed = remove_stale_temporaries(tmp_path)
    assert sorted(removed) == sorted([dead_writer, idle_writer])
    assert live_writer.exists() and all(path.exists() for path in not_ours)


def test_an_exception_during_the_write_removes_the_temporary_and_keeps_the_old_file(
    tmp_path, monkeypatch
):
    target = tmp_path / "checkpoint.pt"
    save_atomic({"epoch": 1}, target)

    def failing_save(obj, file):
        file.write(b"PK\x03\x04")
        raise OSError("No space left on device")

    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.raises(OSError, match="No space left"):
        save_atomic({"epoch": 2}, target)
    monkeypatch.undo()
    assert temporaries(tmp_path) == []
    assert torch.load(target, weights_only=True) == {"epoch": 1}
