"""How big and how fast is a model? Parameters, multiply-adds (MACs), latency, a per-layer table.

Every function takes ``input_size`` either as ``(C, H, W)`` (one image, batch 1) or as
``(N, C, H, W)``. :func:`count_macs` always reports MACs **per image**, so both forms give the
same number.

MACs are counted with PyTorch's ``torch.utils.flop_counter.FlopCounterMode``, which counts
2 FLOPs per multiply-add; one MAC is therefore FLOPs ÷ 2, the convention of the papers. What is
counted: convolutions (grouped and depthwise included, also the 1×1 convs of squeeze-and-
excitation), ``nn.Linear`` (``addmm``/``mm``), ``matmul``/``bmm`` and
``F.scaled_dot_product_attention`` (Q·Kᵀ and attention·V). What is not counted: BatchNorm,
activations, pooling, softmax, residual additions and element-wise products (the SE scaling):
they are cheap next to the convolutions, and the papers leave them out too.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count


def _cpu_attention_flops(query_shape, key_shape, value_shape, *args, **kwargs) -> int:
    """FLOPs of Q·Kᵀ and attention·V, from the shapes of ``[N, heads, tokens, dim]`` Q, K, V."""
    return sdpa_flop_count(query_shape, key_shape, value_shape)


# On the CPU, F.scaled_dot_product_attention runs as one fused op for which FlopCounterMode has
# no formula (torch 2.14), so attention would count as 0 MACs. It computes the same two matrix
# products as the GPU kernels, so torch's formula for those (sdpa_flop_count) is exact for it.
_EXTRA_FLOP_FORMULAS = {
    torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _cpu_attention_flops
}


def count_params(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (BatchNorm running statistics are buffers, not parameters).

    With ``trainable_only=True`` only parameters with ``requires_grad`` are counted.
    """
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def _example_batch(model: nn.Module, input_size: Sequence[int]) -> torch.Tensor:
    """A random ``[N, C, H, W]`` batch on the model's device and in its dtype."""
    shape = tuple(input_size)
    if len(shape) == 3:
        shape = (1, *shape)
    if len(shape) != 4 or any(not isinstance(s, int) or s < 1 for s in shape):
        raise ValueError(
            f"input_size must be (C, H, W) or (N, C, H, W) with positive integers; "
            f"got {tuple(input_size)!r}"
        )
    first = next(model.parameters(), None)
    device = first.device if first is not None else torch.device("cpu")
    dtype = first.dtype if first is not None else torch.float32
    return torch.randn(shape, device=device, dtype=dtype)


def _count_flops(model: nn.Module, batch: torch.Tensor) -> FlopCounterMode:
    """Run one eval-mode forward pass of ``batch`` under a FlopCounterMode and return it."""
    was_training = model.training
    model.eval()
    try:
        with (
            torch.no_grad(),
            FlopCounterMode(display=False, custom_mapping=_EXTRA_FLOP_FORMULAS) as counter,
        ):
            model(batch)
    finally:
        model.train(was_training)
    return counter


def count_macs(model: nn.Module, input_size: Sequence[int]) -> int:
    """Multiply-adds of one eval-mode forward pass, per image (see the module docstring).

    >>> count_macs(nn.Conv2d(3, 8, 3, padding=1, bias=False), (3, 32, 32))  # 8·3·3·3 per pixel
    221184
    """
    batch = _example_batch(model, input_size)
    return _count_flops(model, batch).get_total_flops() // 2 // batch.shape[0]


# ---------------------------------------------------------------------------------------------
# Latency


@dataclass(frozen=True)
class Latency:
    """Wall-clock time of one forward pass: the median and the 10th/90th percentiles of repeats."""

    median_ms: float
    p10_ms: float
    p90_ms: float
    repeats: int
    batch_size: int
    device: str
    threads: int

    def __str__(self) -> str:
        return (
            f"{self.median_ms:.2f} ms (p10 {self.p10_ms:.2f}, p90 {self.p90_ms:.2f}; "
            f"{self.repeats} repeats, batch {self.batch_size}, {self.device}, "
            f"{self.threads} threads)"
        )


def interleaved_latencies(
    runners: dict[str, Callable[[], object]], *, rounds: int = 5, repeats: int = 10, warmup: int = 3
) -> dict[str, list[float]]:
    """For each named runner (a function doing one forward pass), one median latency in ms per
    round; returns ``{name: [round 1 ms, round 2 ms, ...]}``.

    Each round runs every runner in turn (``warmup`` untimed calls, then ``repeats`` timed
    ones, keeping the median). Interleaving makes a change of the machine's load hit every
    runner alike, so ratios between runners measured in the same round are fairer than
    times measured one runner after the other. Set the thread counts before calling.
    """
    if not runners:
        raise ValueError("no runners given")
    if rounds < 1 or repeats < 1 or warmup < 0:
        raise ValueError(
            f"need rounds >= 1, repeats >= 1, warmup >= 0; got {rounds}, {repeats}, {warmup}"
        )
    results: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(rounds):
        for name, run in runners.items():
            for _ in range(warmup):
                run()
            times_ms = []
            for _ in range(repeats):
                start = time.perf_counter()
                run()
                times_ms.append((time.perf_counter() - start) * 1000)
            results[name].append(statistics.median(times_ms))
    return results


def _synchronize(device: torch.device) -> None:
    """Wait for queued GPU work: CUDA and MPS calls return before the GPU has finished."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def measure_latency(
    model: nn.Module,
    input_size: Sequence[int],
    *,
    device: torch.device | str | None = None,
    threads: int | None = None,
    warmup: int = 10,
    repeats: int = 50,
) -> Latency:
    """Time ``repeats`` eval-mode forward passes (after ``warmup`` untimed ones) under no_grad.

    ``device=None`` runs where the model is; another device moves the model there for the
    measurement and back afterwards. ``threads`` sets ``torch.set_num_threads`` for the
    measurement (the previous value is restored). Timings on a busy machine are noisy: compare
    models measured side by side in one run, and look at the p10–p90 spread.
    """
    if repeats < 1 or warmup < 0:
        raise ValueError(f"need repeats >= 1 and warmup >= 0; got {repeats=}, {warmup=}")
    if threads is not None and threads < 1:
        raise ValueError(f"threads must be a positive integer, got {threads!r}")
    first = next(model.parameters(), None)
    home = first.device if first is not None else torch.device("cpu")
    device = torch.device(device) if device is not None else home
    previous_threads = torch.get_num_threads()
    was_training = model.training
    try:
        if threads is not None:
            torch.set_num_threads(threads)
        model.to(device).eval()
        batch = _example_batch(model, input_size)
        times_ms = []
        with torch.no_grad():
            for step in range(warmup + repeats):
                _synchronize(device)
                start = time.perf_counter()
                model(batch)
                _synchronize(device)
                if step >= warmup:
                    times_ms.append((time.perf_counter() - start) * 1000)
        used_threads = torch.get_num_threads()
    finally:
        torch.set_num_threads(previous_threads)
        model.to(home).train(was_training)
    p10, median, p90 = torch.tensor(times_ms).quantile(torch.tensor([0.1, 0.5, 0.9])).tolist()
    return Latency(median, p10, p90, repeats, batch.shape[0], str(device), used_threads)


# ---------------------------------------------------------------------------------------------
# Per-layer summary


@dataclass(frozen=True)
class LayerRow:
    """One row of :class:`ModelSummary`: a module with what it owns itself (not its children).

    ``macs`` are the multiply-adds counted inside the module but outside its child modules
    (for the whole batch ÷ N, i.e. per image); ``output_shape`` is ``None`` when the module
    did not run.
    """

    name: str
    type: str
    output_shape: tuple | None
    params: int
    macs: int


@dataclass(frozen=True)
class ModelSummary:
    """A per-layer table like torchinfo's; ``print(summary)`` shows it."""

    model_name: str
    input_size: tuple[int, ...]
    rows: list[LayerRow]

    @property
    def total_params(self) -> int:
        return sum(row.params for row in self.rows)

    @property
    def total_macs(self) -> int:
        return sum(row.macs for row in self.rows)

    def __str__(self) -> str:
        header = ("Layer", "Type", "Output shape", "Params", "MACs")
        lines = [
            (
                row.name,
                row.type,
                "--" if row.output_shape is None else str(list(row.output_shape)),
                f"{row.params:,}",
                f"{row.macs:,}",
            )
            for row in self.rows
        ]
        widths = [max(len(cells[i]) for cells in [header, *lines]) for i in range(len(header))]
        alignments = "<<<>>"  # text left, numbers right

        def format_line(cells: Sequence[str]) -> str:
            columns = zip(cells, alignments, widths, strict=True)
            return "  ".join(f"{cell:{align}{width}}" for cell, align, width in columns)

        rule = "-" * len(format_line(header))
        return "\n".join(
            [
                f"{self.model_name}, input {list(self.input_size)}",
                rule,
                format_line(header),
                rule,
                *(format_line(cells) for cells in lines),
                rule,
                f"Total params: {self.total_params:,} ({self.total_params / 1e6:.2f} M)",
                f"Total MACs per image: {self.total_macs:,} ({self.total_macs / 1e6:.2f} M)",
            ]
        )

    __repr__ = __str__


def _shape_of(output: object) -> tuple | None:
    """The shape of a tensor output, or a tuple of shapes for a tuple/list of tensors."""
    if isinstance(output, torch.Tensor):
        return tuple(output.shape)
    if isinstance(output, (tuple, list)):
        return tuple(_shape_of(item) for item in output)
    return None


def summary(model: nn.Module, input_size: Sequence[int]) -> ModelSummary:
    """One eval-mode forward pass, reported per module: output shape, parameters and MACs.

    A row is listed for every leaf module and for every container that owns parameters or
    MACs itself (e.g. an attention block calling ``F.scaled_dot_product_attention`` in its
    ``forward``). Each parameter and each MAC belongs to exactly one row, so the totals equal
    :func:`count_params` and :func:`count_macs`.
    """
    batch = _example_batch(model, input_size)
    output_shapes: dict[nn.Module, tuple | None] = {}

    def record_shape(module: nn.Module, inputs: object, output: object) -> None:
        output_shapes[module] = _shape_of(output)

    handles = [module.register_forward_hook(record_shape) for module in model.modules()]
    try:
        counter = _count_flops(model, batch)
    finally:
        for handle in handles:
            handle.remove()

    # FlopCounterMode names modules "<RootClass>.<child>.<grandchild>" and adds every MAC to
    # the module and to all its ancestors; a module's own MACs are its count minus its children's.
    flop_counts = counter.get_flop_counts()
    root = type(model).__name__

    def inclusive_macs(name: str) -> int:
        tracker_name = f"{root}.{name}" if name else root
        return sum(flop_counts.get(tracker_name, {}).values()) // 2 // batch.shape[0]

    rows = []
    seen_params: set[int] = set()  # a shared (tied) parameter is counted once, like count_params
    for name, module in model.named_modules():
        own_params = [p for p in module.parameters(recurse=False) if id(p) not in seen_params]
        seen_params.update(id(p) for p in own_params)
        children_macs = sum(
            inclusive_macs(f"{name}.{child}" if name else child)
            for child, _ in module.named_children()
        )
        own_macs = inclusive_macs(name) - children_macs
        is_leaf = next(module.children(), None) is None
        if is_leaf or own_params or own_macs:
            rows.append(
                LayerRow(
                    name=name or "(model)",
                    type=type(module).__name__,
                    output_shape=output_shapes.get(module),
                    params=sum(p.numel() for p in own_params),
                    macs=own_macs,
                )
            )
    return ModelSummary(root, tuple(batch.shape), rows)
