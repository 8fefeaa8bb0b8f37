"""Fixtures for the browser test of the built site (tests/site/test_offline_site.py).

The pages are opened in Debian's Chromium (``/usr/bin/chromium``, or
``$LANLIB_CHROMIUM``), driven by Playwright for Python against that system
browser: Playwright never downloads a browser of its own here. The site is
served from a local HTTP server on 127.0.0.1 with a random port.

Where the browser or Playwright is missing the tests are skipped with the
command that installs them, except under CI (``CI`` set), where that is a
failure: a green CI must mean the pages were really opened.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests._requirements import unavailable

ROOT = Path(__file__).resolve().parents[2]

#: Flags for a headless Chromium on a machine without network: no background
#: requests of the browser's own (updates, sync, field trials), no QUIC.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]




def site_dir() -> Path:
    """Folder of the built site: ``$LANLIB_SITE_DIR`` or ``_build/html``."""
    return Path(os.environ.get("LANLIB_SITE_DIR") or ROOT / "_build" / "html").resolve()


# --------------------------------------------------------------------- the site


def build_site(site: Path, executed: set[str]) -> None:
    """Build the book into ``site``.

    When nbval executed chapters in this test session (the repository's
    ``conftest.py`` records them in ``_build/executed/``), the book is rendered
    from those notebooks, so the test command runs each chapter once.
    Otherwise ``tools/build_book.py`` executes the chapters with papermill.
    """
    if site != (ROOT / "_build" / "html").resolve():
        pytest.fail(f"LANLIB_SITE_DIR={site} has no index.html", pytrace=False)
    cmd = [sys.executable, str(ROOT / "tools" / "build_book.py")]
    if executed:
        cmd += ["--executed", str(ROOT / "_build" / "executed")]
    result = subprocess.run(cmd, cwd=ROOT)
    if result.returncode != 0:
        pytest.fail(f"building the book failed: {' '.join(cmd)}", pytrace=False)


@pytest.fixture(scope="session")
def built_site(request: pytest.FixtureRequest) -> Path:
    """The folder of the built site.

    Rebuilt from the chapters nbval executed in this session, if any; else the
    existing site, or a fresh build (executing the chapters) when there is none.
    """
    site = site_dir()
    recorder = request.config.pluginmanager.get_plugin("lanlib-executed-notebooks")
    executed = set(recorder.written) if recorder is not None else set()
    if executed or not (site / "index.html").exists():
        build_site(site, executed)
    assert (site / "index.html").exists(), f"no {site / 'index.html'}"
    return site


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="session")
def site_url(built_site: Path) -> Iterator[str]:
    """Base URL (ending in /) of the site served on 127.0.0.1, random port."""
    handler = functools.partial(_QuietHandler, directory=str(built_site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


# ------------------------------------------------------------------ the browser


@pytest.fixture(scope="session")
def chromium_executable() -> str:
    path = os.environ.get("LANLIB_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        unavailable(
            "Chromium is not installed: `apt-get install -y chromium` as root "
            "(`make test` does it when run as root); or set LANLIB_CHROMIUM",
            what="chromium",
        )
    return path


@pytest.fixture(scope="session")
def browser(chromium_executable: str, tmp_path_factory: pytest.TempPathFactory):
    """A headless Chromium with a fresh profile, driven by Playwright."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("Playwright is not installed: pip install -e '.[test]'", what="playwright")
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=chromium_executable,
            headless=True,
            args=[f for f in CHROMIUM_FLAGS if f != "--headless"],
            viewport={"width": 1280, "height": 900},
            service_workers="block",
        )
        try:
            yield context
        finally:
            context.close()
