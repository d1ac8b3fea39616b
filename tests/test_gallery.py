"""Tests for vecgen.gallery (spec, executors, manifest, page), vecgen.search and their CLI."""

from __future__ import annotations

import json
import os
import re
import socket
from pathlib import Path

import pytest
from PIL import Image

from vecgen import gallery
from vecgen.cli import main
from vecgen.errors import VecgenError

ROOT = Path(__file__).resolve().parents[1]
TINY = """
[defaults]
clip = "vecgen-tiny-vit@random"
steps = 2
strokes = 4
size = 32
cutouts = 2
device = "cpu"

[[entry]]
prompt = "a red circle"
seeds = [0, 1]

[[entry]]
prompt = "a blue square"

[[entry]]
prompt = "a green tree"
shapes = "blobs"
"""


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def mtimes(site: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in (site / "files").iterdir() if not p.name.startswith(".")}


def manifest(site: Path) -> dict:
    return json.loads((site / "manifest.json").read_text(encoding="utf-8"))


def no_temp_files(site: Path) -> bool:
    return not [p for p in site.rglob("*") if p.name.endswith(".tmp")]


# ----------------------------------------------------------------------------- spec
def test_spec_expands_prompts_times_seeds():
    spec = gallery.parse_spec(TINY + '\n[[entry]]\nprompts = ["a", "b"]\nseeds = [5, 6, 5]\n', "t.toml")
    assert len(spec.jobs) == 4 + 4
    first = spec.jobs[0]
    assert (first.function, first.prompt, first.seed) == ("draw", "a red circle", 0)
    assert first.options == {
        "clip": "vecgen-tiny-vit@random",
        "cutouts": 2,
        "device": "cpu",
        "size": 32,
        "steps": 2,
        "strokes": 4,
    }
    assert spec.jobs[3].options["shapes"] == "blobs"
    assert [(j.prompt, j.seed) for j in spec.jobs[4:]] == [("a", 5), ("a", 6), ("b", 5), ("b", 6)]
    assert len({j.id for j in spec.jobs}) == len(spec.jobs)
    # The id is a hash of the resolved settings: stable, and sensitive to every part of them.
    again = gallery.parse_spec(TINY, "t.toml")
    assert [j.id for j in again.jobs] == [j.id for j in spec.jobs[:4]]
    base = spec.jobs[0]
    assert gallery.job_hash("draw", base.prompt, base.seed, base.options) == base.id
    assert gallery.job_hash("draw", base.prompt, 1, base.options) != base.id
    assert gallery.job_hash("draw", base.prompt + "!", 0, base.options) != base.id
    assert gallery.job_hash("draw", base.prompt, 0, {**base.options, "steps": 3}) != base.id
    assert gallery.job_hash("paint", base.prompt, 0, base.options) != base.id


def test_spec_duplicates_run_once():
    spec = gallery.parse_spec('[[entry]]\nprompt = "x"\n[[entry]]\nprompt = "x"\nseeds = [0, 1]\n')
    assert [(j.prompt, j.seed) for j in spec.jobs] == [("x", 0), ("x", 1)]
    assert spec.duplicates == 1


@pytest.mark.parametrize(
    "text,line,words",
    [
        ('[defaults]\nsteps = 2\n\n[[entry]]\nprompt = "a"\nstrokes = \n', 6, "invalid TOML"),
        ('[[entry]]\nprompt = "a\n', 2, "invalid TOML"),
        (
            '[defaults]\nsteps = 2\n[[entry]]\nprompt = "a"\n[[entry]]\nfunction = "sketch"\nprompt = "b"\n',
            6,
            "unknown function 'sketch'",
        ),
        ('[[entry]]\nprompt = "a"\n\n[[entry]]\nprompt = "b"\nstrokez = 3\n', 6, "unknown option 'strokez' for draw"),
        ('[defaults]\nsteps = 2\nfoo = 1\n[[entry]]\nprompt = "a"\n', 3, "unknown option 'foo'"),
        ('[[entry]]\nprompt = "a"\nseed = 3\n', 3, "seeds = [...]"),
        ('[[entry]]\nprompt = "a"\nperceptors = 3\n', 3, "not allowed"),
        ('[[entry]]\nprompt = "a"\ncheckpoint = "x.pt"\n', 3, "not supported"),
        ('[[entry]]\nprompt = "a"\nseeds = ["one"]\n', 3, "seeds must be"),
        ('[[entry]]\nprompt = "a"\nprompts = ["b"]\n', 3, "not both"),
        ('[[entry]]\nprompt = ""\n', 2, "empty prompt"),
        ("[[entry]]\nseeds = [1]\n", 1, "no prompt"),
        ("[defaults]\nsteps = 2\n", None, "no [[entry]]"),
        ('colour = "red"\n[[entry]]\nprompt = "a"\n', 1, "unknown top-level key"),
    ],
)
def test_spec_errors_name_the_line(text, line, words):
    with pytest.raises(VecgenError) as info:
        gallery.parse_spec(text, "bad.toml")
    msg = str(info.value)
    assert words in msg
    assert "\n" not in msg
    if line is not None:
        assert msg.startswith(f"spec bad.toml, line {line}:"), msg


def test_example_specs_parse():
    specs = sorted((ROOT / "gallery").glob("*.toml"))
    assert specs, "gallery/*.toml examples are missing"
    available = set(gallery.available_functions())
    for path in specs:
        text = path.read_text(encoding="utf-8")
        if set(re.findall(r'function\s*=\s*"(\w+)"', text)) - available:
            continue  # an example for a function this checkout does not have yet
        assert gallery.load_spec(path).jobs, path


# ----------------------------------------------------------------------------- running
def test_run_resume_and_rerun_changed_entry(tmp_path):
    spec = write(tmp_path / "tiny.toml", TINY)
    site = tmp_path / "site"
    s1 = gallery.run_gallery(spec, site, progress=False)
    assert (s1.ran, s1.skipped, s1.done, s1.failed) == (4, 0, 4, 0)
    m = manifest(site)
    assert m["last_run"]["ran"] == 4 and m["last_run"]["executor"] == "local"
    assert len(m["order"]) == 4
    for jid in m["order"]:
        rec = m["jobs"][jid]
        assert rec["status"] == "done" and rec["runs"] == 1 and rec["error"] is None
        assert rec["time_s"] > 0 and isinstance(rec["loss"], float) and "total" in rec["losses"]
        assert set(rec["files"]) == {"svg", "png"}
        svg = (site / rec["files"]["svg"]).read_text(encoding="utf-8")
        assert "<svg" in svg and rec["prompt"] in svg
        with Image.open(site / rec["files"]["png"]) as im:
            assert im.size == (32, 32)
    assert rec["perceptor_loads"] == 1  # one load for the whole local batch
    page = (site / "index.html").read_text(encoding="utf-8")
    assert page.count('<article class="card') == 4 and "rank " in page and "Best matches" in page
    assert no_temp_files(site)
    before = mtimes(site)

    # Same spec again: nothing runs, nothing is rewritten.
    s2 = gallery.run_gallery(spec, site, progress=False, build=False)
    assert (s2.ran, s2.skipped, s2.done) == (0, 4, 4)
    assert mtimes(site) == before
    m2 = manifest(site)
    assert m2["last_run"]["ran"] == 0 and m2["last_run"]["skipped"] == 4
    assert all(m2["jobs"][j]["runs"] == 1 for j in m2["order"])

    # One entry changed: only its job runs again.
    write(spec, TINY.replace('shapes = "blobs"', 'shapes = "blobs"\nsteps = 3'))
    s3 = gallery.run_gallery(spec, site, progress=False, build=False)
    assert (s3.ran, s3.skipped, s3.done) == (1, 3, 4)
    after = mtimes(site)
    assert {k: v for k, v in after.items() if k in before} == before  # old files untouched
    new = set(after) - set(before)
    assert len(new) == 2 and all(n.startswith("a-green-tree-s0-") for n in new)
    m3 = manifest(site)
    changed = m3["jobs"][m3["order"][3]]
    assert changed["options"]["steps"] == 3 and changed["steps"] == 3 and changed["runs"] == 1
    assert len(m3["jobs"]) == 5  # the old version's record is kept: changing the spec back reuses it
    write(spec, TINY)
    assert gallery.run_gallery(spec, site, progress=False, build=False).ran == 0


def test_failing_job_is_recorded_and_batch_goes_on(tmp_path, capsys):
    # A value no check can refuse up front (the file may appear before the job runs): the job fails.
    bad = TINY.replace('prompt = "a blue square"', 'prompt = "a blue square"\nimage_prompt = ["no-such-picture.png"]')
    spec = write(tmp_path / "f.toml", bad)
    site = tmp_path / "site"
    rc = main(["gallery", "run", str(spec), "--out", str(site), "-q", "--no-build"])
    captured = capsys.readouterr()
    out = captured.out
    assert rc == 1
    assert "3/4 done" in out and "1 failed" in out
    m = manifest(site)
    recs = [m["jobs"][j] for j in m["order"]]
    assert [r["status"] for r in recs] == ["done", "done", "failed", "done"]
    bad = recs[2]
    assert "no-such-picture.png" in bad["error"] and bad["files"] == {} and bad["loss"] is None
    # Why it failed, and where the whole error is, on stderr: one line for the job, one for the manifest.
    err = captured.err.strip().splitlines()
    assert len(err) == 2 and "internal error" not in captured.err, captured.err
    assert bad["id"] in err[0] and '"a blue square"' in err[0] and "seed 0" in err[0]
    assert "no-such-picture.png" in err[0]
    assert str(site / "manifest.json") in err[1] and "1 of 4" in err[1]
    assert m["last_run"]["failed"] == 1
    before = mtimes(site)
    # A re-run retries the failed job only.
    s = gallery.run_gallery(spec, site, progress=False, build=False)
    assert (s.ran, s.skipped, s.failed) == (1, 3, 1)
    assert manifest(site)["jobs"][bad["id"]]["runs"] == 2
    assert mtimes(site) == before


def test_interrupted_run_keeps_finished_jobs(tmp_path):
    spec = write(tmp_path / "tiny.toml", TINY)
    site = tmp_path / "site"
    calls = []

    def flaky(payload, cache):
        calls.append(payload["id"])
        if len(calls) == 3:
            raise KeyboardInterrupt
        return gallery.execute_job(payload, cache)

    with pytest.raises(KeyboardInterrupt):
        gallery.run_gallery(spec, site, executor=gallery.LocalExecutor(job_runner=flaky), progress=False)
    assert len(calls) == 3  # the runner given was the one used
    m = manifest(site)
    statuses = [m["jobs"][j]["status"] for j in m["order"]]
    assert statuses == ["done", "done", "pending", "pending"]
    assert m["last_run"]["interrupted"] is True and m["last_run"]["finished"]
    assert len(mtimes(site)) == 4 and no_temp_files(site)
    s = gallery.run_gallery(spec, site, progress=False, build=False)
    assert (s.ran, s.skipped, s.done) == (2, 2, 4)


def test_interrupted_draw_is_not_recorded_as_done(monkeypatch):
    from vecgen import api

    class Interrupted:
        interrupted = True

    import dataclasses

    monkeypatch.setitem(
        api.VERBS, "draw", dataclasses.replace(api.VERBS["draw"], function=lambda *a, **k: Interrupted())
    )
    job = gallery.parse_spec(TINY).jobs[0]
    with pytest.raises(KeyboardInterrupt):
        gallery.execute_job(job.payload())


@pytest.fixture(scope="module")
def local_site(tmp_path_factory):
    """The tiny spec run once in-process: the reference bytes for the other executors."""
    tmp = tmp_path_factory.mktemp("reference")
    spec = write(tmp / "tiny.toml", TINY)
    return spec, gallery.run_gallery(spec, tmp / "site", progress=False, build=False)


def assert_same_outputs(a, b) -> None:
    assert a.done == b.done == 4
    for x, y in zip(a.jobs, b.jobs):
        assert x["id"] == y["id"]
        for kind in ("svg", "png"):
            assert (a.out / x["files"][kind]).read_bytes() == (b.out / y["files"][kind]).read_bytes()


def test_other_functions_run_and_raster_results_get_png_only(tmp_path):
    if "paint" not in gallery.available_functions():
        pytest.skip("vecgen.api.paint is not in this checkout")
    text = TINY.split("[[entry]]")[0] + (
        '[[entry]]\nprompt = "a red circle"\nstrokes = 4\n\n'
        '[[entry]]\nfunction = "paint"\nprompt = "a red circle"\nparam = "fft"\n'
    )
    s = gallery.run_gallery(write(tmp_path / "mixed.toml", text), tmp_path / "site", progress=False, build=False)
    assert [r["function"] for r in s.jobs] == ["draw", "paint"] and s.done == 2
    assert set(s.jobs[0]["files"]) == {"svg", "png"} and set(s.jobs[1]["files"]) == {"png"}
    page = gallery.build_site(tmp_path / "site", search=False).read_text()
    assert f'src="{s.jobs[1]["files"]["png"]}"' in page and f'src="{s.jobs[0]["files"]["svg"]}"' in page


def test_required_options_are_checked_up_front():
    if "generate" not in gallery.available_functions():
        pytest.skip("vecgen.api.generate is not in this checkout")
    with pytest.raises(VecgenError, match=r"line 1: \[\[entry\]\] #1: generate needs option 'generator'"):
        gallery.parse_spec('[[entry]]\nfunction = "generate"\nprompt = "x"\n', "g.toml")


@pytest.mark.slow  # spawns worker processes that each import torch
def test_local_process_pool_matches_in_process(tmp_path, local_site):
    spec, one = local_site
    two = gallery.run_gallery(spec, tmp_path / "two", workers=2, progress=False, build=False)
    assert_same_outputs(one, two)
    assert len({r["worker"] for r in two.jobs}) <= 2
    assert manifest(tmp_path / "two")["last_run"]["workers"] == 2


@pytest.mark.slow  # Ray: starts a local cluster
def test_ray_executor_gives_the_local_bytes(tmp_path, request):
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'vecgen[ray]')")
    spec, local = request.getfixturevalue("local_site")
    remote = gallery.run_gallery(spec, tmp_path / "ray", executor="ray", workers=2, progress=False, build=False)
    assert not ray.is_initialized()  # the Ray it started on demand is shut down again
    assert_same_outputs(local, remote)
    assert all(r["executor"] == "ray" for r in remote.jobs)
    workers = {r["worker"] for r in remote.jobs}
    assert 1 <= len(workers) <= 2
    assert all(r["perceptor_loads"] == 1 for r in remote.jobs)  # one perceptor load per worker
    assert manifest(tmp_path / "ray")["last_run"]["workers"] == 2


# ----------------------------------------------------------------------------- CLI errors
def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize(
    "case", ["missing", "toml", "function", "option", "workers", "address-local", "ray-unreachable", "out-is-file"]
)
def test_gallery_run_bad_input(tmp_path, capsys, case):
    spec = write(tmp_path / "s.toml", TINY)
    site = tmp_path / "site"
    extra: list[str] = []
    if case == "missing":
        spec = tmp_path / "nope.toml"
    elif case == "toml":
        write(spec, TINY + "\n[[entry]\n")
    elif case == "function":
        write(spec, TINY.replace('prompt = "a blue square"', 'prompt = "a blue square"\nfunction = "sketch"'))
    elif case == "option":
        write(spec, TINY.replace('shapes = "blobs"', 'shape = "blobs"'))
    elif case == "workers":
        extra = ["--workers", "0"]
    elif case == "address-local":
        extra = ["--address", "127.0.0.1:6379"]
    elif case == "ray-unreachable":
        extra = ["--executor", "ray", "--address", f"127.0.0.1:{_closed_port()}", "--connect-timeout", "2"]
    elif case == "out-is-file":
        site = write(tmp_path / "site", "not a folder")
    rc = main(["gallery", "run", str(spec), "--out", str(site), "-q", *extra])
    err = capsys.readouterr().err
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vecgen: error: "), err
    if case == "out-is-file":
        assert site.read_text() == "not a folder"
    else:
        assert not site.exists()
    if case == "ray-unreachable":
        assert "cannot reach the Ray cluster" in err or "needs Ray" in err


@pytest.mark.parametrize(
    "argv",
    [
        ["gallery", "build", "{tmp}"],
        ["gallery", "build", "{tmp}/missing"],
        ["search", "{tmp}/missing", "a cat"],
        ["search", "{tmp}", "a cat", "--clip", "vecgen-tiny-vit@random"],
        ["search", "{tmp}", "a cat", "-k", "0"],
        ["search", "{tmp}", "", "--clip", "vecgen-tiny-vit@random"],
    ],
)
def test_build_and_search_bad_input(tmp_path, capsys, argv):
    rc = main([a.replace("{tmp}", str(tmp_path)) for a in argv])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1, err
    assert list(tmp_path.iterdir()) == []


def test_dry_run_lists_jobs_and_writes_nothing(tmp_path, capsys):
    spec = write(tmp_path / "s.toml", TINY)
    assert main(["gallery", "run", str(spec), "--out", str(tmp_path / "site"), "--dry-run"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 4 and all(" todo " in line for line in lines)
    assert not (tmp_path / "site").exists()


# ----------------------------------------------------------------------------- the page
EVIL = "<script>alert(1)</script>"


def _fake_site(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    (site / "files").mkdir(parents=True)
    svg = '<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"><rect width="8" height="8" fill="#f00"/></svg>'
    (site / "files" / "a.svg").write_text(svg)
    Image.new("RGB", (8, 8), (255, 0, 0)).save(site / "files" / "a.png")
    jobs = {
        "j1": {
            "id": "j1",
            "status": "done",
            "function": "draw",
            "prompt": EVIL,
            "seed": 0,
            "name": "<b>n</b>",
            "options": {"background": "</script><script>alert(2)</script>", "steps": 2},
            "loss": 0.5,
            "time_s": 1.0,
            "files": {"svg": "files/a.svg", "png": "files/a.png"},
        },
        "j2": {
            "id": "j2",
            "status": "failed",
            "function": "draw",
            "prompt": "a \"quoted\" & 'odd' <prompt>",
            "seed": 1,
            "options": {},
            "error": "<img src=x onerror=alert(3)>",
            "files": {},
        },
        "j3": {
            "id": 'j3"><script>alert(4)</script>',
            "status": "done",
            "function": "draw",
            "prompt": "p",
            "seed": 2,
            "options": {},
            "files": {"svg": "javascript:alert(5)", "png": "../../etc/passwd"},
        },
    }
    (site / "manifest.json").write_text(
        json.dumps({"format": "vecgen-gallery", "version": 1, "title": EVIL, "order": list(jobs), "jobs": jobs})
    )
    return site


def test_page_escapes_user_text(tmp_path):
    site = _fake_site(tmp_path)
    page = gallery.build_site(site, search=False).read_text(encoding="utf-8")
    assert EVIL not in page and "alert(2)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(3)&gt;" in page
    assert "<b>n</b>" not in page and "javascript:" not in page and "../" not in page
    # Exactly the page's own two script elements, each closed once.
    assert page.count("<script") == 2 and page.count("</script>") == 2
    data = re.search(r'<script type="application/json" id="gallery-data">(.*?)</script>', page, re.S).group(1)
    parsed = json.loads(data)
    assert parsed["jobs"][0]["prompt"] == EVIL
    assert parsed["jobs"][0]["options"]["background"] == "</script><script>alert(2)</script>"
    assert parsed["title"] == EVIL
    # A CSP pins the inline script by hash and allows no network.
    import base64
    import hashlib

    js = re.search(r"<script>(.*?)</script>", page, re.S).group(1)
    digest = base64.b64encode(hashlib.sha256(js.encode()).digest()).decode()
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]*)"', page).group(1)
    assert f"script-src 'sha256-{digest}'" in csp and "default-src 'none'" in csp
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)  # no external resources


def test_page_lists_pending_and_failed_jobs(tmp_path):
    site = _fake_site(tmp_path)
    m = json.loads((site / "manifest.json").read_text())
    m["jobs"]["j4"] = {"id": "j4", "status": "pending", "function": "draw", "prompt": "later", "seed": 0, "options": {}}
    m["order"].append("j4")
    (site / "manifest.json").write_text(json.dumps(m))
    page = gallery.build_site(site, search=False).read_text()
    assert page.count('<article class="card') == 4
    assert "not run yet" in page and 'data-status="failed"' in page


# ----------------------------------------------------------------------------- search
def _pictures(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (40, 30), (220, 20, 20)).save(folder / "red.png")
    Image.new("RGB", (40, 40), (20, 20, 220)).save(folder / "blue.jpg")
    (folder / "sub").mkdir(exist_ok=True)
    Image.new("RGB", (16, 16), (20, 200, 20)).save(folder / "sub" / "green.webp")
    (folder / "shape.svg").write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" width="32" height="32">'
        '<circle cx="16" cy="16" r="10" fill="#ff8800"/></svg>'
    )
    (folder / "notes.txt").write_text("not a picture")


def test_search_caches_embeddings_and_refreshes_on_change(tmp_path):
    from vecgen.api import load_perceptors as load_perceptors_seeded  # every load is seeded
    from vecgen.search import ImageIndex, cache_path, list_images, search

    clip = "vecgen-tiny-vit@random"
    folder = tmp_path / "pics"
    _pictures(folder)
    perceptors = load_perceptors_seeded(clip, "cpu")
    assert list_images(folder) == ["blue.jpg", "red.png", "shape.svg", "sub/green.webp"]

    idx = ImageIndex(folder, clip, perceptors=perceptors).refresh()
    assert idx.stats == {"embedded": 4, "cached": 0, "skipped": 0}
    cfile = cache_path(folder, clip)
    assert cfile.is_file() and cfile.name == ".vecgen-search-vecgen-tiny-vit_random.safetensors"
    first = {p: e.clone() for p, e in zip(idx.paths, idx.embeddings[0])}
    stamp = cfile.stat().st_mtime_ns

    again = ImageIndex(folder, clip, perceptors=perceptors).refresh()
    assert again.stats == {"embedded": 0, "cached": 4, "skipped": 0}
    assert cfile.stat().st_mtime_ns == stamp  # nothing changed: the cache is not rewritten
    for p, e in zip(again.paths, again.embeddings[0]):
        assert (e - first[p]).abs().max() < 1e-6

    # The same ranking with and without the cache, from a fresh model load (seeded: same weights).
    hits = search(folder, "a red square", k=3, clip=clip)
    fresh = search(folder, "a red square", k=3, clip=clip, cache=False)
    assert [h.path for h in hits] == [h.path for h in fresh] and [h.rank for h in hits] == [1, 2, 3]
    assert all(abs(a.score - b.score) < 1e-5 for a, b in zip(hits, fresh))
    assert hits[0].score >= hits[1].score >= hits[2].score

    # Change one file (content and mtime), delete one, add one: only the new content is embedded.
    Image.new("RGB", (40, 30), (250, 250, 250)).save(folder / "red.png")
    st = (folder / "red.png").stat()
    os.utime(folder / "red.png", ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    (folder / "blue.jpg").unlink()
    Image.new("RGB", (20, 20), (0, 0, 0)).save(folder / "sub" / "black.png")
    third = ImageIndex(folder, clip, perceptors=perceptors).refresh()
    assert third.stats == {"embedded": 2, "cached": 2, "skipped": 0}
    assert third.paths == ["red.png", "shape.svg", "sub/black.png", "sub/green.webp"]
    rows = dict(zip(third.paths, third.embeddings[0]))
    assert (rows["red.png"] - first["red.png"]).abs().max() > 1e-4
    assert (rows["shape.svg"] - first["shape.svg"]).abs().max() < 1e-6
    from safetensors import safe_open

    with safe_open(str(cfile), framework="pt") as f:
        index = json.loads(f.metadata()["index"])
    assert [r["path"] for r in index] == third.paths


def test_search_cli(tmp_path, capsys):
    folder = tmp_path / "pics"
    _pictures(folder)
    assert main(["search", str(folder), "an orange circle", "-k", "2", "--clip", "vecgen-tiny-vit@random"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and lines[0].split()[0] == "1"
    assert main(["search", str(folder), "an orange circle", "--json", "--clip", "vecgen-tiny-vit@random"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert [h["rank"] for h in hits] == [1, 2, 3, 4]
    assert {h["path"] for h in hits} == {"blue.jpg", "red.png", "shape.svg", "sub/green.webp"}


def test_unreadable_picture_is_skipped(tmp_path):
    from vecgen.search import ImageIndex

    folder = tmp_path / "pics"
    _pictures(folder)
    (folder / "broken.png").write_bytes(b"not a png")
    warnings = []
    idx = ImageIndex(folder, "vecgen-tiny-vit@random", warn=warnings.append).refresh()
    assert "broken.png" not in idx.paths and len(idx.paths) == 4
    assert idx.stats["skipped"] == 1 and any("broken.png" in w for w in warnings)


# ----------------------------------------------------------------------------- checks before the first job
def one_error_line(err: str) -> str:
    """The single ``vecgen: error:`` line a refused command prints (asserting there is exactly one)."""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vecgen: error: "), err
    assert "internal error" not in err
    return lines[0]


@pytest.mark.parametrize(
    "table,value,words",
    [
        ("entry", "steps = -3", "steps must be >= 1, got -3"),
        ("entry", "seed = 1.5", "use seeds = [...]"),
        ("entry", "seeds = [1.5]", "seeds must be a non-empty list of whole numbers"),
        ("entry", "seeds = [9223372036854775808]", "seeds must be"),
        ("entry", "steps = true", "steps must be a whole number, got True"),
        ("entry", 'steps = "many"', "steps must be a whole number, got 'many'"),
        ("entry", "steps = 2.0", "steps must be a whole number, got 2.0"),
        ("entry", "cutouts = -1", "cutouts must be >= 0, got -1"),
        ("entry", "stepz = 3", "unknown option 'stepz' for draw"),
        ("entry", 'size = "huge"', "bad size 'huge'"),
        ("entry", "size = true", "bad size True"),
        ("entry", 'shapes = "circles"', "unknown shapes 'circles'"),
        ("entry", "strokes = -1", "strokes must be >= 0"),
        ("entry", 'width = ["thin", 2]', "bad width"),
        ("entry", 'background = "puce"', "bad colour 'puce'"),
        ("entry", 'device = "gpu"', "unknown device 'gpu'"),
        ("entry", 'clip = ""', "clip needs at least one model"),
        ("entry", 'views = "sideways"', "unknown views 'sideways'"),
        ("entry", 'image_prompt = "cat.png"', "image_prompt must be a list"),
        ("entry", "segments = nan", "segments must be a whole number"),
        ("defaults", "steps = -3", "[defaults]: steps must be >= 1, got -3"),
        ("defaults", "cutouts = 1.5", "[defaults]: cutouts must be a whole number, got 1.5"),
    ],
)
def test_bad_spec_values_are_refused_before_any_job(tmp_path, capsys, table, value, words):
    """Every option value is checked as the API would when the spec is read: one line, exit 2, no job run."""
    head, sep, rest = TINY.partition('[[entry]]\nprompt = "a blue square"\n')
    assert sep
    if table == "entry":
        text = head + sep + value + "\n" + rest
        line = TINY.count("\n", 0, len(head) + len(sep)) + 1
    else:  # in place of the [defaults] line that sets the same option
        key = value.split("=")[0].strip()
        old = re.search(rf"^{key} = .*$", TINY, re.M)
        text = TINY[: old.start()] + value + TINY[old.end() :]
        line = TINY.count("\n", 0, old.start()) + 1
    spec = write(tmp_path / "s.toml", text)
    site = tmp_path / "site"
    rc = main(["gallery", "run", str(spec), "--out", str(site), "-q"])
    msg = one_error_line(capsys.readouterr().err)
    assert rc == 2 and words in msg, msg
    assert f"spec {spec}, line {line}: " in msg, msg  # where it is: the file, the line, the table
    assert ("[[entry]] #2" in msg) if table == "entry" else ("[defaults]" in msg)
    assert not site.exists()  # refused before the first job: nothing written
    # The same check when the spec is only parsed (the API, --dry-run).
    with pytest.raises(VecgenError, match=re.escape(words)):
        gallery.parse_spec(text, "s.toml")


@pytest.mark.parametrize(
    "text,words",
    [
        ('[[entry]]\nfunction = "paint"\nprompt = "a"\npalette = 8\n', 'palette only applies to param "pixels"'),
        (
            '[[entry]]\nfunction = "paint"\nprompt = "a"\nparam = "pixels"\ngrid = "0x8"\n',
            "grid columns must be positive",
        ),
        ('[[entry]]\nfunction = "paint"\nprompt = "a"\nparam = "watercolour"\n', "unknown param 'watercolour'"),
        ('[[entry]]\nfunction = "paint"\nprompt = "a"\ndecay = inf\n', "decay must be finite"),
        ('[[entry]]\nfunction = "paint"\nprompt = "a"\nlevels = 0\n', "levels must be >= 1"),
        (
            '[defaults]\nsteps = 0\n[[entry]]\nprompt = "a"\n[[entry]]\nfunction = "paint"\nprompt = "b"\n',
            "[defaults]: steps must be >= 1, got 0 (for draw in [[entry]] #1)",
        ),
    ],
)
def test_bad_values_of_other_functions(text, words):
    if "paint" not in gallery.available_functions():
        pytest.skip("vecgen.api.paint is not in this checkout")
    with pytest.raises(VecgenError) as info:
        gallery.parse_spec(text, "p.toml")
    assert words in str(info.value) and "\n" not in str(info.value)


def test_good_values_still_parse():
    """The checks refuse only what the API refuses: strings, lists and choices it takes pass."""
    spec = gallery.parse_spec(
        TINY + '\n[[entry]]\nprompt = "x"\nsize = "48x32"\nwidth = "1,4"\n'
        'background = [0.1, 0.2, 0.3]\nshapes = "mixed"\nclip = "vecgen-tiny-vit@random:1"\n'
        'device = "CPU"\nviews = "zoom"\nstrokes = 3\nsegments = 2\n',
        "ok.toml",
    )
    assert spec.jobs[-1].options["size"] == "48x32"
    if "paint" in gallery.available_functions():
        gallery.parse_spec(
            '[[entry]]\nfunction = "paint"\nprompt = "a"\nparam = "Pixels"\ngrid = 24\n'
            'palette = 6\npalette_mode = "throughout"\nlr = 0.02\ndecay = 2\n',
            "p.toml",
        )


def test_unwritable_site_folder_is_refused_in_one_line(tmp_path, capsys):
    """--out on a read-only folder (as a user) or where no folder can be made (as root too): exit 2, one line."""
    spec = write(tmp_path / "s.toml", TINY)
    tried = 0
    locked = tmp_path / "locked"
    locked.mkdir()
    os.chmod(locked, 0o555)
    try:
        for site in [locked, locked / "site"]:
            if os.access(locked, os.W_OK):
                break  # root: the chmod does not stop writes; the cases below do
            rc = main(["gallery", "run", str(spec), "--out", str(site), "-q"])
            msg = one_error_line(capsys.readouterr().err)
            assert rc == 2 and f"--out {site}: cannot" in msg, msg
            tried += 1
        assert list(locked.iterdir()) == []
    finally:
        os.chmod(locked, 0o755)
    # Where even root cannot write: /proc takes no new entries, neither a folder in it nor a file.
    procfs = Path("/proc/self").is_dir()
    for site in [Path("/proc/vecgen-gallery-site"), Path("/proc")] if procfs else []:
        rc = main(["gallery", "run", str(spec), "--out", str(site), "-q"])
        msg = one_error_line(capsys.readouterr().err)
        assert rc == 2 and f"--out {site}: cannot" in msg, msg
        tried += 1
    if not tried:
        pytest.skip("no folder here refuses writes (root without /proc)")
    # The API says the same, with no job run and nothing left behind.
    calls = []
    runner = gallery.LocalExecutor(job_runner=lambda p, c: calls.append(p) or gallery.execute_job(p, c))
    if procfs:
        with pytest.raises(VecgenError, match="cannot create the folder"):
            gallery.run_gallery(spec, "/proc/vecgen-gallery-site", executor=runner, progress=False)
        assert calls == []


def test_each_warning_is_said_once_per_run(tmp_path, capsys, monkeypatch):
    """A batch with clip = "auto" offline warns about the mini-vit fallback once, not once per job and page."""
    from vecgen.backends.perceptors import clip as clip_backend

    monkeypatch.setenv("VECGEN_OFFLINE", "1")
    monkeypatch.setattr(clip_backend, "_cached_file", lambda cfg: None)  # no ViT-B-32 in any cache
    text = (
        '[defaults]\nclip = "auto"\nsteps = 2\nsize = 32\ncutouts = 1\ndevice = "cpu"\nseeds = [0, 1]\n'
        '[[entry]]\nprompts = ["a red circle", "a blue square"]\n'
    )
    site = tmp_path / "site"
    rc = main(["gallery", "run", str(write(tmp_path / "auto.toml", text)), "--out", str(site), "-q"])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert err.count("weights unavailable") == 1, err
    assert len(err.strip().splitlines()) == 1
    # And the page says what was drawn: shapes = "auto" with the mini models are filled blobs.
    page = (site / "index.html").read_text(encoding="utf-8")
    assert page.count('<span class="drawn">32 blobs</span>') == 4, page
    assert "outline" not in page and "strokes</span>" not in page


def test_cards_say_what_was_drawn(tmp_path, local_site):
    """Each draw card names its shapes as drawn (from the settings its files record), as strokes or blobs."""
    spec, summary = local_site
    page = gallery.build_site(summary.out, search=False).read_text(encoding="utf-8")
    cards = re.findall(r'<article class="card.*?</article>', page, re.S)
    drawn = [re.search(r'<span class="drawn">([^<]*)</span>', c).group(1) for c in cards]
    assert drawn == ["4 strokes", "4 strokes", "4 strokes", "4 blobs"]  # TINY's last entry: shapes = "blobs"
    data = json.loads(re.search(r'id="gallery-data">(.*?)</script>', page, re.S).group(1))
    assert [j["drawn"] for j in data["jobs"]] == drawn  # the filter box finds "blobs" too
    # Without files the records' own options say it where they name the shapes; failed jobs drew nothing.
    recs = [
        {"id": "a", "function": "draw", "status": "done", "options": {"shapes": "mixed", "strokes": 16}},
        {"id": "b", "function": "draw", "status": "done", "options": {}},
        {"id": "c", "function": "draw", "status": "failed", "options": {"shapes": "blobs"}},
    ]
    assert [gallery.drawn_text(r) for r in recs] == ["16 strokes and blobs", None, None]
    html = gallery.render_page("t", recs, None)
    assert "16 strokes and blobs" in html and html.count('class="drawn"') == 1


def test_failure_lines_are_one_line_each(tmp_path):
    s = gallery.RunSummary(
        out=tmp_path / "site",
        total=3,
        jobs=[
            {
                "id": "a1",
                "function": "draw",
                "prompt": 'a "red" circle',
                "seed": 2,
                "status": "failed",
                "error": "Traceback: boom\nline two",
            },
            {"id": "b2", "function": "paint", "prompt": "x", "seed": 0, "status": "done"},
            {"id": "c3", "function": "draw", "prompt": "y", "seed": 1, "status": "failed", "error": "e" * 1000},
        ],
    )
    lines = s.failures()
    assert len(lines) == 3 and all("\n" not in line for line in lines)
    assert lines[0] == 'job a1 failed (draw "a \\"red\\" circle", seed 2): Traceback: boom …'
    assert lines[1].startswith('job c3 failed (draw "y", seed 1): eee') and len(lines[1]) < 400
    assert str(tmp_path / "site" / "manifest.json") in lines[2] and "2 of 3" in lines[2]
    assert gallery.RunSummary(out=tmp_path, total=1, jobs=[{"status": "done"}]).failures() == []


def test_shipped_specs_validate_offline(monkeypatch):
    """Every gallery/*.toml parses, validates and finds its models on a machine with no network and no cache."""
    from vecgen.backends.perceptors import clip as clip_backend

    monkeypatch.setenv("VECGEN_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(clip_backend, "_cached_file", lambda cfg: None)
    monkeypatch.setattr(clip_backend, "_network_reachable", lambda: False)
    specs = sorted((ROOT / "gallery").glob("*.toml"))
    assert specs
    available = set(gallery.available_functions())
    for path in specs:
        text = path.read_text(encoding="utf-8")
        if set(re.findall(r'function\s*=\s*"(\w+)"', text)) - available:
            continue  # an example for a function this checkout does not have yet
        spec = gallery.load_spec(path)
        assert spec.jobs, path
        gallery.check_models(spec.jobs, str(path))
        gallery.check_devices([j for j in spec.jobs if j.options.get("device", "auto") in ("auto", "cpu")])
    # What the check catches: a spec that names real CLIP weights fails on such a machine, in one line.
    bad = gallery.parse_spec('[[entry]]\nprompt = "a"\nclip = "ViT-B-32@openai"\n', "bad.toml")
    with pytest.raises(VecgenError, match=r"\[\[entry\]\] #1: clip 'ViT-B-32@openai': weights .* not cached"):
        gallery.check_models(bad.jobs, "bad.toml")


def test_run_refuses_unavailable_weights_before_any_job(tmp_path, capsys, monkeypatch):
    from vecgen.backends.perceptors import clip as clip_backend

    monkeypatch.setenv("VECGEN_OFFLINE", "1")
    monkeypatch.setattr(clip_backend, "_cached_file", lambda cfg: None)
    spec = write(tmp_path / "s.toml", TINY.replace('clip = "vecgen-tiny-vit@random"', 'clip = "ViT-B-32"'))
    site = tmp_path / "site"
    rc = main(["gallery", "run", str(spec), "--out", str(site), "-q"])
    msg = one_error_line(capsys.readouterr().err)
    assert rc == 2 and "clip 'ViT-B-32'" in msg and "offline" in msg, msg
    assert not site.exists()


@pytest.mark.slow  # Ray: a CLI subprocess per case
@pytest.mark.parametrize("listener", ["refused", "silent"])
def test_ray_connect_timeout_bounds_the_whole_wait(tmp_path, listener):
    """--connect-timeout 1: the CLI gives up within about a second (plus start-up), says so in one line."""
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'vecgen[ray]')")
    import subprocess
    import sys
    import time

    spec = write(tmp_path / "s.toml", TINY)
    site = tmp_path / "site"
    server = None
    if listener == "silent":  # accepts TCP connections (the kernel's backlog) and never answers as Ray
        server = socket.socket()
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        port = server.getsockname()[1]
    else:
        port = _closed_port()
    try:
        t0 = time.monotonic()
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "vecgen",
                "gallery",
                "run",
                str(spec),
                "--out",
                str(site),
                "-q",
                "--executor",
                "ray",
                "--address",
                f"127.0.0.1:{port}",
                "--connect-timeout",
                "1",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=str(ROOT),
            env={**os.environ, "VECGEN_DEBUG": ""},
        )
        wall = time.monotonic() - t0
    finally:
        if server is not None:
            server.close()
    assert proc.returncode == 2, proc.stderr
    msg = one_error_line(proc.stderr)
    assert not site.exists()
    if listener == "silent":
        m = re.search(r"did not answer as Ray within (\d+(?:\.\d+)?) s \(--connect-timeout 1\)", msg)
        assert m and float(m.group(1)) <= 2.0, msg  # the real wait, bounded by the timeout
    else:
        assert "cannot reach the Ray cluster" in msg
    assert wall < 12, f"waited {wall:.1f} s with --connect-timeout 1"  # was 15 s or more


def test_spec_values_over_the_api_limits_are_refused_up_front():
    """The API's hard bounds (vecgen.options.LIMITS) hold for gallery jobs too, before any job runs."""
    for line, needle in (
        ("cutouts = 100000", "--cutouts 100000 is above the limit of 256"),
        ("strokes = 20000", "--strokes 20000 is above the limit"),
        ("steps = 5000000", "--steps 5000000 is above the limit"),
    ):
        with pytest.raises(VecgenError, match=needle):
            gallery.parse_spec(f'[defaults]\n{line}\n[[entry]]\nprompt = "a red circle"\n')
