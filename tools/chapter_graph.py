"""Draw the chapter dependency graph of the course into book/images/chapter_dependencies.png.

The edges come from each chapter's own "**Prerequisites.**" paragraph: every "chapter N",
"chapters N and M" or "chapters N–M" in it is an edge N → this chapter. A chapter whose notebook
does not exist yet gets the edges of ``PLANNED_PREREQUISITES`` instead, drawn dashed. The figure
shows the transitive reduction (an edge 2 → 5 is left out when 2 → 3 → 5 already connects them),
so that each arrow is a direct dependency a reader cannot skip.

Usage (from the repository root; matplotlib only, no graphviz):

    .venv/bin/python tools/chapter_graph.py [--output book/images/chapter_dependencies.png]
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # write a file; no display needed

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"

TITLES = {
    1: "Foundations",
    2: "MNIST: MLP",
    3: "MNIST: CNN",
    4: "Cost of\nconvolution",
    5: "ResNet",
    6: "MobileNetV1",
    7: "MobileNetV2\non CIFAR-10",
    8: "MobileNetV3",
    9: "MobileNetV4",
    10: "Deployment",
    11: "Trends",
    12: "Appendix:\nscaling out\nwith torchrun",
}
# Parts of the book, for the colours: (first chapter, last chapter, label, colour).
PARTS = [
    (1, 3, "Part I: foundations and MNIST", "#dbe9f6"),
    (4, 6, "Part II: efficient convolutional networks", "#fde2c8"),
    (7, 10, "Part III: MobileNetV2 to deployment", "#d8efd3"),
    (11, 12, "Outlook and appendix", "#e8e0f0"),
]
# Where each chapter's box sits (column, row): Part I and II left to right on the top row, the
# rest right to left below, so that the arrows stay short. The edges do not depend on this.
LAYOUT = {
    1: (0, 0), 2: (1, 0), 3: (2, 0), 4: (3, 0), 5: (4, 0), 6: (5, 0),
    7: (5, -1.2), 8: (4, -1.2), 9: (3, -1.2), 11: (2, -1.2),
    10: (4, -2.4), 12: (5, -2.4),
}  # fmt: skip
# Used only for a chapter whose notebook does not exist yet (drawn dashed).
PLANNED_PREREQUISITES = {10: [4, 6, 7]}

CHAPTER_LIST = re.compile(r"[Cc]hapters?\s+((?:\d+(?:\s*[–-]\s*\d+)?(?:\s*(?:,|and|or)\s*)?)+)")


def parse_chapter_numbers(text: str) -> set[int]:
    """Chapter numbers named in `text`: "chapter 3", "chapters 2 and 3", "chapters 6–9"."""
    numbers: set[int] = set()
    for match in CHAPTER_LIST.finditer(text):
        for part in re.split(r"\s*(?:,|and|or)\s*", match.group(1)):
            bounds = [int(n) for n in re.findall(r"\d+", part)]
            if len(bounds) == 2:
                numbers.update(range(bounds[0], bounds[1] + 1))
            elif len(bounds) == 1:
                numbers.add(bounds[0])
    return numbers


def prerequisites_paragraph(notebook: Path) -> str:
    """The text of the "**Prerequisites.**" paragraph of a chapter notebook ("" if none)."""
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    for cell in cells[:5]:
        text = "".join(cell["source"])
        match = re.search(r"\*\*Prerequisites\.?\*\*(.*?)(?:\n\s*\n|$)", text, re.S)
        if match:
            return match.group(1)
    return ""


def read_edges() -> tuple[dict[int, set[int]], set[int]]:
    """Prerequisites of each chapter, and the chapters whose edges are only planned."""
    prerequisites: dict[int, set[int]] = {}
    planned: set[int] = set()
    for number in TITLES:
        found = sorted(NOTEBOOKS.glob(f"{number:02d}_*.ipynb"))
        if found:
            named = parse_chapter_numbers(prerequisites_paragraph(found[0]))
            prerequisites[number] = {n for n in named if n in TITLES and n < number}
        else:
            prerequisites[number] = set(PLANNED_PREREQUISITES.get(number, []))
            planned.add(number)
    return prerequisites, planned


def ancestors(chapter: int, prerequisites: dict[int, set[int]]) -> set[int]:
    """Every chapter reachable backwards from `chapter`."""
    seen: set[int] = set()
    stack = list(prerequisites[chapter])
    while stack:
        current = stack.pop()
        if current not in seen:
            seen.add(current)
            stack.extend(prerequisites[current])
    return seen


def transitive_reduction(prerequisites: dict[int, set[int]]) -> dict[int, set[int]]:
    """Keep an edge p → c only if no other prerequisite of c already depends on p."""
    return {
        chapter: {
            p
            for p in direct
            if not any(p in ancestors(other, prerequisites) for other in direct - {p})
        }
        for chapter, direct in prerequisites.items()
    }


def part_colour(chapter: int) -> str:
    """Fill colour of the part the chapter belongs to."""
    return next(colour for first, last, _, colour in PARTS if first <= chapter <= last)


def draw(output: Path) -> None:
    """Draw the graph and save it as a PNG at `output`."""
    full, planned = read_edges()
    edges = transitive_reduction(full)
    position = {chapter: (1.25 * x, y) for chapter, (x, y) in LAYOUT.items()}
    width, height = 1.05, 0.62
    fig, ax = plt.subplots(figsize=(11, 5.2))
    boxes = {}
    for chapter, (x, y) in position.items():
        boxes[chapter] = FancyBboxPatch(
            (x - width / 2, y - height / 2),
            width,
            height,
            boxstyle="round,pad=0.02,rounding_size=0.08",
            facecolor=part_colour(chapter),
            edgecolor="#333333",
            linestyle="--" if chapter in planned else "-",
        )
        ax.add_patch(boxes[chapter])
        ax.text(x, y, f"{chapter}. {TITLES[chapter]}", ha="center", va="center", fontsize=9)
    for chapter, prereqs in edges.items():
        for prereq in prereqs:
            arrow = FancyArrowPatch(
                position[prereq],
                position[chapter],
                patchA=boxes[prereq],
                patchB=boxes[chapter],
                arrowstyle="-|>",
                mutation_scale=14,
                linewidth=1.2,
                color="#444444",
                linestyle="--" if chapter in planned else "-",
                shrinkA=2,
                shrinkB=2,
            )
            ax.add_patch(arrow)
    handles = [
        plt.Rectangle((0, 0), 1, 1, facecolor=colour, edgecolor="#333333") for *_, colour in PARTS
    ]
    ax.legend(
        handles,
        [label for _, _, label, _ in PARTS],
        loc="upper center",
        ncol=2,
        fontsize=8,
        frameon=False,
        bbox_to_anchor=(0.5, 1.12),
    )
    xs = [x for x, _ in position.values()]
    ys = [y for _, y in position.values()]
    ax.set_xlim(min(xs) - width, max(xs) + width)
    ax.set_ylim(min(ys) - height, max(ys) + height)
    ax.set_aspect("equal")
    ax.axis("off")
    output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(output, dpi=150, bbox_inches="tight")
    plt.close(fig)
    for chapter in sorted(full):
        note = " (planned: notebook not written yet)" if chapter in planned else ""
        print(f"chapter {chapter:>2} needs {sorted(full[chapter]) or '-'}{note}")
    print(f"wrote {output}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--output", type=Path, default=ROOT / "book" / "images" / "chapter_dependencies.png"
    )
    draw(parser.parse_args().output)


if __name__ == "__main__":
    main()
