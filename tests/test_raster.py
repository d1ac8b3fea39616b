"""Native rasterizer: conformance against resvg, analytic AA, gradients vs finite differences."""

import io
import json

import numpy as np
import pytest
import torch
from PIL import Image

from vecgen.backends.raster.native import composite, rasterize
from vecgen.scene import Path, Scene, line_to_cubic
from vecgen.svg import read_svg


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / max(np.mean((a - b) ** 2), 1e-12)))


def resvg_render(svg_path) -> np.ndarray:
    resvg_py = pytest.importorskip("resvg_py")
    png = bytes(resvg_py.svg_to_bytes(svg_path=str(svg_path)))
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.float64) / 255


def native_render(svg_path) -> np.ndarray:
    scene = read_svg(svg_path)
    with torch.no_grad():
        img = composite(rasterize(scene), torch.ones(3))
    return img.permute(1, 2, 0).double().numpy()


SCENES = [
    "strokes_thin",
    "strokes_wide",
    "blobs",
    "mixed",
    "dense_512",
    "pixels",
    "nonsquare",
    "star_nonzero",
    "star_evenodd",
]


@pytest.mark.parametrize("name", SCENES)
def test_conformance_vs_resvg(shared_dir, name):
    svg = shared_dir / "conformance" / f"{name}.svg"
    cal = json.loads((shared_dir / "conformance" / "calibration.json").read_text())[name]
    ours = native_render(svg)
    assert ours.shape == (cal["H"], cal["W"], 3)
    score = psnr(ours, resvg_render(svg))
    assert score >= 32.0, f"{name}: {score:.2f} dB vs resvg"


def _square(x0, y0, x1, y1, rgba=(1.0, 0.0, 0.0, 1.0), rule="nonzero"):
    corners = [torch.tensor(c, dtype=torch.float32) for c in [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]]
    pts = [corners[0]]
    for a, b in zip(corners, corners[1:] + corners[:1]):
        pts.extend(line_to_cubic(a, b))
    pts = torch.stack(pts[:-1])
    return Path(pts, closed=True, fill=torch.tensor(rgba), fill_rule=rule)


def test_axis_aligned_square_exact_coverage():
    # A square on pixel boundaries covers whole pixels exactly; half-pixel edges give 0.5.
    scene = Scene(8, 8, [_square(2, 2, 6, 6)])
    rgba = rasterize(scene)
    a = rgba[3]
    assert torch.allclose(a[2:6, 2:6], torch.ones(4, 4), atol=1e-5)
    assert float(a[:2].abs().max()) < 1e-6 and float(a[6:].abs().max()) < 1e-6
    half = rasterize(Scene(8, 8, [_square(2.5, 2, 6, 6)]))[3]
    assert abs(float(half[3, 2]) - 0.5) < 1e-4 and abs(float(half[3, 3]) - 1.0) < 1e-5
    # edges running exactly through pixel centres: those pixels are half covered on every side
    centred = rasterize(Scene(10, 10, [_square(2.5, 2.5, 6.5, 6.5)]))[3]
    assert float(centred[2, 4]) == pytest.approx(0.5, abs=1e-4) and float(centred[6, 4]) == pytest.approx(0.5, abs=1e-4)
    assert float(centred[4, 2]) == pytest.approx(0.5, abs=1e-4) and float(centred[4, 6]) == pytest.approx(0.5, abs=1e-4)
    assert float(centred[4, 4]) == pytest.approx(1.0)


def test_evenodd_vs_nonzero_star_centre():
    # A pentagram: the centre has winding 2, filled under non-zero, empty under even-odd.
    import math

    ang = [math.radians(-90 + 144 * k) for k in range(5)]
    corners = [torch.tensor([32 + 28 * math.cos(a), 32 + 28 * math.sin(a)]) for a in ang]
    pts = [corners[0]]
    for a, b in zip(corners, corners[1:] + corners[:1]):
        pts.extend(line_to_cubic(a, b))
    pts = torch.stack(pts[:-1])
    res = {}
    for rule in ("nonzero", "evenodd"):
        res[rule] = rasterize(Scene(64, 64, [Path(pts, True, fill=torch.tensor([0, 0, 1, 1.0]), fill_rule=rule)]))[3]
    assert float(res["nonzero"][32, 32]) == pytest.approx(1.0)
    assert float(res["evenodd"][32, 32]) == pytest.approx(0.0)
    assert float(res["evenodd"][10, 32]) == pytest.approx(1.0)  # a star point is filled under both rules
    # no seam along the inner edges under non-zero: every pixel near the centre is fully covered
    assert float(res["nonzero"][26:38, 26:38].min()) > 0.999


def test_stroke_width_is_full_width_and_round_caps():
    p = torch.stack([torch.tensor([4.0, 10.0]), *line_to_cubic(torch.tensor([4.0, 10.0]), torch.tensor([16.0, 10.0]))])
    scene = Scene(20, 20, [Path(p, stroke_width=torch.tensor(4.0), stroke=torch.tensor([0, 0, 0, 1.0]))])
    a = rasterize(scene)[3]
    col = a[:, 10]
    assert float(col.sum()) == pytest.approx(4.0, abs=0.05)  # full width 4 px
    # round cap: coverage extends ~2 px before the start point, not beyond 2.5
    assert float(a[10, 2]) > 0.9 and float(a[10, 1]) < 0.6 and float(a[10, 0]) < 1e-6


def _random_scene(seed=0, n=6, size=32):
    g = torch.Generator().manual_seed(seed)
    paths = []
    for i in range(n):
        pts = torch.rand(7, 2, generator=g) * size * 0.8 + size * 0.1
        if i % 2:
            paths.append(Path(pts[:6], closed=True, fill=torch.rand(4, generator=g) * 0.5 + 0.4))
        else:
            paths.append(Path(pts, stroke_width=torch.tensor(2.0 + i), stroke=torch.rand(4, generator=g) * 0.5 + 0.4))
    return Scene(size, size, paths, torch.ones(3))


def test_gradients_match_finite_differences():
    torch.manual_seed(0)
    scene = _random_scene()
    weights = torch.rand(3, 32, 32, dtype=torch.float64)
    params = []
    for p in scene.paths:
        p.points = p.points.double().requires_grad_(True)
        params.append(p.points)
        if p.stroke is not None:
            p.stroke_width = p.stroke_width.double().requires_grad_(True)
            params.append(p.stroke_width)
        colour = p.stroke if p.stroke is not None else p.fill
        colour.requires_grad_(True)
        params.append(colour)

    def loss():
        return (composite(rasterize(scene), scene.background) * weights).sum()

    loss().backward()
    eps = 1e-3  # small enough not to cross the coverage clamps' kinks
    checked = 0
    for t in params:
        flat = t.data.view(-1)
        for k in range(min(flat.numel(), 4)):
            old = float(flat[k])
            flat[k] = old + eps
            up = float(loss().detach())
            flat[k] = old - eps
            down = float(loss().detach())
            flat[k] = old
            fd = (up - down) / (2 * eps)
            an = float(t.grad.view(-1)[k])
            assert an == pytest.approx(fd, rel=1e-3, abs=1e-3), (t.shape, k, an, fd)
            checked += 1
    assert checked > 20


def test_memory_bounded_for_many_paths():
    # 1,024 paths at 512x512 must not allocate paths x pixels (that alone would be 1 GB).
    import tracemalloc

    g = torch.Generator().manual_seed(1)
    paths = []
    for _ in range(1024):
        p0 = torch.rand(2, generator=g) * 512
        pts = torch.cat([p0[None], p0 + torch.cumsum((torch.rand(9, 2, generator=g) - 0.5) * 40, 0)])
        paths.append(Path(pts, stroke_width=torch.tensor(2.0), stroke=torch.rand(4, generator=g)))
    scene = Scene(512, 512, paths)
    tracemalloc.start()
    with torch.no_grad():
        rgba = rasterize(scene)
    tracemalloc.stop()
    assert rgba.shape == (4, 512, 512)
    assert float(rgba[3].max()) <= 1.0 + 1e-5 and float(rgba[3].mean()) > 0.05


def test_offscreen_and_degenerate_paths():
    pts = torch.tensor([[-50.0, -50], [-40, -40], [-30, -45], [-20, -50]])
    dot = torch.tensor([[5.0, 5], [5, 5], [5, 5], [5, 5]])
    scene = Scene(
        10,
        10,
        [
            Path(pts, stroke=torch.tensor([1, 0, 0, 1.0]), stroke_width=torch.tensor(2.0)),
            Path(dot, stroke=torch.tensor([0, 0, 0, 1.0]), stroke_width=torch.tensor(3.0)),
        ],
    )
    a = rasterize(scene)[3]
    assert torch.isfinite(a).all()
    assert float(a[5, 5]) > 0.9 and float(a[0, 0]) == 0.0  # a zero-length stroke is a round dot


@pytest.mark.slow  # 256 strokes at 224 px on 2 threads, twice per shape (20 s on 2 busy cores)
def test_gradients_are_bitwise_reproducible_with_threads():
    """Same scene, same gradients, byte for byte, with 2 CPU threads.

    The backward of ``x[idx]`` accumulates repeated indices in a thread-dependent order;
    it made the colour gradient (and so every seed's SVG) vary run to run.
    """
    from vecgen.params.strokes import Strokes

    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:

        def grads(shapes):
            p = Strokes((224, 224), strokes=256, shapes=shapes, seed=0)
            img = p.render()
            return torch.autograd.grad(
                img.square().sum(), [p.points, p.widths, p.stroke_rgba, p.fill_rgba], allow_unused=True
            )

        for shapes in ("strokes", "mixed"):
            first = grads(shapes)
            for _ in range(2):
                again = grads(shapes)
                assert all((a is None and b is None) or torch.equal(a, b) for a, b in zip(first, again)), shapes
    finally:
        torch.set_num_threads(threads)
