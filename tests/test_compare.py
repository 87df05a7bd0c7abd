"""Tests of mnlib.compare: entries, measured rows, rendering, errors."""

from __future__ import annotations

import dataclasses
from functools import partial

import pytest
import torch
from torch import nn

import mnlib
from mnlib.compare import (
    PART_I,
    Entry,
    Table,
    comparison_table,
    interleaved_times,
    registry_entry,
    slower_in_rounds,
    upcoming,
)
from mnlib.profile import count_macs, count_params


def tiny_conv() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.Flatten(), nn.Linear(8 * 8 * 8, 10)
    )


TINY = Entry("tiny", tiny_conv, (3, 8, 8), "toy", 0.5, "made up for the test")


def test_mnlib_exposes_compare():
    assert mnlib.compare.comparison_table is comparison_table


def test_table_measures_params_and_macs_of_each_entry():
    table = comparison_table([TINY, *PART_I], latency_repeats=0)
    tiny = table.row("tiny")
    assert tiny.params == 8 * 3 * 3 * 3 + 8 * 8 * 8 * 10 + 10
    # conv: 8 output channels · 3·3·3 weights, at each of 8·8 pixels; linear: 512 · 10
    assert tiny.macs == 8 * 27 * 64 + 512 * 10
    cnn = mnlib.models.create_model("cnn")
    assert table.row("CNN").params == count_params(cnn) == 29_178
    assert table.row("CNN").macs == count_macs(cnn, (1, 28, 28))
    assert table.row("MLP").params == count_params(mnlib.models.create_model("mlp"))
    assert tiny.latency is None and table.repeats == 0


def test_part_i_quotes_chapter_accuracies_with_their_source():
    mlp, cnn = PART_I
    assert (mlp.name, mlp.accuracy, mlp.dataset) == ("MLP", 0.9849, "MNIST")
    assert (cnn.name, cnn.accuracy, cnn.dataset) == ("CNN", 0.9928, "MNIST")
    assert mlp.accuracy_source == "chapter 2, standard budget, test"
    assert cnn.accuracy_source == "chapter 3, standard budget, test"


def test_latency_is_measured_with_the_requested_threads_and_restores_them():
    before = torch.get_num_threads()
    table = comparison_table([TINY], latency_repeats=3, warmup=1, threads=1)
    assert torch.get_num_threads() == before
    latency = table.row("tiny").latency
    assert table.threads == 1 and latency.threads == 1
    assert latency.repeats == 3 and latency.batch_size == 1 and latency.device == "cpu"
    assert 0 < latency.p10_ms <= latency.median_ms <= latency.p90_ms


def test_markdown_and_text_rendering():
    upcoming_entry = upcoming("ResNet-20", "resnet20", chapter=5)
    table = comparison_table([TINY, upcoming_entry], latency_repeats=2, warmup=0, threads=1)
    markdown = table._repr_markdown_()
    lines = markdown.splitlines()
    assert lines[0].startswith("| Model | Data | Input | Params | MACs / image |")
    assert lines[1].startswith("|---|")
    assert "| tiny | toy | 3×8×8 |" in lines[2] and "50.00 %" in lines[2]
    assert "| ResNet-20 | CIFAR-10 | 3×32×32 | 0.270 M | 40.6 M |" in lines[3]
    assert lines[3].endswith("| -- | chapter 5 |")
    assert "1 torch thread, median" in markdown and "2 timed forward passes" in markdown
    text = str(table)
    assert "ResNet-20" in text and "chapter 5" in text and "|" not in text


def test_with_accuracy_and_registry_entry():
    entry = registry_entry(
        "CNN-wide", "cnn", dataset="MNIST", input_size=[1, 28, 28], accuracy_source="later"
    )
    assert entry.accuracy is None and entry.input_size == (1, 28, 28)
    measured = entry.with_accuracy(0.99, "chapter 9, standard budget, test")
    assert (measured.accuracy, measured.accuracy_source) == (
        0.99,
        "chapter 9, standard budget, test",
    )
    assert entry.accuracy is None  # the original is unchanged
    assert isinstance(measured.model(), nn.Module)


def test_upcoming_builds_the_cifar_variant():
    entry = upcoming("ResNet-18", "resnet18", chapter=5)
    assert (entry.dataset, entry.input_size, entry.accuracy) == ("CIFAR-10", (3, 32, 32), None)
    model = entry.model()
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 10)


def test_table_row_lookup_error():
    table = Table(rows=[], threads=1, repeats=0)
    with pytest.raises(KeyError, match="no row named 'x'"):
        table.row("x")


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"accuracy": 99.28}, ValueError, "fraction in \\[0, 1\\]"),
        ({"input_size": (28, 28)}, ValueError, "input_size must be \\(C, H, W\\)"),
        ({"input_size": (1, 0, 28)}, ValueError, "input_size must be \\(C, H, W\\)"),
        ({"accuracy_source": ""}, ValueError, "accuracy_source must say where"),
        ({"name": ""}, ValueError, "non-empty name"),
        ({"model": nn.Linear(2, 2).weight}, TypeError, "zero-argument callable"),
    ],
)
def test_entry_rejects_bad_fields(kwargs, error, match):
    fields = {
        "name": "m",
        "model": tiny_conv,
        "input_size": (3, 8, 8),
        "dataset": "toy",
        "accuracy": None,
        "accuracy_source": "test",
    } | kwargs
    with pytest.raises(error, match=match):
        Entry(**fields)


def test_comparison_table_rejects_bad_input():
    with pytest.raises(ValueError, match="at least one Entry"):
        comparison_table([])
    with pytest.raises(ValueError, match="repeated: tiny"):
        comparison_table([TINY, TINY], latency_repeats=0)
    with pytest.raises(TypeError, match="takes Entry objects"):
        comparison_table([tiny_conv], latency_repeats=0)
    with pytest.raises(ValueError, match="latency_repeats >= 0"):
        comparison_table([TINY], latency_repeats=-1)
    with pytest.raises(ValueError, match="threads must be a positive integer"):
        comparison_table([TINY], threads=0)
    not_a_model = Entry("bad", partial(dict, a=1), (3, 8, 8), "toy", None, "test")
    with pytest.raises(TypeError, match="model\\(\\) returned dict, not an nn.Module"):
        comparison_table([not_a_model], latency_repeats=0)
    with pytest.raises(ValueError, match="chapter must be a positive integer"):
        upcoming("x", "resnet20", chapter=0)


class Recorder(nn.Module):
    """Appends its name to a shared log at every forward pass."""

    def __init__(self, name: str, log: list[str]) -> None:
        super().__init__()
        self.name, self.log = name, log
        self.scale = nn.Parameter(torch.ones(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.log.append(self.name)
        return x * self.scale


def test_latency_rounds_interleave_the_models():
    log: list[str] = []
    models = [Recorder("a", log), Recorder("b", log)]
    times = interleaved_times(models, [(3, 4, 4), (1, 2, 2)], repeats=3, warmup=1)
    assert log == ["a", "b"] * 4  # 1 warm-up round + 3 timed rounds, each running a then b
    assert [len(t) for t in times] == [3, 3] and all(x > 0 for t in times for x in t)


def test_rows_keep_their_rounds_and_compare_them_pairwise():
    table = comparison_table([TINY, *PART_I], latency_repeats=4, warmup=0, threads=1)
    tiny, mlp = table.row("tiny"), table.row("MLP")
    assert len(tiny.latency_samples_ms) == 4 and tiny.latency.repeats == 4
    assert sorted(tiny.latency_samples_ms)[0] <= tiny.latency.median_ms
    slow = dataclasses.replace(mlp, latency_samples_ms=(2.0, 1.0, 5.0, 3.0))
    fast = dataclasses.replace(mlp, latency_samples_ms=(1.0, 2.0, 4.0, 1.0))
    assert slower_in_rounds(slow, fast) == (3, 4)
    assert slower_in_rounds(fast, slow) == (1, 4)
    with pytest.raises(ValueError, match="different numbers of rounds"):
        slower_in_rounds(slow, dataclasses.replace(mlp, latency_samples_ms=(1.0,)))
    unmeasured = comparison_table([TINY], latency_repeats=0).row("tiny")
    with pytest.raises(ValueError, match="latency_repeats > 0"):
        slower_in_rounds(unmeasured, fast)
