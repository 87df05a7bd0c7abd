"""Tests of mnlib.provenance: what a recorded benchmark result says about where it came from."""

import datetime
import json
import re
import sys

import pytest
import torch

from mnlib.provenance import (
    REPOSITORY,
    device_description,
    git_commit,
    provenance,
    write_json_atomic,
)


def test_git_commit_names_the_checked_out_commit():
    found = git_commit(REPOSITORY)
    assert re.fullmatch(r"[0-9a-f]{40}", found["commit"])
    assert isinstance(found["dirty"], bool)


def test_git_commit_outside_a_repository_is_unknown_not_an_error(tmp_path):
    assert git_commit(tmp_path) == {"commit": None, "dirty": None}


def test_cpu_description_names_the_thread_count():
    assert device_description(torch.device("cpu"), threads=3).endswith(", 3 threads)")


def test_json_is_written_whole_or_not_at_all(tmp_path):
    path = tmp_path / "results" / "run.json"
    write_json_atomic({"accuracy": 0.5}, path)
    assert json.loads(path.read_text()) == {"accuracy": 0.5}
    with pytest.raises(TypeError, match="not JSON serializable"):
        write_json_atomic({"accuracy": object()}, path)
    # The old file is intact and no temporary file is left behind.
    assert json.loads(path.read_text()) == {"accuracy": 0.5}
    assert [p.name for p in path.parent.iterdir()] == ["run.json"]


def test_provenance_records_versions_commit_date_and_command():
    started = datetime.datetime(2026, 11, 30, 6, 0, tzinfo=datetime.timezone.utc)
    record = provenance("cpu (x, 2 threads)", "benchmarks/x.py", ["--tiny"], started, onnx="1.0")
    assert record["device"] == "cpu (x, 2 threads)"
    assert record["torch"] == torch.__version__ and record["onnx"] == "1.0"
    assert record["python"] == sys.version.split()[0]
    assert record["mnlib"] == git_commit()
    assert record["date_utc"] == "2026-11-30T06:00:00+00:00"
    assert record["command"] == "python benchmarks/x.py --tiny"
