"""Tests of the pixel-art parameterization (vecgen.params.pixels)."""

from __future__ import annotations

import io

import pytest
import torch
import torch.nn.functional as F

from vecgen.backends.raster import NativeRasterizer, composite
from vecgen.errors import VecgenError
from vecgen.params.base import Parameterization
from vecgen.params.pixels import PixelArt, kmeans_palette, parse_grid
from vecgen.params.raster_base import psnr
from vecgen.svg import read_svg, svg_to_scene


@pytest.fixture(autouse=True)
def _modest_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(min(2, before))
    yield
    torch.set_num_threads(before)


def make_target(width: int, height: int) -> torch.Tensor:
    """Procedural test picture: colour gradient, a red box, a blue disc, a dark bar."""
    yy, xx = torch.meshgrid(torch.linspace(0, 1, height), torch.linspace(0, 1, width), indexing="ij")
    img = torch.stack([0.15 + 0.7 * xx, 0.2 + 0.6 * yy, 0.8 - 0.6 * xx * yy])
    img[:, int(0.1 * height) : int(0.3 * height), int(0.12 * width) : int(0.5 * width)] = torch.tensor(
        [0.95, 0.1, 0.1]
    )[:, None, None]
    disc = ((xx - 0.65) ** 2 + (yy - 0.6) ** 2).sqrt() < 0.2
    img[:, disc] = torch.tensor([0.1, 0.2, 0.9])[:, None]
    img[:, int(0.73 * height) : int(0.83 * height), :] = 0.05
    img[:, : max(1, height // 12), -max(1, width // 12) :] = 1.0
    img[:, -max(1, height // 12) :, : max(1, width // 12)] = 0.0
    return img[None].contiguous()


def blocky(grid: tuple[int, int], size: tuple[int, int]) -> torch.Tensor:
    """A target that lives at the grid's resolution: cell averages, upsampled nearest."""
    small = F.adaptive_avg_pool2d(make_target(*size), (grid[1], grid[0]))
    return F.interpolate(small, size=(size[1], size[0]), mode="nearest")


def render_svg_native(text: str, size: tuple[int, int]) -> torch.Tensor:
    scene = svg_to_scene(text)
    assert (scene.width, scene.height) == size
    with torch.no_grad():
        rgba = NativeRasterizer().render(scene, size)
        return composite(rgba, torch.ones(3)).unsqueeze(0)


def svg_colours(text: str) -> set[str]:
    import re

    return set(re.findall(r'fill="(#[0-9a-f]{6})"', text))


def fit_mse(param: PixelArt, target: torch.Tensor, steps: int, lr: float) -> float:
    """A tiny Adam loop on plain MSE (cosine-annealed lr); returns the final PSNR."""
    opt = torch.optim.Adam([{"params": g["params"], "lr": lr} for g in param.param_groups()])
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps, eta_min=0.02 * lr)
    # An exact fit drives squared gradients into subnormal floats, which make
    # Adam's sqrt ~1000x slower on x86: flush them to zero while fitting.
    flushed = torch.set_flush_denormal(True)
    try:
        for _ in range(steps):
            opt.zero_grad()
            loss = torch.mean((param.render() - target) ** 2)
            loss.backward()
            opt.step()
            sched.step()
            param.project_()
    finally:
        if flushed:
            torch.set_flush_denormal(False)
    with torch.no_grad():
        return psnr(param.render(), target)


# ---------------------------------------------------------------- protocol


@pytest.mark.parametrize("mode", ["free", "end", "throughout"])
def test_protocol(mode):
    kwargs = {} if mode == "free" else {"palette": 5, "palette_mode": mode}
    p = PixelArt((40, 24), grid=(10, 6), seed=3, **kwargs)
    assert isinstance(p, Parameterization)
    assert p.kind == "vector"
    assert p.size == (40, 24) and p.grid == (10, 6)
    img = p.render()
    assert img.shape == (1, 3, 24, 40) and img.dtype == torch.float32
    assert float(img.detach().min()) >= 0.0 and float(img.detach().max()) <= 1.0
    groups = p.param_groups()
    assert groups and all({"params", "lr", "name"} <= set(g) for g in groups)
    img.mean().backward()
    for g in groups:
        for t in g["params"]:
            assert t.grad is not None and float(t.grad.abs().sum()) > 0, g["name"]
    p.project_()
    assert p.svg().startswith("<svg")


@pytest.mark.parametrize(
    "size,grid",
    [
        ((48, 48), (16, 16)),  # cells on pixel edges
        ((50, 37), (13, 9)),  # fractional cells, both axes
        ((20, 10), (20, 10)),  # one pixel per cell
        ((97, 40), (7, 40)),  # tall thin cells
    ],
)
def test_render_equals_rasterizer(size, grid):
    """The cached render is exactly the vector rasterizer's image of the scene."""
    p = PixelArt(size, grid=grid, seed=1)
    with torch.no_grad():
        fast, slow = p.render(), p.render_scene()
    assert float((fast - slow).abs().max()) < 1e-5
    # and gradients agree with going through the rasterizer
    w = torch.rand(1, 3, size[1], size[0], generator=torch.Generator().manual_seed(0))
    (p.render() * w).sum().backward()
    g_fast = p.colors.grad.clone()
    p.colors.grad = None
    (p.render_scene() * w).sum().backward()
    assert torch.allclose(g_fast, p.colors.grad, atol=1e-4, rtol=1e-4)


def test_no_seams_between_fractional_cells():
    """Equal colours everywhere -> a flat image: no background at shared edges."""
    p = PixelArt((50, 37), grid=(13, 9))
    with torch.no_grad():
        p.colors.fill_(0.2)
        img = p.render()
    assert float((img - 0.2).abs().max()) < 1e-5


def test_half_pixel_edges_get_half_coverage():
    """90 px / 16 rows: row 12 starts at y = 67.5, through the centres of pixel row 67."""
    p = PixelArt((160, 90), grid=(32, 16))
    with torch.no_grad():
        cells = p.colors.view(16, 32, 3)
        cells[:12] = 0.0
        cells[12:] = 1.0
        img = p.render()
    assert float(img[0, :, 66].max()) < 1e-6 and float(img[0, :, 68].min()) > 1 - 1e-6
    assert abs(float(img[0, :, 67].mean()) - 0.5) < 0.01


# ---------------------------------------------------------- (a) expressive


@pytest.mark.parametrize("size,grid", [((96, 72), (24, 18)), ((50, 37), (13, 9))], ids=["aligned", "fractional"])
def test_expressiveness_mse(size, grid):
    if size[0] % grid[0] == 0 and size[1] % grid[1] == 0:
        target = blocky(grid, size)
    else:  # fractional cells: the grid-resolution target is the same grid drawn with the cell averages
        with torch.no_grad():
            target = PixelArt(size, grid=grid, init=make_target(*size)).render()
    p = PixelArt(size, grid=grid, seed=0)
    assert psnr(p.render(), target) < 15  # starts far away
    assert fit_mse(p, target, steps=60, lr=0.1) >= 30.0  # ~42 dB measured


def test_init_is_the_downsampled_image(tmp_path):
    size, grid = (96, 72), (24, 18)
    target = make_target(*size)
    p = PixelArt(size, grid=grid, init=target)
    with torch.no_grad():
        assert psnr(p.render(), blocky(grid, size)) >= 40.0
    # from a file too (PNG, 8-bit)
    from vecgen.io import save_png as save_png_atomic

    path = save_png_atomic(target, tmp_path / "init.png")
    q = PixelArt(size, grid=grid, init=path)
    with torch.no_grad():
        assert psnr(q.render(), blocky(grid, size)) >= 40.0


# ---------------------------------------------------------------- (b) SVG


@pytest.mark.parametrize(
    "size,grid",
    [((96, 72), (24, 18)), ((50, 37), (13, 9)), ((160, 90), (32, 16))],
    ids=["aligned", "fractional", "wide"],
)
def test_svg_round_trip_native(size, grid):
    p = PixelArt(size, grid=grid, init=make_target(*size))
    text = p.svg({"prompt": 'a <test> & "quotes"'})
    with torch.no_grad():
        assert psnr(render_svg_native(text, size), p.render()) >= 35.0
    # the SVG is compact: runs of equal colour are merged
    n_rects = text.count("<rect")
    assert n_rects == len(p.runs()) < grid[0] * grid[1]


def test_svg_compact_for_flat_regions(tmp_path):
    size, grid = (64, 64), (16, 16)
    img = torch.zeros(1, 3, 64, 64)
    img[:, 0] = 1.0
    img[..., 32:, :] = torch.tensor([0.0, 0.0, 1.0])[:, None, None]  # top red, bottom blue
    p = PixelArt(size, grid=grid, init=img)
    text = p.svg()
    assert text.count("<rect") == 16  # one run per row
    assert svg_colours(text) == {"#ff0000", "#0000ff"}
    path = tmp_path / "flat.svg"
    p.export(path)
    scene = read_svg(path)
    assert len(scene.paths) == 16
    with torch.no_grad():
        assert psnr(render_svg_native(path.read_text(), size), p.render()) >= 50.0


def test_svg_renders_in_a_viewer():
    """resvg (an independent SVG renderer) agrees with what the optimizer saw."""
    resvg_py = pytest.importorskip("resvg_py")
    import numpy as np
    from PIL import Image

    for size, grid, bar in [((96, 72), (24, 18), 45.0), ((50, 37), (13, 9), 35.0), ((160, 90), (32, 16), 38.0)]:
        p = PixelArt(size, grid=grid, init=make_target(*size))
        png = bytes(resvg_py.svg_to_bytes(svg_string=p.svg(), background="#ffffff"))
        arr = np.array(Image.open(io.BytesIO(png)).convert("RGB"))
        seen = torch.from_numpy(arr).permute(2, 0, 1)[None].float() / 255.0
        with torch.no_grad():
            assert psnr(seen, p.render()) >= bar, size


@pytest.mark.parametrize("k", [1, 4, 12])
def test_palette_end_snaps_to_k_colours(k):
    size, grid = (64, 48), (16, 12)
    p = PixelArt(size, grid=grid, palette=k, init=make_target(*size))
    final = p.final_colors()
    assert torch.unique((final * 255).round(), dim=0).shape[0] <= k
    text = p.svg()
    assert 1 <= len(svg_colours(text)) <= k
    p.finalize()
    with torch.no_grad():
        assert psnr(render_svg_native(text, size), p.render()) >= 35.0
    if k == 12:  # a reasonable quantization of the cells
        with torch.no_grad():
            assert psnr(p.render(), blocky(grid, size)) >= 20.0


def test_palette_throughout():
    size, grid = (64, 48), (16, 12)
    p = PixelArt(size, grid=grid, palette=6, palette_mode="throughout", seed=2)
    names = [g["name"] for g in p.param_groups()]
    assert names == ["palette", "palette_logits"]
    target = blocky(grid, size)
    before = psnr(p.render(), target)
    after = fit_mse(p, target, steps=100, lr=0.1)
    assert after >= 14.0 and after > before + 4  # 6 colours on a gradient: k-means gets ~20 dB
    text = p.svg()
    assert 1 <= len(svg_colours(text)) <= 6
    with torch.no_grad():
        seen = p.render()  # straight-through: already the hard colours
        assert psnr(render_svg_native(text, size), seen) >= 35.0
    p.finalize()
    assert p.hard
    with torch.no_grad():
        assert torch.equal(p.render(), seen)
    # the plain soft mix differs from its hardened export until finalize()
    s = PixelArt(size, grid=grid, palette=6, palette_mode="throughout", seed=2, straight_through=False)
    with torch.no_grad():
        soft = s.render()
        s.finalize()
        assert not torch.equal(soft, s.render())
        assert psnr(render_svg_native(s.svg(), size), s.render()) >= 35.0
    # init from an image starts near it
    q = PixelArt(size, grid=grid, palette=6, palette_mode="throughout", init=make_target(*size))
    with torch.no_grad():
        assert psnr(q.render(), target) >= 15.0


def test_kmeans_palette():
    gen = torch.Generator().manual_seed(0)
    cols = torch.rand(500, 3, generator=gen)
    pal, lab = kmeans_palette(cols, 8)
    assert pal.shape[0] <= 8 and lab.shape == (500,)
    assert torch.equal(pal, (pal * 255).round() / 255)
    again = kmeans_palette(cols, 8)
    assert torch.equal(pal, again[0]) and torch.equal(lab, again[1])
    # k-means beats a single mean by a wide margin
    err = ((pal[lab] - cols) ** 2).mean()
    assert err < 0.25 * ((cols - cols.mean(0)) ** 2).mean()
    # few colours: returned exactly
    few = torch.tensor([[1.0, 0, 0], [0, 0, 1.0], [1.0, 0, 0]])
    pal, lab = kmeans_palette(few, 4)
    assert pal.shape[0] == 2 and torch.equal(pal[lab], few)


# ------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"palette": 0}, "palette"),
        ({"palette": -4}, "palette"),
        ({"palette": 2.5}, "palette"),
        ({"palette": True}, "palette"),
        ({"palette_mode": "sometimes", "palette": 4}, "palette mode"),
        ({"palette_mode": "throughout"}, "needs a palette"),
        ({"grid": (65, 8)}, "larger than"),
        ({"grid": "8x100"}, "larger than"),
        ({"grid": "0x8"}, "positive"),
        ({"grid": "eight"}, "bad grid"),
        ({"grid": (8.5, 8)}, "integer"),
        ({"lr": 0}, "lr"),
        ({"init": "/nonexistent/img.png"}, "not found"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(VecgenError, match=match):
        PixelArt((64, 64), **kwargs)


def test_parse_grid():
    assert parse_grid("32x24") == (32, 24)
    assert parse_grid((5, 7)) == (5, 7)
    assert parse_grid(16) == (16, 16)
    assert parse_grid("32", (1280, 720)) == (32, 18)  # square cells
    assert parse_grid(" 8 X 4 ") == (8, 4)


# ---------------------------------------------------------------- state


@pytest.mark.parametrize(
    "kwargs", [{}, {"palette": 4}, {"palette": 4, "palette_mode": "throughout"}], ids=["free", "end", "throughout"]
)
def test_state_dict_round_trip(kwargs, tmp_path):
    a = PixelArt((32, 32), grid=(8, 8), seed=1, **kwargs)
    b = PixelArt((32, 32), grid=(8, 8), seed=2, **kwargs)
    with torch.no_grad():
        assert psnr(a.render(), b.render()) < 30
    a.finalize()
    path = tmp_path / "state.pt"
    torch.save(a.state_dict(), path)
    b.load_state_dict(torch.load(path, weights_only=True))
    with torch.no_grad():
        assert torch.equal(a.render(), b.render())
    assert a.svg() == b.svg()


def test_state_dict_mismatch():
    a = PixelArt((32, 32), grid=(8, 8))
    for other in (
        PixelArt((32, 32), grid=(4, 8)),
        PixelArt((32, 32), grid=(8, 8), palette=3),
        PixelArt((32, 16), grid=(8, 8)),
    ):
        with pytest.raises(VecgenError):
            other.load_state_dict(a.state_dict())
    with pytest.raises(VecgenError):
        a.load_state_dict({"type": "fft"})


def test_determinism_per_seed():
    def svg(seed):
        return PixelArt((24, 24), grid=(6, 6), seed=seed, palette=3).svg()

    assert svg(5) == svg(5)
    assert svg(5) != svg(6)


def test_export_bad_path(tmp_path):
    p = PixelArt((16, 16), grid=(4, 4))
    with pytest.raises(VecgenError):
        p.export(tmp_path / "missing-dir" / "x.svg")
    p.export(tmp_path / "ok.svg", {"prompt": "x"})
    assert len(read_svg(tmp_path / "ok.svg").paths) == len(p.runs())
