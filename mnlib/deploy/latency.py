"""Latency of several ways to run a model, measured side by side in interleaved rounds."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


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
