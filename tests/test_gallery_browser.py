"""The built gallery page in a real headless Chromium (Debian's), driven by Playwright.

Needs ``chromium`` (apt-get install chromium chromium-driver) and the ``playwright`` Python
package (pip install playwright; its own browser download is not used): ``.ci/browser-deps.sh``
installs both. Skips, saying why, only when one of them is missing.

``VECGEN_DOCS_SCREENSHOT=1`` also writes the screenshot to ``docs/gallery.png`` (for the README).
"""

from __future__ import annotations

import functools
import http.server
import io
import os
import shutil
import threading
from pathlib import Path

import pytest
from PIL import Image, ImageStat

from vecgen import gallery

pytestmark = pytest.mark.slow  # a real browser / Gradio server per module: the slow tier

ROOT = Path(__file__).resolve().parents[1]
EVIL = "<script>alert(1)</script>"
SPEC = f'''
title = "Gallery browser test"

[defaults]
clip = "vecgen-tiny-vit@random"
steps = 4
strokes = 12
size = 48
cutouts = 2
device = "cpu"
seeds = [0, 1]

[[entry]]
prompts = ["a red circle", "a blue square"]
width = [2.0, 6.0]

[[entry]]
prompt = "a green tree"
shapes = "blobs"

[[entry]]
prompt = "{EVIL}"
seeds = [3]
'''
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]


def _chromium() -> str | None:
    for cand in (
        "/usr/bin/chromium",
        shutil.which("chromium"),
        shutil.which("chromium-browser"),
        "/usr/lib/chromium/chromium",
    ):
        if cand and os.path.isfile(cand) and os.access(cand, os.X_OK):
            return cand
    return None


@pytest.fixture(scope="module")
def browser_context(tmp_path_factory):
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("Playwright is not installed (bash .ci/browser-deps.sh, or pip install playwright)")
    exe = _chromium()
    if exe is None:
        pytest.skip("Chromium not found at /usr/bin/chromium or on PATH (apt-get install chromium chromium-driver)")
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(
            str(profile), executable_path=exe, headless=True, args=FLAGS, viewport={"width": 1200, "height": 900}
        )
        try:
            yield ctx
        finally:
            ctx.close()


@pytest.fixture(scope="module")
def site(browser_context, tmp_path_factory):
    # Asks for the browser first, so a missing one skips before any picture is made.
    tmp = tmp_path_factory.mktemp("browser")
    spec = tmp / "spec.toml"
    spec.write_text(SPEC, encoding="utf-8")
    summary = gallery.run_gallery(spec, tmp / "site", progress=False)
    assert summary.done == summary.total == 7
    return summary


@pytest.fixture(scope="module")
def server(site):
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(site.out)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()


class Watched:
    """A page that records console errors, uncaught exceptions, dialogs and failed requests."""

    def __init__(self, ctx) -> None:
        self.page = ctx.new_page()
        self.problems: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.problems.append(f"console: {m.text}"))
        self.page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        self.page.on("dialog", lambda d: (self.problems.append(f"dialog: {d.message}"), d.dismiss()))
        self.page.on("requestfailed", lambda r: self.problems.append(f"request failed: {r.url}"))

    def open(self, url: str):
        self.page.goto(url)
        self.page.wait_for_load_state("load")
        self.page.wait_for_function("Array.from(document.images).every(i => i.complete)")
        return self.page

    def close(self) -> None:
        self.page.close()
        assert self.problems == []


@pytest.fixture
def watched(browser_context):
    w = Watched(browser_context)
    yield w
    w.close()


def visible_cards(page) -> list[str]:
    return page.eval_on_selector_all(
        "#grid .card", "cs => cs.filter(c => !c.hidden && c.offsetParent !== null).map(c => c.getAttribute('data-id'))"
    )


def nonblank(png: bytes) -> bool:
    with Image.open(io.BytesIO(png)) as im:
        grey = im.convert("L")
        lo, hi = grey.getextrema()
        return hi - lo > 20 and ImageStat.Stat(grey).stddev[0] > 1.0


def test_every_card_visible_and_svg_thumbnails_render(site, server, watched, tmp_path):
    page = watched.open(server + "index.html")
    ids = [r["id"] for r in site.jobs]
    assert visible_cards(page) == ids
    thumbs = page.locator("#grid .card .thumb img")
    assert thumbs.count() == len(ids)
    for i in range(thumbs.count()):
        img = thumbs.nth(i)
        assert img.get_attribute("src").endswith(".svg")
        assert img.evaluate("i => i.complete && i.naturalWidth > 0")
        img.scroll_into_view_if_needed()
        assert nonblank(img.screenshot()), f"blank thumbnail {img.get_attribute('src')}"
    # A hostile prompt shows as text and runs nothing (the watcher fails the test on any dialog).
    prompts = page.locator("#grid .prompt").all_inner_texts()
    assert EVIL in prompts
    assert page.locator("#count").inner_text() == f"{len(ids)} of {len(ids)} shown"
    assert page.locator(".rank").count() == len(ids)
    page.evaluate("window.scrollTo(0, 0)")
    shot = page.screenshot()
    (tmp_path / "gallery.png").write_bytes(shot)
    if os.environ.get("VECGEN_DOCS_SCREENSHOT"):
        (ROOT / "docs").mkdir(exist_ok=True)
        (ROOT / "docs" / "gallery.png").write_bytes(shot)
    assert nonblank(shot)


def test_filter_narrows_the_cards(site, server, watched):
    page = watched.open(server + "index.html")
    box = page.locator("#filter")
    circles = [r["id"] for r in site.jobs if "circle" in r["prompt"]]
    box.fill("circle")
    assert visible_cards(page) == circles and len(circles) == 2
    assert page.locator("#count").inner_text() == f"2 of {len(site.jobs)} shown"
    box.fill("blobs")  # settings are searchable too
    assert visible_cards(page) == [r["id"] for r in site.jobs if r["options"].get("shapes") == "blobs"]
    box.fill("red circle")  # every word must match
    assert visible_cards(page) == [r["id"] for r in site.jobs if r["prompt"] == "a red circle"]
    box.fill("no-such-picture")
    assert visible_cards(page) == []
    assert page.locator("#empty").is_visible()
    box.fill("")
    assert len(visible_cards(page)) == len(site.jobs)
    assert not page.locator("#empty").is_visible()
    # ?q= pre-fills the filter.
    page = watched.open(server + "index.html?q=square")
    assert visible_cards(page) == [r["id"] for r in site.jobs if "square" in r["prompt"]]


def test_page_works_from_a_file_url(site, watched):
    page = watched.open((site.out / "index.html").resolve().as_uri())
    assert len(visible_cards(page)) == len(site.jobs)
    assert page.eval_on_selector_all("#grid img", "is => is.every(i => i.naturalWidth > 0)")
