"""benchmarks/perception.py's legibility measures: ink, the 56 px thumbnail, greyscale, the per-seed summary."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
perception = pytest.importorskip("perception")  # needs the imagenet extra's imports only when drawing


def test_ink_counts_pixels_far_from_the_background():
    img = torch.ones(1, 3, 10, 10)
    assert perception.ink(img) == 0.0
    img[..., :5, :] = 0.0  # half black
    img[..., 5, :4] = 1 - 10 / 255  # summed difference 30: not ink (must exceed 30)
    img[..., 6, :2] = 1 - 11 / 255  # 33: ink
    assert perception.ink(img) == pytest.approx(0.52)
    grey = torch.full((1, 3, 4, 4), 0.5)
    assert perception.ink(grey, background=(0.5, 0.5, 0.5)) == 0.0 and perception.ink(grey) == 1.0


def test_thumbnail_keeps_shapes_and_loses_fine_texture():
    size = 224
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    blob = ((yy - 112) ** 2 + (xx - 112) ** 2 < 60**2).float()
    shape = (1 - blob).expand(1, 3, size, size).clone()  # a black disc on white
    texture = ((yy + xx) % 2).float().expand(1, 3, size, size).clone()  # a one-pixel checkerboard
    for img in (shape, texture):
        thumb = perception.thumbnail(img)
        assert thumb.shape == img.shape and float(thumb.min()) >= 0 and float(thumb.max()) <= 1
    assert float((perception.thumbnail(shape) - shape).abs().mean()) < 0.03  # the disc survives
    assert float(perception.thumbnail(texture).std()) < 0.05 < float(texture.std())  # the checkerboard goes grey
    wide = torch.rand(1, 3, 100, 300)
    assert perception.thumbnail(wide).shape == wide.shape


def test_greyscale_is_luma_in_three_channels():
    img = torch.zeros(1, 3, 2, 2)
    img[:, 0] = 1.0  # pure red
    grey = perception.greyscale(img)
    assert grey.shape == img.shape and torch.allclose(grey, torch.full_like(grey, 0.299))


def test_seed_summary_shares_and_means():
    recs = [
        {
            "rank": 1,
            "thumb_rank": 9,
            "grey_rank": 3,
            "p": 0.5,
            "ink": 0.2,
            "paths": 30,
            "bytes": 5000,
            "invisible": 0,
            "s": 10.0,
        },
        {
            "rank": 7,
            "thumb_rank": 2,
            "grey_rank": 40,
            "p": 0.1,
            "ink": 0.4,
            "paths": 20,
            "bytes": 3000,
            "invisible": 2,
            "s": 20.0,
        },
    ]
    got = perception.seed_summary(recs)
    assert got["top1"] == 0.5 and got["top5"] == 0.5 and got["thumb_top5"] == 0.5 and got["grey_top5"] == 0.5
    assert got["ink"] == pytest.approx(0.3) and got["paths"] == 25 and got["bytes"] == 4000 and got["s"] == 15
    assert set(perception.SUMMARY_KEYS) <= set(got)
