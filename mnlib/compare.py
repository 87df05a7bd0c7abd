"""The course's running comparison table: parameters, MACs, CPU latency and accuracy, side by side.

Chapter 4 starts the table with the Part I models (:data:`PART_I`); every later chapter adds
its own rows and prints the table again. Parameters, MACs and latency are **measured** when the
table is built (:func:`comparison_table`); accuracy is not measured here -- it comes from
training, so each :class:`Entry` carries the number together with where it comes from
(``accuracy_source``, e.g. ``"chapter 3, standard budget, test"``). An entry whose accuracy is
not known yet has ``accuracy=None`` and a source saying where it will come from
(``"chapter 5"``).

>>> import mnlib
>>> table = mnlib.compare.comparison_table(mnlib.compare.PART_I, threads=1)
>>> table.row("CNN").params
29178
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial

import torch
from torch import nn

from mnlib.models.registry import create_model
from mnlib.profile import Latency, count_macs, count_params, interleaved_latencies


@dataclass(frozen=True)
class Entry:
    """One model of the table: how to build it, what it eats, and its accuracy with a source.

    ``model`` is a zero-argument callable returning a fresh ``nn.Module`` (a class, a
    ``functools.partial`` or a lambda), so a table can list many models without holding them all
    in memory. ``input_size`` is ``(C, H, W)`` of one image. ``accuracy`` is a fraction in
    [0, 1] (as :func:`mnlib.train.evaluate` returns it) or ``None`` when not known yet;
    ``accuracy_source`` says where the number comes from, or will come from.
    """

    name: str
    model: Callable[[], nn.Module]
    input_size: tuple[int, int, int]
    dataset: str
    accuracy: float | None
    accuracy_source: str

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("an Entry needs a non-empty name")
        if not callable(self.model):
            raise TypeError(
                f"Entry {self.name!r}: model must be a zero-argument callable returning an "
                f"nn.Module (e.g. functools.partial(create_model, 'cnn')), got {self.model!r}"
            )
        size = tuple(self.input_size)
        if len(size) != 3 or any(
            isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in size
        ):
            raise ValueError(
                f"Entry {self.name!r}: input_size must be (C, H, W) with positive integers, "
                f"got {self.input_size!r}"
            )
        object.__setattr__(self, "input_size", size)
        if self.accuracy is not None and not 0.0 <= self.accuracy <= 1.0:
            raise ValueError(
                f"Entry {self.name!r}: accuracy must be a fraction in [0, 1] (0.9928, not "
                f"99.28), got {self.accuracy!r}"
            )
        if not self.accuracy_source:
            raise ValueError(
                f"Entry {self.name!r}: accuracy_source must say where the accuracy comes from "
                f"(e.g. 'chapter 3, standard budget, test') or will come from ('chapter 5')"
            )

    def with_accuracy(self, accuracy: float, source: str) -> Entry:
        """A copy of this entry with a measured (or quoted) accuracy and its source."""
        return dataclasses.replace(self, accuracy=accuracy, accuracy_source=source)


def registry_entry(
    name: str,
    model_name: str,
    *,
    dataset: str,
    input_size: tuple[int, int, int],
    accuracy: float | None = None,
    accuracy_source: str,
    **model_kwargs,
) -> Entry:
    """An :class:`Entry` for a model of :func:`mnlib.models.create_model` (built lazily).

    >>> registry_entry("ResNet-20", "resnet20", dataset="CIFAR-10", input_size=(3, 32, 32),
    ...                accuracy_source="chapter 5", num_classes=10, cifar=True).accuracy is None
    True
    """
    builder = partial(create_model, model_name, **model_kwargs)
    return Entry(name, builder, input_size, dataset, accuracy, accuracy_source)


# Accuracies of Part I, quoted from the chapters' committed outputs (test set, measured once at
# the end of each chapter's standard-budget run on 2 CPU cores).
MLP_TEST_ACCURACY = 0.9849  # chapter 2, standard budget, test
CNN_TEST_ACCURACY = 0.9928  # chapter 3, standard budget, test

PART_I: list[Entry] = [
    registry_entry(
        "MLP",
        "mlp",
        dataset="MNIST",
        input_size=(1, 28, 28),
        accuracy=MLP_TEST_ACCURACY,
        accuracy_source="chapter 2, standard budget, test",
    ),
    registry_entry(
        "CNN",
        "cnn",
        dataset="MNIST",
        input_size=(1, 28, 28),
        accuracy=CNN_TEST_ACCURACY,
        accuracy_source="chapter 3, standard budget, test",
    ),
]
"""Chapter 2's MLP and chapter 3's CNN with their quoted test accuracies."""


# Accuracies of Part II (CIFAR-10), quoted from the chapters' committed outputs: test set,
# measured once at the end of each chapter's standard-budget run on 2 CPU cores. Each chapter
# trains on its own class-balanced subset for its own number of epochs, so two rows compare
# only when their sources name the same subset, epochs and recipe (chapter 6's ResNet-20 and
# chapter 5's differ by 7.6 points for that reason alone).
RESNET20_CH5_TEST_ACCURACY = 0.3520
"""chapter 5, standard budget, test, 2,500-image subset, 3 epochs, batch 64, seed 0"""
RESNET56_CH5_TEST_ACCURACY = 0.1747
"""chapter 5, standard budget, test, 2,500-image subset, 3 epochs, batch 64, seed 0"""
RESNET20_CH6_TEST_ACCURACY = 0.4279
"""chapter 6, standard budget, test, 4,000-image subset, 6 epochs, mean of seeds 0 and 1"""
MOBILENET_V1_TEST_ACCURACY = 0.2934
"""chapter 6, standard budget, test, 4,000-image subset, 6 epochs, mean of seeds 0 and 1"""
MOBILENET_V2_ROADMAP_RECIPE_TEST_ACCURACY = 0.3292
"""chapter 7, the roadmap's network and recipe, standard budget, test, 3,000-image subset,
5 epochs, mean of seeds 0 and 1"""
MOBILENET_V2_COURSE_RECIPE_TEST_ACCURACY = 0.3159
"""chapter 7, the roadmap's network with the course's recipe, standard budget, test,
3,000-image subset, 5 epochs, mean of seeds 0 and 1"""
MOBILENET_V3_SMALL_TEST_ACCURACY = 0.2768
"""chapter 8, standard budget, test (2,000 images), 2,000-image subset, 3 epochs, batch 64,
mean of seeds 0 and 1"""
MOBILENET_V3_LARGE_TEST_ACCURACY = 0.3023
"""chapter 8, standard budget, test (2,000 images), 2,000-image subset, 3 epochs, batch 64,
mean of seeds 0 and 1"""

CH5_SOURCE = "chapter 5, standard budget, test, 2,500-image subset, 3 epochs, seed 0"
CH6_SOURCE = "chapter 6, standard budget, test, 4,000-image subset, 6 epochs, mean of 2 seeds"
CH7_SOURCE = "chapter 7, standard budget, test, 3,000-image subset, 5 epochs, mean of 2 seeds"
CH8_SOURCE = "chapter 8, standard budget, test, 2,000-image subset, 3 epochs, mean of 2 seeds"


def _quoted(
    name: str, model_name: str, accuracy: float | None, source: str, **model_kwargs
) -> Entry:
    """A CIFAR-10 entry (10 classes) with a quoted test accuracy and its source."""
    return registry_entry(
        name,
        model_name,
        dataset="CIFAR-10",
        input_size=(3, 32, 32),
        accuracy=accuracy,
        accuracy_source=source,
        num_classes=10,
        **model_kwargs,
    )


PART_II: list[Entry] = [
    _quoted("ResNet-20 (ch. 5)", "resnet20", RESNET20_CH5_TEST_ACCURACY, CH5_SOURCE, cifar=True),
    _quoted("ResNet-56 (ch. 5)", "resnet56", RESNET56_CH5_TEST_ACCURACY, CH5_SOURCE, cifar=True),
    _quoted("ResNet-20 (ch. 6)", "resnet20", RESNET20_CH6_TEST_ACCURACY, CH6_SOURCE, cifar=True),
    _quoted("MobileNetV1", "mobilenet_v1", MOBILENET_V1_TEST_ACCURACY, CH6_SOURCE, cifar=True),
    # The roadmap's network has its own CIFAR strides (a stride-1 stem): no cifar option.
    _quoted(
        "MobileNetV2 (roadmap net), roadmap recipe",
        "roadmap_mobilenet_v2",
        MOBILENET_V2_ROADMAP_RECIPE_TEST_ACCURACY,
        CH7_SOURCE,
    ),
    _quoted(
        "MobileNetV2 (roadmap net), course recipe",
        "roadmap_mobilenet_v2",
        MOBILENET_V2_COURSE_RECIPE_TEST_ACCURACY,
        CH7_SOURCE,
    ),
    _quoted(
        "MobileNetV3-Small",
        "mobilenet_v3_small",
        MOBILENET_V3_SMALL_TEST_ACCURACY,
        CH8_SOURCE,
        cifar=True,
    ),
    _quoted(
        "MobileNetV3-Large",
        "mobilenet_v3_large",
        MOBILENET_V3_LARGE_TEST_ACCURACY,
        CH8_SOURCE,
        cifar=True,
    ),
]
"""The CIFAR-10 models of chapters 5-8 with their quoted test accuracies.

ResNet-20 appears twice, once per chapter that trained it, because the two chapters used
different subsets and epochs: the same network, two different numbers.
"""


# ---------------------------------------------------------------------------------------------
# The table


@dataclass(frozen=True)
class Row:
    """One measured row: what :func:`comparison_table` found for one :class:`Entry`.

    ``latency`` is ``None`` when the table was built with ``latency_repeats=0``.
    ``latency_samples_ms`` holds every timed round (milliseconds, in round order), for
    :func:`slower_in_rounds`.
    """

    name: str
    dataset: str
    input_size: tuple[int, int, int]
    params: int
    macs: int
    latency: Latency | None
    accuracy: float | None
    accuracy_source: str
    latency_samples_ms: tuple[float, ...] = ()

    def cells(self) -> tuple[str, ...]:
        """The row as the text of its table cells."""
        latency = "--"
        if self.latency is not None:
            low, median, high = self.latency.p10_ms, self.latency.median_ms, self.latency.p90_ms
            latency = f"{median:.2f} ({low:.2f}–{high:.2f})"
        accuracy = "--" if self.accuracy is None else f"{100 * self.accuracy:.2f} %"
        return (
            self.name,
            self.dataset,
            "×".join(str(s) for s in self.input_size),
            f"{self.params / 1e6:.3f} M",
            _format_macs(self.macs),
            latency,
            accuracy,
            self.accuracy_source,
        )


def _format_macs(macs: int) -> str:
    """MACs in M (two decimals below 10 M, one above) -- e.g. ``1.90 M``, ``40.8 M``."""
    millions = macs / 1e6
    return f"{millions:.2f} M" if millions < 10 else f"{millions:.1f} M"


HEADER = (
    "Model",
    "Data",
    "Input",
    "Params",
    "MACs / image",
    "CPU latency, ms: median (p10–p90)",
    "Accuracy",
    "Accuracy from",
)


@dataclass(frozen=True)
class Table:
    """The measured rows, rendered as Markdown in Jupyter and as aligned text by ``str()``.

    ``threads`` and ``repeats`` record how latency was measured (batch 1, CPU).
    """

    rows: list[Row]
    threads: int
    repeats: int

    def row(self, name: str) -> Row:
        """The row called ``name``."""
        for row in self.rows:
            if row.name == name:
                return row
        raise KeyError(f"no row named {name!r}; rows: {', '.join(r.name for r in self.rows)}")

    def _note(self) -> str:
        if self.repeats == 0:
            return "Latency not measured."
        return (
            f"Latency: batch 1, float32, CPU, {self.threads} torch "
            f"thread{'s' if self.threads != 1 else ''}, median and "
            f"10th–90th percentile of {self.repeats} timed forward passes; a busy machine "
            f"inflates it, so compare rows measured in the same table."
        )

    def to_markdown(self) -> str:
        """A Markdown (GFM) table followed by a note on how latency was measured."""
        align = ("---", "---", "---", "--:", "--:", "--:", "--:", "---")
        lines = [
            "| " + " | ".join(HEADER) + " |",
            "|" + "|".join(align) + "|",
            *("| " + " | ".join(row.cells()) + " |" for row in self.rows),
        ]
        return "\n".join(lines) + "\n\n" + self._note()

    def _repr_markdown_(self) -> str:
        return self.to_markdown()

    def __str__(self) -> str:
        lines = [HEADER, *(row.cells() for row in self.rows)]
        widths = [max(len(cells[i]) for cells in lines) for i in range(len(HEADER))]
        alignments = "<<<>>>><"  # text left, numbers right

        def format_line(cells: Sequence[str]) -> str:
            columns = zip(cells, alignments, widths, strict=True)
            return "  ".join(f"{cell:{a}{w}}" for cell, a, w in columns).rstrip()

        rule = "-" * max(len(format_line(cells)) for cells in lines)
        body = [format_line(cells) for cells in lines[1:]]
        return "\n".join([rule, format_line(HEADER), rule, *body, rule, self._note()])

    __repr__ = __str__


def build_model(entry: Entry) -> nn.Module:
    """``entry.model()`` in eval mode on the CPU, or a clear error if it is not a module."""
    model = entry.model()
    if not isinstance(model, nn.Module):
        raise TypeError(
            f"Entry {entry.name!r}: model() returned {type(model).__name__}, not an nn.Module"
        )
    return model.to("cpu").eval()


def interleaved_times(
    models: Sequence[nn.Module],
    input_sizes: Sequence[tuple[int, int, int]],
    *,
    repeats: int,
    warmup: int,
) -> list[list[float]]:
    """Batch-1 CPU milliseconds of each model, timed in *rounds*: each round runs every model once.

    A burst of load from another program then slows one round of every model rather than all
    repeats of one model, so the models stay comparable with each other, and the ``i``-th
    times of two models were measured moments apart (a *paired* comparison, see
    :func:`slower_in_rounds`). ``warmup`` untimed rounds come first. Returns one list of
    ``repeats`` times per model. (:func:`mnlib.profile.interleaved_latencies` with one timed
    call per model and round.)
    """
    runners = {
        index: partial(model, torch.randn(1, *size))
        for index, (model, size) in enumerate(zip(models, input_sizes, strict=True))
    }
    with torch.no_grad():
        if warmup:
            interleaved_latencies(runners, rounds=warmup, repeats=1, warmup=0)
        times = interleaved_latencies(runners, rounds=repeats, repeats=1, warmup=0)
    return [times[index] for index in runners]


def summarize(times_ms: Sequence[float]) -> Latency:
    """Median and 10th/90th percentiles of batch-1 CPU times, as a :class:`Latency`."""
    quantiles = torch.tensor([0.1, 0.5, 0.9])
    p10, median, p90 = torch.tensor(list(times_ms)).quantile(quantiles).tolist()
    return Latency(median, p10, p90, len(times_ms), 1, "cpu", torch.get_num_threads())


def slower_in_rounds(slow: Row, fast: Row) -> tuple[int, int]:
    """``(k, n)``: in ``k`` of the ``n`` timing rounds ``slow`` took longer than ``fast``.

    Both rows must come from the same table, whose rounds interleave the models, so round ``i``
    of each was timed moments apart. ``k`` close to ``n`` is a consistent difference even when
    the two p10–p90 spreads overlap; ``k`` near ``n/2`` means no difference was measured.
    """
    if not slow.latency_samples_ms or not fast.latency_samples_ms:
        raise ValueError("both rows need latency samples: build the table with latency_repeats > 0")
    if len(slow.latency_samples_ms) != len(fast.latency_samples_ms):
        raise ValueError(
            f"{slow.name!r} and {fast.name!r} have different numbers of rounds "
            f"({len(slow.latency_samples_ms)} and {len(fast.latency_samples_ms)}): "
            "compare rows of the same table"
        )
    pairs = zip(slow.latency_samples_ms, fast.latency_samples_ms, strict=True)
    return sum(a > b for a, b in pairs), len(slow.latency_samples_ms)


def comparison_table(
    entries: Iterable[Entry],
    *,
    latency_repeats: int = 20,
    warmup: int = 5,
    threads: int | None = None,
) -> Table:
    """Measure every entry (params, MACs, median batch-1 CPU latency) into one :class:`Table`.

    Latency runs with ``threads`` torch threads, or with the current ``torch.get_num_threads()``
    when ``threads=None``. The course's chapters pass ``threads=1``: one thread measures the
    model's own work, while two threads on a two-core machine shared with other programs can
    wait milliseconds on each other at every layer. ``latency_repeats=0`` skips latency.
    All models are built first and timed in interleaved rounds (:func:`interleaved_times`),
    so their latencies are comparable with each other; latencies from different tables (or
    machines) are not. ``warmup`` untimed rounds come first.
    """
    entries = list(entries)
    if not entries:
        raise ValueError("comparison_table needs at least one Entry")
    if latency_repeats < 0 or warmup < 0:
        raise ValueError(
            f"need latency_repeats >= 0 and warmup >= 0; got {latency_repeats=}, {warmup=}"
        )
    for entry in entries:
        if not isinstance(entry, Entry):
            raise TypeError(f"comparison_table takes Entry objects, got {type(entry).__name__}")
    names = [entry.name for entry in entries]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"entry names must be unique; repeated: {', '.join(duplicates)}")
    if threads is not None and (
        isinstance(threads, bool) or not isinstance(threads, int) or threads < 1
    ):
        raise ValueError(f"threads must be a positive integer or None, got {threads!r}")
    previous_threads = torch.get_num_threads()
    try:
        if threads is not None:
            torch.set_num_threads(threads)
        used_threads = torch.get_num_threads()
        models = [build_model(entry) for entry in entries]
        samples: list[list[float]] = [[] for _ in models]
        if latency_repeats > 0:
            sizes = [entry.input_size for entry in entries]
            samples = interleaved_times(models, sizes, repeats=latency_repeats, warmup=warmup)
        latencies = [summarize(times) if times else None for times in samples]
    finally:
        torch.set_num_threads(previous_threads)
    rows = [
        Row(
            name=entry.name,
            dataset=entry.dataset,
            input_size=entry.input_size,
            params=count_params(model),
            macs=count_macs(model, entry.input_size),
            latency=latency,
            accuracy=entry.accuracy,
            accuracy_source=entry.accuracy_source,
            latency_samples_ms=tuple(times),
        )
        for entry, model, latency, times in zip(entries, models, latencies, samples, strict=True)
    ]
    return Table(rows, threads=used_threads, repeats=latency_repeats)


def upcoming(name: str, model_name: str, chapter: int, **model_kwargs) -> Entry:
    """A CIFAR-10 model a later chapter trains: accuracy ``None``, source ``"chapter N"``.

    Built with ``create_model(model_name, num_classes=10, cifar=True, **model_kwargs)``.
    """
    if isinstance(chapter, bool) or not isinstance(chapter, int) or chapter < 1:
        raise ValueError(f"chapter must be a positive integer, got {chapter!r}")
    return registry_entry(
        name,
        model_name,
        dataset="CIFAR-10",
        input_size=(3, 32, 32),
        accuracy_source=f"chapter {chapter}",
        num_classes=10,
        cifar=True,
        **model_kwargs,
    )


__all__ = [
    "CNN_TEST_ACCURACY",
    "MOBILENET_V1_TEST_ACCURACY",
    "MOBILENET_V2_COURSE_RECIPE_TEST_ACCURACY",
    "MOBILENET_V2_ROADMAP_RECIPE_TEST_ACCURACY",
    "MOBILENET_V3_LARGE_TEST_ACCURACY",
    "MOBILENET_V3_SMALL_TEST_ACCURACY",
    "PART_II",
    "RESNET20_CH5_TEST_ACCURACY",
    "RESNET20_CH6_TEST_ACCURACY",
    "RESNET56_CH5_TEST_ACCURACY",
    "Entry",
    "MLP_TEST_ACCURACY",
    "PART_I",
    "Row",
    "Table",
    "comparison_table",
    "build_model",
    "interleaved_times",
    "slower_in_rounds",
    "summarize",
    "registry_entry",
    "upcoming",
]
