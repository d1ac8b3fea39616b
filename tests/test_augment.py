"""Cutouts: shapes, reproducibility, and the antialiasing that keeps views from aliasing."""
from __future__ import annotations

import torch

from vecgen.augment import Cutouts


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
