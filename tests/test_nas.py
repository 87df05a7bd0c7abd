"""mnlib.nas: the search space, the candidate builder, random and evolutionary search."""

from __future__ import annotations

import random

import pytest
import torch
from torch import nn

from mnlib.blocks import InvertedResidualV3, SqueezeExcite
from mnlib.nas import (
    SearchSpace,
    StageChoice,
    Trial,
    best_trial,
    build_candidate,
    describe,
    evolutionary_search,
    random_search,
)

SPACE = SearchSpace()
PLAIN = StageChoice(3, 3, False, "relu")
RICH = StageChoice(5, 6, True, "hswish")


def cost(candidate) -> float:
    """A deterministic stand-in for latency: bigger kernels, expansions and SE cost more."""
    return sum(c.kernel_size + c.expansion + 2 * c.use_se for c in candidate)


def quality(candidate) -> float:
    """A deterministic stand-in for accuracy that prefers h-swish and SE."""
    return sum((c.activation == "hswish") + c.use_se for c in candidate) / (2 * len(candidate))


def test_space_size_counts_every_combination():
    assert len(SPACE.choices()) == 16  # 2 kernels × 2 expansions × SE on/off × 2 activations
    assert SPACE.size() == 16**3
    small = SearchSpace(widths=(8,), strides=(1,), depths=(1,), kernel_sizes=(3,))
    assert small.size() == 8


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"widths": (8, 16), "strides": (2,), "depths": (1, 1)}, "one entry per stage"),
        ({"strides": (2, 3, 2)}, "stride must be 1 or 2"),
        ({"kernel_sizes": (4,)}, "must be odd"),
        ({"activations": ("relu", "gelu")}, "unknown activation"),
        ({"expansions": ()}, "expansions needs at least one option"),
    ],
)
def test_bad_space_is_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SearchSpace(**kwargs)


def test_candidate_builds_the_blocks_it_describes():
    candidate = (PLAIN, RICH, StageChoice(5, 3, False, "hswish"))
    model = build_candidate(candidate, SPACE)
    blocks = [block for stage in model.stages for block in stage]
    assert len(blocks) == sum(SPACE.depths)
    assert all(isinstance(block, InvertedResidualV3) for block in blocks)
    first, second = blocks[0], blocks[1]
    assert first.depthwise.conv.kernel_size == (3, 3)
    assert first.expand.conv.out_channels == 3 * SPACE.stem_channels
    assert isinstance(first.depthwise.act, nn.ReLU) and not first.use_se
    assert second.depthwise.conv.kernel_size == (5, 5)
    assert second.expand.conv.out_channels == 6 * SPACE.widths[0]
    assert isinstance(second.se, SqueezeExcite) and isinstance(second.depthwise.act, nn.Hardswish)
    assert describe(candidate) == "k3 e3 -- relu | k5 e6 SE hswish | k5 e3 -- hswish"


def test_candidate_maps_images_to_logits():
    model = build_candidate((RICH, PLAIN, RICH), SPACE, num_classes=7).eval()
    with torch.no_grad():
        logits = model(torch.randn(2, 3, 32, 32))
    assert logits.shape == (2, 7)
    pooled = []
    model.pool.register_forward_hook(lambda m, inputs, out: pooled.append(inputs[0].shape))
    model(torch.randn(1, 3, 32, 32))
    assert pooled[0] == (1, SPACE.widths[-1], 4, 4)  # total stride 8


def test_candidate_not_in_space_is_rejected():
    with pytest.raises(ValueError, match="2 stage choice"):
        build_candidate((PLAIN, PLAIN), SPACE)
    with pytest.raises(ValueError, match="stage 1"):
        build_candidate((PLAIN, StageChoice(7, 3, False, "relu"), PLAIN), SPACE)


def test_mutation_changes_exactly_one_decision():
    rng = random.Random(0)
    for _ in range(50):
        parent = SPACE.sample(rng)
        child = SPACE.mutate(parent, rng)
        SPACE.check(child)
        differences = [
            field
            for a, b in zip(parent, child, strict=True)
            for field in ("kernel_size", "expansion", "use_se", "activation")
            if getattr(a, field) != getattr(b, field)
        ]
        assert len(differences) == 1


def test_mutation_needs_a_choice():
    single = SearchSpace(
        widths=(8,),
        strides=(1,),
        depths=(1,),
        kernel_sizes=(3,),
        expansions=(3,),
        se_options=(False,),
        activations=("relu",),
    )
    with pytest.raises(ValueError, match="single candidate"):
        single.mutate((PLAIN,), random.Random(0))


def test_random_search_trains_only_candidates_within_budget():
    scored = []

    def score(candidate):
        scored.append(candidate)
        return quality(candidate)

    trace = random_search(SPACE, cost, score, budget_ms=24.0, trials=5, seed=1)
    within = [trial for trial in trace if trial.within_budget]
    assert len(within) == 5
    assert [trial.candidate for trial in within] == scored  # each scored once, in order
    assert all(trial.latency_ms <= 24.0 for trial in within)
    assert all(trial.latency_ms > 24.0 for trial in trace if not trial.within_budget)
    assert [trial.index for trial in trace] == list(range(len(trace)))
    assert len({trial.candidate for trial in trace}) == len(trace)  # no repeats
    assert trace == random_search(SPACE, cost, quality, budget_ms=24.0, trials=5, seed=1)


def test_search_with_an_impossible_budget_says_so():
    with pytest.raises(RuntimeError, match="met the latency budget"):
        random_search(SPACE, cost, quality, budget_ms=1.0, trials=2)
    with pytest.raises(ValueError, match="must be positive"):
        random_search(SPACE, cost, quality, budget_ms=0.0, trials=2)


def test_evolution_improves_on_its_random_start():
    trace = evolutionary_search(
        SPACE, cost, quality, budget_ms=40.0, trials=40, population=5, tournament=3, seed=0
    )
    scored = [trial for trial in trace if trial.within_budget]
    assert len(scored) == 40
    start = max(trial.accuracy for trial in scored[:5])
    assert best_trial(trace).accuracy > start


def test_evolution_checks_its_settings():
    with pytest.raises(ValueError, match="population <= trials"):
        evolutionary_search(SPACE, cost, quality, budget_ms=40.0, trials=3, population=4)
    with pytest.raises(ValueError, match="tournament <= population"):
        evolutionary_search(SPACE, cost, quality, budget_ms=40.0, trials=8, tournament=5)


def test_best_trial_is_the_most_accurate_within_budget():
    a, b = (PLAIN,) * 3, (RICH,) * 3
    trace = [Trial(0, a, 1.0, 0.5), Trial(1, b, 9.0, None), Trial(2, a, 2.0, 0.7)]
    assert best_trial(trace).index == 2
    with pytest.raises(ValueError, match="no trial"):
        best_trial([Trial(0, b, 9.0, None)])
