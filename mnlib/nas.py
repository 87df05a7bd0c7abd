"""A small neural architecture search (NAS): a search space as data, a builder, two searches.

MobileNetV3 was found by search, not drawn by hand (Howard et al., ICCV 2019, §4): a
platform-aware search in the style of MnasNet (Tan et al., CVPR 2019) chose the blocks, scoring
each candidate by its accuracy *and* its latency measured on a phone, and NetAdapt (Yang et al.,
ECCV 2018) then trimmed layer widths. This module is the same idea at classroom scale:

* :class:`SearchSpace` -- the choices, as data: per stage a kernel size, an expansion ratio,
  squeeze-and-excitation on or off and an activation (ReLU or h-swish). The stage widths,
  strides and depths are fixed.
* :func:`build_candidate` -- a :class:`Candidate` (one :class:`StageChoice` per stage) becomes
  an ``nn.Module`` made of mnlib's :class:`~mnlib.blocks.inverted_residual_v3.InvertedResidualV3`.
* :func:`random_search` and :func:`evolutionary_search` -- sample (or mutate) candidates, measure
  each one's latency first, train and score only those within the latency budget.

The searches take two callables, so that they know nothing about training or timing:
``latency(candidate) -> ms`` and ``score(candidate) -> validation accuracy``. Both searches
return every :class:`Trial` in order (the *search trace*); :func:`best_trial` picks the winner.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import torch
from torch import nn

from mnlib.blocks.conv import ConvBNAct
from mnlib.blocks.inverted_residual_v3 import InvertedResidualV3

ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "hswish": nn.Hardswish}
"""The activation names a search space may use, and the module each one builds."""


@dataclass(frozen=True)
class StageChoice:
    """What the search picks for one stage; every block of the stage uses it."""

    kernel_size: int  # of the depthwise convolution
    expansion: int  # expanded width = expansion × the block's input width
    use_se: bool  # squeeze-and-excitation after the depthwise convolution
    activation: str  # a key of ACTIVATIONS

    def __str__(self) -> str:
        se = "SE" if self.use_se else "--"
        return f"k{self.kernel_size} e{self.expansion} {se} {self.activation}"


Candidate = tuple[StageChoice, ...]
"""One architecture: a :class:`StageChoice` per stage of the search space."""


def describe(candidate: Candidate) -> str:
    """A one-line name: ``'k3 e6 SE relu | k5 e3 -- hswish | ...'``, one part per stage."""
    return " | ".join(str(choice) for choice in candidate)


@dataclass(frozen=True)
class SearchSpace:
    """The fixed skeleton of the network and the choices per stage.

    The network is a 3×3 stem (``stem_channels``, stride 1, h-swish), then one stage per entry of
    ``widths``: ``depths[i]`` inverted residual blocks of output width ``widths[i]``, the first
    with stride ``strides[i]``; then global average pooling and a linear classifier. For a
    ``[N, 3, 32, 32]`` batch and the default strides the stages see 32², 16², 8² and end at 4².

    Every stage chooses one value from each of ``kernel_sizes``, ``expansions``, ``se_options``
    and ``activations``, so the space holds ``(product of the option counts) ** stages``
    candidates (:meth:`size`).
    """

    widths: tuple[int, ...] = (24, 40, 80)
    strides: tuple[int, ...] = (2, 2, 2)
    depths: tuple[int, ...] = (1, 2, 2)
    stem_channels: int = 16
    kernel_sizes: tuple[int, ...] = (3, 5)
    expansions: tuple[int, ...] = (3, 6)
    se_options: tuple[bool, ...] = (False, True)
    activations: tuple[str, ...] = ("relu", "hswish")

    def __post_init__(self) -> None:
        if not self.widths or not len(self.widths) == len(self.strides) == len(self.depths):
            raise ValueError(
                "widths, strides and depths need one entry per stage (and at least one stage); "
                f"got {len(self.widths)}, {len(self.strides)} and {len(self.depths)}"
            )
        if any(stride not in (1, 2) for stride in self.strides):
            raise ValueError(f"every stride must be 1 or 2, got {self.strides}")
        if any(depth < 1 for depth in self.depths) or any(w < 1 for w in self.widths):
            raise ValueError(f"depths and widths must be positive: {self.depths}, {self.widths}")
        for name in ("kernel_sizes", "expansions", "se_options", "activations"):
            if not getattr(self, name):
                raise ValueError(f"{name} needs at least one option")
        if any(k % 2 == 0 or k < 1 for k in self.kernel_sizes):
            raise ValueError(
                f"kernel sizes must be odd (symmetric padding), got {self.kernel_sizes}"
            )
        unknown = sorted(set(self.activations) - set(ACTIVATIONS))
        if unknown:
            raise ValueError(f"unknown activation(s) {unknown}; choose from {sorted(ACTIVATIONS)}")

    @property
    def stages(self) -> int:
        return len(self.widths)

    def choices(self) -> list[StageChoice]:
        """Every :class:`StageChoice` one stage can take (the same list for every stage)."""
        return [
            StageChoice(k, e, se, act)
            for k in self.kernel_sizes
            for e in self.expansions
            for se in self.se_options
            for act in self.activations
        ]

    def size(self) -> int:
        """How many candidates the space holds: (choices per stage) ** stages."""
        return len(self.choices()) ** self.stages

    def check(self, candidate: Candidate) -> None:
        """Raise ``ValueError`` naming the problem if ``candidate`` is not in this space."""
        if len(candidate) != self.stages:
            raise ValueError(
                f"candidate has {len(candidate)} stage choice(s), "
                f"the space has {self.stages} stages"
            )
        allowed = self.choices()
        for index, choice in enumerate(candidate):
            if choice not in allowed:
                raise ValueError(f"stage {index}: {choice!r} is not one of this space's choices")

    def sample(self, rng: random.Random) -> Candidate:
        """A uniformly random candidate (each stage's choice drawn independently)."""
        allowed = self.choices()
        return tuple(rng.choice(allowed) for _ in range(self.stages))

    def mutate(self, candidate: Candidate, rng: random.Random) -> Candidate:
        """A copy of ``candidate`` with exactly one decision of one stage changed.

        One stage and one of its four fields (kernel, expansion, SE, activation) are drawn at
        random, among the fields that have more than one option, and the field gets a different
        value. Raises ``ValueError`` if the space has only one candidate.
        """
        self.check(candidate)
        options = {
            "kernel_size": self.kernel_sizes,
            "expansion": self.expansions,
            "use_se": self.se_options,
            "activation": self.activations,
        }
        fields = [name for name, values in options.items() if len(values) > 1]
        if not fields:
            raise ValueError("this search space has a single candidate: nothing to mutate")
        stage, field = rng.randrange(self.stages), rng.choice(fields)
        old = candidate[stage]
        new_value = rng.choice([v for v in options[field] if v != getattr(old, field)])
        changed = replace(old, **{field: new_value})
        return candidate[:stage] + (changed,) + candidate[stage + 1 :]


class CandidateNet(nn.Module):
    """The network a candidate describes. ``[N, 3, H, W] → [N, num_classes]``.

    ``stem`` ``[N, stem_channels, H, W]`` → ``stages`` (one ``nn.Sequential`` of
    :class:`~mnlib.blocks.inverted_residual_v3.InvertedResidualV3` per stage) → global average
    pooling ``[N, widths[-1]]`` → ``classifier``.
    """

    def __init__(self, candidate: Candidate, space: SearchSpace, num_classes: int = 10) -> None:
        super().__init__()
        space.check(candidate)
        if num_classes < 1:
            raise ValueError(f"num_classes must be positive, got {num_classes!r}")
        self.stem = ConvBNAct(3, space.stem_channels, 3, stride=1, activation=nn.Hardswish)
        stages, in_channels = [], space.stem_channels
        for choice, width, stride, depth in zip(
            candidate, space.widths, space.strides, space.depths, strict=True
        ):
            blocks = []
            for index in range(depth):
                blocks.append(
                    InvertedResidualV3(
                        in_channels,
                        choice.expansion * in_channels,
                        width,
                        choice.kernel_size,
                        stride if index == 0 else 1,
                        use_se=choice.use_se,
                        activation=ACTIVATIONS[choice.activation],
                    )
                )
                in_channels = width
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(in_channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stages(self.stem(x))
        return self.classifier(torch.flatten(self.pool(x), 1))


def build_candidate(candidate: Candidate, space: SearchSpace, num_classes: int = 10) -> nn.Module:
    """A freshly initialized :class:`CandidateNet` for ``candidate`` (checked against ``space``)."""
    return CandidateNet(candidate, space, num_classes)


@dataclass(frozen=True)
class Trial:
    """One step of a search: a candidate, its latency, and its score if it was trained.

    ``accuracy`` is ``None`` when the candidate was over the latency budget: it was measured
    (cheap) but not trained (expensive).
    """

    index: int  # order in the search trace, from 0
    candidate: Candidate
    latency_ms: float
    accuracy: float | None

    @property
    def within_budget(self) -> bool:
        return self.accuracy is not None


Latency = Callable[[Candidate], float]
Score = Callable[[Candidate], float]


class _Evaluator:
    """Measures, then trains only what fits the budget, and never the same candidate twice."""

    def __init__(self, latency: Latency, score: Score, budget_ms: float, trials: int) -> None:
        if budget_ms <= 0:
            raise ValueError(f"latency budget must be positive, got {budget_ms!r} ms")
        if trials < 1:
            raise ValueError(f"trials must be at least 1, got {trials!r}")
        self.latency, self.score, self.budget_ms, self.trials = latency, score, budget_ms, trials
        self.trace: list[Trial] = []
        self.seen: set[Candidate] = set()
        self.draws = 0  # candidates proposed, repeats included
        self.max_draws = 50 * trials  # a guard against a budget nothing can meet

    @property
    def trained(self) -> int:
        return sum(trial.within_budget for trial in self.trace)

    def done(self) -> bool:
        return self.trained >= self.trials

    def draws_left(self) -> bool:
        return self.draws < self.max_draws

    def evaluate(self, candidate: Candidate) -> Trial | None:
        """Record a new candidate in the trace; ``None`` if it was seen before."""
        self.draws += 1
        if candidate in self.seen:
            return None
        self.seen.add(candidate)
        latency_ms = float(self.latency(candidate))
        accuracy = float(self.score(candidate)) if latency_ms <= self.budget_ms else None
        trial = Trial(len(self.trace), candidate, latency_ms, accuracy)
        self.trace.append(trial)
        return trial

    def result(self) -> list[Trial]:
        if not self.done():
            fastest = min(trial.latency_ms for trial in self.trace)
            raise RuntimeError(
                f"only {self.trained} of {self.trials} candidates met the latency budget of "
                f"{self.budget_ms:.3g} ms after {self.draws} draws ({len(self.trace)} distinct, "
                f"fastest {fastest:.3g} ms): raise the budget or enlarge the search space"
            )
        return self.trace


def random_search(
    space: SearchSpace,
    latency: Latency,
    score: Score,
    *,
    budget_ms: float,
    trials: int,
    seed: int = 0,
) -> list[Trial]:
    """Random search under a hard latency budget: the search trace, in order.

    Draws candidates uniformly from ``space``; each new one gets ``latency(candidate)``; those
    within ``budget_ms`` also get ``score(candidate)`` (higher is better), the others are kept
    in the trace unscored. Stops when ``trials`` candidates have been scored. Raises
    ``RuntimeError`` if 50 × ``trials`` draws (repeats included) did not find enough
    candidates within budget.
    """
    evaluator = _Evaluator(latency, score, budget_ms, trials)
    rng = random.Random(seed)
    while not evaluator.done() and evaluator.draws_left() and len(evaluator.seen) < space.size():
        evaluator.evaluate(space.sample(rng))
    return evaluator.result()


def evolutionary_search(
    space: SearchSpace,
    latency: Latency,
    score: Score,
    *,
    budget_ms: float,
    trials: int,
    population: int = 4,
    tournament: int = 2,
    seed: int = 0,
) -> list[Trial]:
    """Regularized ("aging") evolution (Real et al., AAAI 2019) under a hard latency budget.

    1. Fill a population with ``population`` random candidates within budget (scored).
    2. Repeat until ``trials`` candidates are scored: pick ``tournament`` members at random, take
       the best-scoring as parent, :meth:`SearchSpace.mutate` it; score the child if it is new
       and within budget, append it and drop the *oldest* member (not the worst: old lucky
       scores do not stay forever).

    Returns the search trace, as :func:`random_search` does.
    """
    if not 1 <= population <= trials:
        raise ValueError(f"need 1 <= population <= trials, got {population=}, {trials=}")
    if not 1 <= tournament <= population:
        raise ValueError(f"need 1 <= tournament <= population, got {tournament=}, {population=}")
    evaluator = _Evaluator(latency, score, budget_ms, trials)
    rng = random.Random(seed)
    members: list[Trial] = []
    while len(members) < population and evaluator.draws_left() and not evaluator.done():
        trial = evaluator.evaluate(space.sample(rng))
        if trial is not None and trial.within_budget:
            members.append(trial)
    while not evaluator.done() and evaluator.draws_left() and len(evaluator.seen) < space.size():
        contestants = rng.sample(members, tournament)
        parent = max(contestants, key=lambda trial: trial.accuracy)
        child = evaluator.evaluate(space.mutate(parent.candidate, rng))
        if child is not None and child.within_budget:
            members = members[1:] + [child]  # age out the oldest
    return evaluator.result()


def best_trial(trace: Sequence[Trial]) -> Trial:
    """The scored trial with the highest accuracy (the earliest one on a tie)."""
    scored = [trial for trial in trace if trial.within_budget]
    if not scored:
        raise ValueError("no trial in the trace was scored (none was within the latency budget)")
    return max(scored, key=lambda trial: (trial.accuracy, -trial.index))


__all__ = [
    "ACTIVATIONS",
    "Candidate",
    "CandidateNet",
    "SearchSpace",
    "StageChoice",
    "Trial",
    "best_trial",
    "build_candidate",
    "describe",
    "evolutionary_search",
    "random_search",
]
