"""Open every page of a built book in headless Chromium, as a reader does, and list what is broken.

The link checkers (lychee, ``tools/check_book.py``) read the HTML files; this check runs the
pages: it serves ``_build/html`` on ``127.0.0.1`` (so the search page works) and drives Debian's
``chromium`` with Playwright. On every page it checks:

- no console error, no uncaught exception, no failed request to our server, and no request to any
  other host (the book must work offline);
- math rendered: MathJax finished, every ``.math`` element holds an ``mjx-container``, no MathJax
  error, and no raw ``\\(``, ``\\[``, ``$$`` or ``\\begin{`` left in the text outside code;
- every image loaded (``naturalWidth > 0``);
- every link to our server answers 200 and every ``#fragment`` is an id on its target page;
- the links a page must have (a chapter: Colab, download, student version) are there;
- at phone width (375 px) neither the page nor its main article is wider than the screen.

Then the search page must find each search term. A screenshot per page at desktop (1280 px) and
phone width goes to a folder.

Usage::

    python -m tools.browser_check [_build/html] [--screenshots DIR] [--full-page] [--chromium PATH]
"""

from __future__ import annotations

import argparse
import functools
import html.parser
import re
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urldefrag, urljoin, urlsplit

from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    Request,
    Response,
    Route,
    sync_playwright,
)

from tools.check_book import student_links  # the URLs the static check expects too

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"  # Debian's package; Playwright's downloaded browsers are not used
# No GPU, no sandbox (root in a container), and no network: without the background-networking
# flags Chromium keeps trying to reach Google's servers.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 375, "height": 740}
REFRESH = re.compile(r'<meta http-equiv="refresh" content="\d+; ?url=([^"]+)"', re.IGNORECASE)
TIMEOUT_MS = 60_000  # a chapter with many formulas takes seconds on a busy 2-core machine

# Runs in the page once it has loaded: waits for MathJax and for every image (lazy ones too),
# then returns what the checks need. Raw TeX is searched in text outside code and formulas.
PAGE_FACTS_JS = """
async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    await MathJax.startup.promise;
  }
  const images = [...document.images];
  for (const img of images) img.loading = "eager";
  await Promise.all(images.map((img) => img.complete ? null : new Promise((done) => {
    img.addEventListener("load", done); img.addEventListener("error", done);
  })));
  await document.fonts.ready;
  const skip = "pre, code, script, style, textarea, mjx-container, .highlight, .math";
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const rawTex = [];
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const match = node.data.match(/\\\\\\(|\\\\\\[|\\$\\$|\\\\begin\\{/);
    if (match && !node.parentElement.closest(skip)) {
      rawTex.push(node.data.slice(Math.max(0, match.index - 30), match.index + 40).trim());
    }
  }
  const mathElements = [...document.querySelectorAll(".math")];
  return {
    ids: [...document.querySelectorAll("[id]")].map((e) => e.id)
      .concat([...document.querySelectorAll("a[name]")].map((e) => e.name)),
    links: [...document.querySelectorAll("a[href]")].map((a) => a.href),
    images: images.map((img) => ({src: img.currentSrc || img.src, width: img.naturalWidth})),
    mathElements: mathElements.length,
    unrendered: mathElements.filter((e) => !e.querySelector("mjx-container"))
      .map((e) => e.textContent.trim().slice(0, 60)),
    mathContainers: document.querySelectorAll("mjx-container").length,
    mathErrors: [...document.querySelectorAll("mjx-merror")]
      .map((e) => e.getAttribute("data-mjx-error") || e.textContent),
    rawTex: rawTex,
  };
}
"""

# At phone width: how wide the page and its main article are and, if wider than the screen, the
# first elements that stick out (not those in a scrolling or clipping box, nor fixed, hidden ones
# such as the off-canvas table of contents).
OVERFLOW_JS = """
(viewport) => {
  const article = document.querySelector("article.bd-article, main, [role=main]") || document.body;
  const widths = {page: document.documentElement.scrollWidth, article: article.scrollWidth};
  if (Math.max(widths.page, widths.article) <= viewport + 1) return {...widths, culprits: []};
  const ignored = (e) => {
    if (getComputedStyle(e).visibility === "hidden") return true;
    for (let p = e; p && p !== document.body; p = p.parentElement) {
      const style = getComputedStyle(p);
      if (style.position === "fixed") return true;
      if (p !== e && ["auto", "scroll", "hidden", "clip"].includes(style.overflowX)) return true;
    }
    return false;
  };
  const culprits = [];
  for (const e of document.body.querySelectorAll("*")) {
    if (e.getBoundingClientRect().right <= viewport + 1 || ignored(e)) continue;
    if (culprits.some((c) => c.contains(e))) continue;
    culprits.push(e);
    if (culprits.length === 3) break;
  }
  const describe = (e) => e.tagName.toLowerCase() + (e.className ? "." +
    String(e.className).trim().split(/\\s+/).join(".") : "") + " '" +
    e.textContent.trim().slice(0, 40) + "' (" + Math.round(e.getBoundingClientRect().right) +
    " px right edge)";
  return {...widths, culprits: culprits.map(describe)};
}
"""

# The search page of Sphinx fills #search-results; it is done when it says so.
SEARCH_DONE_JS = """
() => {
  const results = document.querySelector("#search-results");
  return results !== null && (results.querySelectorAll("ul.search li").length > 0 ||
    /finished|did not match/i.test(results.innerText));
}
"""


@dataclass
class Report:
    """What the check saw, and every problem it found (``"page: problem"``)."""

    pages: int = 0
    redirects: int = 0  # pages that only send the reader on (index.html), not screenshotted
    links: int = 0  # links to our server (one per <a> element)
    distinct_urls: int = 0  # of those links, without fragments
    anchors: int = 0  # links with a #fragment that were checked
    images: int = 0
    math_containers: int = 0  # mjx-container elements: formulas MathJax rendered
    math_pages: int = 0
    screenshots: int = 0
    search_results: dict[str, int] = field(default_factory=dict)  # term -> result pages
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One paragraph with the numbers, then the problems."""
        found = ", ".join(f"{term!r}: {n} pages" for term, n in self.search_results.items())
        lines = [
            f"browser check: {self.pages} pages ({self.redirects} redirects), "
            f"{self.links} internal links "
            f"({self.distinct_urls} distinct URLs), {self.anchors} anchors, {self.images} images, "
            f"{self.math_containers} formulas on {self.math_pages} pages, "
            f"{self.screenshots} screenshots, search {{{found}}}, {self.seconds:.1f} s; "
            f"{len(self.problems)} problems"
        ]
        return "\n".join(lines + [f"  {problem}" for problem in self.problems])


class _QuietHandler(SimpleHTTPRequestHandler):
    """Serves files without logging every request to stderr."""

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def serve(html_dir: Path) -> Iterator[str]:
    """Serve ``html_dir`` on a free port of 127.0.0.1; yields the root URL (ending in ``/``)."""
    handler = functools.partial(_QuietHandler, directory=str(html_dir))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def html_pages(html_dir: Path) -> list[str]:
    """Every page, as a path relative to ``html_dir`` (theme templates in ``_static`` are not)."""
    pages = html_dir.rglob("*.html")
    return sorted(
        page.relative_to(html_dir).as_posix()
        for page in pages
        if not page.relative_to(html_dir).parts[0].startswith("_")
    )


def screenshot_name(page: str, width_name: str) -> str:
    """``notebooks/05_resnet.html`` -> ``notebooks__05_resnet-desktop.png``."""
    return page.removesuffix(".html").replace("/", "__") + f"-{width_name}.png"


class _IdParser(html.parser.HTMLParser):
    """The ids (and ``<a name>``) of an HTML file the browser did not open."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value and (name == "id" or (tag == "a" and name == "name")):
                self.ids.add(value)


class _Watcher:
    """Collects console errors and bad requests of the pages opened in one browser context.

    Requests to any host but our server are aborted, so a page that needs the internet fails
    here as it would for a reader offline.
    """

    def __init__(self, context: BrowserContext, base_url: str) -> None:
        self.origin = base_url.rstrip("/")
        self.current = "?"  # the page being checked, to name it in the problems
        self.problems: list[str] = []
        context.route("**/*", self._route)
        context.on("page", self._watch)

    def _route(self, route: Route) -> None:
        url = route.request.url
        if url.startswith(self.origin + "/") or not url.startswith(("http:", "https:")):
            route.continue_()
        else:
            self.problems.append(f"{self.current}: requests a non-local URL: {url}")
            route.abort()

    def _watch(self, page: Page) -> None:
        page.on("console", self._console)
        page.on("pageerror", lambda error: self._add(f"uncaught exception: {error}"))
        page.on("requestfailed", self._request_failed)
        page.on("response", self._response)

    def _add(self, problem: str) -> None:
        self.problems.append(f"{self.current}: {problem}")

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self._add(f"console error: {message.text}")

    def _request_failed(self, request: Request) -> None:
        # Requests to other hosts were aborted and reported by _route. A request cut short by
        # the next navigation (net::ERR_ABORTED) is the check moving on, not the book failing.
        if request.url.startswith(self.origin + "/") and request.failure != "net::ERR_ABORTED":
            self._add(f"request failed: {request.url} ({request.failure})")

    def _response(self, response: Response) -> None:
        if response.status >= 400:
            self._add(f"HTTP {response.status} for {response.url}")


def _status(url: str, cache: dict[str, int]) -> int:
    """HTTP status of ``url`` (a HEAD request to our server), remembered per URL."""
    if url not in cache:
        try:
            with urllib.request.urlopen(urllib.request.Request(url, method="HEAD")) as answer:
                cache[url] = answer.status
        except urllib.error.HTTPError as error:
            cache[url] = error.code
    return cache[url]


def redirect_target(file: Path) -> str | None:
    """The URL of a ``<meta http-equiv="Refresh">`` page (``index.html``), else None."""
    match = REFRESH.search(file.read_text(encoding="utf-8"))
    return match and match.group(1)


def _check_page(
    page: Page, name: str, url: str, report: Report, links: dict[str, list[str]]
) -> dict:
    """Load one page at desktop width and check it; returns the facts PAGE_FACTS_JS gathered."""
    response = page.goto(url, wait_until="load", timeout=TIMEOUT_MS)
    if response is None or response.status != 200:
        report.problems.append(f"{name}: HTTP {response and response.status}")
    facts = page.evaluate(PAGE_FACTS_JS)
    report.images += len(facts["images"])
    report.problems += [
        f"{name}: image did not load: {image['src']}"
        for image in facts["images"]
        if image["width"] == 0
    ]
    report.math_containers += facts["mathContainers"]
    report.math_pages += facts["mathElements"] > 0
    report.problems += [f"{name}: formula not rendered: {tex!r}" for tex in facts["unrendered"]]
    report.problems += [f"{name}: MathJax error: {error}" for error in facts["mathErrors"]]
    report.problems += [f"{name}: raw TeX in the text: {text!r}" for text in facts["rawTex"]]
    links[name] = facts["links"]
    return facts


def _check_links(
    links: dict[str, list[str]],
    ids: dict[str, set[str]],
    base_url: str,
    html_dir: Path,
    report: Report,
) -> None:
    """Every link to our server answers 200, and every #fragment is an id on its target page."""
    statuses: dict[str, int] = {}
    for name, hrefs in links.items():
        for href in hrefs:
            if not href.startswith(base_url):
                continue  # another site (GitHub, Colab, a paper): a reader's click, not a load
            report.links += 1
            target, fragment = urldefrag(href)
            target = target.split("?")[0]
            status = _status(target, statuses)
            if status != 200:
                report.problems.append(f"{name}: link to {href} answers HTTP {status}")
                continue
            if not fragment:
                continue
            report.anchors += 1
            path = urlsplit(target).path.removeprefix(urlsplit(base_url).path)
            path = unquote(path) or "index.html"
            if path.endswith("/"):
                path += "index.html"
            if path not in ids:  # a page the browser did not open: read its ids from the file
                parser = _IdParser()
                file = html_dir / path
                parser.feed(file.read_text(encoding="utf-8") if file.suffix == ".html" else "")
                ids[path] = parser.ids
            if unquote(fragment) not in ids[path]:
                report.problems.append(f"{name}: broken anchor #{fragment} (no such id in {path})")
    report.distinct_urls = len(statuses)


def _check_required(
    links: dict[str, list[str]],
    required: Callable[[str], list[tuple[str, str]]],
    base_url: str,
    report: Report,
) -> None:
    """Each page has the links ``required(page)`` names (``(what, URL)``; relative: to the root)."""
    for name, hrefs in links.items():
        for what, url in required(name):
            absolute = url if re.match(r"https?://", url) else base_url + url
            if absolute not in hrefs:
                report.problems.append(f"{name}: no {what} link ({url})")


def _check_phone(page: Page, name: str, url: str, report: Report) -> None:
    """At phone width, the page and its main article fit the screen."""
    page.goto(url, wait_until="load", timeout=TIMEOUT_MS)
    page.evaluate(PAGE_FACTS_JS)  # wait for MathJax and the images: they change the widths
    widths = page.evaluate(OVERFLOW_JS, PHONE["width"])
    if max(widths["page"], widths["article"]) > PHONE["width"] + 1:
        report.problems.append(
            f"{name}: wider than a {PHONE['width']} px phone screen (page {widths['page']} px, "
            f"article {widths['article']} px); sticking out: {'; '.join(widths['culprits'])}"
        )


def _check_search(context: BrowserContext, base_url: str, term: str, report: Report) -> None:
    """The search page lists at least one result page for ``term``."""
    page = context.new_page()
    try:
        response = page.goto(f"{base_url}search.html?q={term}", timeout=TIMEOUT_MS)
        if response is None or response.status != 200:
            report.problems.append(f"search.html: HTTP {response and response.status}")
            return
        page.wait_for_function(SEARCH_DONE_JS, timeout=TIMEOUT_MS)
        results = page.eval_on_selector_all("#search-results ul.search li a", "as => as.length")
        report.search_results[term] = results
        if results == 0:
            report.problems.append(f"search.html: no result for {term!r}")
    finally:
        page.close()


def _take_screenshot(
    page: Page, folder: Path | None, name: str, width: str, full_page: bool, report: Report
) -> None:
    """Save what the reader sees (``width``: "desktop" or "phone") when ``folder`` is given."""
    if folder is not None:
        path = folder / screenshot_name(name, width)
        page.screenshot(path=path, full_page=full_page, timeout=TIMEOUT_MS)
        report.screenshots += 1


def _no_links(page: str) -> list[tuple[str, str]]:
    """The default of ``check_site(required=...)``: no page must have any particular link."""
    return []


def check_site(
    html_dir: Path,
    screenshots: Path | None = None,
    required: Callable[[str], list[tuple[str, str]]] = _no_links,
    search_terms: tuple[str, ...] = (),
    chromium: str = CHROMIUM,
    full_page: bool = False,
) -> Report:
    """Open every page of ``html_dir`` in Chromium and check it (see the module docstring).

    ``screenshots``: a folder for one PNG per page and width (its old PNGs are removed);
    ``required(page)``: ``(what, URL)`` links that page must have; ``search_terms``: words the
    search page must find; ``full_page``: screenshots of whole pages (a chapter: 3-5 s and
    2-4 MB each), not of the first screen.
    """
    html_dir = Path(html_dir)
    if not html_dir.is_dir():
        raise FileNotFoundError(f"{html_dir} does not exist: build the book first (make book)")
    start = time.perf_counter()
    report = Report()
    if screenshots is not None:
        screenshots.mkdir(parents=True, exist_ok=True)
        for old in screenshots.glob("*.png"):
            old.unlink()
    pages = html_pages(html_dir)
    report.pages = len(pages)
    with serve(html_dir) as base_url, sync_playwright() as playwright:
        browser: Browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            desktop = browser.new_context(viewport=DESKTOP)
            phone = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
            watchers = [_Watcher(desktop, base_url), _Watcher(phone, base_url)]
            desktop_page, phone_page = desktop.new_page(), phone.new_page()
            links: dict[str, list[str]] = {}
            ids: dict[str, set[str]] = {}
            for name in pages:
                for watcher in watchers:
                    watcher.current = name
                redirect = redirect_target(html_dir / name)
                if redirect:  # the reader lands on the target, which is a page of its own
                    links[name] = [urljoin(base_url + name, redirect)]
                    report.redirects += 1
                    continue
                facts = _check_page(desktop_page, name, base_url + name, report, links)
                ids[name] = set(facts["ids"])
                _take_screenshot(desktop_page, screenshots, name, "desktop", full_page, report)
                _check_phone(phone_page, name, base_url + name, report)
                _take_screenshot(phone_page, screenshots, name, "phone", full_page, report)
            for watcher in watchers:
                watcher.current = "search.html"
            for term in search_terms:
                _check_search(desktop, base_url, term, report)
            _check_links(links, ids, base_url, html_dir, report)
            _check_required(links, required, base_url, report)
            # A request or console error seen at both widths is one problem.
            seen = dict.fromkeys(watchers[0].problems + watchers[1].problems)
            report.problems = list(seen) + report.problems
        finally:
            browser.close()
    report.seconds = time.perf_counter() - start
    return report


def book_required_links(page: str, config: dict | None = None) -> list[tuple[str, str]]:
    """The links a page of this book must have: on a chapter, Colab, download, student version."""
    match = re.fullmatch(r"notebooks/(\d\d_\w+)\.html", page)
    if not match:
        return []
    chapter = f"{match.group(1)}.ipynb"
    download, colab = student_links(chapter, config)
    return [
        ("Colab", colab.replace("/notebooks/student/", "/notebooks/")),
        ("download", f"_sources/notebooks/{chapter}"),
        ("student-version download", download),
        ("student-version Colab", colab),
    ]


def check_book(html_dir: Path, screenshots: Path | None = None, **options: object) -> Report:
    """``check_site`` with this book's required links and the search for "depthwise"."""
    return check_site(
        html_dir,
        screenshots,
        required=book_required_links,
        search_terms=("depthwise",),
        **options,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("html_dir", nargs="?", type=Path, default=ROOT / "_build" / "html")
    parser.add_argument("--screenshots", type=Path, default=ROOT / "_build" / "screenshots")
    parser.add_argument("--full-page", action="store_true", help="screenshots of whole pages")
    parser.add_argument("--chromium", default=CHROMIUM, help=f"the browser (default {CHROMIUM})")
    args = parser.parse_args()
    report = check_book(
        args.html_dir, args.screenshots, chromium=args.chromium, full_page=args.full_page
    )
    print(report.summary())
    return 1 if report.problems else 0


if __name__ == "__main__":
    sys.exit(main())
