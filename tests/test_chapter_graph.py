"""tools/chapter_graph.py: prerequisites parsed from the chapters' own text, drawn as a PNG."""

from __future__ import annotations

import pytest

from tools import chapter_graph


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Chapter 1 ({doc}`01_foundations`): neurons", {1}),
        ("Chapters 2 and 3 (the fast loaders) and chapter 4 (the table).", {2, 3, 4}),
        (
            "Chapter 4 (MACs), chapters 6–9 (the four MobileNets) and chapter 10.",
            {4, 6, 7, 8, 9, 10},
        ),
        ("chapter 6 (the CIFAR setup that section 9.6 repeats), chapters 7 and 8", {6, 7, 8}),
        ("Python, derivatives and vectors. No chapter is assumed.", set()),
    ],
)
def test_chapter_numbers_are_read_from_the_prerequisites_text(text, expected):
    assert chapter_graph.parse_chapter_numbers(text) == expected


def test_transitive_reduction_drops_only_implied_edges():
    prerequisites = {1: set(), 2: {1}, 3: {1, 2}, 4: {2, 3}, 5: {1}}
    assert chapter_graph.transitive_reduction(prerequisites) == {
        1: set(),
        2: {1},
        3: {2},
        4: {3},
        5: {1},
    }


def test_every_chapter_has_a_place_in_the_figure():
    assert set(chapter_graph.LAYOUT) == set(chapter_graph.TITLES)
    for chapter in chapter_graph.TITLES:
        assert chapter_graph.part_colour(chapter).startswith("#")


def test_the_graph_is_drawn_from_the_repository(tmp_path):
    output = tmp_path / "graph.png"
    chapter_graph.draw(output)
    assert output.read_bytes().startswith(b"\x89PNG")
    prerequisites, _ = chapter_graph.read_edges()
    assert prerequisites[2] == {1}
    assert all(p < chapter for chapter, needs in prerequisites.items() for p in needs)
