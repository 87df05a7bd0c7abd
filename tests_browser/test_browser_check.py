"""The browser check itself: on a tiny site with one broken page it reports each problem, and on
a clean one nothing (so a green book run means something). Needs Debian's chromium; a few
seconds."""

import sysconfig
from pathlib import Path

import pytest

from tools.browser_check import book_required_links, check_site, screenshot_name

GOOD_PAGE = """<!DOCTYPE html><html><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Good</title>
<link rel="icon" href="data:,"></head>
<body><main><h1 id="top-title">Good</h1><p id="part">Text.</p>
<img src="dot.svg" alt="a dot"><a href="{link}">a link</a></main></body></html>"""

BROKEN_PAGE = """<!DOCTYPE html><html><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Broken</title>
<link rel="icon" href="data:,"></head>
<body><main>
<p>Raw TeX: $$x^2$$</p>
<span class="math">\\(y\\)</span>
<img src="missing.png" alt="missing">
<a href="good.html#part">good anchor</a>
<a href="good.html#no-such-part">broken anchor</a>
<a href="nowhere.html">missing page</a>
<a href="https://example.org/paper">an external link, not loaded</a>
<div style="width: 900px">a wide table</div>
<div style="overflow-x: auto"><div style="width: 900px">wide, but scrolls in its box</div></div>
<script>console.error("boom")</script>
<script src="https://cdn.example.org/lib.js"></script>
</main></body></html>"""

DOT = '<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"><circle r="2"/></svg>'

# The MathJax copy that sphinx-mathjax-offline puts into the book.
MATHJAX = Path(sysconfig.get_paths()["purelib"]) / "sphinx-mathjax-offline" / "static" / "mathjax"
MATHJAX_SCRIPT = '<script defer src="mathjax/tex-chtml.js"></script>'


@pytest.fixture
def site(tmp_path: Path) -> Path:
    (tmp_path / "good.html").write_text(GOOD_PAGE.replace("{link}", "broken.html"))
    (tmp_path / "broken.html").write_text(BROKEN_PAGE)
    (tmp_path / "dot.svg").write_text(DOT)
    (tmp_path / "_static").mkdir()  # theme files: not pages
    (tmp_path / "_static" / "template.html").write_text("<a href='{{ pathto() }}'>x</a>")
    return tmp_path


def test_each_problem_of_a_broken_page_is_reported(site: Path, tmp_path: Path) -> None:
    def required(page: str) -> list[tuple[str, str]]:
        if page == "broken.html":
            return [("Colab", "https://colab.research.google.com/x.ipynb")]
        return []

    shots = tmp_path / "shots"
    report = check_site(site, shots, required=required, search_terms=("depthwise",))
    problems = "\n".join(report.problems)
    expected = [
        "broken.html: console error: boom",
        "broken.html: requests a non-local URL: https://cdn.example.org/lib.js",
        "broken.html: HTTP 404 for http://127.0.0.1:",  # missing.png, fetched by the page
        "broken.html: image did not load: http://127.0.0.1:",
        "broken.html: raw TeX in the text: 'Raw TeX: $$x^2$$'",
        "broken.html: formula not rendered: '\\\\(y\\\\)'",
        "broken.html: broken anchor #no-such-part (no such id in good.html)",
        "broken.html: link to http://127.0.0.1:",  # nowhere.html
        "answers HTTP 404",
        "broken.html: wider than a 375 px phone screen",
        "div 'a wide table' (",
        "broken.html: no Colab link (https://colab.research.google.com/x.ipynb)",
        "search.html: HTTP 404",
    ]
    for problem in expected:
        assert problem in problems, f"not reported: {problem}\n{problems}"
    assert [problem for problem in report.problems if problem.startswith("good.html")] == []
    assert "scrolls in its box" not in problems and "example.org/paper" not in problems
    assert (report.pages, report.images, report.links, report.anchors) == (2, 2, 4, 2)
    assert sorted(path.name for path in shots.iterdir()) == [
        "broken-desktop.png",
        "broken-phone.png",
        "good-desktop.png",
        "good-phone.png",
    ]


def test_a_clean_site_has_no_problems(site: Path) -> None:
    """Two good pages, one with a formula that the book's offline MathJax renders."""
    (site / "mathjax").symlink_to(MATHJAX, target_is_directory=True)
    with_math = GOOD_PAGE.replace("{link}", "good.html#part").replace(
        "<p id=", '<p><span class="math">\\(x^2\\)</span></p>' + MATHJAX_SCRIPT + "<p id="
    )
    (site / "broken.html").write_text(with_math)
    report = check_site(site)
    assert report.problems == []
    assert (report.pages, report.images, report.anchors, report.screenshots) == (2, 2, 1, 0)
    assert (report.math_pages, report.math_containers) == (1, 1)


def test_a_chapter_page_needs_its_colab_download_and_student_links() -> None:
    config = {"repository": {"url": "https://github.com/org/course", "branch": "main"}}
    links = dict(
        (what, url) for what, url in book_required_links("notebooks/05_resnet.html", config)
    )
    blob = "github/org/course/blob/main/notebooks"
    assert links == {
        "Colab": f"https://colab.research.google.com/{blob}/05_resnet.ipynb",
        "download": "_sources/notebooks/05_resnet.ipynb",
        "student-version download": (
            "https://github.com/org/course/blob/main/notebooks/student/05_resnet.ipynb"
        ),
        "student-version Colab": f"https://colab.research.google.com/{blob}/student/05_resnet.ipynb",
    }
    assert book_required_links("book/intro.html", config) == []
    assert screenshot_name("notebooks/05_resnet.html", "phone") == "notebooks__05_resnet-phone.png"


def test_a_missing_book_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="build the book first"):
        check_site(tmp_path / "no_such_dir")
