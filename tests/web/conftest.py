"""The demo page served from 127.0.0.1 and a headless Chromium to open it."""

import functools
import shutil
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from tests.support.fake_cutout_api import FakeCutoutApi, serving

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


@pytest.fixture
def web_root(tmp_path) -> Path:
    """A copy of web/ without the config.js that `make up` writes, so each test sets its own API."""
    root = tmp_path / "web"
    shutil.copytree(REPO / "web", root, ignore=shutil.ignore_patterns("config.js"))
    return root


@pytest.fixture
def web_url(web_root):
    with serving(
        ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(web_root)))
    ) as server:
        yield f"http://127.0.0.1:{server.server_address[1]}/"


@pytest.fixture
def fake_api():
    """The API and its bucket on another port than the page, so every call is cross-origin as deployed."""
    with serving(FakeCutoutApi()) as api:
        yield api


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    yield context.new_page()
    context.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where screenshots are kept after the run, for a person to look at."""
    folder = REPO / ".local" / "artifacts"
    folder.mkdir(parents=True, exist_ok=True)
    return folder
