"""The studio without a browser: forms read from the CLI parsers, argv that reproduces a run, uploads, jobs.

A job runs the verb's own CLI code in-process (draw with the tiny random model,
a few steps), so these need neither Gradio nor Chromium; the page itself is in
``tests/test_studio_browser.py``.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import time

import pytest
from PIL import Image

from conftest import TINY
from vecgen.api import VERBS
from vecgen.cli import build_parser, main
from vecgen.cli._common import merge_options
from vecgen.errors import VecgenError
from vecgen.studio import verb_parsers
from vecgen.studio.forms import command_line, form_argv, verb_fields
from vecgen.studio.jobs import Job, file_metadata
from vecgen.studio.safety import FileGuard, check_upload, escape, inside, status_html

SMALL = {"steps": "4", "size": "48", "clip": TINY, "strokes": "8", "cutouts": 2}


@pytest.fixture(scope="module")
def parsers():
    return verb_parsers(build_parser())


def values_for(parsers, name: str, **given):
    return {f.name: given.get(f.name) for f in verb_fields(VERBS[name], parsers[name])}


def test_every_verb_has_a_form_with_the_cli_flags(parsers):
    """Each registered verb gets a form; each field is one flag with the API default and the flag's choices."""
    assert list(parsers) == list(VERBS)
    for name, verb in VERBS.items():
        fields = verb_fields(verb, parsers[name])
        actions = {a.dest: a for a in parsers[name]._actions}
        api = verb.defaults()
        assert fields, name
        for f in fields:
            a = actions[f.name]
            assert f.flag in (None, *a.option_strings)
            assert f.default == api.get(f.name, a.default), (name, f.name)
            assert f.choices == tuple(str(c) for c in a.choices or ())
            if "%(" not in (a.help or ""):
                assert f.help == (a.help or "").replace("%%", "%"), (name, f.name)
        names = {f.name for f in fields}
        assert not names & {"output", "config", "checkpoint", "resume", "snapshots", "quiet"}


def test_file_inputs_become_uploads_of_the_right_kind(parsers):
    kinds = {f.name: (f.kind, f.accept) for f in verb_fields(VERBS["draw"], parsers["draw"])}
    assert kinds["init"] == ("upload", "svg")
    assert kinds["image_prompt"] == ("uploads", "image")
    assert kinds["prompt"] == ("text", None) and kinds["background"] == ("text", None)
    paint = {f.name: (f.kind, f.accept) for f in verb_fields(VERBS["paint"], parsers["paint"])}
    assert paint["init"] == ("upload", "image") and paint["grid"] == ("text", None)
    gen = {f.name: f.kind for f in verb_fields(VERBS["generate"], parsers["generate"])}
    assert gen["init"] == "choice" and gen["generator"] == "text"  # a SPEC naming a file is still text
    assert "save_latent" not in gen  # a file the verb writes is the studio's to name
    adapt = {f.name for f in verb_fields(VERBS["adapt"], parsers["adapt"])}
    assert "grid" not in adapt and {"source", "target", "generator"} <= adapt


def test_a_new_verb_gets_a_form_with_no_studio_code(monkeypatch):
    """Registering a verb (API function + CLI flags) is all it takes; its files become uploads."""
    def restyle(photo: str, prompt: str, *, steps: int = 7, mode: str = "soft", mask=None, weights=None,
                seed: int = 0, callbacks=None):
        return None

    verb = dataclasses.replace(VERBS["draw"], name="restyle", function=restyle, uploads=(("weights", "file"),))
    monkeypatch.setitem(VERBS, "restyle", verb)
    p = argparse.ArgumentParser(prog="vecgen restyle")
    p.add_argument("photo", help="the photo to restyle")
    p.add_argument("prompt")
    p.add_argument("--steps", type=int)
    p.add_argument("--mode", choices=["soft", "hard"])
    p.add_argument("--mask", metavar="IMG", help="where to restyle")
    p.add_argument("--weights", help="network weights")
    p.add_argument("--seed", type=int)
    fields = {f.name: f for f in verb_fields(verb, p)}
    assert (fields["photo"].kind, fields["photo"].accept) == ("upload", "image")
    assert (fields["mask"].kind, fields["mask"].accept) == ("upload", "image")
    assert (fields["weights"].kind, fields["weights"].accept) == ("upload", "file")  # declared on the Verb
    assert fields["steps"].default == 7 and fields["mode"].choices == ("soft", "hard")
    argv = form_argv(list(fields.values()), {"photo": "/up/cat.png", "prompt": "-a cat", "steps": 7, "mode": "hard",
                                             "mask": None, "weights": None, "seed": 0}, "restyle.png")
    assert argv == ["--mode", "hard", "-o", "restyle.png", "--", "/up/cat.png", "-a cat"]
    p.add_argument("-o")
    args = p.parse_args(argv)
    assert (args.photo, args.prompt, args.mode, args.steps) == ("/up/cat.png", "-a cat", "hard", None)


def test_form_argv_is_what_the_cli_parses(parsers):
    """The argv of a filled form parses (with vecgen's own parser) into the options the form shows."""
    fields = verb_fields(VERBS["paint"], parsers["paint"])
    vals = {f.name: None for f in fields}
    vals.update(prompt="a forest | blurry:-0.5", steps="12", size="64x48", clip=TINY, seed=3, param="pixels",
                decay=1.5, contrast=0.1 + 0.2, grid="8x6", palette="4", cutouts=8, views="auto", device="auto")
    argv = form_argv(fields, vals, "paint.png")
    # defaults stay out (decay 1.5, cutouts 8, auto); the float keeps every digit
    assert "--decay" not in argv and "--cutouts" not in argv and "--views" not in argv
    assert argv[argv.index("--contrast") + 1] == repr(0.1 + 0.2)
    args = parsers["paint"].parse_args(argv)
    opts = merge_options(args, VERBS["paint"], {"prompt"})
    assert args.prompt == "a forest | blurry:-0.5"
    got = (opts["steps"], opts["size"], opts["seed"], opts["palette"], opts["contrast"])
    assert got == (12, "64x48", 3, 4, 0.1 + 0.2)
    assert opts["decay"] == VERBS["paint"].defaults()["decay"] and opts["output"] == "paint.png"
    line = command_line("paint", argv)
    assert line.startswith("vecgen paint ") and "'a forest | blurry:-0.5'" in line


def test_form_argv_refuses_a_non_number(parsers):
    fields = verb_fields(VERBS["draw"], parsers["draw"])
    with pytest.raises(VecgenError, match="--steps must be a number"):
        form_argv(fields, {"prompt": "x", "steps": "many"}, "draw.svg")
    with pytest.raises(VecgenError, match="whole number"):
        form_argv(fields, {"prompt": "x", "seed": 1.5}, "draw.svg")


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
    svg.write_text('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
                   '<path d="M 1 1 L 9 9" stroke="#ff0000"/></svg>')
    assert check_upload(svg, "svg") == svg
    bomb = tmp_path / "bomb.svg"
    bomb.write_text('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]>'
                    '<svg xmlns="http://www.w3.org/2000/svg">&b;</svg>')
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
    for bad in (f"{tmp_path}/secret.txt", f"{root}/../secret.txt", f"{root}/link", "/etc/passwd",
                "https://example.com/x.png", "//example.com/x", f"{root}/runs/a.svg\x00"):
        assert not guard.allowed(f"/gradio_api/file={bad}"), bad
    assert inside(root / "runs" / "a.svg", root) and not inside(tmp_path, root)


# ----------------------------------------------------------------------------- jobs
def _draw_job(parsers, tmp_path, prompt: str, **given):
    fields = verb_fields(VERBS["draw"], parsers["draw"])
    vals = values_for(parsers, "draw", prompt=prompt, **{**SMALL, **given})
    folder = tmp_path / "job"
    argv = form_argv(fields, vals, str(folder / "draw.svg"))
    shown = form_argv(fields, vals, "draw.svg")
    return Job("draw", parsers["draw"], argv, shown, folder), shown


def test_a_job_writes_what_the_cli_command_writes(parsers, tmp_path, monkeypatch):
    """Same argv, same bytes: the job's SVG equals the one its "copy as CLI command" line writes."""
    job, shown = _draw_job(parsers, tmp_path, "a red circle", steps="6")
    job.start()
    frames = []
    while not job.wait(0.05):
        f = job.take_frame()
        if f is not None:
            frames.append(f)
    assert job.error is None and job.code == 0, job.error
    assert [p.name for p in job.files()] == ["draw.svg"]
    assert frames and frames[0].step == 1 and frames[0].image.size == (48, 48)
    assert "total" in frames[0].values and job.step == 6
    meta = job.metadata()
    assert meta["draw.svg"]["prompt"] == "a red circle" and meta["draw.svg"]["settings"]["steps"] == 6
    monkeypatch.chdir(tmp_path)
    assert command_line("draw", shown).split()[:2] == ["vecgen", "draw"]
    assert main(["draw", *shown]) == 0  # the command line's argv, run by the CLI itself
    assert (tmp_path / "draw.svg").read_bytes() == job.files()[0].read_bytes()


def test_stop_keeps_the_result(parsers, tmp_path):
    job, _ = _draw_job(parsers, tmp_path, "a blue square", steps="100000")
    job.start()
    deadline = time.time() + 60
    while job.step < 3 and time.time() < deadline:
        time.sleep(0.02)
    job.stop.set()
    assert job.wait(60)
    assert job.code == 130 and job.interrupted and job.error is None
    settings = file_metadata(job.files()[0])["settings"]
    assert 3 <= settings["steps_done"] < 100000 and settings["steps"] == 100000


def test_bad_input_is_one_line_before_any_work(parsers, tmp_path):
    job, _ = _draw_job(parsers, tmp_path, "a cat", shapes="triangles")
    with pytest.raises(VecgenError, match="invalid choice"):
        job.start()
    job, _ = _draw_job(parsers, tmp_path, "   ")
    job.start()
    job.wait(60)
    assert job.error and "empty" in job.error.lower() and job.files() == []


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
