"""sketch: N open black strokes on white, saliency puts them on the object, SVG == engine raster, bad input."""

from __future__ import annotations

import io
import math
import re

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

import vecgen
from vecgen.api.sketch_init import edges, place_strokes, saliency, start_points, trace_strokes
from vecgen.backends.perceptors import load_perceptor
from vecgen.cli import main

FAST = dict(quiet=True, device="cpu", seed=0, clip="mini-vit", cutouts=2, work_size=64)


def _square(tmp_path, name: str = "square.png"):
    """96x72 white picture with a dark square (x 56..84, y 20..48): the object, off centre."""
    im = Image.new("RGB", (96, 72), "white")
    ImageDraw.Draw(im).rectangle((56, 20, 84, 48), fill=(30, 30, 40))
    path = tmp_path / name
    im.save(path)
    return path


def _resvg(svg: str) -> np.ndarray:
    resvg_py = pytest.importorskip("resvg_py")
    png = bytes(resvg_py.svg_to_bytes(svg_string=svg))
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(np.float64) / 255


def test_a_short_run_writes_n_open_black_strokes_on_white(tmp_path):
    res = vecgen.sketch(_square(tmp_path), strokes=6, steps=4, **FAST)
    paths = re.findall(r"<path[^>]*>", res.svg)
    assert len(paths) == 6 and res.settings["strokes_written"] == 6
    for p in paths:
        assert " fill=" not in p and 'stroke="#000000"' in p, p  # no fill of its own: the <g>'s none
        d = re.search(r' d="([^"]*)"', p).group(1)
        assert "z" not in d.lower(), d  # open
    assert re.search(r'<rect[^>]*fill="#ffffff"', res.svg) and '<g fill="none"' in res.svg, res.svg[:400]
    assert 'width="64" height="48"' in res.svg  # the photo's aspect, longest side work_size
    img = np.asarray(res.image.convert("L"))
    assert img.max() == 255 and img.min() < 100  # white paper, dark ink


def test_colour_option_colours_the_strokes(tmp_path):
    res = vecgen.sketch(_square(tmp_path), strokes=3, steps=2, color="#ff0000", **FAST)
    strokes = re.findall(r'stroke="([^"]*)"', res.svg)
    assert strokes == ["#ff0000"] * 3


def test_saliency_puts_strokes_on_the_object(tmp_path):
    from vecgen.api.sketch import load_photo

    photo = load_photo(Image.open(_square(tmp_path)), 96)
    p = load_perceptor("mini-vit")
    sal = saliency(p, photo)
    assert sal.shape == (72, 96)
    on = sal[16:53, 52:89].mean()
    off = torch.cat([sal[:, :40].flatten(), sal[60:, :].flatten()]).mean()
    assert on > 4 * off, (float(on), float(off))
    paths = place_strokes(sal, 12, 1, 2.0, torch.tensor([0.0, 0.0, 0.0, 1.0]), seed=3)
    starts = torch.stack([q.points[0] for q in paths])
    inside = ((starts[:, 0] > 48) & (starts[:, 0] < 92) & (starts[:, 1] > 12) & (starts[:, 1] < 56)).float()
    assert inside.mean() >= 0.9, starts
    # and the verb itself starts there: its first step's strokes sit on the square
    seen = []
    vecgen.sketch(
        _square(tmp_path),
        strokes=8,
        steps=1,
        callbacks=[lambda s, q, v: seen.append(q.points.detach().clone())],
        **FAST,
    )
    pts = seen[0] * (96 / 64)  # work_size 64 -> picture pixels
    assert ((pts[:, 0] > 40) & (pts[:, 1] > 4) & (pts[:, 1] < 64)).float().mean() >= 0.8, pts


def test_contour_starts_trace_the_object_outline(tmp_path):
    from vecgen.api.sketch import load_photo

    photo = load_photo(Image.open(_square(tmp_path)), 96)  # square edges at x 56, 84 and y 20, 48
    paths = trace_strokes(edges(photo), photo, 4, 2, 2.0, torch.tensor([0.0, 0.0, 0.0, 1.0]))
    assert len(paths) == 4 and all(len(q.points) == 7 for q in paths)  # 2 cubics each
    for q in paths:
        ends = q.points[[0, -1]]
        assert float((ends[0] - ends[1]).norm()) > 12, q.points  # a contour, not a dot
        x, y = q.points[:, 0], q.points[:, 1]
        to_edge = torch.minimum(
            torch.minimum((x - 56).abs(), (x - 84).abs()).where((y > 17) & (y < 51), torch.tensor(99.0)),
            torch.minimum((y - 20).abs(), (y - 48).abs()).where((x > 53) & (x < 87), torch.tensor(99.0)),
        )
        assert float(to_edge[[0, 3, 6]].max()) < 4, q.points  # the joints lie on the outline
    # and they take different sides: no two strokes start on the same spot
    starts = torch.stack([q.points[0] for q in paths])
    assert float(torch.pdist(starts).min()) > 3, starts
    # a trace that finds no way on is a dot where it started, not a cubic pulled to the origin
    from vecgen.api.sketch_init import _bezier_fit

    dot = _bezier_fit(torch.tensor([[30.5, 20.5]]).repeat(4, 1))
    assert torch.equal(dot, torch.tensor([[30.5, 20.5]]).repeat(4, 1))


def test_class_term_targets_the_photos_own_top_classes():
    from vecgen.api.sketch import photo_classes, sketch_terms

    p = load_perceptor("efficientnet-lite0@random")
    photo = torch.rand(1, 3, 40, 56)
    prompts = photo_classes(p, photo, 5)
    with torch.no_grad():
        top = p.logits(photo).softmax(-1)[0].topk(5)
    assert [q.text for q in prompts] == [f"#{int(i)}" for i in top.indices]
    assert abs(sum(q.weight for q in prompts) - 1) < 1e-5 and prompts[0].weight >= prompts[-1].weight
    terms = sketch_terms([(p, 1.0)], photo, 1.0, 0.0, classes=2.0)
    assert [t.name.split(":")[0] for t in terms] == ["classes", "semantic"] and terms[0].weight == 2.0
    mini = load_perceptor("mini-vit")  # no classes: no class term
    assert [t.name.split(":")[0] for t in sketch_terms([(mini, 1.0)], photo, 1.0, 0.0, classes=2.0)] == ["semantic"]


def test_start_points_spread_over_cells():
    w = torch.zeros(40, 40)
    w[10:30, 10:30] = 1
    pts = start_points(w, 16, torch.Generator().manual_seed(0), cell=5)
    assert pts.shape == (16, 2)
    assert len({(int(x) // 5, int(y) // 5) for x, y in pts.tolist()}) == 16  # one per cell
    assert bool(((pts >= 10) & (pts < 30)).all())


def test_exported_svg_matches_the_engine_raster(tmp_path):
    res = vecgen.sketch(_square(tmp_path), strokes=8, steps=10, width=3.0, **FAST)
    with torch.no_grad():
        mine = res.param.render()[0].permute(1, 2, 0).numpy().astype(np.float64)
    theirs = _resvg(res.svg)
    assert theirs.shape == mine.shape
    assert (mine < 0.5).any()  # ink to compare
    psnr = 10 * math.log10(1 / np.mean((mine - theirs) ** 2))
    assert psnr >= 30, psnr


@pytest.mark.parametrize(
    "args, message",
    [
        (["{bad}"], "not a recognised image"),
        (["{missing}"], "not found"),
        (["{ok}", "--strokes", "0"], "--strokes must be >= 1"),
        (["{ok}", "--strokes", "20000"], "above the limit"),
        (["{ok}", "--color", "blurple"], "colour"),
        (["{ok}", "--width", "0"], "--width"),
        (["{ok}", "--steps", "0"], "--steps must be >= 1"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, args, message):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a picture")
    names = {"bad": bad, "missing": tmp_path / "nope.png", "ok": _square(tmp_path)}
    argv = ["sketch", *(a.format(**names) for a in args), "-o", str(tmp_path / "o.svg"), "-q", "--clip", "mini-vit"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("vecgen: error:") and message in err, err
    assert not (tmp_path / "o.svg").exists()


def test_cli_writes_the_svg(tmp_path):
    out = tmp_path / "s.svg"
    src = _square(tmp_path, "sq.webp")
    assert (
        main(
            [
                "sketch",
                str(src),
                "-o",
                str(out),
                "--strokes",
                "4",
                "--steps",
                "2",
                "-q",
                "--clip",
                "mini-vit",
                "--cutouts",
                "2",
                "--work-size",
                "64",
            ]
        )
        == 0
    )
    assert out.read_text().count("<path") == 4
