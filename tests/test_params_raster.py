"""Tests of the raster parameterizations (FFTImage, DWTImage) and their helpers."""

from __future__ import annotations

import math
import os

import pytest
import pywt
import torch
from PIL import Image

from vecgen.errors import VecgenError
from vecgen.io import load_init_image
from vecgen.io import save_png as save_png_atomic
from vecgen.params.base import Parameterization
from vecgen.params.dwt import DWTImage
from vecgen.params.fft import FFTImage
from vecgen.params.raster_base import color_correlation_sqrt, psnr, squash, unsquash

CLASSES = [FFTImage, DWTImage]
IDS = ["fft", "dwt"]


@pytest.fixture(autouse=True)
def _modest_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(min(2, before))
    yield
    torch.set_num_threads(before)


def make_target(width: int, height: int) -> torch.Tensor:
    """A smooth colour gradient with a few hard-edged shapes, (1, 3, H, W)."""
    yy, xx = torch.meshgrid(torch.linspace(0, 1, height), torch.linspace(0, 1, width), indexing="ij")
    img = torch.stack([0.15 + 0.7 * xx, 0.2 + 0.6 * yy, 0.8 - 0.6 * xx * yy])
    # a red rectangle
    img[:, int(0.1 * height) : int(0.3 * height), int(0.12 * width) : int(0.5 * width)] = torch.tensor(
        [0.95, 0.1, 0.1]
    )[:, None, None]
    # a blue disc
    disc = ((xx - 0.65) ** 2 + (yy - 0.6) ** 2).sqrt() < 0.2
    img[:, disc] = torch.tensor([0.1, 0.2, 0.9])[:, None]
    # a dark horizontal bar, and a pure white and a pure black square
    # (saturated pixels exercise the eps clamp of the init inversion)
    img[:, int(0.73 * height) : int(0.83 * height), :] = 0.05
    img[:, : max(2, height // 12), -max(2, width // 12) :] = 1.0
    img[:, -max(2, height // 12) :, : max(2, width // 12)] = 0.0
    return img[None].contiguous()


def adam_fit(param, target: torch.Tensor, steps: int, lr: float) -> float:
    """Plain MSE + Adam (cosine-annealed lr); returns the final PSNR."""
    groups = [{"params": g["params"], "lr": lr} for g in param.param_groups()]
    opt = torch.optim.Adam(groups)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps, eta_min=0.02 * lr)
    for _ in range(steps):
        opt.zero_grad()
        loss = torch.mean((param.render() - target) ** 2)
        loss.backward()
        opt.step()
        sched.step()
        param.project_()
    with torch.no_grad():
        return psnr(param.render(), target)


# ---------------------------------------------------------------- protocol


@pytest.mark.parametrize("cls", CLASSES, ids=IDS)
def test_protocol_and_render_shape(cls):
    p = cls((40, 24), seed=3)
    assert isinstance(p, Parameterization)
    assert p.kind == "raster"
    assert p.size == (40, 24)
    img = p.render().detach()
    assert img.shape == (1, 3, 24, 40)
    assert img.dtype == torch.float32
    assert float(img.min()) >= 0.0 and float(img.max()) <= 1.0
    groups = p.param_groups()
    assert groups and all({"params", "lr", "name"} <= set(g) for g in groups)
    p.project_()


@pytest.mark.parametrize(
    "cls,size",
    [(FFTImage, (1280, 720)), (DWTImage, (1280, 720)), (DWTImage, (97, 61))],
    ids=["fft-720p", "dwt-720p", "dwt-odd"],
)
def test_any_resolution(cls, size):
    with torch.no_grad():
        img = cls(size).render()
    assert img.shape == (1, 3, size[1], size[0])
    assert torch.isfinite(img).all()


# ---------------------------------------------------------- (a) expressive


@pytest.mark.slow  # 250-300 optimization steps each (18 s on 2 busy cores)
@pytest.mark.parametrize("cls,lr,steps", [(FFTImage, 0.3, 250), (DWTImage, 0.5, 300)], ids=IDS)
def test_expressiveness_mse(cls, lr, steps):
    target = make_target(96, 96)
    p = cls((96, 96), seed=0)
    assert psnr(p.render(), target) < 20  # starts far away
    assert adam_fit(p, target, steps, lr) >= 30.0


# ------------------------------------------------------------------ (b) init


@pytest.mark.parametrize("cls", CLASSES, ids=IDS)
@pytest.mark.parametrize("size", [(64, 64), (96, 56), (37, 53)])
def test_init_reproduces_image(cls, size):
    target = make_target(*size)
    p = cls(size, init=target)
    with torch.no_grad():
        assert psnr(p.render(), target) >= 40.0


@pytest.mark.parametrize("cls", CLASSES, ids=IDS)
def test_init_with_all_knobs(cls):
    target = make_target(72, 48)
    extra = {"wavelet": "sym4", "levels": 9} if cls is DWTImage else {}
    p = cls((72, 48), init=target, squash="tanh", contrast=2.5, colors=0.4, decay=1.0, **extra)
    with torch.no_grad():
        assert psnr(p.render(), target) >= 40.0


@pytest.mark.parametrize("cls", CLASSES, ids=IDS)
def test_init_from_png_and_pil(cls, tmp_path):
    target = make_target(80, 48)
    path = tmp_path / "init.png"
    save_png_atomic(target, path)
    on_disk = load_init_image(path, (80, 48))  # 8-bit quantized version
    assert psnr(on_disk, target) > 45
    for source in (path, str(path), Image.open(path)):
        p = cls((80, 48), init=source)
        with torch.no_grad():
            assert psnr(p.render(), on_disk) >= 40.0


def test_init_image_resized_to_cover(tmp_path):
    big = make_target(200, 100)
    p = FFTImage((60, 60), init=big)
    assert p.render().shape == (1, 3, 60, 60)
    pil = Image.new("RGBA", (30, 10), (255, 0, 0, 0))  # fully transparent -> white
    loaded = load_init_image(pil, (20, 20))
    assert loaded.shape == (1, 3, 20, 20)
    assert torch.allclose(loaded, torch.ones_like(loaded), atol=1e-6)


def test_squash_roundtrip_and_color_matrix():
    m = color_correlation_sqrt()
    assert m.shape == (3, 3)
    assert math.isclose(float(m.norm(dim=0).max()), 1.0, rel_tol=1e-12)
    assert (m[:, 0] > 0).all()  # luminance column
    assert abs(float(torch.linalg.det(m))) > 1e-3  # invertible
    y = torch.rand(1000, dtype=torch.float64) * 0.99 + 0.005
    for name in ("sigmoid", "tanh"):
        assert torch.allclose(squash(unsquash(y, name), name), y, atol=1e-12)


# ---------------------------------------------------------- (c) gradients


@pytest.mark.parametrize("cls", CLASSES, ids=IDS)
@pytest.mark.parametrize("with_init", [False, True], ids=["random", "init"])
def test_gradients_reach_every_group(cls, with_init):
    init = make_target(48, 40) if with_init else None
    p = cls((48, 40), seed=1, init=init)
    weights = torch.rand(1, 3, 40, 48, generator=torch.Generator().manual_seed(0))
    (p.render() * weights).sum().backward()
    groups = p.param_groups()
    assert groups
    for group in groups:
        assert group["params"], group["name"]
        for tensor in group["params"]:
            assert tensor.is_leaf and tensor.requires_grad
            assert tensor.grad is not None, group["name"]
            assert torch.isfinite(tensor.grad).all()
            assert float(tensor.grad.abs().sum()) > 0, group["name"]


# --------------------------------------------------------- (d) determinism


@pytest.mark.parametrize("cls", CLASSES, ids=IDS)
def test_determinism_per_seed(cls):
    a = cls((50, 30), seed=7).render()
    b = cls((50, 30), seed=7).render()
    c = cls((50, 30), seed=8).render()
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)
    # global RNG state must not matter
    torch.manual_seed(123)
    d = cls((50, 30), seed=7).render()
    assert torch.equal(a, d)


# ---------------------------------------------------------- (e) bad inputs


def _assert_one_line(err: pytest.ExceptionInfo) -> str:
    text = str(err.value)
    assert text and "\n" not in text
    return text


@pytest.mark.parametrize("cls", CLASSES, ids=IDS)
def test_bad_init_files(cls, tmp_path):
    not_image = tmp_path / "notes.png"
    not_image.write_text("this is not an image\n")
    with pytest.raises(VecgenError) as err:
        cls((32, 32), init=not_image)
    assert "notes.png" in _assert_one_line(err)

    missing = tmp_path / "missing.jpg"
    with pytest.raises(VecgenError) as err:
        cls((32, 32), init=missing)
    assert "not found" in _assert_one_line(err)

    with pytest.raises(VecgenError):
        cls((32, 32), init=tmp_path)  # a directory
    truncated = tmp_path / "trunc.png"
    save_png_atomic(make_target(32, 32), truncated)
    truncated.write_bytes(truncated.read_bytes()[:60])
    with pytest.raises(VecgenError) as err:
        cls((32, 32), init=truncated)
    _assert_one_line(err)


def test_unknown_wavelet():
    with pytest.raises(VecgenError) as err:
        DWTImage((32, 32), wavelet="db99")
    text = _assert_one_line(err)
    assert "db99" in text and "haar" in text and "db2" in text
    with pytest.raises(VecgenError):
        DWTImage((32, 32), wavelet="morl")  # continuous, not discrete
    with pytest.raises(VecgenError):
        DWTImage((32, 32), levels=0)


@pytest.mark.parametrize("cls", CLASSES, ids=IDS)
@pytest.mark.parametrize(
    "kwargs",
    [
        {"size": (0, 10)},
        {"size": (10, -3)},
        {"size": (10,)},
        {"size": (10.5, 10)},
        {"squash": "relu"},
        {"contrast": 0},
        {"colors": -1},
        {"decay": float("nan")},
        {"lr": 0},
        {"init": 42},
        {"init": torch.rand(2, 3, 8, 8)},
        {"init": torch.rand(3, 8, 8) * 255},
    ],
)
def test_bad_arguments(cls, kwargs):
    kwargs = dict(kwargs)
    size = kwargs.pop("size", (16, 16))
    with pytest.raises(VecgenError) as err:
        cls(size, **kwargs)
    _assert_one_line(err)


def test_levels_clamped_to_size():
    p = DWTImage((20, 12), wavelet="db2", levels=10)
    assert p.levels == max(1, pywt.dwtn_max_level((12, 20), "db2"))
    assert p.render().shape == (1, 3, 12, 20)
    tiny = DWTImage((3, 2), wavelet="db4", levels=4)
    assert tiny.levels == 1
    assert tiny.render().shape == (1, 3, 2, 3)


# --------------------------------------------------------- (f) state_dict


@pytest.mark.parametrize("cls", CLASSES, ids=IDS)
def test_state_dict_round_trip(cls, tmp_path):
    a = cls((48, 32), seed=2, contrast=1.3, colors=0.8)
    adam_fit(a, make_target(48, 32), steps=5, lr=0.1)
    state = a.state_dict()
    # plain tensors/values only: survives a weights_only save/load
    torch.save(state, tmp_path / "state.pt")
    loaded = torch.load(tmp_path / "state.pt", weights_only=True)

    b = cls((48, 32), seed=99, squash="tanh")  # different start and settings
    live = [t for g in b.param_groups() for t in g["params"]]
    b.load_state_dict(loaded)
    assert torch.equal(a.render(), b.render())
    # parameters were updated in place: optimizer references stay valid
    assert [t for g in b.param_groups() for t in g["params"]] == live
    # the saved state is a snapshot, not a view of the live tensors
    adam_fit(a, make_target(48, 32), steps=1, lr=0.1)
    assert not torch.equal(a.render(), b.render())


@pytest.mark.parametrize("cls", CLASSES, ids=IDS)
def test_state_dict_mismatch_raises(cls):
    state = cls((48, 32)).state_dict()
    with pytest.raises(VecgenError):
        cls((32, 48)).load_state_dict(state)
    other = (DWTImage if cls is FFTImage else FFTImage)((48, 32))
    with pytest.raises(VecgenError):
        other.load_state_dict(state)
    if cls is DWTImage:
        with pytest.raises(VecgenError):
            DWTImage((48, 32), wavelet="haar").load_state_dict(state)


# ------------------------------------------------------------- (g) export


@pytest.mark.parametrize("cls", CLASSES, ids=IDS)
def test_export_png(cls, tmp_path):
    p = cls((70, 45), init=make_target(70, 45))
    out = tmp_path / "sub" / "out.png"
    p.export(out)
    p.export(out)  # overwriting is fine
    with Image.open(out) as img:
        assert img.format == "PNG"
        assert img.size == (70, 45)
        assert img.mode == "RGB"
        pixels = torch.from_numpy(__import__("numpy").asarray(img).copy())
    expected = (p.render().detach()[0].permute(1, 2, 0).clamp(0, 1) * 255).round()
    assert torch.equal(pixels.to(torch.float32), expected)
    assert sorted(os.listdir(out.parent)) == ["out.png"]  # no temp files left
