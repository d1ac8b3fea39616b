"""``vecgen paint`` / :func:`vecgen.api.paint`: raster parameterizations end to end.

Every run uses the tiny random-weight CLIP (``vecgen-tiny-vit@random``) so it
is fast and offline; what is checked is plumbing, not picture quality.
"""

from __future__ import annotations

import json
import re

import pytest
import torch
from PIL import Image

from conftest import TINY
from vecgen import api
from vecgen.cli import main
from vecgen.errors import VecgenError
from vecgen.svg import read_svg

FAST = ["--clip", TINY, "--steps", "3", "--cutouts", "2", "-q"]


@pytest.fixture(autouse=True)
def _modest_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(min(2, before))
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny():
    return api.load_perceptors(TINY, torch.device("cpu"))


def _png(path, size=(40, 30), colour=(200, 40, 40)):
    Image.new("RGB", size, colour).save(path)
    return path


# ------------------------------------------------------------------ (c) CLI


@pytest.mark.parametrize("param", ["fft", "dwt", "pixels"])
def test_cli_paint_writes_png(param, tmp_path, capsys):
    out = tmp_path / f"{param}.png"
    extra = ["--image-prompt", str(_png(tmp_path / "target.png"))] if param == "fft" else []
    rc = main(
        [
            "paint",
            "a red apple",
            "--param",
            param,
            "--size",
            "64",
            "--grid",
            "16x16",
            "--seed",
            "7",
            "-o",
            str(out),
            *FAST,
            *extra,
        ]
    )
    assert rc == 0
    printed = capsys.readouterr().out.split()
    assert str(out) in printed
    with Image.open(out) as im:
        assert im.size == (64, 64) and im.mode == "RGB"
        text = dict(im.text)
    assert text["prompt"] == "a red apple" and text["seed"] == "7"
    settings = json.loads(text["settings"])
    assert settings["function"] == "paint" and settings["param"] == param and settings["steps"] == 3
    svg = out.with_suffix(".svg")
    if param == "pixels":  # pixel art also writes its vector twin
        assert svg.exists() and str(svg) in printed
        scene = read_svg(svg)
        assert (scene.width, scene.height) == (64, 64)
        assert 0 < len(scene.paths) <= 16 * 16
        assert "a red apple" in svg.read_text()
    else:
        assert not svg.exists()


def test_cli_paint_non_square_pixels_svg_output(tmp_path):
    out = tmp_path / "art.svg"
    rc = main(
        [
            "paint",
            "a castle",
            "--param",
            "pixels",
            "--size",
            "96x48",
            "--grid",
            "24x12",
            "--palette",
            "5",
            "-o",
            str(out),
            *FAST,
        ]
    )
    assert rc == 0
    scene = read_svg(out)
    assert (scene.width, scene.height) == (96, 48)
    fills = set(re.findall(r'fill="(#[0-9a-f]{6})"', out.read_text()))
    assert 1 <= len(fills) <= 5
    with Image.open(out.with_suffix(".png")) as im:
        assert im.size == (96, 48)
        colours = im.getcolors(96 * 48)
    assert len(colours) <= 5  # the PNG shows the snapped palette too


def test_cli_paint_config_file_and_default_output(tmp_path, monkeypatch):
    cfg = tmp_path / "run.toml"
    cfg.write_text(
        'param = "pixels"\ngrid = "8x8"\npalette = 3\npalette-mode = "throughout"\nsize = "32"\n'
        f'clip = "{TINY}"\nsteps = 2\ncutouts = 2\nquiet = true\n'
    )
    monkeypatch.chdir(tmp_path)
    assert main(["paint", "a boat", "--config", str(cfg), "--seed", "3"]) == 0
    out = tmp_path / "vecgen.png"  # the default output, plus its SVG twin
    assert (tmp_path / "vecgen.svg").exists()
    with Image.open(out) as im:
        settings = json.loads(im.text["settings"])
        assert im.size == (32, 32) and len(im.getcolors(1024)) <= 3
    assert settings["grid"] == "8x8" and settings["palette"] == 3 and settings["palette_mode"] == "throughout"
    assert settings["seed"] == 3  # flags override the file


# ------------------------------------------------------------ (d) bad input


def _bad_cases(tmp_path):
    text_file = tmp_path / "notes.png"
    text_file.write_text("not an image at all")
    return {
        "init-not-image": ["--init", str(text_file)],
        "init-missing": ["--init", str(tmp_path / "nope.png")],
        "init-dir": ["--init", str(tmp_path)],
        "wavelet": ["--param", "dwt", "--wavelet", "db99"],
        "palette-zero": ["--param", "pixels", "--palette", "0"],
        "palette-negative": ["--param", "pixels", "--palette", "-2"],
        "palette-on-fft": ["--palette", "4"],
        "grid-too-large": ["--param", "pixels", "--grid", "80x16"],
        "grid-garbage": ["--param", "pixels", "--grid", "lots"],
        "svg-for-fft": ["-o", str(tmp_path / "out.svg")],
        "bad-suffix": ["-o", str(tmp_path / "out.jpg")],
        "unknown-param": ["--param", "vqgan"],
        "bad-squash": ["--squash", "relu"],
        "throughout-no-palette": ["--param", "pixels", "--palette-mode", "throughout"],
        "image-prompt-missing": ["--image-prompt", str(tmp_path / "ghost.png")],
        "steps-zero": ["--steps", "0"],
    }


BAD_CASES = [
    "init-not-image",
    "init-missing",
    "init-dir",
    "wavelet",
    "palette-zero",
    "palette-negative",
    "palette-on-fft",
    "grid-too-large",
    "grid-garbage",
    "svg-for-fft",
    "bad-suffix",
    "unknown-param",
    "bad-squash",
    "throughout-no-palette",
    "image-prompt-missing",
    "steps-zero",
]


@pytest.mark.parametrize("case", BAD_CASES)
def test_cli_paint_bad_input(case, tmp_path, capsys):
    args = _bad_cases(tmp_path)[case]
    out = tmp_path / "out.png"
    argv = ["paint", "a red apple", "--size", "64", "-o", str(out), "--clip", TINY, "--steps", "2", "-q", *args]
    rc = main(argv)
    captured = capsys.readouterr()
    assert rc == 2
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vecgen: error: "), captured.err
    for leftover in ("out.png", "out.svg", "out.jpg"):
        assert not (tmp_path / leftover).exists()


def test_cli_config_unknown_key(tmp_path, capsys):
    cfg = tmp_path / "run.toml"
    cfg.write_text("strokes = 5\n")
    assert main(["paint", "x", "--config", str(cfg), "-o", str(tmp_path / "o.png")]) == 2
    assert "unknown option" in capsys.readouterr().err


# ------------------------------------------------------------------ API


def test_api_paint_result(tiny, tmp_path):
    res = api.paint(
        "a lighthouse",
        param="pixels",
        size=(48, 32),
        grid="12x8",
        palette=4,
        steps=2,
        cutouts=2,
        perceptors=tiny,
        quiet=True,
    )
    assert res.image.size == (48, 32) and res.svg is not None
    assert res.settings["param"] == "pixels" and res.settings["palette"] == 4
    assert len(res.history) == 2 and all(k.startswith("clip:") or k == "total" for k in res.history[0])
    res.save(tmp_path / "a.svg")
    res.save(tmp_path / "a.png")
    assert len(res.image.getcolors(48 * 32)) <= 4
    fft = api.paint("a lighthouse", param="fft", size=40, steps=1, cutouts=0, perceptors=tiny, quiet=True)
    with pytest.raises(VecgenError, match="raster"):
        fft.save(tmp_path / "b.svg")
    assert fft.settings["lr"] == 0.05 and fft.settings["decay"] == 1.5


def test_api_paint_init_and_knobs(tiny, tmp_path):
    init = _png(tmp_path / "init.png")
    res = api.paint(
        "a red square",
        param="dwt",
        size=(48, 40),
        init=init,
        wavelet="haar",
        levels=9,
        decay=1.0,
        contrast=1.5,
        colors=0.5,
        squash="tanh",
        lr=0.01,
        steps=1,
        cutouts=2,
        perceptors=tiny,
        quiet=True,
    )
    assert res.settings["levels"] < 9  # clamped to what 48x40 allows
    r, g, b = res.image.resize((1, 1), Image.BOX).getpixel((0, 0))
    assert r > 150 and g < 100 and b < 100  # still the red init after one small step


def test_api_paint_large_size_crops_cutouts(tiny):
    """1280x720 on CPU: the render is full size, CLIP sees cropped cutouts."""
    res = api.paint("a wide valley", param="fft", size="1280x720", steps=1, cutouts=2, perceptors=tiny, quiet=True)
    assert res.image.size == (1280, 720)


def test_api_paint_resume_pixels(tiny, tmp_path):
    ck = tmp_path / "run.ckpt"
    kw = {
        "param": "pixels",
        "size": 32,
        "grid": "8x8",
        "palette": 3,
        "palette_mode": "throughout",
        "cutouts": 2,
        "perceptors": tiny,
        "quiet": True,
    }
    api.paint("a fish", steps=2, checkpoint=ck, **kw)
    res = api.paint("a fish", steps=3, resume=ck, **kw)
    assert len(res.history) == 3


# ------------------------------------------------------ (e) image prompts


@pytest.mark.parametrize("param", ["fft", "pixels"])
def test_image_prompt(param, tiny, tmp_path):
    target = _png(tmp_path / "target.png", colour=(20, 90, 220))
    res = api.paint(
        None,
        param=param,
        size=32,
        grid="8x8",
        image_prompt=[str(target)],
        steps=2,
        cutouts=2,
        perceptors=tiny,
        quiet=True,
    )
    key = f"clip:{tiny[0][0].name}"
    assert len(res.history) == 2 and key in res.history[0]
    assert all(0.0 <= h[key] <= 2.0 for h in res.history)
    both = api.paint(
        "a blue sky",
        param=param,
        size=32,
        grid="8x8",
        image_prompt=[f"{target}:0.5"],
        steps=1,
        cutouts=2,
        clip=TINY,
        quiet=True,
    )
    assert key in both.history[0]


# ------------------------------------------------------------ bounds and cross checks (PaintConfig)


def _no_model(*args, **kwargs):
    raise AssertionError("a model was loaded before the options were checked")


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--param", "pixels", "--palette", "300"], "--palette 300 is above the limit of 256"),
        (["--levels", "0"], "--levels must be >= 1"),
        (["--levels", "99"], "--levels 99 is above the limit of 16"),
        (["--lr", "0"], "--lr must be > 0"),
        (["--lr", "nan"], "--lr must be finite"),
        (["--decay", "inf"], "--decay must be finite"),
        (["--param", "pixels", "--grid", "0x4"], "grid columns must be positive"),
        (["--param", "pixels", "--grid", "5000x4"], "grid columns 5000 is above the limit of 4096"),
        (["--param", "pixels", "--grid", "65x8"], "--grid 65x8 is larger than the 64x64 image"),
        (["--param", "pixels", "--grid", "65"], "--grid 65x65 is larger than the 64x64 image"),
        (["--palette", "4"], '--palette only applies to param "pixels"'),
        (["--param", "pixels", "--palette-mode", "throughout"], '--palette-mode "throughout" needs a palette'),
    ],
)
def test_cli_paint_bounds_refused_before_any_model_loads(args, needle, tmp_path, capsys, monkeypatch):
    from vecgen.backends import perceptors

    monkeypatch.setattr(perceptors, "load_perceptor", _no_model)
    out = tmp_path / "out.png"
    rc = main(["paint", "a red apple", "--size", "64", "-o", str(out), "--clip", TINY, "--steps", "2", "-q", *args])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and needle in err, err
    assert not out.exists() and not out.with_suffix(".svg").exists()


def test_api_paint_config_checks_and_twin(tiny, tmp_path):
    """The API refuses what the CLI refuses (same config); pixel art's result saves its twin with save_all."""
    from vecgen.api.paint import PaintConfig

    with pytest.raises(VecgenError, match='--palette only applies to param "pixels"'):
        api.paint("x", palette=4, perceptors=tiny)
    with pytest.raises(VecgenError, match="--grid 8x40 is larger than the 32x32 image"):
        api.paint("x", param="pixels", size=32, grid=[8, 40], perceptors=tiny)
    assert PaintConfig.check_values({"param": "PIXELS", "grid": 16, "palette": 3}) == {
        "param": "PIXELS",
        "grid": 16,
        "palette": 3,
    }
    res = api.paint(
        "a lighthouse", param="pixels", size=16, grid=4, palette=2, steps=1, cutouts=0, perceptors=tiny, quiet=True
    )
    saved = res.save_all(tmp_path / "art.png")
    assert [p.name for p in saved] == ["art.svg", "art.png"] and all(p.is_file() for p in saved)
    plain = api.paint("a lighthouse", size=16, steps=1, cutouts=0, perceptors=tiny, quiet=True)
    assert [p.name for p in plain.save_all(tmp_path / "fft.png")] == ["fft.png"]
