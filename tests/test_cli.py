"""`vecgen draw` / `vecgen render` end to end, and every bad input as one line + exit 2."""

import io
import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from conftest import TINY
from vecgen.cli import main


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def small(*extra):
    return ["--clip", TINY, "--steps", "3", "--strokes", "8", "--size", "48", "--cutouts", "2", "-q", *extra]


def test_draw_end_to_end_svg_matches_raster(tmp_path, capsys):
    """Real run through the CLI: the SVG parses, renders in resvg like the engine's raster."""
    resvg_py = pytest.importorskip("resvg_py")
    out = tmp_path / "a.svg"
    code, stdout, err = run_cli(
        capsys,
        "draw",
        "a red circle",
        "-o",
        str(out),
        "--clip",
        TINY,
        "--steps",
        "6",
        "--strokes",
        "24",
        "--size",
        "96",
        "--cutouts",
        "2",
        "--shapes",
        "mixed",
        "-q",
    )
    assert code == 0, err
    text = out.read_text()
    assert "<metadata>" in text and "a red circle" in text
    png = tmp_path / "engine.png"
    assert main(["render", str(out), "-o", str(png)]) == 0
    engine = np.asarray(Image.open(png).convert("RGB"), dtype=np.float64) / 255
    viewer = np.asarray(Image.open(io.BytesIO(bytes(resvg_py.svg_to_bytes(svg_path=str(out))))).convert("RGB")) / 255
    psnr = 10 * np.log10(1 / np.mean((engine - viewer) ** 2))
    assert psnr >= 35, psnr


def test_same_seed_same_bytes(tmp_path, capsys):
    a, b, c = tmp_path / "a.svg", tmp_path / "b.svg", tmp_path / "c.svg"
    assert main(["draw", "a boat", "-o", str(a), *small("--seed", "3")]) == 0
    assert main(["draw", "a boat", "-o", str(b), *small("--seed", "3")]) == 0
    assert main(["draw", "a boat", "-o", str(c), *small("--seed", "4")]) == 0
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()


def test_png_output_has_metadata(tmp_path, capsys):
    out = tmp_path / "a.png"
    assert main(["draw", "a tree:1 | blurry:-0.5", "-o", str(out), *small("--seed", "7")]) == 0
    im = Image.open(out)
    assert im.size == (48, 48)
    assert im.text["prompt"] == "a tree:1 | blurry:-0.5" and im.text["seed"] == "7"
    assert "vecgen" in im.text["software"] and '"strokes": 8' in im.text["settings"]


def test_views_flag_changes_the_drawing_and_is_recorded(tmp_path, capsys):
    """--views: auto resolves to crops for a model without a hint; zoom gives other views, so other bytes."""
    auto, crops, zoom = tmp_path / "auto.png", tmp_path / "crops.png", tmp_path / "zoom.png"
    assert main(["draw", "a kite", "-o", str(auto), *small()]) == 0
    assert main(["draw", "a kite", "-o", str(crops), *small("--views", "crops")]) == 0
    assert main(["draw", "a kite", "-o", str(zoom), *small("--views", "zoom")]) == 0
    settings = {k: json.loads(Image.open(f).text["settings"]) for k, f in (("a", auto), ("c", crops), ("z", zoom))}
    assert settings["a"]["views"] == settings["c"]["views"] == "crops" and settings["z"]["views"] == "zoom"
    assert settings["a"]["steps"] == 3
    pixels = {k: np.asarray(Image.open(f)) for k, f in (("a", auto), ("c", crops), ("z", zoom))}
    assert np.array_equal(pixels["a"], pixels["c"]) and not np.array_equal(pixels["c"], pixels["z"])


def test_config_file_and_flag_override(tmp_path, capsys):
    cfg = tmp_path / "run.toml"
    cfg.write_text(f'clip = "{TINY}"\nsteps = 2\nstrokes = 5\nsize = "40x24"\ncutouts = 0\nquiet = true\n')
    out = tmp_path / "a.svg"
    assert main(["draw", "a cat", "--config", str(cfg), "--size", "32x20", "-o", str(out)]) == 0
    text = out.read_text()
    assert 'width="32" height="20"' in text and text.count("<path") == 5


def test_snapshots_checkpoint_resume(tmp_path, capsys):
    snaps, ck = tmp_path / "frames", tmp_path / "run.ckpt"
    out1, out2 = tmp_path / "full.svg", tmp_path / "resumed.svg"
    base = ["--clip", TINY, "--strokes", "6", "--size", "40", "--cutouts", "2", "-q", "--seed", "1"]
    assert main(["draw", "a fish", "-o", str(out1), "--steps", "4", *base]) == 0
    assert (
        main(
            [
                "draw",
                "a fish",
                "-o",
                str(tmp_path / "half.svg"),
                "--steps",
                "2",
                "--checkpoint",
                str(ck),
                "--snapshots",
                str(snaps),
                "--every",
                "1",
                *base,
            ]
        )
        == 0
    )
    assert sorted(p.name for p in snaps.iterdir()) == ["00001.png", "00001.svg", "00002.png", "00002.svg"]
    assert main(["draw", "a fish", "-o", str(out2), "--steps", "4", "--resume", str(ck), *base]) == 0
    assert out2.read_text().count("<path") == out1.read_text().count("<path")


def test_init_from_svg(tmp_path, capsys):
    init = tmp_path / "init.svg"
    init.write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" width="20" height="20">'
        '<path d="M 2 2 C 5 5 10 10 18 18" stroke="red" stroke-width="2" fill="none"/></svg>'
    )
    out = tmp_path / "a.svg"
    assert main(["draw", "a line", "--init", str(init), "-o", str(out), *small()]) == 0
    assert out.read_text().count("<path") == 1


BAD = [
    (["draw", "", "-o", "{tmp}/x.svg"], "empty prompt"),
    (["draw", "a", "-o", "{tmp}/x.svg", "--clip", "NoSuchModel"], "unknown CLIP model"),
    (["draw", "a", "-o", "{tmp}/x.svg", "--clip", "ViT-B-32@openai"], "cannot be downloaded"),
    (["draw", "a", "-o", "{tmp}/x.svg", "--steps", "0"], "steps"),
    (["draw", "a", "-o", "{tmp}/x.svg", "--size", "0"], "positive"),
    (["draw", "a", "-o", "{tmp}/x.svg", "--size", "100000"], "limit"),
    (["draw", "a", "-o", "{tmp}/nodir/x.svg"], "does not exist"),
    (["draw", "a", "-o", "{tmp}/x.svg", "--init", "{tmp}/missing.svg"], "no such file"),
    (["draw", "a", "-o", "{tmp}/x.svg", "--init", "{tmp}/evil.svg"], "unsafe"),
    (["draw", "a", "-o", "{tmp}/x.svg", "--init", "{tmp}/broken.svg"], "malformed"),
    (["draw", "a", "-o", "{tmp}/x.svg", "--config", "{tmp}/bad.toml"], "unknown option 'colour'"),
    (["draw", "a", "-o", "{tmp}/x.svg", "--width", "5,1"], "width"),
    (["draw", "a", "-o", "{tmp}/x.svg", "--rasterizer", "diffvg"], "pydiffvg"),
    (["draw", "a", "-o", "{tmp}/x.svg", "--nope"], "unrecognized"),
    (["render", "{tmp}/broken.svg", "-o", "{tmp}/x.png"], "malformed"),
]


@pytest.mark.parametrize("argv,needle", BAD)
def test_bad_input_one_line_exit_2(tmp_path, capsys, argv, needle):
    (tmp_path / "evil.svg").write_text(
        '<?xml version="1.0"?><!DOCTYPE s [<!ENTITY a "aaaa">]>'
        '<svg xmlns="http://www.w3.org/2000/svg" width="5" height="5">&a;</svg>'
    )
    (tmp_path / "broken.svg").write_text("<svg><path d=")
    (tmp_path / "bad.toml").write_text("steps = 3\ncolour = 'red'\n")
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    if argv[0] == "draw" and "--clip" not in argv:
        argv += ["--clip", TINY]
    code, out, err = run_cli(capsys, *argv, *(["-q"] if argv[0] == "draw" else []))
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], err
    assert "Traceback" not in err
    assert not (tmp_path / "x.svg").exists() and not (tmp_path / "x.png").exists()


def test_cli_subprocess_help_and_error_is_one_line(tmp_path):
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "vecgen.cli",
            "draw",
            "x",
            "--steps",
            "-1",
            "--clip",
            TINY,
            "-o",
            str(tmp_path / "a.svg"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "steps" in r.stderr
