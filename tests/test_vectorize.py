"""vectorize: growth helps, alpha stays transparent, palettes hold, SVG == engine raster, exact resume, bad input."""

from __future__ import annotations

import io
import math
import re

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

import vecgen
from vecgen.cli import main
from vecgen.engine import StopRun
from vecgen.params.vector_regions import components, fit_closed_cubics, trace_boundary
from vecgen.params.vector_svg import compact_d

FAST = dict(quiet=True, device="cpu", seed=0)


def _picture(tmp_path, alpha: bool = False):
    """64x64: a backdrop with a red disc, a blue bar and a yellow triangle (transparent backdrop if ``alpha``)."""
    im = Image.new("RGBA", (64, 48), (0, 0, 0, 0) if alpha else (235, 240, 230, 255))
    d = ImageDraw.Draw(im)
    d.ellipse((6, 6, 30, 30), fill=(220, 40, 50, 255))
    d.rectangle((34, 8, 58, 18), fill=(40, 80, 200, 255))
    d.polygon([(36, 44), (60, 44), (48, 24)], fill=(250, 200, 40, 255))
    path = tmp_path / ("alpha.png" if alpha else "shapes.png")
    im.save(path)
    return path


def _fills(svg: str) -> list[str]:
    return re.findall(r'<path fill="(#[0-9a-f]+)"', svg)


def _resvg(svg: str) -> np.ndarray:
    resvg_py = pytest.importorskip("resvg_py")
    png = bytes(resvg_py.svg_to_bytes(svg_string=svg))
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGBA")).astype(np.float64) / 255


def test_psnr_rises_as_paths_grow(tmp_path):
    src = _picture(tmp_path)
    scores = [vecgen.vectorize(src, paths=n, steps=60, **FAST).settings["psnr"] for n in (1, 3)]
    assert scores[1] > scores[0] + 3, scores
    assert scores[1] > 25


def test_transparent_background_stays_transparent(tmp_path):
    res = vecgen.vectorize(_picture(tmp_path, alpha=True), paths=3, steps=60, **FAST)
    assert "<rect" not in res.svg
    assert res.image.mode == "RGBA" and res.image.getpixel((0, 0))[3] == 0
    out = _resvg(res.svg)
    assert out[0, 0, 3] == 0 and out[-1, 0, 3] == 0  # corners: nothing drawn
    assert out[18, 18, 3] > 0.99 and out[18, 18, 0] > 0.7  # the red disc is there, opaque


def test_palette_keeps_every_fill_in_the_palette(tmp_path):
    palette = ["#ffffff", "#000000", "#ff0000", "#0000ff", "#ffff00"]
    res = vecgen.vectorize(_picture(tmp_path), paths=4, steps=40, palette=",".join(palette), **FAST)
    fills = _fills(res.svg)
    short = {"#fff": "#ffffff", "#000": "#000000", "#f00": "#ff0000", "#00f": "#0000ff", "#ff0": "#ffff00"}
    assert fills and all(short.get(f, f) in palette for f in fills), fills
    rect = re.search(r'<rect [^>]*fill="(#[0-9a-f]+)"', res.svg)
    assert rect and short.get(rect.group(1), rect.group(1)) in palette
    k = vecgen.vectorize(_picture(tmp_path), paths=4, steps=20, colors=2, **FAST)
    assert len(set(_fills(k.svg))) <= 2


def test_exported_svg_matches_the_engine_raster(tmp_path):
    res = vecgen.vectorize(_picture(tmp_path), paths=4, steps=60, **FAST)
    with torch.no_grad():
        mine = res.param.render_rgba()[0, :3].permute(1, 2, 0).numpy().astype(np.float64)
    theirs = _resvg(res.svg)[..., :3]
    assert theirs.shape == mine.shape
    psnr = 10 * math.log10(1 / np.mean((mine - theirs) ** 2))
    assert psnr >= 35, psnr


def test_resume_gives_the_same_bytes(tmp_path):
    src = _picture(tmp_path)
    opts = dict(paths=4, steps=40, **FAST)
    full = vecgen.vectorize(src, **opts)
    ck = tmp_path / "ck.pt"

    def stop(step, param, values):
        if step == 17:  # mid-growth: stages start at steps 0, 12, 24
            raise StopRun

    part = vecgen.vectorize(src, checkpoint=ck, callbacks=[stop], **opts)
    assert part.interrupted and len(part.history) == 17
    resumed = vecgen.vectorize(src, resume=ck, **opts)
    assert resumed.svg == full.svg
    assert resumed.history == full.history


def test_output_keeps_the_input_size_and_init_refines(tmp_path):
    big = tmp_path / "big.png"
    Image.open(_picture(tmp_path)).resize((256, 192)).save(big)
    res = vecgen.vectorize(big, paths=3, steps=30, work_size=64, **FAST)
    assert 'width="256" height="192"' in res.svg
    first = tmp_path / "first.svg"
    first.write_text(res.svg)
    again = vecgen.vectorize(big, paths=3, steps=30, work_size=64, init=first, **FAST)
    assert again.settings["psnr"] >= res.settings["psnr"] - 0.5


def test_a_photo_gets_more_segments_and_a_decimal(tmp_path):
    y, x = np.mgrid[0:48, 0:64]
    noise = np.random.default_rng(0).normal(0, 12, (48, 64, 3))
    photo = Image.fromarray((np.stack([x * 3, y * 4, (x + y) * 2], 2) + 40 + noise).clip(0, 255).astype(np.uint8))
    res = vecgen.vectorize(photo, paths=2, steps=4, **FAST)
    assert (res.settings["segments"], res.settings["decimals"]) == (24, 1)
    assert re.search(r' d="[^"]*\.\d', res.svg), res.svg  # tenths of a pixel written
    flat = vecgen.vectorize(_picture(tmp_path), paths=2, steps=4, **FAST)  # flat colours: the icon defaults
    assert (flat.settings["segments"], flat.settings["decimals"]) == (4, 0)
    assert not re.search(r' d="[^"]*\.\d', flat.svg), flat.svg
    mine = vecgen.vectorize(photo, paths=2, steps=4, segments=5, decimals=0, **FAST)
    assert (mine.settings["segments"], mine.settings["decimals"]) == (5, 0)


@pytest.mark.parametrize(
    "args, message",
    [
        (["{bad}"], "not a recognised image"),
        (["{missing}"], "not found"),
        (["{ok}", "--paths", "0"], "--paths must be >= 1"),
        (["{ok}", "--palette", "#12345g,#fff"], "bad --palette colour"),
        (["{ok}", "--palette", "#fff", "--colors", "3"], "not both"),
        (["{ok}", "--init", "{missing}"], "not found"),
        (["{ok}", "--paths", "20000"], "above the limit"),
        (["{ok}", "--steps", "0"], "--steps must be >= 1"),
        (["{ok}", "--colors", "0"], "--colors must be >= 1"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, args, message):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a picture")
    names = {"bad": bad, "missing": tmp_path / "nope.png", "ok": _picture(tmp_path)}
    argv = ["vectorize", *(a.format(**names) for a in args), "-o", str(tmp_path / "o.svg"), "-q"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("vecgen: error:") and message in err, err
    assert not (tmp_path / "o.svg").exists()


def test_geometry_helpers():
    mask = torch.zeros(8, 10, dtype=torch.bool)
    mask[1:3, 1:3] = True
    mask[4:8, 5:9] = True
    lab = components(mask)
    assert len(set(lab[mask].tolist())) == 2 and bool((lab[~mask] == -1).all())
    ring = np.zeros((40, 40), bool)
    yy, xx = np.mgrid[:40, :40]
    r = np.hypot(xx - 20, yy - 20)
    ring[(r < 15) & (r > 8) & (yy < 20)] = True  # an arch: its centroid lies outside it
    poly = trace_boundary(ring)
    assert all(ring[y, x] for x, y in poly) and len(poly) > 40
    ctrl = fit_closed_cubics(poly.astype(float), 4)
    assert ctrl.shape == (12, 2)
    assert (
        compact_d([[0.0, 0.0], [1.0, 0.0], [2.0, 1.0], [3.0, 3.0], [2.0, 4.0], [1.0, 2.0]], 0)
        == "M0 0c1 0 2 1 3 3-1 1-2-1-3-3z"
    )
