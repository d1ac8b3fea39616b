"""The studio without a browser: forms made from the verbs' configs, a run through the API, uploads, jobs.

A job calls the verb's function in-process (draw with the tiny random model, a
few steps; a made-up verb for the file kinds), so these need neither Gradio nor
Chromium (one test builds every tab when Gradio is installed); the page itself
is in ``tests/test_studio_browser.py``.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from dataclasses import dataclass
from typing import Any

import pytest
from PIL import Image

from conftest import TINY
from vecgen.api import VERBS, Result, Verb
from vecgen.cli import main
from vecgen.config import VerbConfig, option, verb_function
from vecgen.errors import VecgenError
from vecgen.studio.app import Studio
from vecgen.studio.forms import NOT_SHOWN, check_spec, cli_argv, command_line, form_options, studio_verbs, verb_fields
from vecgen.studio.jobs import file_metadata
from vecgen.studio.safety import FileGuard, check_upload, escape, inside, status_html

SMALL = {"steps": "4", "size": "48", "clip": TINY, "strokes": "8", "cutouts": 2}


@pytest.fixture
def studio(tmp_path):
    return Studio(tmp_path / "studio")


def test_every_verb_with_a_config_has_a_form_made_from_it():
    """A tab for each verb of the registry with a config; each field is one option: its default, choices,
    bounds and help; Python-only options, outputs and the studio's own are not shown."""
    verbs = studio_verbs()
    assert list(verbs) == [n for n, v in VERBS.items() if v.config is not None] and "draw" in verbs
    for name, verb in verbs.items():
        fields = verb_fields(verb)
        by_name = {f.name: f for f in fields}
        for opt, meta, default in verb.config.options():
            shown = meta.cli and meta.kind != "output" and opt not in NOT_SHOWN
            assert (opt in by_name) == shown, (name, opt)
            if shown:
                f = by_name[opt]
                assert f.meta is meta and f.default == default and f.flag in (None, meta.flag_name(opt))
        positional = [f.positional for f in fields]
        assert positional == sorted(positional, reverse=True), name  # positionals first
    with pytest.raises(VecgenError, match="no config"):
        verb_fields(dataclasses.replace(VERBS["draw"], config=None))


def test_draw_file_options_become_uploads_of_their_kind():
    kinds = {f.name: (f.kind, f.accept, f.section) for f in verb_fields(VERBS["draw"])}
    assert kinds["init"] == ("upload", "svg", "options")
    assert kinds["image_prompt"] == ("uploads", "image", "advanced")
    assert kinds["prompt"] == ("text", None, "main") and kinds["background"][:2] == ("text", None)
    assert kinds["shapes"][0] == "choice" and kinds["keep_all"][0] == "bool" and kinds["steps"][0] == "int"
    assert not {"output", "snapshots", "checkpoint", "resume", "every", "quiet"} & set(kinds)


# ----------------------------------------------------------------------------- a verb of every kind
CALLS: list[dict[str, Any]] = []


@dataclass(frozen=True)
class KindsConfig(VerbConfig):
    photo: Any = option(None, "the photo", "image", positional=True, required=True, section="main")
    prompt: str | None = option(None, "what to make", positional=True)
    generator: Any = option(None, "taef2[:FILE] or script:FILE", "object", required=True, metavar="SPEC")
    shots: int = option(4, "examples", "int", minimum=1, maximum=64)
    rate: float = option(0.5, "a rate", "float", above=0)
    photos: Any = option(None, "training photos", "folder")
    shape: Any = option(None, "an SVG", "svg")
    model: Any = option(None, "a mesh", "mesh")
    weights: Any = option(None, "network weights", "file")
    extra: Any = option(None, "more pictures", "image", multiple=True)
    tags: Any = option(None, "tags", "text", multiple=True)
    cache: Any = option(None, "a cache folder", "output", metavar="PATH")
    perceptors: Any = option(None, "Python only", "object", cli=False)
    quiet: bool = option(False, "no progress bar")


@verb_function(KindsConfig, callbacks=None, warn=None)
def kinds(cfg: KindsConfig, *, callbacks=None, warn=None) -> Result:
    CALLS.append({**cfg.asdict(), "callbacks": callbacks})
    if warn is not None:
        warn("a warning for the log")
    image = Image.new("RGB", (8, 8), (10, 200, 30))
    return Result(
        image=image,
        svg='<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"/>',
        settings={"shots": cfg.shots},
        companions=lambda out: [out.with_suffix(".png")],
    )


KINDS_VERB = Verb(
    "kinds-test",
    kinds,
    "every kind of option",
    outputs=(".svg", ".png"),
    default_output="k.svg",
    gallery=False,
    config=KindsConfig,
)


def test_a_new_verb_gets_a_tab_with_uploads_by_kind_and_no_studio_code(monkeypatch, tmp_path):
    monkeypatch.setitem(VERBS, "kinds-test", KINDS_VERB)
    studio = Studio(tmp_path / "studio")
    assert "kinds-test" in studio.verbs
    f = {x.name: x for x in studio.fields["kinds-test"]}
    assert [x.name for x in studio.fields["kinds-test"]][:3] == ["photo", "prompt", "generator"]
    assert (f["photo"].kind, f["photo"].accept, f["photo"].section) == ("upload", "image", "main")
    assert (f["photos"].kind, f["shape"].accept, f["model"].accept, f["weights"].accept) == (
        "folder",
        "svg",
        "mesh",
        "file",
    )
    assert (f["extra"].kind, f["extra"].accept, f["tags"].kind) == ("uploads", "image", "lines")
    assert f["generator"].spec and f["generator"].section == "main" and f["generator"].label == "--generator"
    assert (f["shots"].meta.minimum, f["shots"].meta.maximum) == (1, 64)
    assert not {"cache", "perceptors", "quiet"} & set(f)

    up = studio.folder / "uploads"
    up.mkdir(parents=True)
    photo = _png(up / "cat.png")
    svg = up / "shape.svg"
    svg.write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><path d="M 1 1 L 9 9" stroke="#ff0000"/></svg>'
    )
    (up / "sub").mkdir()
    train = [_png(up / "a.png"), _png(up / "b.png"), _png(up / "sub" / "a.png")]
    job = studio.make_job(
        "kinds-test",
        {
            "photo": str(photo),
            "prompt": "-a glass cat",
            "generator": "taef2",
            "shots": 8.0,
            "rate": 0.5,
            "photos": [str(p) for p in train],
            "shape": {"path": str(svg)},
            "tags": "one\n two \n",
            "extra": None,
        },
        save_as=".svg",
    )
    # the form's options, typed as the CLI types them; defaults left out
    assert job.options == {
        "photo": str(photo),
        "prompt": "-a glass cat",
        "generator": "taef2",
        "shots": 8,
        "photos": str(job.folder / "inputs" / "photos"),
        "shape": str(svg),
        "tags": ["one", "two"],
    }
    copied = sorted(p.name for p in (job.folder / "inputs" / "photos").iterdir())
    assert copied == ["a-2.png", "a.png", "b.png"]  # a folder input: the files, copied into the run's folder
    assert job.shown == [
        "--generator",
        "taef2",
        "--shots",
        "8",
        "--photos",
        "photos",
        "--shape",
        "shape.svg",
        "--tags",
        "one",
        "--tags",
        "two",
        "-o",
        "kinds-test.svg",
        "--",
        "cat.png",
        "-a glass cat",
    ]
    job.start()
    assert job.wait(60) and job.error is None and job.code == 0
    call = CALLS[-1]
    assert call["quiet"] is True and len(call["callbacks"]) == 1 and call["perceptors"] is None
    assert [p.name for p in job.files()] == ["kinds-test.png", "kinds-test.svg"]  # save_all: the companion too
    assert job.log == ["warning: a warning for the log", "kinds-test.png", "kinds-test.svg"]
    assert job.picture().size == (8, 8) and job.result.settings == {"shots": 8}  # the Result, in memory
    assert inside(job.folder, studio.folder)


def test_required_and_bounds_and_server_paths_are_refused_before_any_work(monkeypatch, tmp_path):
    monkeypatch.setitem(VERBS, "kinds-test", KINDS_VERB)
    studio = Studio(tmp_path / "studio")
    up = studio.folder / "uploads"
    up.mkdir(parents=True)
    photo = str(_png(up / "cat.png"))
    outside = _png(tmp_path / "elsewhere.png")
    n = len(CALLS)
    cases = [
        ({"generator": "taef2"}, "PHOTO is required"),
        ({"photo": photo}, "--generator is required"),
        ({"photo": photo, "generator": "taef2", "shots": 65}, "--shots 65 is above the limit of 64"),
        ({"photo": photo, "generator": "taef2", "rate": 0}, "--rate must be > 0"),
        ({"photo": photo, "generator": "taef2", "shots": "many"}, "--shots must be a number"),
        ({"photo": str(outside), "generator": "taef2"}, "PHOTO: not an uploaded file"),
        ({"photo": photo, "generator": "taef2", "weights": "/etc/passwd"}, "--weights: not an uploaded file"),
        ({"photo": photo, "generator": "stylegan2:/srv/ffhq.pkl"}, "not paths on the server"),
        ({"photo": photo, "generator": "script:model"}, "not paths on the server"),
    ]
    for values, message in cases:
        with pytest.raises(VecgenError, match=message):
            studio.make_job("kinds-test", values)
    assert len(CALLS) == n and not (studio.folder / "runs").exists()  # nothing ran, nothing written


def test_spec_values_name_models_never_server_paths():
    field = {f.name: f for f in verb_fields(VERBS["draw"])}["clip"]
    for good in ("auto", "mini-vit", TINY, "ViT-B-32:1,RN50@openai:0.5", "ViT-B-32@laion2b_s34b_b79k"):
        assert check_spec(field, good) == good
    for bad in (
        "ViT-B-32@/models/x.pt",
        "RN50@../x.bin",
        "mini-vit@~/w",
        "ViT-B-32@weights.safetensors",
        "RN50@C:\\w.pt",
        "mini-vit@.hidden",
        "mini-vit:weights",
    ):
        with pytest.raises(VecgenError, match="not paths on the server"):
            check_spec(field, bad)


def test_form_options_and_the_command_line():
    """Defaults stay out, floats keep every digit, positionals go last (after ``--`` when one starts with -)."""
    fields = verb_fields(VERBS["draw"])
    opts = form_options(
        fields,
        {
            "prompt": "a forest | blurry:-0.5",
            "steps": "12",
            "size": "64x48",
            "clip": TINY,
            "seed": 3.0,
            "segments": 3,
            "width": "",
            "background": "white",
            "shapes": "auto",
            "keep_all": True,
            "cutouts": 8,
            "views": "auto",
            "device": "auto",
            "strokes": "",
        },
    )
    assert opts == {
        "prompt": "a forest | blurry:-0.5",
        "steps": 12,
        "size": "64x48",
        "clip": TINY,
        "seed": 3,
        "keep_all": True,
    }
    argv = cli_argv(fields, opts, "draw.svg")
    assert argv == [
        "--steps",
        "12",
        "--size",
        "64x48",
        "--clip",
        TINY,
        "--seed",
        "3",
        "--keep-all",
        "-o",
        "draw.svg",
        "a forest | blurry:-0.5",
    ]
    assert command_line("draw", argv).endswith("-o draw.svg 'a forest | blurry:-0.5'")
    assert cli_argv(fields, {"prompt": "-x", "steps": 0.1 + 0.2}, "d.svg")[-2:] == ["--", "-x"]
    with pytest.raises(VecgenError, match="--steps must be a whole number"):
        form_options(fields, {"prompt": "x", "steps": 1.5})
    with pytest.raises(VecgenError, match="PROMPT is required"):
        form_options(fields, {"prompt": "   "})


def test_all_tabs_build_with_bounded_numbers(tmp_path):
    gr = pytest.importorskip("gradio")
    from vecgen.studio.app import build_app

    studio = Studio(tmp_path / "studio")
    demo = build_app(studio)
    by_id = {b.elem_id: b for b in demo.blocks.values() if getattr(b, "elem_id", None)}
    for name, fields in studio.fields.items():
        assert f"{name}-run" in by_id and f"{name}-stop" in by_id
        for f in fields:
            w = by_id[f"{name}-{f.name}"]
            if f.kind in ("upload", "uploads", "folder"):
                assert isinstance(w, gr.File) and w.file_count == ("single" if f.kind == "upload" else "multiple")
            elif isinstance(w, gr.Number):
                assert (w.minimum, w.maximum) == (f.meta.minimum, f.meta.maximum), (name, f.name)
    assert by_id["draw-segments"].maximum == VERBS["draw"].config.option_of("segments").maximum


# ----------------------------------------------------------------------------- uploads and files
def _png(path, size=(40, 30)):
    try:
        from skimage import data

        Image.fromarray(data.astronaut()).resize(size).save(path)
    except ImportError:
        Image.new("RGB", size, (200, 30, 30)).save(path)
    return path


def test_uploads_are_type_and_size_checked(tmp_path):
    good = _png(tmp_path / "photo.png")
    assert check_upload(good, "image") == good
    fake = tmp_path / "notes.png"
    fake.write_text("this is not a picture\n")
    with pytest.raises(VecgenError, match="notes.png: not an image"):
        check_upload(fake, "image")
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(VecgenError, match="not an image file"):
        check_upload(text, "image")
    with pytest.raises(VecgenError, match="upload limit"):
        check_upload(good, "image", max_bytes=100)
    svg = tmp_path / "shape.svg"
    svg.write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><path d="M 1 1 L 9 9" stroke="#ff0000"/></svg>'
    )
    assert check_upload(svg, "svg") == svg
    bomb = tmp_path / "bomb.svg"
    bomb.write_text(
        '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]>'
        '<svg xmlns="http://www.w3.org/2000/svg">&b;</svg>'
    )
    with pytest.raises(VecgenError, match="not an SVG vecgen can read"):
        check_upload(bomb, "svg")
    empty = tmp_path / "empty.obj"
    empty.write_bytes(b"")
    with pytest.raises(VecgenError, match="empty"):
        check_upload(empty, "mesh")


def test_user_text_is_escaped():
    evil = '<img src=x onerror="alert(1)">&'
    html = status_html(f"draw {evil}", "error", step=3)
    assert "<img" not in html and "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;&amp;" in html
    assert escape("'") == "&#x27;"


def test_file_guard_serves_only_the_studio_folder(tmp_path):
    root = tmp_path / "studio"
    (root / "runs").mkdir(parents=True)
    (root / "runs" / "a.svg").write_text("<svg/>")
    (tmp_path / "secret.txt").write_text("no")
    (root / "link").symlink_to(tmp_path / "secret.txt")
    guard = FileGuard(None, root)
    assert guard.allowed(f"/gradio_api/file={root}/runs/a.svg")
    assert guard.allowed("/gradio_api/queue/join")  # not a file route
    for bad in (
        f"{tmp_path}/secret.txt",
        f"{root}/../secret.txt",
        f"{root}/link",
        "/etc/passwd",
        "https://example.com/x.png",
        "//example.com/x",
        f"{root}/runs/a.svg\x00",
    ):
        assert not guard.allowed(f"/gradio_api/file={bad}"), bad
    assert inside(root / "runs" / "a.svg", root) and not inside(tmp_path, root)


# ----------------------------------------------------------------------------- jobs
def _draw_job(studio, prompt: str, **given):
    return studio.make_job("draw", {"prompt": prompt, **{**SMALL, **given}})


def test_a_run_calls_the_api_and_the_cli_line_writes_the_same_bytes(studio, tmp_path, monkeypatch):
    """The job calls draw() with callbacks (frames in memory, no stream swapped); its "copy as CLI
    command" line, run by the CLI itself, writes the same bytes."""
    streams = (sys.stdout, sys.stderr)
    job = _draw_job(studio, "a red circle", steps="6")
    job.start()
    frames = []
    while not job.wait(0.05):
        assert (sys.stdout, sys.stderr) == streams
        f = job.take_frame()
        if f is not None:
            frames.append(f)
    assert job.error is None and job.code == 0, job.error
    assert [p.name for p in job.files()] == ["draw.svg"] and job.log == ["draw.svg"]
    assert frames and frames[0].step == 1 and frames[0].image.size == (48, 48)
    assert "total" in frames[0].values and job.step == 6
    assert job.result.svg.encode("utf-8") == job.files()[0].read_bytes()  # the Result, read in memory
    assert job.picture().size == (48, 48) and len(job.result.history) == 6
    meta = job.metadata()
    assert meta["draw.svg"]["prompt"] == "a red circle" and meta["draw.svg"]["settings"]["steps"] == 6
    line = command_line("draw", job.shown)
    assert line == f"vecgen draw --steps 6 --size 48 --clip {TINY} --strokes 8 --cutouts 2 -o draw.svg 'a red circle'"
    monkeypatch.chdir(tmp_path)
    assert main(["draw", *job.shown]) == 0
    assert (tmp_path / "draw.svg").read_bytes() == job.files()[0].read_bytes()


def test_stop_keeps_the_result(studio):
    job = _draw_job(studio, "a blue square", steps="100000")
    job.start()
    deadline = time.time() + 60
    while job.step < 3 and time.time() < deadline:
        time.sleep(0.02)
    job.stop.set()
    assert job.wait(60)
    assert job.code == 130 and job.interrupted and job.error is None and job.result.interrupted
    settings = file_metadata(job.files()[0])["settings"]
    assert 3 <= settings["steps_done"] < 100000 and settings["steps"] == 100000
    assert job.log[-1].startswith("stopped after ") and job.log[-1].endswith("; saved draw.svg")


def test_bad_input_is_one_line_before_any_work(studio):
    with pytest.raises(VecgenError, match="unknown --shapes 'triangles'"):
        _draw_job(studio, "a cat", shapes="triangles")
    with pytest.raises(VecgenError, match=r"--steps must be >= 1, got 0"):
        _draw_job(studio, "a cat", steps="0")
    with pytest.raises(VecgenError, match="--clip 'mini-vit@/etc/passwd': the studio takes model names"):
        _draw_job(studio, "a cat", clip="mini-vit@/etc/passwd")
    assert not studio.runs.exists()


def test_studio_without_gradio_says_how_to_install(monkeypatch, capsys):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "gradio" else real(name, *a))
    assert main(["studio", "--port", "1"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "vecgen: error: the studio needs Gradio: pip install 'vecgen[studio]'"


def test_metadata_of_png_and_svg(tmp_path):
    from vecgen.io import png_bytes

    p = tmp_path / "a.png"
    p.write_bytes(png_bytes(Image.new("RGB", (4, 4)), {"prompt": "x", "settings": json.dumps({"seed": 2})}))
    assert file_metadata(p)["settings"] == {"seed": 2} and file_metadata(p)["prompt"] == "x"
    bad = tmp_path / "b.svg"
    bad.write_bytes(b"<svg")
    assert "unreadable" in file_metadata(bad)
