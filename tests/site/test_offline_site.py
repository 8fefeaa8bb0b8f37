"""Every page of the built book renders in a browser with no network.

Each HTML page of the site (``_build/html``, or ``$LANLIB_SITE_DIR``) is opened
in headless Chromium, served from 127.0.0.1. The test fails on:

- any request to another host (it is blocked, and the hosts are listed);
- any failed request (HTTP 4xx/5xx or a network error);
- errors in the browser console and uncaught JavaScript exceptions;
- images that did not load;
- mathematics that MathJax did not typeset;
- ipywidgets that were not rendered although the page carries their state, and
  chapters whose notebook saved widget state but whose page shows no widget;
- images from the book's markdown without alt text.

It also checks what readers use around the pages: the search page finds words
(offline, from the site's own index), every chapter's download button serves
its executed notebook, its launch button and Colab badge open the notebook of
the repository named in ``_config.yml``, and the parts of the table of contents
are numbered as ``_toc.yml`` says.

A full-page PNG of every page is saved in ``_build/screenshots/`` (or
``$LANLIB_SCREENSHOT_DIR``), with ``report.json`` listing what was found on
each page and how long it took.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.browser

LOCAL_HOSTS = {"127.0.0.1", "localhost", "[::1]", "::1"}
#: Folders of the site that hold assets, not pages.
NOT_PAGES = {"_static", "_sources", "_images", "_vendor"}
#: Milliseconds to wait for a page, MathJax and the widgets.
PAGE_TIMEOUT_MS = 30_000
SETTLE_TIMEOUT_MS = 20_000

# JavaScript run in the page, after it has loaded.
JS_WAIT_IMAGES = """
() => Promise.all(Array.from(document.images).map(img => img.complete ? null :
    new Promise(done => {
        img.addEventListener('load', done);
        img.addEventListener('error', done);
    })))
"""
JS_BROKEN_IMAGES = """
() => Array.from(document.images)
    .filter(img => !img.complete || img.naturalWidth === 0)
    .map(img => img.currentSrc || img.src || img.outerHTML.slice(0, 120))
"""
JS_HAS_MATH = "() => document.querySelectorAll('.math').length"
JS_MATHJAX_READY = (
    "() => !!(window.MathJax && window.MathJax.startup && window.MathJax.startup.promise)"
)
JS_MATHJAX_DONE = "() => window.MathJax.startup.promise.then(() => true)"
JS_UNTYPESET_MATH = """
() => Array.from(document.querySelectorAll('.math'))
    .filter(el => !el.querySelector('mjx-container'))
    .map(el => el.textContent.trim().slice(0, 80))
"""
JS_MJX_COUNT = "() => document.querySelectorAll('mjx-container').length"
JS_WIDGET_STATE = (
    "() => document.querySelectorAll('script[type=\"application/vnd.jupyter.widget-state+json\"]')"
    ".length"
)
# html-manager puts a div.widget-subarea before each view script and renders into it.
WIDGET_VIEW = 'script[type="application/vnd.jupyter.widget-view+json"]'
JS_WIDGET_VIEWS = """
(selector) => Array.from(document.querySelectorAll(selector))
    .map(tag => {
        const area = tag.previousElementSibling;
        const ok = !!(area && area.classList.contains('widget-subarea')
                      && area.querySelector('.jupyter-widgets, .lm-Widget, .widget-inline-hbox'));
        return {ok: ok, spec: tag.textContent.trim().slice(0, 120)};
    })
"""
JS_WIDGETS_RENDERED = f"(selector) => ({JS_WIDGET_VIEWS})(selector).every(v => v.ok)"
# Elements the widget manager drew (ipywidgets 8 classes), inside the widget areas.
JS_WIDGET_ELEMENTS = (
    "() => document.querySelectorAll('.widget-subarea .jupyter-widgets, "
    ".widget-subarea [class*=\"widget-\"]').length"
)
# Images from the book's markdown (not notebook outputs) need alt text, and a file
# name is not one.
JS_IMAGES_WITHOUT_ALT = """
() => Array.from(document.images)
    .filter(img => !img.closest('.cell_output, .output'))
    .filter(img => !(img.getAttribute('alt') || '').trim()
                   || /\\.(png|jpe?g|gif|svg|webp)$/i.test(img.getAttribute('alt').trim()))
    .map(img => img.getAttribute('src'))
"""


def screenshot_dir() -> Path:
    return Path(os.environ.get("LANLIB_SCREENSHOT_DIR") or ROOT / "_build" / "screenshots")


@dataclass
class PageVisit:
    """What one page did in the browser."""

    page: str
    seconds: float = 0.0
    external_requests: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    broken_images: list[str] = field(default_factory=list)
    math_problems: list[str] = field(default_factory=list)
    widget_problems: list[str] = field(default_factory=list)
    images_without_alt: list[str] = field(default_factory=list)
    math_elements: int = 0
    typeset_math: int = 0
    widgets: int = 0
    widget_elements: int = 0
    screenshot: str = ""


def site_pages(site: Path) -> list[str]:
    """Every HTML page of the site, as paths relative to its root."""
    pages = []
    for path in sorted(site.rglob("*.html")):
        rel = path.relative_to(site)
        if rel.parts[0] not in NOT_PAGES:
            pages.append(rel.as_posix())
    return pages


def is_local(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme in ("data", "blob", "about", "chrome-error", "javascript"):
        return True
    return parts.hostname in LOCAL_HOSTS or f"[{parts.hostname}]" in LOCAL_HOSTS


def watch(page, result: PageVisit) -> None:
    """Block requests to other hosts and record them, failed requests and console errors."""

    def on_route(route) -> None:
        url = route.request.url
        if is_local(url):
            route.continue_()
        else:
            result.external_requests.append(url)
            route.abort("blockedbyclient")

    def on_response(response) -> None:
        if response.status >= 400:
            result.failed_requests.append(f"HTTP {response.status} {response.url}")

    def on_failed(request) -> None:
        if is_local(request.url):
            result.failed_requests.append(f"{request.failure} {request.url}")

    def on_console(message) -> None:
        if message.type == "error" and "ERR_BLOCKED_BY_CLIENT" not in message.text:
            result.console_errors.append(message.text)

    page.route("**/*", on_route)
    page.on("response", on_response)
    page.on("requestfailed", on_failed)
    page.on("console", on_console)
    page.on("pageerror", lambda error: result.console_errors.append(f"uncaught: {error}"))


def visit(context, base_url: str, page_path: str, shots: Path) -> PageVisit:
    """Open one page, wait for it to settle, check it and take a screenshot."""
    result = PageVisit(page=page_path)
    started = time.perf_counter()
    page = context.new_page()
    watch(page, result)
    try:
        page.goto(base_url + page_path, wait_until="load", timeout=PAGE_TIMEOUT_MS)
        page.wait_for_load_state("networkidle", timeout=PAGE_TIMEOUT_MS)

        result.math_elements = page.evaluate(JS_HAS_MATH)
        if result.math_elements:
            try:
                page.wait_for_function(JS_MATHJAX_READY, timeout=SETTLE_TIMEOUT_MS)
                page.evaluate(JS_MATHJAX_DONE)
            except Exception:
                result.math_problems.append(
                    f"MathJax did not load ({result.math_elements} math elements)"
                )
            result.typeset_math = page.evaluate(JS_MJX_COUNT)
            for tex in page.evaluate(JS_UNTYPESET_MATH):
                result.math_problems.append(f"not typeset: {tex}")
            if not result.typeset_math:
                result.math_problems.append("no mjx-container on a page with math")

        if page.evaluate(JS_WIDGET_STATE):
            views = page.evaluate(JS_WIDGET_VIEWS, WIDGET_VIEW)
            result.widgets = len(views)
            with contextlib.suppress(Exception):  # reported below, view by view
                page.wait_for_function(
                    JS_WIDGETS_RENDERED, arg=WIDGET_VIEW, timeout=SETTLE_TIMEOUT_MS
                )
            for view in page.evaluate(JS_WIDGET_VIEWS, WIDGET_VIEW):
                if not view["ok"]:
                    result.widget_problems.append(f"not rendered: {view['spec']}")
            result.widget_elements = page.evaluate(JS_WIDGET_ELEMENTS)
        result.images_without_alt = page.evaluate(JS_IMAGES_WITHOUT_ALT)

        page.evaluate(JS_WAIT_IMAGES)
        result.broken_images = page.evaluate(JS_BROKEN_IMAGES)

        shot = shots / (page_path.removesuffix(".html").replace("/", "__") + ".png")
        page.screenshot(path=str(shot), full_page=True, animations="disabled")
        result.screenshot = str(shot)
    except Exception as error:
        result.console_errors.append(f"could not check the page: {error}")
    finally:
        page.close()
    result.seconds = round(time.perf_counter() - started, 2)
    return result


@pytest.fixture(scope="module")
def visits(browser, site_url: str, built_site: Path) -> list[PageVisit]:
    shots = screenshot_dir()
    shots.mkdir(parents=True, exist_ok=True)
    for old in shots.glob("*.png"):
        old.unlink()
    started = time.perf_counter()
    results = [visit(browser, site_url, p, shots) for p in site_pages(built_site)]
    report = {
        "site": str(built_site),
        "seconds": round(time.perf_counter() - started, 2),
        "pages": [asdict(r) for r in results],
    }
    (shots / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    return results


def problems(visits: list[PageVisit], attribute: str) -> str:
    lines = []
    for v in visits:
        for item in getattr(v, attribute):
            lines.append(f"  {v.page}: {item}")
    return "\n".join(lines)


def test_site_has_pages(built_site: Path) -> None:
    pages = site_pages(built_site)
    assert "index.html" in pages
    assert any(p.startswith("notebooks/") for p in pages), f"no chapter among {pages}"


def test_no_page_shows_the_build_machine_folders(built_site: Path) -> None:
    """Printed paths must not tell the reader where the book was built."""
    folders = {str(ROOT), str(Path.home()) + "/"}
    shown = []
    for page in sorted(built_site.rglob("*")):
        if page.suffix not in (".html", ".ipynb", ".txt", ".md") or "_static" in page.parts:
            continue
        text = page.read_text(encoding="utf-8", errors="replace")
        shown += [f"{page.relative_to(built_site)}: {folder}" for folder in folders
                  if folder in text]
    assert not shown, "pages that print the build machine's folders:\n  " + "\n  ".join(shown)


def test_no_request_leaves_the_machine(visits: list[PageVisit]) -> None:
    hosts = sorted({urlsplit(u).hostname or u for v in visits for u in v.external_requests})
    assert not hosts, f"pages asked other hosts {hosts} (the site must work offline):\n" + problems(
        visits, "external_requests"
    )


@pytest.mark.parametrize("field, what", [
    ("failed_requests", "failed requests"),
    ("console_errors", "browser console errors"),
    ("broken_images", "images that did not load"),
])
def test_no_page_problem(visits: list[PageVisit], field: str, what: str) -> None:
    assert not problems(visits, field), f"{what}:\n" + problems(visits, field)


def test_math_is_typeset(visits: list[PageVisit]) -> None:
    assert not problems(visits, "math_problems"), "math that MathJax left raw:\n" + problems(
        visits, "math_problems"
    )
    assert any(v.typeset_math for v in visits), "no page of the book has typeset math"


def test_widgets_render(visits: list[PageVisit]) -> None:
    assert not problems(visits, "widget_problems"), "widgets not rendered:\n" + problems(
        visits, "widget_problems"
    )


def test_every_page_has_a_screenshot(visits: list[PageVisit]) -> None:
    missing = [v.page for v in visits if not v.screenshot or not Path(v.screenshot).exists()]
    assert not missing, f"no screenshot of {missing}"


def test_markdown_images_have_alt_text(visits: list[PageVisit]) -> None:
    assert not problems(visits, "images_without_alt"), (
        "images without alt text (write ![what it shows](file) in the markdown):\n"
        + problems(visits, "images_without_alt")
    )


# ---------------------------------------------------------------- widgets per chapter


def chapter_notebooks(site: Path) -> dict[str, nbformat.NotebookNode]:
    """The executed notebook behind each chapter page: ``notebooks/<name>.html`` -> notebook."""
    found = {}
    for path in sorted((site / "_sources" / "notebooks").glob("*.ipynb")):
        found[f"notebooks/{path.stem}.html"] = nbformat.read(path, as_version=4)
    return found


def has_widget_views(nb: nbformat.NotebookNode) -> bool:
    state = nb.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json")
    views = [
        out for cell in nb.cells for out in cell.get("outputs", [])
        if "application/vnd.jupyter.widget-view+json" in out.get("data", {})
    ]
    return bool(state and state.get("state") and views)


def test_chapters_with_widget_state_show_widgets(
    visits: list[PageVisit], built_site: Path
) -> None:
    """A chapter whose notebook saved widget state shows those widgets, drawn, on its page."""
    by_page = {v.page: v for v in visits}
    missing = []
    for page, nb in chapter_notebooks(built_site).items():
        if not has_widget_views(nb):
            continue
        found = by_page[page]
        if not found.widgets or not found.widget_elements or found.widget_problems:
            missing.append(
                f"  {page}: {found.widgets} widget view(s), {found.widget_elements} drawn "
                f"widget element(s), problems: {found.widget_problems}"
            )
    assert not missing, "chapters whose saved widgets do not show:\n" + "\n".join(missing)


# ------------------------------------------------------------------------ search


@pytest.mark.parametrize(
    ("word", "expected"), [("mask", "notebooks/"), ("rubric", "book/course.html")]
)
def test_search_finds_pages(browser, site_url: str, word: str, expected: str) -> None:
    """The search page works offline: it loads the site's index and lists matching pages."""
    result = PageVisit(page=f"search.html?q={word}")
    page = browser.new_page()
    watch(page, result)
    try:
        page.goto(f"{site_url}search.html?q={word}", wait_until="load", timeout=PAGE_TIMEOUT_MS)
        page.wait_for_selector("#search-results ul.search li", timeout=SETTLE_TIMEOUT_MS)
        links = page.eval_on_selector_all(
            "#search-results ul.search li a", "links => links.map(a => a.href)"
        )
        status = page.inner_text("#search-results")
    finally:
        page.close()
    assert not result.external_requests and not result.failed_requests, asdict(result)
    assert not result.console_errors, result.console_errors
    pages = [urlsplit(link).path.lstrip("/") for link in links]
    assert any(p.startswith(expected) for p in pages), (
        f"searching {word!r} found {pages}, none under {expected}:\n{status[:300]}"
    )


# ------------------------------------------------------- buttons of a chapter page


def book_config() -> dict:
    return yaml.safe_load((ROOT / "_config.yml").read_text())


#: The badge image every chapter's first cell shows (the site serves a local copy).
COLAB_BADGE_URL = "https://colab.research.google.com/assets/colab-badge.svg"


def expected_colab_url(name: str) -> str:
    """Where the launch button should open ``notebooks/<name>.ipynb`` (from _config.yml)."""
    config = book_config()
    repo = config["repository"]
    owner_repo = urlsplit(repo["url"]).path.strip("/")
    folder = "/".join(p for p in ((repo.get("path_to_book") or "").strip("/"), "notebooks") if p)
    colab = config["launch_buttons"]["colab_url"].rstrip("/")
    return f"{colab}/github/{owner_repo}/blob/{repo.get('branch') or 'main'}/{folder}/{name}.ipynb"


def chapter_pages(site: Path) -> list[str]:
    pages = [p for p in site_pages(site) if p.startswith("notebooks/")]
    assert pages, "no chapter page in the site"
    return pages


def links(html: str, css_class: str) -> list[str]:
    """The href of every <a> whose class list holds ``css_class``."""
    found = []
    for tag in re.findall(r"<a\b[^>]*>", html):
        classes = re.search(r'class="([^"]*)"', tag)
        href = re.search(r'href="([^"]*)"', tag)
        if classes and href and css_class in classes.group(1).split():
            found.append(href.group(1))
    return found


def test_download_button_serves_the_executed_notebook(built_site: Path, site_url: str) -> None:
    for page in chapter_pages(built_site):
        html = (built_site / page).read_text()
        hrefs = [h for h in links(html, "btn-download-source-button") if h.endswith(".ipynb")]
        assert hrefs, f"{page}: no .ipynb download button (html_theme_options.use_download_button)"
        url = urljoin(site_url + page, hrefs[0])
        with urllib.request.urlopen(url, timeout=30) as response:
            assert response.status == 200, f"{page}: {url} answered {response.status}"
            nb = nbformat.reads(response.read().decode("utf-8"), as_version=4)
        nbformat.validate(nb)
        name = Path(page).stem
        assert urlsplit(url).path.endswith(f"/{name}.ipynb"), f"{page} downloads {url}"
        executed = [c for c in nb.cells if c.cell_type == "code" and c.get("outputs")]
        assert executed, f"{page}: the downloaded {name}.ipynb has no outputs (not executed)"
        badges = [c.source for c in nb.cells if "colab-badge.svg" in c.source]
        assert badges and all(COLAB_BADGE_URL in b for b in badges), (
            f"{page}: the downloaded {name}.ipynb must show Colab's own badge, "
            "not the site-local copy")


def test_launch_button_and_badge_open_the_repository_notebook(built_site: Path) -> None:
    for page in chapter_pages(built_site):
        html = (built_site / page).read_text()
        expected = expected_colab_url(Path(page).stem)
        launch = [h for h in links(html, "dropdown-item") if "colab" in h]
        assert launch == [expected], f"{page}: Colab launch button {launch}, expected {expected}"
        assert f'href="{expected}"' in html.split('id="main-content"')[1], (
            f"{page}: no Colab badge linking to {expected} in the page"
        )


def test_parts_are_numbered_as_the_toc_says(built_site: Path) -> None:
    """Chapters of numbered parts are numbered 1, 2, 3... across parts; other parts are not."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    numbered = {part["caption"]: bool(part.get("numbered")) for part in toc.get("parts", [])}
    html = (built_site / "book" / "intro.html").read_text()
    nav = html.split('class="bd-links bd-docs-nav"')[1].split("</nav>")[0]
    sections = re.split(r'<p aria-level="2" class="caption"[^>]*>', nav)[1:]
    assert sections, "no part captions in the sidebar"
    count = 0
    for section in sections:
        caption = re.search(r'<span class="caption-text">(.*?)</span>', section).group(1)
        assert caption in numbered, f"sidebar part {caption!r} is not in _toc.yml"
        titles = [
            re.sub(r"<[^>]+>", "", t).strip()
            for t in re.findall(r'<li class="toctree-l1[^"]*">(.*?)</li>', section, re.S)
        ]
        for title in titles:
            number = re.match(r"(\d+)\. ", title)
            if numbered[caption]:
                count += 1
                assert number and int(number.group(1)) == count, (
                    f"part {caption!r}: {title!r} should be numbered {count}"
                )
            else:
                assert not number, f"part {caption!r} is not numbered, but shows {title!r}"
    assert count, "no numbered chapter in the sidebar"
