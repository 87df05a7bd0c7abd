"""The built book in headless Chromium, as readers open it (``make browser-test``, after
``make book``; ``.ci/run`` runs it after the book build).

``tools/browser_check.py`` opens every page of ``_build/html``; this test fails with the list of
every problem it found, and prints the numbers of what it checked. Screenshots of each page at
desktop and phone width go to ``_build/screenshots/``.
"""

from pathlib import Path

from tools.browser_check import check_book

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
CHAPTERS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def test_every_page_works_in_a_browser() -> None:
    assert (HTML / "index.html").is_file(), f"{HTML} has no book: run `make book` first"
    report = check_book(HTML, screenshots=ROOT / "_build" / "screenshots")
    print(report.summary())
    assert not report.problems, report.summary()
    # What a broken check would show as nothing: the pages, and on them links, formulas, images.
    assert report.pages >= len(CHAPTERS) + 3  # chapters, intro, setup, references, ...
    assert report.math_pages >= 1 and report.math_containers >= report.math_pages
    assert report.images >= len(CHAPTERS) and report.anchors >= 1
    assert report.redirects == 1  # index.html sends the reader to book/intro.html
    assert report.screenshots == 2 * (report.pages - report.redirects)
    assert report.search_results["depthwise"] >= 1
