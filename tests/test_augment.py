"""Cutouts: shapes, reproducibility, and the antialiasing that keeps views from aliasing."""

from __future__ import annotations

import pytest
import torch

from vecgen.augment import Cutouts, make_views


def checkerboard(h: int, w: int) -> torch.Tensor:
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    return ((xx + yy) % 2).float().expand(1, 3, h, w).clone()


def views(cut: Cutouts, img: torch.Tensor, seed: int = 0) -> torch.Tensor:
    return cut(img, torch.Generator().manual_seed(seed))


def test_shapes_and_seed_reproducibility():
    cut = Cutouts(5, size=64)
    img = torch.rand(2, 3, 224, 160)
    out = views(cut, img)
    assert out.shape == (10, 3, 64, 64)
    assert torch.equal(out, views(cut, img)) and not torch.equal(out, views(cut, img, seed=1))


def test_views_of_a_large_image_do_not_alias():
    """A 1-px checkerboard is flat grey once low-passed; decimating it without a filter is not."""
    img = checkerboard(224, 224)
    kw = dict(size=64, perspective=0.0, noise=0.0)
    smooth = views(Cutouts(8, antialias=True, **kw), img)
    aliased = views(Cutouts(8, antialias=False, **kw), img)
    assert (smooth - 0.5).abs().max() < 0.05, float((smooth - 0.5).abs().max())
    assert aliased.std() > 0.1, float(aliased.std())  # measured 0.18: a beat pattern, not grey


def test_small_images_are_not_resampled():
    """At or below size / max_frac the image goes straight to the crops (same views either way)."""
    img = torch.rand(1, 3, 67, 67)
    on, off = Cutouts(4, size=64), Cutouts(4, size=64, antialias=False)
    assert torch.equal(views(on, img), views(off, img))


def test_gradient_reaches_every_region_of_the_image():
    img = torch.rand(1, 3, 224, 224, requires_grad=True)
    views(Cutouts(16, size=64), img).sum().backward()
    g = img.grad.abs().sum(1)[0]
    assert torch.isfinite(g).all()
    # The low-pass spreads each view's gradient over the pixels it averaged: no 1-px holes.
    assert (g[40:184, 40:184] > 0).float().mean() > 0.99


def test_border_padding_shows_the_background_not_a_mirror_image():
    """Zoomed-out views (side > 1) pad with the image's border colour; reflection would mirror the red block."""
    bg = torch.tensor([0.2, 0.4, 0.6]).view(1, 3, 1, 1)
    img = bg.expand(1, 3, 96, 96).clone()
    img[:, :, 40:56, 80:] = torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1)  # touches the right edge
    kw = dict(size=96, min_frac=1.5, max_frac=1.5, perspective=0.0, noise=0.0, antialias=False)
    red = lambda v: ((v[:, 0] > 0.6) & (v[:, 2] < 0.4)).float().sum().item()  # noqa: E731
    border, mirror = views(Cutouts(4, pad="border", **kw), img), views(Cutouts(4, pad="reflection", **kw), img)
    inside = (
        red(views(Cutouts(4, size=96, min_frac=1.0, max_frac=1.0, perspective=0.0, noise=0.0, antialias=False), img))
        / 4
    )
    assert red(border) / 4 < 0.6 * inside  # 1.5x zoom-out: the block covers (1/1.5)^2 of its area
    assert red(mirror) > 1.5 * red(border)  # the mirror copy outside the image
    # Corners of a zoomed-out view lie outside the image: plain background there.
    corners = border[:, :, [0, 0, -1, -1], [0, -1, 0, -1]]
    assert torch.allclose(corners, bg.view(1, 3, 1).expand_as(corners), atol=1e-5)


def test_zoom_views_pass_gradient_to_the_image():
    img = torch.rand(1, 3, 80, 80, requires_grad=True)
    out = make_views("zoom", 6, 32)(img, torch.Generator().manual_seed(0))
    out.sum().backward()
    assert out.shape == (6, 3, 32, 32) and img.grad.abs().sum() > 0


def test_bad_view_settings_are_rejected():
    with pytest.raises(ValueError, match="pad"):
        Cutouts(2, pad="wrap")
    with pytest.raises(ValueError, match="min_frac"):
        Cutouts(2, min_frac=0.9, max_frac=0.5)
    with pytest.raises(ValueError, match="unknown views"):
        make_views("tiles", 2, 32)
