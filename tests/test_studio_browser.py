"""`vecgen studio` for real: the server in its own process, the page in headless Chromium, the API by gradio_client.

Needs the ``studio`` extra (Gradio, gradio_client) for every test here, and Debian's
``chromium`` + the ``playwright`` package for the page tests (``.ci/browser-deps.sh``
installs both; Playwright's own browser download is not used). Each test skips with
its reason when what it needs is missing. Draws use ``mini-vit`` at 64 px, few steps.

``VECGEN_DOCS_SCREENSHOT=1`` also writes the mid-run screenshot to ``docs/studio.png``.
"""

from __future__ import annotations

import io
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from PIL import Image, ImageChops, ImageStat

from conftest import TINY
from vecgen import gallery
from vecgen.studio.forms import studio_verbs, verb_fields

pytestmark = pytest.mark.slow  # a real browser / Gradio server per module: the slow tier

ROOT = Path(__file__).resolve().parents[1]
EVIL = "<img src=x onerror=alert(1)><script>alert(2)</script>"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]
SPEC = f'''
title = "Studio test"
[defaults]
clip = "{TINY}"
steps = 3
strokes = 8
size = 48
cutouts = 2
device = "cpu"
seeds = [0]
[[entry]]
prompts = ["a red circle", "{EVIL}"]
'''


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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``vecgen studio`` in a child process; its stdout/stderr are kept (read by threads, so pipes never fill)."""

    def __init__(self, share: Path, site: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.share = share
        self.out: list[str] = []
        self.err: list[str] = []
        env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "VECGEN_OFFLINE": "1"}
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "vecgen",
                "studio",
                "--port",
                str(self.port),
                "--share-dir",
                str(share),
                "--gallery",
                str(site),
            ],
            cwd=str(share.parent),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for stream, lines in ((self.proc.stdout, self.out), (self.proc.stderr, self.err)):
            threading.Thread(target=lambda s=stream, ls=lines: ls.extend(s), daemon=True).start()

    def wait_ready(self, timeout: float = 240) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if any(line.startswith("vecgen studio: http") for line in self.out):
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"the studio did not start: {''.join(self.err)[-2000:]}")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    pytest.importorskip("gradio", reason="the studio needs the studio extra: pip install 'vecgen[studio]'")
    return tmp_path_factory.mktemp("studio-site") / "site"


@pytest.fixture(scope="module")
def server(site, tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("studio") / "share", site)
    try:
        # the gallery site is made while the server starts (the studio reads it when asked)
        spec = site.parent / "spec.toml"
        spec.write_text(SPEC, encoding="utf-8")
        summary = gallery.run_gallery(spec, site, progress=False)
        assert summary.done == summary.total == 2
        srv.wait_ready()
        yield srv
    finally:
        srv.stop()
        (srv.share.parent / "server.log").write_text("".join(srv.err))  # kept for a failing test's reader


@pytest.fixture(scope="module")
def client(server, tmp_path_factory):
    gradio_client = pytest.importorskip("gradio_client")
    return gradio_client.Client(server.url, verbose=False, download_files=str(tmp_path_factory.mktemp("dl")))


@pytest.fixture(scope="module")
def browser(server, tmp_path_factory):
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("Playwright is not installed (bash .ci/browser-deps.sh, or pip install playwright)")
    exe = _chromium()
    if exe is None:
        pytest.skip("Chromium not found at /usr/bin/chromium or on PATH (apt-get install chromium chromium-driver)")
    with sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("profile")),
            executable_path=exe,
            headless=True,
            args=FLAGS,
            viewport={"width": 1280, "height": 1000},
        )
        try:
            yield ctx
        finally:
            ctx.close()


class Page:
    """A studio page that fails its test on any dialog, page error or request leaving this machine."""

    def __init__(self, ctx, server: Server) -> None:
        self.server = server
        self.page = ctx.new_page()
        self.problems: list[str] = []
        self.page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        self.page.on("dialog", lambda d: (self.problems.append(f"dialog: {d.message}"), d.dismiss()))
        self.page.route("**/*", self._local_only)
        self.page.goto(server.url)
        self.page.wait_for_selector("#draw-run", timeout=60_000)

    def _local_only(self, route) -> None:
        url = route.request.url
        if url.startswith(self.server.url) or url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            self.problems.append(f"external request: {url}")
            route.abort()

    def fill(self, elem: str, text: str) -> None:
        self.page.locator(f"#{elem} textarea, #{elem} input").first.fill(text)

    def draw(self, prompt: str, steps: int, size: int = 64) -> None:
        self.fill("draw-prompt", prompt)
        self.fill("draw-steps", str(steps))
        self.fill("draw-size", str(size))
        self.fill("draw-clip", "mini-vit")
        self.page.click("#draw-run")

    def status(self):
        return self.page.locator("#draw-status .vg-status")

    def wait_status(self, cls: str, timeout: float = 90) -> str:
        self.page.wait_for_selector(f"#draw-status .vg-status.{cls}", timeout=timeout * 1000)
        return self.status().inner_text()

    def fetch(self, url: str) -> bytes:
        return self.page.request.get(url).body()

    def result_links(self) -> list[str]:
        return [a.get_attribute("href") for a in self.page.locator("#draw-files a[href]").all()]

    def close(self) -> None:
        self.page.close()
        assert self.problems == []


@pytest.fixture
def page(browser, server):
    p = Page(browser, server)
    yield p
    p.close()


def _image(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data)).convert("RGB")


def _nonblank(im: Image.Image) -> bool:
    lo, hi = im.convert("L").getextrema()
    return hi - lo > 20


def _browser_render(page, svg_text: str) -> dict:
    """Chromium's own rendering of an SVG: size and the spread of its pixels."""
    return page.evaluate(
        """async (text) => {
        const url = URL.createObjectURL(new Blob([text], {type: 'image/svg+xml'}));
        const img = new Image(); img.src = url; await img.decode();
        const c = document.createElement('canvas'); c.width = img.naturalWidth; c.height = img.naturalHeight;
        const g = c.getContext('2d'); g.drawImage(img, 0, 0);
        const d = g.getImageData(0, 0, c.width, c.height).data; let lo = 255, hi = 0;
        for (let i = 0; i < d.length; i += 4) {
            const v = d[i] + d[i + 1] + d[i + 2]; lo = Math.min(lo, v); hi = Math.max(hi, v);
        }
        return {w: c.width, h: c.height, spread: (hi - lo) / 3};
    }""",
        svg_text,
    )


# ----------------------------------------------------------------------------- the page
def test_draw_shows_live_previews_and_gives_an_svg_the_cli_line_reproduces(page, tmp_path, monkeypatch):
    from vecgen.cli import main
    from vecgen.svg_read import svg_to_scene

    page.draw("a red circle", steps=16)
    frames: dict[str, int] = {}
    deadline = time.time() + 120
    while time.time() < deadline:
        img = page.page.locator("#draw-preview img")
        step = page.status().get_attribute("data-step") if page.status().count() else None
        if img.count() and step is not None:
            frames.setdefault(img.first.get_attribute("src"), int(step))
        if page.page.locator("#draw-status .vg-done").count():
            break
        time.sleep(0.05)
    text = page.wait_status("vg-done")
    assert text.startswith("draw \u201ca red circle\u201d: done, 16 steps · loss ")
    assert len(frames) >= 2, frames  # the preview changed while it ran
    first, last = min(frames, key=frames.get), page.page.locator("#draw-preview img").first.get_attribute("src")
    a, b = _image(page.fetch(first)), _image(page.fetch(last))
    assert ImageStat.Stat(ImageChops.difference(a.resize(b.size), b).convert("L")).mean[0] > 0.5
    links = page.result_links()
    assert len(links) == 1 and links[0].split("?")[0].endswith("draw.svg")
    svg = page.fetch(links[0])
    scene = svg_to_scene(svg.decode("utf-8"))
    kept = int(re.search(r'key="paths">(\d+)<', svg.decode("utf-8")).group(1))  # 32 blobs less the pruned ones
    assert (scene.width, scene.height) == (64, 64) and len(scene.paths) == 1 + kept and 24 <= kept <= 32
    shown = _browser_render(page.page, svg.decode("utf-8"))
    assert (shown["w"], shown["h"]) == (64, 64) and shown["spread"] > 20
    # "copy as CLI command" runs the same thing: same bytes
    line = page.page.locator("#draw-command textarea").input_value()
    argv = shlex.split(line)
    assert argv[:2] == ["vecgen", "draw"] and argv[-1] == "a red circle" and "-o" in argv
    import torch

    monkeypatch.chdir(tmp_path)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the server runs with OMP_NUM_THREADS=1; same threads, same bytes
    try:
        assert main(argv[1:]) == 0
    finally:
        torch.set_num_threads(threads)
    assert (tmp_path / argv[argv.index("-o") + 1]).read_bytes() == svg


def test_stop_mid_run_keeps_the_result(page):
    from vecgen.studio.jobs import file_metadata

    docs = bool(os.environ.get("VECGEN_DOCS_SCREENSHOT"))
    page.draw("a blue square", steps=100000, size=224 if docs else 64)
    page.page.wait_for_function(
        "() => { const s = document.querySelector('#draw-status .vg-status');"
        f" return s && Number(s.dataset.step) >= {60 if docs else 4}; }}",
        timeout=120_000,
    )
    page.page.wait_for_selector("#draw-preview img")
    if docs:
        (ROOT / "docs").mkdir(exist_ok=True)
        page.page.screenshot(path=str(ROOT / "docs" / "studio.png"))
    page.page.click("#draw-stop")
    text = page.wait_status("vg-done")
    assert "stopped after" in text
    done = int(page.status().get_attribute("data-step"))
    links = page.result_links()
    assert len(links) == 1
    path = page.server.share / links[0].split("file=", 1)[1].split("?")[0].split(str(page.server.share) + "/", 1)[1]
    settings = file_metadata(path)["settings"]
    assert settings["steps"] == 100000 and settings["steps_done"] == done >= 4


def test_hostile_prompt_shows_as_text(page):
    page.draw(EVIL, steps=2)
    text = page.wait_status("vg-done")
    assert EVIL in text
    assert page.page.locator("#draw-status img, #draw-status script").count() == 0
    assert page.page.locator("img[src='x']").count() == 0  # nowhere on the page
    assert EVIL in page.page.locator("#draw-command textarea").input_value()
    # the watcher fails the test on any alert() dialog


def test_non_image_upload_is_refused_with_a_message(page, tmp_path):
    fake = tmp_path / "holiday.png"
    fake.write_text("<html>definitely not a picture</html>\n")
    page.page.get_by_text("advanced", exact=True).click()
    page.page.locator("#draw-image_prompt input[type=file]").set_input_files(str(fake))
    text = page.wait_status("vg-error", timeout=30)
    assert text == "upload refused: holiday.png: not an image (PNG, JPEG, WebP, BMP, GIF or TIFF) that can be read"
    page.page.get_by_text("holiday.png: not an image", exact=False).first.wait_for(timeout=10_000)  # the toast


def test_two_tabs_run_one_after_another(browser, server):
    a, b = Page(browser, server), Page(browser, server)
    try:
        a.draw("a green triangle", steps=3)
        b.draw("a yellow star", steps=3)
        ta, tb = a.wait_status("vg-done", 120), b.wait_status("vg-done", 120)
        assert "green triangle" in ta and "yellow star" in tb
        spans = sorted(
            (float(p.status().get_attribute("data-started")), float(p.status().get_attribute("data-finished")))
            for p in (a, b)
        )
        assert spans[0][1] <= spans[1][0], spans  # never both at once
        assert a.result_links()[0] != b.result_links()[0]
    finally:
        a.close()
        b.close()


def test_gallery_tab_shows_the_site_escaped(page):
    page.page.get_by_role("tab", name="gallery").click()
    page.page.click("#gallery-show")
    page.page.wait_for_function("() => document.querySelectorAll('#gallery-pictures img').length === 2", timeout=60_000)
    table = page.page.locator("#gallery-table")
    assert "a red circle" in table.inner_text() and EVIL in table.inner_text()
    assert page.page.locator("#gallery-table img, #gallery-table script, img[src='x']").count() == 0


# ----------------------------------------------------------------------------- the API and the server
def test_every_verb_is_an_endpoint_and_draw_runs_from_gradio_client(client):
    from vecgen.studio.jobs import file_metadata

    api = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    assert {f"/{name}" for name in studio_verbs()} <= set(api)
    params = [p["parameter_name"] for p in api["/draw"]["parameters"]]
    assert params[0] == "prompt" and all(p["parameter_has_default"] for p in api["/draw"]["parameters"])
    preview, status, files, command, metadata, log = client.predict(
        prompt="a green tree", steps="3", size="48", clip="mini-vit", seed=5, api_name="/draw"
    )
    assert "done, 3 steps" in status
    svg = Path(files[0]["path"] if isinstance(files[0], dict) else files[0])
    assert svg.name == "draw.svg"
    meta = file_metadata(svg)
    assert meta["prompt"] == "a green tree" and meta["settings"]["seed"] == 5 and meta["settings"]["size"] == [48, 48]
    assert command == "vecgen draw --steps 3 --size 48 --clip mini-vit --seed 5 -o draw.svg 'a green tree'"
    assert metadata["draw.svg"]["settings"]["steps"] == 3
    # a bad value is one line, not a traceback
    _, status, files, *_ = client.predict(prompt="a tree", steps="0", clip="mini-vit", api_name="/draw")
    assert "vg-error" in status and "--steps must be &gt;= 1, got 0" in status and not files


def test_api_uploads_are_checked_too(client, tmp_path):
    """An API caller skips the page's upload check; the run checks again and refuses in one line."""
    from gradio_client import handle_file

    fake = tmp_path / "cat.jpg"
    fake.write_bytes(b"GIF89a but not really")
    _, status, files, command, *_ = client.predict(
        prompt="a cat", steps="2", clip="mini-vit", image_prompt=[handle_file(str(fake))], api_name="/draw"
    )
    assert "vg-error" in status and "cat.jpg: not an image" in status and not files and command == ""


def _raw_call(server, client, api_name: str, given: dict) -> tuple[str, str]:
    """Call an endpoint over plain HTTP, as any local process could (no client-side uploads):
    ``(event, data)`` of its last message (``complete`` or ``error``)."""
    import json

    params = client.view_api(return_format="dict", print_info=False)["named_endpoints"][api_name]["parameters"]
    data = [given.get(p["parameter_name"]) for p in params]
    req = urllib.request.Request(
        f"{server.url}gradio_api/call{api_name}",
        data=json.dumps({"data": data}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        event_id = json.load(r)["event_id"]
    with urllib.request.urlopen(f"{server.url}gradio_api/call{api_name}/{event_id}", timeout=300) as r:
        text = r.read().decode("utf-8")
    events = re.findall(r"^event: (\w+)\ndata: (.*)$", text, re.M)
    assert events, text
    return events[-1]


def test_server_paths_are_refused_on_every_endpoint(server, client, tmp_path):
    """Issue 29 item 5: inputs are uploads or names the studio resolves; files the run writes are its own.

    For every verb: no endpoint parameter is an output (``/edit``'s ``global_cache``, snapshots, checkpoints);
    a file parameter naming a server path is refused; a spec (``--clip``, ``--generator``, ``--content-model``...)
    naming a path is refused in one line; nothing is read or created outside the studio's folder."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "x.png").write_bytes(b"not a picture")
    api = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    before = set(server.share.rglob("*"))
    for name, verb in studio_verbs().items():
        params = {p["parameter_name"] for p in api[f"/{name}"]["parameters"]}
        outputs = {n for n, meta, _ in verb.config.options() if meta.kind == "output" or not meta.cli}
        assert not params & outputs, (name, params & outputs)
        for f in verb_fields(verb):
            if f.kind in ("upload", "uploads", "folder"):
                for target in (outside / "x.png", outside / "new" / "x.pt", outside):
                    value = {"path": str(target), "meta": {"_type": "gradio.FileData"}}
                    event, data = _raw_call(
                        server, client, f"/{name}", {f.name: [value] if f.kind != "upload" else value}
                    )
                    assert event == "error" or ("vg-error" in data and "not an uploaded file" in data), (
                        name,
                        f.name,
                        event,
                        data[:300],
                    )
            elif f.spec:
                for bad in ("stylegan2:/srv/ffhq.pkl", f"ViT-B-32@{outside}/w.pt", "script:model", "../x"):
                    event, data = _raw_call(server, client, f"/{name}", {f.name: bad})
                    assert event == "complete" and "not paths on the server" in data, (name, f.name, data[:300])
    assert [p.name for p in outside.iterdir()] == ["x.png"]  # nothing made out there
    made = {p for p in set(server.share.rglob("*")) - before if "runs" in p.relative_to(server.share).parts}
    assert not {p for p in made if p.is_file()}, made  # and no run wrote anything


def test_search_endpoint_over_the_gallery_site(client, site):
    pictures, hits = client.predict(str(site), "a red circle", 2, TINY, api_name="/search")
    assert len(pictures) == 2 and "2 results for" in hits
    pictures, hits = client.predict(str(site), "a red circle", 2, f"{TINY}@/etc/x.pt", api_name="/search")
    assert not pictures and "not paths on the server" in hits  # the search tab's model spec: names only
    with pytest.raises(Exception, match="not in the list of choices"):  # only the folders on offer
        client.predict("/etc", "a red circle", 2, TINY, api_name="/search")


def test_files_are_served_only_from_the_studio_folder(server, client):
    made = sorted(server.share.glob("runs/*/*.svg"))
    assert made, "an earlier test drew something"

    def get(path: str) -> int:
        try:
            with urllib.request.urlopen(f"{server.url}gradio_api/file={path}", timeout=10) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code

    assert get(str(made[0])) == 200
    secret = server.share.parent / "secret.txt"
    secret.write_text("private")
    for bad in (str(secret), f"{server.share}/../secret.txt", "/etc/passwd", "https://example.com/a.png"):
        assert get(bad) == 403, bad


def test_server_exits_cleanly_on_sigint_stopping_a_run(server, client):
    """Last: Ctrl-C ends the server (exit 0, no traceback) and a run in progress keeps its result."""
    from vecgen.studio.jobs import file_metadata

    before = set(server.share.glob("runs/*-draw"))
    job = client.submit(prompt="a purple circle", steps="100000", size="48", clip="mini-vit", api_name="/draw")
    deadline = time.time() + 120
    while time.time() < deadline and not any("data-step" in str(out[1]) for out in job.outputs()):
        time.sleep(0.1)  # until it takes steps (a run still loading its model is left, as in the CLI)
    (folder,) = set(server.share.glob("runs/*-draw")) - before
    seen = len(server.err)
    assert server.stop() == 0, "".join(server.err)[-2000:]
    after = "".join(server.err[seen:])
    assert "Traceback" not in after and "stopping" in after, after
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.port), timeout=2).close()
    settings = file_metadata(folder / "draw.svg")["settings"]
    assert settings["prompt"] == "a purple circle" and 1 <= settings["steps_done"] < 100000
