"""Procedural captioned scenes: simple shapes drawn as vecgen Paths, with captions.

A scene is sampled from a seed as a plain attributes dict (no pixels), drawn as a
:class:`vecgen.scene.Scene` of cubic Bézier paths and rasterized with vecgen's
native rasterizer. Captions are in :mod:`vecgen.minis.captions`.

Scene kinds: ``single`` (one object: size, colour, style, shape, position),
``count`` (1-3 identical small objects), ``relation`` (two objects, one
above/below/left of/right of the other) and ``list`` (2-3 different objects).
Everything is deterministic per seed: same seed, same attributes, same pixels,
same caption.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from vecgen.scene import Path, Scene

# ----------------------------------------------------------------------------- vocabulary
# name -> (rgb, words); the first word is the canonical one (used by probes).
COLOURS: dict[str, tuple[tuple[float, float, float], tuple[str, ...]]] = {
    "red": ((0.88, 0.08, 0.08), ("red", "crimson", "scarlet")),
    "orange": ((1.0, 0.55, 0.0), ("orange", "tangerine")),
    "yellow": ((0.96, 0.86, 0.05), ("yellow", "lemon")),
    "green": ((0.08, 0.66, 0.15), ("green", "emerald")),
    "blue": ((0.1, 0.25, 0.92), ("blue", "cobalt")),
    "purple": ((0.55, 0.12, 0.75), ("purple", "violet")),
    "pink": ((1.0, 0.45, 0.72), ("pink", "rose")),
    "brown": ((0.5, 0.27, 0.08), ("brown", "chocolate")),
    "black": ((0.04, 0.04, 0.04), ("black", "ebony")),
    "white": ((1.0, 1.0, 1.0), ("white", "snow white")),
    "gray": ((0.5, 0.5, 0.5), ("gray", "grey")),
    "cyan": ((0.0, 0.8, 0.85), ("cyan", "turquoise", "aqua")),
}
BACKGROUNDS: dict[str, tuple[tuple[float, float, float], tuple[str, ...]]] = {
    "white": ((1.0, 1.0, 1.0), ("white",)),
    "black": ((0.0, 0.0, 0.0), ("black",)),
    "light gray": ((0.82, 0.82, 0.82), ("light gray", "light grey")),
    "beige": ((0.96, 0.92, 0.8), ("beige", "cream")),
    "light blue": ((0.78, 0.88, 1.0), ("light blue", "pale blue")),
    "light yellow": ((1.0, 0.97, 0.72), ("light yellow", "pale yellow")),
}
_BG_WEIGHTS = (0.5, 0.1, 0.1, 0.1, 0.1, 0.1)
# name -> ((singular, plural), ...); first is canonical.
SHAPES: dict[str, tuple[tuple[str, str], ...]] = {
    "circle": (("circle", "circles"), ("disc", "discs"), ("disk", "disks")),
    "square": (("square", "squares"), ("box", "boxes"), ("block", "blocks")),
    "triangle": (("triangle", "triangles"),),
    "star": (("star", "stars"), ("five-pointed star", "five-pointed stars")),
    "ring": (("ring", "rings"), ("donut", "donuts"), ("hoop", "hoops")),
    "cross": (("cross", "crosses"), ("plus sign", "plus signs")),
    "line": (("line", "lines"), ("stick", "sticks"), ("bar", "bars")),
    "heart": (("heart", "hearts"),),
}
SIZES: dict[str, tuple[str, ...]] = {"small": ("small", "little", "tiny"), "large": ("large", "big", "huge")}
STYLES: dict[str, tuple[str, ...]] = {
    "filled": ("solid", "filled"),
    "outline": ("outlined", "hollow", "line-drawn"),
    "striped": ("striped", "stripy", "hatched"),
    "dotted": ("dotted", "spotted", "polka-dot"),
}
_STYLE_WEIGHTS = (0.55, 0.15, 0.15, 0.15)
# 3x3 grid: (column, row) -> name
POSITIONS: dict[tuple[int, int], str] = {
    (0, 0): "top left",
    (1, 0): "top",
    (2, 0): "top right",
    (0, 1): "left",
    (1, 1): "center",
    (2, 1): "right",
    (0, 2): "bottom left",
    (1, 2): "bottom",
    (2, 2): "bottom right",
}
_CELL = {v: k for k, v in POSITIONS.items()}
POSITION_WORDS: dict[str, tuple[str, ...]] = {
    "top left": ("at the top left", "in the top left corner", "in the upper left corner"),
    "top": ("at the top", "near the top", "in the upper middle"),
    "top right": ("at the top right", "in the top right corner", "in the upper right corner"),
    "left": ("on the left", "at left", "on the left side"),
    "center": ("in the center", "in the middle", "in the centre"),
    "right": ("on the right", "at right", "on the right side"),
    "bottom left": ("at the bottom left", "in the bottom left corner", "in the lower left corner"),
    "bottom": ("at the bottom", "near the bottom", "in the lower middle"),
    "bottom right": ("at the bottom right", "in the bottom right corner", "in the lower right corner"),
}
COUNT_WORDS: dict[int, tuple[str, ...]] = {
    1: ("one", "a single"),
    2: ("two", "a pair of", "2"),
    3: ("three", "a group of three", "3"),
}
RELATIONS: dict[str, tuple[str, ...]] = {
    "above": ("above", "over"),
    "below": ("below", "under", "beneath"),
    "left of": ("to the left of", "left of", "on the left of"),
    "right of": ("to the right of", "right of", "on the right of"),
}
_INVERSE = {"above": "below", "below": "above", "left of": "right of", "right of": "left of"}
_KIND_WEIGHTS = {"single": 0.45, "count": 0.2, "relation": 0.25, "list": 0.1}
TEMPLATE_SETS = ("common", "a", "b")
GENERATOR_VERSION = 1  # bump when sampling or drawing changes (invalidates pre-rendered caches)

_SMALL_R = (0.09, 0.13)  # single scenes, radius as a fraction of the canvas side
_LARGE_R = (0.2, 0.26)
_GRID_R = (0.07, 0.11)  # count / list scenes: one object per grid cell
_REL_R = (0.09, 0.15)
_PAD_FRAC = 0.2  # tile gap in batched rendering; objects never reach further out


# ----------------------------------------------------------------------------- sampling
def _rng(rng_or_seed) -> random.Random:
    if isinstance(rng_or_seed, random.Random):
        return rng_or_seed
    return random.Random(int(rng_or_seed))


def _pick_weighted(rng: random.Random, names: Sequence[str], weights: Sequence[float]) -> str:
    return rng.choices(list(names), weights=list(weights), k=1)[0]


def _contrast_ok(rgb, bg_rgb) -> bool:
    return math.dist(rgb, bg_rgb) > 0.45


def _jitter_rgb(rng: random.Random, rgb) -> list[float]:
    return [min(1.0, max(0.0, c + rng.uniform(-0.05, 0.05))) for c in rgb]


def _new_object(rng: random.Random, bg: str, shape: str | None = None, colour: str | None = None) -> dict:
    bg_rgb = BACKGROUNDS[bg][0]
    shape = shape or rng.choice(list(SHAPES))
    while colour is None or not _contrast_ok(COLOURS[colour][0], bg_rgb):
        colour = rng.choice(list(COLOURS))
    style = "filled" if shape == "line" else _pick_weighted(rng, list(STYLES), _STYLE_WEIGHTS)
    if shape == "line":
        angle = rng.choice((0.0, 45.0, 90.0, 135.0)) + rng.uniform(-10, 10)
    elif shape in ("circle", "ring"):
        angle = 0.0
    else:
        angle = rng.uniform(-15, 15)
    return {
        "shape": shape,
        "colour": colour,
        "style": style,
        "rgb": _jitter_rgb(rng, COLOURS[colour][0]),
        "angle": angle,
        "stripe_angle": rng.choice((45.0, -45.0, 0.0, 90.0)),
        "phase": rng.random(),
    }


def _cell_xy(rng: random.Random, cell: tuple[int, int], r: float) -> tuple[float, float]:
    """Centre of an object of radius r in a 3x3 position class, kept inside the canvas."""
    out = []
    for d in cell:
        d = d - 1
        if d == 0:
            out.append(0.5 + rng.uniform(-0.04, 0.04))
        else:
            out.append(0.5 + d * (0.5 - r - 0.05) + rng.uniform(-0.03, 0.03))
    return out[0], out[1]


def _nearest_cell(x: float, y: float) -> str:
    col = 0 if x < 1 / 3 else (2 if x > 2 / 3 else 1)
    row = 0 if y < 1 / 3 else (2 if y > 2 / 3 else 1)
    return POSITIONS[(col, row)]


def sample_scene(rng_or_seed, kind: str | None = None) -> dict:
    """Sample a scene's attributes (geometry as fractions of the canvas side); no rendering.

    kind: force ``single``, ``count``, ``relation`` or ``list`` (default: random).
    """
    rng = _rng(rng_or_seed)
    if kind is None:
        kind = _pick_weighted(rng, list(_KIND_WEIGHTS), list(_KIND_WEIGHTS.values()))
    bg = _pick_weighted(rng, list(BACKGROUNDS), _BG_WEIGHTS)
    objects: list[dict] = []
    attrs: dict = {"kind": kind, "background": bg, "bg_rgb": list(BACKGROUNDS[bg][0]), "objects": objects}
    if kind == "single":
        o = _new_object(rng, bg)
        o["size"] = rng.choice(list(SIZES))
        lo, hi = _SMALL_R if o["size"] == "small" else _LARGE_R
        o["r"] = rng.uniform(lo, hi)
        cell = rng.choice(list(POSITIONS))
        o["position"] = POSITIONS[cell]
        o["x"], o["y"] = _cell_xy(rng, cell, o["r"])
        objects.append(o)
        attrs["count"] = 1
    elif kind == "count":
        n = rng.choice((1, 2, 3))
        proto = _new_object(rng, bg)
        cells = rng.sample(list(POSITIONS), n)
        for cell in cells:
            o = dict(proto)
            o["angle"] = (
                proto["angle"]
                if proto["shape"] in ("circle", "ring")
                else (
                    rng.choice((0.0, 45.0, 90.0, 135.0)) + rng.uniform(-10, 10)
                    if proto["shape"] == "line"
                    else rng.uniform(-15, 15)
                )
            )
            o["size"] = "small"
            o["r"] = rng.uniform(*_GRID_R)
            o["x"] = (cell[0] + 0.5) / 3 + rng.uniform(-0.04, 0.04)
            o["y"] = (cell[1] + 0.5) / 3 + rng.uniform(-0.04, 0.04)
            o["position"] = POSITIONS[cell]
            objects.append(o)
        attrs["count"] = n
    elif kind == "relation":
        a = _new_object(rng, bg)
        b = _new_object(rng, bg)
        while (b["shape"], b["colour"]) == (a["shape"], a["colour"]):
            b = _new_object(rng, bg)
        rel = rng.choice(list(RELATIONS))
        for o in (a, b):
            o["size"] = "small"
            o["r"] = rng.uniform(*_REL_R)
        near, far = rng.uniform(0.2, 0.34), rng.uniform(0.66, 0.8)
        across = rng.uniform(0.25, 0.75)
        across_b = min(0.8, max(0.2, across + rng.uniform(-0.22, 0.22)))
        first, second = (near, far) if rel in ("above", "left of") else (far, near)
        if rel in ("above", "below"):
            a["x"], a["y"], b["x"], b["y"] = across, first, across_b, second
        else:
            a["x"], a["y"], b["x"], b["y"] = first, across, second, across_b
        for o in (a, b):
            o["position"] = _nearest_cell(o["x"], o["y"])
        objects += [a, b]
        attrs["relation"] = rel
        attrs["count"] = 2
    elif kind == "list":
        n = rng.choice((2, 3))
        cells = rng.sample(list(POSITIONS), n)
        seen = set()
        for cell in cells:
            o = _new_object(rng, bg)
            while (o["shape"], o["colour"]) in seen:
                o = _new_object(rng, bg)
            seen.add((o["shape"], o["colour"]))
            o["size"] = "small"
            o["r"] = rng.uniform(*_GRID_R)
            o["x"] = (cell[0] + 0.5) / 3 + rng.uniform(-0.04, 0.04)
            o["y"] = (cell[1] + 0.5) / 3 + rng.uniform(-0.04, 0.04)
            o["position"] = POSITIONS[cell]
            objects.append(o)
        # caption order: reading order (top to bottom, left to right)
        objects.sort(key=lambda o: (_CELL[o["position"]][1], _CELL[o["position"]][0]))
        attrs["count"] = n
    else:
        raise ValueError(f"unknown scene kind {kind!r}")
    return attrs


# ----------------------------------------------------------------------------- geometry
_K = 0.5522847498  # cubic circle-arc constant


def _circle_cubics(radius: float = 1.0) -> np.ndarray:
    """Closed circle as 4 cubics: (12, 2) control points, unit centre at the origin."""
    k = _K * radius
    r = radius
    return np.array(
        [[r, 0], [r, k], [k, r], [0, r], [-k, r], [-r, k], [-r, 0], [-r, -k], [-k, -r], [0, -r], [k, -r], [r, -k]],
        dtype=np.float64,
    )


def _polygon_cubics(v: np.ndarray) -> np.ndarray:
    """Closed polygon -> (3n, 2) cubic control points (each edge an exact straight cubic)."""
    nxt = np.roll(v, -1, axis=0)
    return np.stack([v, v + (nxt - v) / 3.0, v + (nxt - v) * (2.0 / 3.0)], 1).reshape(-1, 2)


def _star_vertices(points: int = 5, inner: float = 0.42) -> np.ndarray:
    ang = -math.pi / 2 + np.arange(2 * points) * math.pi / points
    rad = np.where(np.arange(2 * points) % 2 == 0, 1.0, inner)
    return np.stack([rad * np.cos(ang), rad * np.sin(ang)], 1)


_CROSS = np.array(
    [
        [-0.3, -1],
        [0.3, -1],
        [0.3, -0.3],
        [1, -0.3],
        [1, 0.3],
        [0.3, 0.3],
        [0.3, 1],
        [-0.3, 1],
        [-0.3, 0.3],
        [-1, 0.3],
        [-1, -0.3],
        [-0.3, -0.3],
    ],
    dtype=np.float64,
)
_HEART = np.array(
    [
        [0.0, 0.95],
        [-0.55, 0.5],
        [-1.0, 0.1],
        [-1.0, -0.35],
        [-1.0, -0.85],
        [-0.35, -1.0],
        [0.0, -0.55],
        [0.35, -1.0],
        [1.0, -0.85],
        [1.0, -0.35],
        [1.0, 0.1],
        [0.55, 0.5],
    ],
    dtype=np.float64,
)
_TRIANGLE = np.array([[math.cos(a), math.sin(a) + 0.12] for a in (-math.pi / 2, math.pi / 6, 5 * math.pi / 6)]) * 1.1
_RING_INNER = 0.55

# unit outline contours (closed cubic control points) of each shape's region
_CONTOURS: dict[str, list[np.ndarray]] = {
    "circle": [_circle_cubics()],
    "square": [_polygon_cubics(np.array([[-0.82, -0.82], [0.82, -0.82], [0.82, 0.82], [-0.82, 0.82]]))],
    "triangle": [_polygon_cubics(_TRIANGLE)],
    "star": [_polygon_cubics(_star_vertices())],
    "ring": [_circle_cubics(), _circle_cubics(_RING_INNER)],
    "cross": [_polygon_cubics(_CROSS)],
    "heart": [_HEART],
}


def _sample_closed(cubics: np.ndarray, per_seg: int = 8) -> np.ndarray:
    """Closed cubic control points (3n, 2) -> polygon (n * per_seg, 2)."""
    n = cubics.shape[0] // 3
    segs = np.stack([cubics[3 * i : 3 * i + 3].tolist() + [cubics[(3 * i + 3) % (3 * n)]] for i in range(n)])
    t = np.linspace(0, 1, per_seg, endpoint=False)[:, None]
    s = 1 - t
    pts = (
        (s**3)[None] * segs[:, None, 0]
        + (3 * s * s * t)[None] * segs[:, None, 1]
        + (3 * s * t * t)[None] * segs[:, None, 2]
        + (t**3)[None] * segs[:, None, 3]
    )
    return pts.reshape(-1, 2)


def _inside(pts: np.ndarray, polys: list[np.ndarray]) -> np.ndarray:
    """Even-odd point-in-region test for (P, 2) points against polygons."""
    odd = np.zeros(pts.shape[0], dtype=bool)
    x, y = pts[:, 0:1], pts[:, 1:2]
    for poly in polys:
        a, b = poly, np.roll(poly, -1, axis=0)
        ay, by = a[None, :, 1], b[None, :, 1]
        crosses = (ay > y) != (by > y)
        with np.errstate(divide="ignore", invalid="ignore"):
            xi = a[None, :, 0] + (y - ay) * (b[None, :, 0] - a[None, :, 0]) / (by - ay)
        odd ^= np.sum(crosses & (x < xi), axis=1) % 2 == 1
    return odd


def _transform(p: np.ndarray, o: dict, s: float, ox: float = 0.0, oy: float = 0.0) -> np.ndarray:
    th = math.radians(o["angle"])
    c, sn = math.cos(th), math.sin(th)
    rot = np.array([[c, -sn], [sn, c]])
    rpx = o["r"] * s
    return p @ rot.T * rpx + np.array([o["x"] * s + ox, o["y"] * s + oy])


def _t(a) -> Tensor:
    return torch.as_tensor(np.asarray(a, dtype=np.float32))


def _rgba(rgb) -> Tensor:
    return torch.tensor([rgb[0], rgb[1], rgb[2], 1.0], dtype=torch.float32)


def _dot_path(p: np.ndarray, width: float, colour: Tensor) -> Path:
    pts = np.repeat(p[None], 4, axis=0)
    return Path(_t(pts), closed=False, stroke_width=float(width), stroke=colour)


def object_paths(o: dict, s: float, ox: float = 0.0, oy: float = 0.0) -> list[Path]:
    """The Paths drawing one object on a canvas of side ``s`` px, shifted by (ox, oy)."""
    rgba = _rgba(o["rgb"])
    rpx = o["r"] * s
    shape, style = o["shape"], o["style"]
    if shape == "line":
        ends = _transform(np.array([[-1.0, 0.0], [-1 / 3, 0.0], [1 / 3, 0.0], [1.0, 0.0]]), o, s, ox, oy)
        return [Path(_t(ends), closed=False, stroke_width=max(1.5, 0.22 * rpx), stroke=rgba)]
    contours = [_transform(c, o, s, ox, oy) for c in _CONTOURS[shape]]
    thin = max(1.0, 0.12 * rpx)
    if style == "filled":
        if shape == "ring":
            mid = _transform(_circle_cubics((1 + _RING_INNER) / 2), o, s, ox, oy)
            return [Path(_t(mid), closed=True, stroke_width=(1 - _RING_INNER) * rpx, stroke=rgba)]
        return [Path(_t(contours[0]), closed=True, fill=rgba)]
    paths = [Path(_t(c), closed=True, stroke_width=thin, stroke=rgba) for c in contours]
    if style == "outline":
        return paths
    polys = [_sample_closed(c) for c in contours]
    lo = np.min(np.concatenate(polys), 0)
    hi = np.max(np.concatenate(polys), 0)
    cx, cy = (lo + hi) / 2
    half = float(np.max(hi - lo)) / 2 * 1.5
    if style == "striped":
        gap = max(3.0, 0.4 * rpx)
        th = math.radians(o["stripe_angle"])
        d = np.array([math.cos(th), math.sin(th)])
        nrm = np.array([-d[1], d[0]])
        t = np.linspace(-half, half, 72)
        k = -half + o["phase"] * gap
        while k < half:
            line = np.array([cx, cy]) + nrm * k + t[:, None] * d
            ins = _inside(line, polys)
            # runs of inside samples -> one stripe each
            idx = np.flatnonzero(np.diff(np.concatenate([[0], ins.astype(np.int8), [0]])))
            for a, b in zip(idx[::2], idx[1::2]):
                if b - 1 > a:
                    p0, p1 = line[a], line[b - 1]
                    seg = np.stack([p0, p0 + (p1 - p0) / 3, p0 + (p1 - p0) * 2 / 3, p1])
                    paths.append(Path(_t(seg), closed=False, stroke_width=max(1.0, 0.4 * gap), stroke=rgba))
            k += gap
        return paths
    # dotted
    gap = max(3.5, 0.45 * rpx)
    g = np.arange(-half, half + 1e-6, gap) + (o["phase"] - 0.5) * gap
    gx, gy = np.meshgrid(g + cx, g + cy)
    cand = np.stack([gx.ravel(), gy.ravel()], 1)
    cand = cand[_inside(cand, polys)]
    if cand.shape[0] == 0:
        cand = np.array([[cx, cy]])
    for p in cand:
        paths.append(_dot_path(p, max(1.6, 0.5 * gap), rgba))
    return paths


def build_scene(attrs: dict, size: int = 64) -> Scene:
    """The attributes of :func:`sample_scene` as a vecgen Scene of ``size`` px (with background)."""
    paths: list[Path] = []
    for o in attrs["objects"]:
        paths += object_paths(o, float(size))
    return Scene(size, size, paths, background=torch.tensor(attrs["bg_rgb"], dtype=torch.float32))


def render_scene(attrs: dict, size: int = 64) -> Tensor:
    """One scene -> ``(3, size, size)`` RGB in [0, 1]."""
    from vecgen.backends.raster.native import composite, rasterize

    scene = build_scene(attrs, size)
    with torch.no_grad():
        return composite(rasterize(scene), scene.background).clamp(0, 1)


def render_batch(attrs_list: Sequence[dict], size: int = 64, per_row: int = 8) -> Tensor:
    """Many scenes -> ``(N, 3, size, size)``, rasterized together as tiles of one big canvas.

    Tiles are separated by a gap wider than any object reaches outside its canvas, so
    tiles never bleed into each other; each tile is then composited over its own
    background. One rasterizer call amortizes the per-call overhead over all of them.
    """
    from vecgen.backends.raster.native import rasterize

    n = len(attrs_list)
    if n == 0:
        return torch.zeros(0, 3, size, size)
    pad = math.ceil(_PAD_FRAC * size)
    pitch = size + pad
    cols = min(per_row, n)
    rows = (n + cols - 1) // cols
    paths: list[Path] = []
    origins = []
    for i, attrs in enumerate(attrs_list):
        ox, oy = pad + (i % cols) * pitch, pad + (i // cols) * pitch
        origins.append((ox, oy))
        for o in attrs["objects"]:
            paths += object_paths(o, float(size), ox, oy)
    canvas = Scene(pad + cols * pitch, pad + rows * pitch, paths)
    with torch.no_grad():
        rgba = rasterize(canvas)
    tiles = torch.stack([rgba[:, oy : oy + size, ox : ox + size] for ox, oy in origins])
    bg = torch.tensor([a["bg_rgb"] for a in attrs_list], dtype=torch.float32).view(n, 3, 1, 1)
    return (tiles[:, :3] + (1.0 - tiles[:, 3:]) * bg).clamp(0, 1)
