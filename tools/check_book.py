"""Check a built book (``_build/html``) for what a reader needs offline. Run by ``.ci/run``.

1. MathJax comes from the book itself: pages with math load ``_static/mathjax/tex-chtml.js``
   through a relative path that exists, and no page loads any script from the internet (a
   CDN-loaded MathJax shows raw LaTeX offline).
2. Each chapter page hides its exercise solutions behind a one-click toggle (``hide-input``).
3. Each chapter page links its student version, for download and for Colab.

Usage::

    python tools/check_book.py [_build/html]     # exit 1 and list the problems if any
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import nbformat
import yaml

ROOT = Path(__file__).resolve().parents[1]
SCRIPT_SRC = re.compile(r"<script\b[^>]*\bsrc=\"([^\"]+)\"")
HIDDEN_INPUT = '<details class="admonition hide above-input">'
MATHJAX = "_static/mathjax/tex-chtml.js"


def student_links(chapter: str, config: dict | None = None) -> tuple[str, str]:
    """The download (GitHub) and Colab URLs of a chapter's student version.

    ``chapter`` is the file name, e.g. ``"02_mnist_mlp.ipynb"``; the repository and branch come
    from ``_config.yml``.
    """
    config = config or yaml.safe_load((ROOT / "_config.yml").read_text())
    repository = config["repository"]
    path = f"{repository['url'].removeprefix('https://github.com/')}/blob/{repository['branch']}"
    path += f"/notebooks/student/{chapter}"
    return f"https://github.com/{path}", f"https://colab.research.google.com/github/{path}"


def script_problems(html_dir: Path) -> list[str]:
    """Scripts loaded from the internet, and local MathJax scripts that do not exist."""
    problems = []
    pages_with_mathjax = 0
    for page in sorted(html_dir.rglob("*.html")):
        if "_static" in page.relative_to(html_dir).parts:
            continue  # theme templates, not pages
        name = page.relative_to(html_dir)
        for src in SCRIPT_SRC.findall(page.read_text(encoding="utf-8")):
            if re.match(r"(https?:)?//", src):
                problems.append(f"{name}: loads a script from the internet: {src}")
            elif "mathjax" in src.lower():
                pages_with_mathjax += 1
                target = (page.parent / src.split("?")[0]).resolve()
                if not target.is_file():
                    problems.append(f"{name}: loads {src}, which is not in the build")
    if not (html_dir / MATHJAX).is_file():
        problems.append(f"{MATHJAX} is missing: is sphinx-mathjax-offline in _config.yml?")
    if pages_with_mathjax == 0:
        problems.append("no page loads MathJax, yet the chapters have math")
    return problems


def chapter_problems(html_dir: Path, chapter: Path, config: dict | None = None) -> list[str]:
    """Hidden solutions and student-version links on one chapter's page."""
    page = html_dir / "notebooks" / f"{chapter.stem}.html"
    if not page.is_file():
        return [f"{page.relative_to(html_dir)} was not built"]
    html = page.read_text(encoding="utf-8")
    notebook = nbformat.read(chapter, as_version=4)
    solutions = sum(
        cell.metadata.get("nbgrader", {}).get("grade_id", "").endswith("_solution")
        for cell in notebook.cells
    )
    problems = []
    if html.count(HIDDEN_INPUT) < solutions:
        problems.append(
            f"{page.name}: {solutions} solutions, {html.count(HIDDEN_INPUT)} hidden code cells"
        )
    for url in student_links(chapter.name, config):
        if f'href="{url}"' not in html:
            problems.append(f"{page.name}: no link to {url}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("html_dir", nargs="?", type=Path, default=ROOT / "_build" / "html")
    args = parser.parse_args()
    problems = script_problems(args.html_dir)
    for chapter in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        problems += chapter_problems(args.html_dir, chapter)
    for problem in problems:
        print(problem, file=sys.stderr)
    if not problems:
        print(f"{args.html_dir}: MathJax is local, solutions are hidden, student links are there")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
