"""Tests for vecgen.minis.scenes: the procedural captioned-scene generator."""

from __future__ import annotations

import random

import pytest
import torch

from vecgen.minis import scenes as S
from vecgen.minis.captions import SceneDataset, canonical_plan, caption_scene, make_scene, negatives, render_caption
from vecgen.minis.scenes import COLOURS, POSITION_WORDS, SHAPES, build_scene, render_batch, render_scene, sample_scene


def _find(kind: str, pred, start: int = 0, limit: int = 5000) -> list[dict]:
    out = []
    for seed in range(start, start + limit):
        a = sample_scene(seed, kind)
        if pred(a):
            out.append(a)
    return out


def _colour_mask(img: torch.Tensor, rgb) -> torch.Tensor:
    """Pixels within a small distance of an object's colour -> (H, W) bool."""
    return (img - torch.tensor(rgb).view(3, 1, 1)).norm(dim=0) < 0.12


def _components(mask: torch.Tensor, min_pixels: int = 4) -> int:
    """Number of 8-connected components of at least ``min_pixels`` pixels."""
    m = mask.tolist()
    h, w = len(m), len(m[0])
    seen = [[False] * w for _ in range(h)]
    count = 0
    for y in range(h):
        for x in range(w):
            if not m[y][x] or seen[y][x]:
                continue
            stack, size = [(y, x)], 0
            seen[y][x] = True
            while stack:
                cy, cx = stack.pop()
                size += 1
                for dy in (-1, 0, 1):
                    for dx in (-1, 0, 1):
                        ny, nx = cy + dy, cx + dx
                        if 0 <= ny < h and 0 <= nx < w and m[ny][nx] and not seen[ny][nx]:
                            seen[ny][nx] = True
                            stack.append((ny, nx))
            count += size >= min_pixels
    return count


def test_vocabulary_sizes():
    assert len(COLOURS) >= 11
    assert {"circle", "square", "triangle", "star", "ring", "cross", "line", "heart"} <= set(SHAPES)
    assert set(S.STYLES) == {"filled", "outline", "striped", "dotted"}
    assert set(S.SIZES) == {"small", "large"}
    assert {"left", "right", "top", "bottom", "center", "top left", "bottom right"} <= set(S.POSITIONS.values())


def test_deterministic_per_seed():
    a = make_scene(1234, size=48)
    b = make_scene(1234, size=48)
    assert a[1] == b[1] and a[2] == b[2]
    assert torch.equal(a[0], b[0])
    c = make_scene(1235, size=48)
    assert c[1] != a[1] or not torch.equal(c[0], a[0])
    assert a[0].shape == (3, 48, 48) and a[0].dtype == torch.float32
    assert 0.0 <= float(a[0].min()) and float(a[0].max()) <= 1.0


def test_all_kinds_and_object_counts():
    kinds = {}
    for seed in range(400):
        a = sample_scene(seed)
        kinds[a["kind"]] = kinds.get(a["kind"], 0) + 1
        assert 1 <= len(a["objects"]) <= 3
    assert set(kinds) == {"single", "count", "relation", "list"}


def test_caption_mentions_attributes():
    for seed in range(200):
        a = sample_scene(seed, "single")
        o = a["objects"][0]
        text, plan = caption_scene(a, random.Random(seed), "all")
        assert any(w in text for w in COLOURS[o["colour"]][1]), text
        assert any(s in text for s, _ in SHAPES[o["shape"]]), text
        if plan.flags["pos"]:
            assert any(p.lower() in text.lower() for p in POSITION_WORDS[o["position"]]), text
        canon = render_caption(a, canonical_plan("single"))
        assert canon.split()[1] == o["size"] and o["colour"] in canon and o["position"] in canon
    for a in _find("count", lambda a: True, limit=60):
        canon = render_caption(a, canonical_plan("count"))
        word = {1: ("a ", "an "), 2: ("two ",), 3: ("three ",)}[a["count"]]
        assert canon.startswith(word), canon
        if a["count"] > 1:
            assert SHAPES[a["objects"][0]["shape"]][0][1] in canon
    for a in _find("relation", lambda a: True, limit=40):
        canon = render_caption(a, canonical_plan("relation"))
        rel = {"above": "above", "below": "below", "left of": "to the left of", "right of": "to the right of"}
        assert f" {rel[a['relation']]} " in canon, canon


def test_hard_negatives_change_one_thing():
    rng = random.Random(0)
    for seed in range(150):
        a = sample_scene(seed)
        text, plan = caption_scene(a, rng, "a")
        negs = negatives(a, plan, rng, 3)
        assert 1 <= len(negs) <= 3 and len(set(negs)) == len(negs) and text not in negs
        if a["kind"] == "single":
            for n in negs:  # same template, one slot changed: few words differ
                assert len(set(n.split()) ^ set(text.split())) <= 8, (text, n)


def test_template_sets_differ():
    a = sample_scene(5, "single")
    seen = {t: {caption_scene(a, random.Random(i), t)[0] for i in range(200)} for t in ("a", "b")}
    assert seen["a"] != seen["b"]
    assert any(c.startswith("a drawing of") for c in seen["a"])
    assert not any(c.startswith("a drawing of") for c in seen["b"])
    assert any(c.startswith("there is") for c in seen["b"])


def test_object_colour_where_expected():
    """A filled object named 'left' ('right', 'top', ...) has its colour in that part of the image."""
    size = 64
    checks = {
        "left": lambda ys, xs: xs.float().mean() < size / 2,
        "right": lambda ys, xs: xs.float().mean() > size / 2,
        "top": lambda ys, xs: ys.float().mean() < size / 2,
        "bottom": lambda ys, xs: ys.float().mean() > size / 2,
    }
    for word, check in checks.items():
        found = _find(
            "single",
            lambda a, word=word: (
                a["objects"][0]["position"] == word
                and a["objects"][0]["style"] == "filled"
                and a["objects"][0]["shape"] != "line"
            ),
            limit=1500,
        )[:4]
        assert found
        for a in found:
            img = render_scene(a, size)
            mask = _colour_mask(img, a["objects"][0]["rgb"])
            ys, xs = torch.nonzero(mask, as_tuple=True)
            assert xs.numel() > 10, a
            assert check(ys, xs), (word, a["objects"][0])
            # the background colour fills most of the rest
            assert _colour_mask(img, a["bg_rgb"]).float().mean() > 0.5


def test_count_scenes_have_that_many_objects():
    found = _find(
        "count", lambda a: a["objects"][0]["style"] == "filled" and a["objects"][0]["shape"] != "line", limit=400
    )[:12]
    assert {a["count"] for a in found} == {1, 2, 3}
    for a in found:
        img = render_scene(a, 96)
        assert _components(_colour_mask(img, a["objects"][0]["rgb"])) == a["count"], a


def test_relation_geometry():
    for a in _find("relation", lambda a: True, limit=50):
        p, q = a["objects"]
        rel = a["relation"]
        if rel == "above":
            assert p["y"] < q["y"]
        elif rel == "below":
            assert p["y"] > q["y"]
        elif rel == "left of":
            assert p["x"] < q["x"]
        else:
            assert p["x"] > q["x"]


def test_paths_are_cubics_and_stay_near_the_canvas():
    size = 64
    pad = S._PAD_FRAC * size
    for seed in range(120):
        sc = build_scene(sample_scene(seed), size)
        assert sc.paths
        for p in sc.paths:
            n = p.points.shape[0]
            assert (n % 3 == 0) if p.closed else ((n - 1) % 3 == 0)
            assert float(p.points.min()) > -pad and float(p.points.max()) < size + pad


def test_batch_rendering_matches_single():
    attrs = [sample_scene(s) for s in range(10)]
    batch = render_batch(attrs, 48, per_row=4)
    single = torch.stack([render_scene(a, 48) for a in attrs])
    assert batch.shape == (10, 3, 48, 48)
    assert (batch - single).abs().max() < 1e-3


def test_dataset():
    ds = SceneDataset(seed0=100, count=6, size=32, templates="b")
    assert len(ds) == 6
    img, cap = ds[2]
    img2, cap2, _ = make_scene(102, 32, "b")
    assert cap == cap2 and torch.allclose(img, img2, atol=1e-3)
    imgs, caps, attrs = next(ds.batches(4))
    assert imgs.shape == (4, 3, 32, 32) and caps[2] == cap and len(attrs) == 4
    with pytest.raises(IndexError):
        ds[6]
