"""Procedural captioned scenes: simple shapes drawn as vecgen Paths, with captions.

A scene is sampled from a seed as a plain attributes dict (no pixels), drawn as a
:class:`vecgen.scene.Scene` of cubic Bézier paths and rasterized with vecgen's
native rasterizer. Captions are written from the attributes by templates with
synonyms, so a training loop can draw a fresh caption (and "hard negative"
captions that change exactly one attribute) for a cached image every epoch.

    >>> img, caption, attrs = make_scene(7, size=64)
    >>> img.shape, caption
    (torch.Size([3, 64, 64]), 'a small red striped star at the top left')

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
from dataclasses import dataclass, field

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
    (0, 0): "top left", (1, 0): "top", (2, 0): "top right",
    (0, 1): "left", (1, 1): "center", (2, 1): "right",
    (0, 2): "bottom left", (1, 2): "bottom", (2, 2): "bottom right",
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
COUNT_WORDS: dict[int, tuple[str, ...]] = {1: ("one", "a single"), 2: ("two", "a pair of", "2"),
                                           3: ("three", "a group of three", "3")}
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

_SMALL_R = (0.09, 0.13)   # single scenes, radius as a fraction of the canvas side
_LARGE_R = (0.2, 0.26)
_GRID_R = (0.07, 0.11)    # count / list scenes: one object per grid cell
_REL_R = (0.09, 0.15)
_PAD_FRAC = 0.2           # tile gap in batched rendering; objects never reach further out


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
    return {"shape": shape, "colour": colour, "style": style, "rgb": _jitter_rgb(rng, COLOURS[colour][0]),
            "angle": angle, "stripe_angle": rng.choice((45.0, -45.0, 0.0, 90.0)), "phase": rng.random()}


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
            o["angle"] = proto["angle"] if proto["shape"] in ("circle", "ring") else (
                rng.choice((0.0, 45.0, 90.0, 135.0)) + rng.uniform(-10, 10) if proto["shape"] == "line"
                else rng.uniform(-15, 15))
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
    return np.array([[r, 0], [r, k], [k, r], [0, r], [-k, r], [-r, k], [-r, 0], [-r, -k], [-k, -r],
                     [0, -r], [k, -r], [r, -k]], dtype=np.float64)


def _polygon_cubics(v: np.ndarray) -> np.ndarray:
    """Closed polygon -> (3n, 2) cubic control points (each edge an exact straight cubic)."""
    nxt = np.roll(v, -1, axis=0)
    return np.stack([v, v + (nxt - v) / 3.0, v + (nxt - v) * (2.0 / 3.0)], 1).reshape(-1, 2)


def _star_vertices(points: int = 5, inner: float = 0.42) -> np.ndarray:
    ang = -math.pi / 2 + np.arange(2 * points) * math.pi / points
    rad = np.where(np.arange(2 * points) % 2 == 0, 1.0, inner)
    return np.stack([rad * np.cos(ang), rad * np.sin(ang)], 1)


_CROSS = np.array([[-0.3, -1], [0.3, -1], [0.3, -0.3], [1, -0.3], [1, 0.3], [0.3, 0.3], [0.3, 1], [-0.3, 1],
                   [-0.3, 0.3], [-1, 0.3], [-1, -0.3], [-0.3, -0.3]], dtype=np.float64)
_HEART = np.array([[0.0, 0.95], [-0.55, 0.5], [-1.0, 0.1], [-1.0, -0.35], [-1.0, -0.85], [-0.35, -1.0],
                   [0.0, -0.55], [0.35, -1.0], [1.0, -0.85], [1.0, -0.35], [1.0, 0.1], [0.55, 0.5]],
                  dtype=np.float64)
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
    segs = np.stack([cubics[3 * i: 3 * i + 3].tolist() + [cubics[(3 * i + 3) % (3 * n)]] for i in range(n)])
    t = np.linspace(0, 1, per_seg, endpoint=False)[:, None]
    s = 1 - t
    pts = (s ** 3)[None] * segs[:, None, 0] + (3 * s * s * t)[None] * segs[:, None, 1] \
        + (3 * s * t * t)[None] * segs[:, None, 2] + (t ** 3)[None] * segs[:, None, 3]
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
        odd ^= (np.sum(crosses & (x < xi), axis=1) % 2 == 1)
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
    tiles = torch.stack([rgba[:, oy:oy + size, ox:ox + size] for ox, oy in origins])
    bg = torch.tensor([a["bg_rgb"] for a in attrs_list], dtype=torch.float32).view(n, 3, 1, 1)
    return (tiles[:, :3] + (1.0 - tiles[:, 3:]) * bg).clamp(0, 1)


# ----------------------------------------------------------------------------- captions
@dataclass
class CaptionPlan:
    """Every random choice of a caption except the attribute values themselves.

    Rendering the same plan with attributes that differ in one value gives a caption
    that differs only in the words for that value (a hard negative).
    """

    template_set: str
    template: int
    flags: dict[str, bool]
    u: list[float] = field(default_factory=list)


class _Words:
    """Sequential synonym picker over a plan's uniform numbers (value-independent draws)."""

    def __init__(self, u: list[float]) -> None:
        self.u, self.i = u, 0

    def index(self, n: int) -> int:
        """0 (the canonical word) with probability 0.6, else one of the others uniformly."""
        v = self.u[self.i % len(self.u)]
        self.i += 1
        if n == 1 or v < 0.6:
            return 0
        return 1 + min(n - 2, int((v - 0.6) / 0.4 * (n - 1)))

    def pick(self, options: Sequence[str]) -> str:
        return options[self.index(len(options))]


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def _noun_phrase(o: dict, w: _Words, flags: dict, count: int | None = None, with_size: bool = True) -> str:
    """'a small striped red star' / 'two blue triangles' (count given)."""
    words = []
    if with_size and flags.get("size"):
        words.append(w.pick(SIZES[o["size"]]))
    else:
        w.pick(("",))
    style = w.pick(STYLES[o["style"]])
    if flags.get("style") and o["shape"] != "line":
        words.append(style)
    words.append(w.pick(COLOURS[o["colour"]][1]))
    forms = SHAPES[o["shape"]][w.index(len(SHAPES[o["shape"]]))]
    plural = count is not None and count > 1
    words.append(forms[1] if plural else forms[0])
    body = " ".join(words)
    if count is None:
        return f"{_article(body)} {body}"
    det = w.pick(COUNT_WORDS[count])
    if count == 1 and det == "one" and flags.get("article"):
        det = _article(body)
    return f"{det} {body}"


def _bg_phrase(attrs: dict, w: _Words, flags: dict) -> str:
    name = w.pick(BACKGROUNDS[attrs["background"]][1])
    form = w.pick(("on a {} background", "against a {} background", "on {}"))
    return (" " + form.format(name)) if flags.get("bg") else ""


# templates: (kind, set) -> list of format strings. Fields: {np} noun phrase(s) with article,
# {pos} position phrase, {bg} background phrase (leading space or empty), {rel} relation words.
_TEMPLATES: dict[tuple[str, str], list[str]] = {
    ("single", "common"): ["{np} {pos}{bg}", "{np}{bg}, {pos}"],
    ("single", "a"): ["a drawing of {np} {pos}{bg}", "an image of {np} {pos}{bg}", "{pos}: {np}{bg}"],
    ("single", "b"): ["there is {np} {pos}{bg}", "a picture showing {np} {pos}{bg}", "{Pos}, {np}{bg}"],
    ("count", "common"): ["{np}{bg}"],
    ("count", "a"): ["a drawing of {np}{bg}", "{np} drawn{bg}"],
    ("count", "b"): ["there {be} {np}{bg}", "a picture with {np}{bg}"],
    ("relation", "common"): ["{np} {rel} {np2}{bg}", "{np2} {irel} {np}{bg}"],
    ("relation", "a"): ["a drawing of {np} {rel} {np2}{bg}"],
    ("relation", "b"): ["there is {np} {rel} {np2}{bg}"],
    ("list", "common"): ["{nps}{bg}"],
    ("list", "a"): ["a drawing of {nps}{bg}"],
    ("list", "b"): ["there is {nps}{bg}"],
}
_FLAG_P = {"size": 0.75, "style": 0.5, "pos": 0.85, "bg": 0.2, "article": 0.5}


def template_sets_for(name: str) -> tuple[str, ...]:
    """'a' -> ('common', 'a'); 'b' -> ('common', 'b'); 'all' -> all sets; 'common' -> just it."""
    if name == "all":
        return TEMPLATE_SETS
    if name == "common":
        return ("common",)
    if name not in TEMPLATE_SETS:
        raise ValueError(f"unknown template set {name!r}")
    return ("common", name)


def plan_caption(kind: str, rng: random.Random, templates: str = "all") -> CaptionPlan:
    sets = template_sets_for(templates)
    tset = sets[0] if len(sets) == 1 or rng.random() < 0.5 else rng.choice(sets[1:])
    tpl = rng.randrange(len(_TEMPLATES[(kind, tset)]))
    flags = {k: rng.random() < p for k, p in _FLAG_P.items()}
    return CaptionPlan(tset, tpl, flags, [rng.random() for _ in range(24)])


def canonical_plan(kind: str) -> CaptionPlan:
    """Fixed plan used by probes: first common template, canonical words, all attributes named."""
    return CaptionPlan("common", 0, {"size": True, "style": False, "pos": True, "bg": False, "article": True},
                       [0.0] * 24)


def render_caption(attrs: dict, plan: CaptionPlan) -> str:
    kind, f = attrs["kind"], plan.flags
    w = _Words(plan.u)
    objs = attrs["objects"]
    fmt = _TEMPLATES[(kind, plan.template_set)][plan.template]
    fields: dict[str, str] = {}
    if kind == "single":
        o = objs[0]
        fields["np"] = _noun_phrase(o, w, f)
        pos = w.pick(POSITION_WORDS[o["position"]])
        fields["pos"] = pos if f["pos"] else ""
        fields["Pos"] = pos[:1].upper() + pos[1:] if f["pos"] else ""
    elif kind == "count":
        n = attrs["count"]
        fields["np"] = _noun_phrase(objs[0], w, f, count=n, with_size=False)
        fields["be"] = "is" if n == 1 else "are"
    elif kind == "relation":
        fields["np"] = _noun_phrase(objs[0], w, f, with_size=False)
        fields["np2"] = _noun_phrase(objs[1], w, f, with_size=False)
        fields["rel"] = w.pick(RELATIONS[attrs["relation"]])
        fields["irel"] = w.pick(RELATIONS[_INVERSE[attrs["relation"]]])
    else:
        nps = [_noun_phrase(o, w, f, with_size=False) for o in objs]
        fields["nps"] = nps[0] + " and " + nps[1] if len(nps) == 2 else ", ".join(nps[:-1]) + " and " + nps[-1]
    fields["bg"] = _bg_phrase(attrs, w, f)
    text = fmt.format(**fields)
    text = " ".join(text.replace(" ,", ",").split()).strip(" ,:")
    return text


def caption_scene(attrs: dict, rng_or_seed, templates: str = "all") -> tuple[str, CaptionPlan]:
    """A random caption for a scene -> (text, plan); the plan makes hard negatives."""
    rng = _rng(rng_or_seed)
    plan = plan_caption(attrs["kind"], rng, templates)
    return render_caption(attrs, plan), plan


# ----------------------------------------------------------------------------- hard negatives
def mutable_slots(attrs: dict, plan: CaptionPlan) -> list[tuple[str, int]]:
    """(attribute, object index) pairs a caption written with ``plan`` names."""
    kind, f = attrs["kind"], plan.flags
    objs = attrs["objects"]
    slots: list[tuple[str, int]] = []
    if kind == "single":
        slots += [("colour", 0), ("shape", 0)]
        if f["size"]:
            slots.append(("size", 0))
        if f["pos"]:
            slots.append(("position", 0))
        if f["style"] and objs[0]["shape"] != "line":
            slots.append(("style", 0))
    elif kind == "count":
        slots += [("count", 0), ("colour", 0), ("shape", 0)]
    elif kind == "relation":
        slots += [("relation", 0), ("colour", 0), ("colour", 1), ("shape", 0), ("shape", 1)]
        if objs[0]["colour"] != objs[1]["colour"]:
            slots.append(("swap_colour", 0))
        if objs[0]["shape"] != objs[1]["shape"]:
            slots.append(("swap_shape", 0))
    else:
        for i in range(len(objs)):
            slots += [("colour", i), ("shape", i)]
        if len({o["colour"] for o in objs}) > 1:
            slots.append(("swap_colour", 0))
    if f["bg"]:
        slots.append(("background", 0))
    return slots


_VALUES = {"colour": list(COLOURS), "shape": list(SHAPES), "size": list(SIZES), "position": list(_CELL),
           "style": [s for s in STYLES], "count": [1, 2, 3], "relation": list(RELATIONS),
           "background": list(BACKGROUNDS)}


def with_attribute(attrs: dict, attribute: str, value, index: int = 0) -> dict:
    """Copy of ``attrs`` whose caption would name ``value`` for ``attribute`` (of object ``index``)."""
    new = dict(attrs)
    objs = [dict(o) for o in attrs["objects"]]
    new["objects"] = objs
    if attribute in ("colour", "shape", "size", "position", "style"):
        if attribute == "shape" and value == "line":
            objs[index]["style"] = "filled"
        objs[index][attribute] = value
    elif attribute == "count":
        new["count"] = value
    elif attribute == "relation":
        new["relation"] = value
    elif attribute == "background":
        new["background"] = value
    elif attribute == "swap_colour":
        cols = [o["colour"] for o in objs]
        for o, c in zip(objs, cols[1:] + cols[:1]):
            o["colour"] = c
    elif attribute == "swap_shape":
        a, b = objs[0]["shape"], objs[1]["shape"]
        objs[0]["shape"], objs[1]["shape"] = b, a
    else:
        raise ValueError(f"unknown attribute {attribute!r}")
    return new


# how often each kind of change is drawn for a hard negative (relative)
NEGATIVE_WEIGHTS = {"shape": 3.0, "position": 2.0, "colour": 1.0, "size": 1.0, "count": 2.0, "relation": 2.0,
                    "swap_colour": 2.0, "swap_shape": 1.0, "style": 0.5, "background": 0.3}


def negatives(attrs: dict, plan: CaptionPlan, rng_or_seed, k: int = 3,
              weights: dict[str, float] | None = None) -> list[str]:
    """Up to ``k`` distinct captions that each change exactly one named attribute (all false).

    The attribute to change is drawn per negative with ``weights`` (default
    :data:`NEGATIVE_WEIGHTS`), so one attribute may appear with several wrong values.
    """
    rng = _rng(rng_or_seed)
    weights = NEGATIVE_WEIGHTS if weights is None else weights
    slots = mutable_slots(attrs, plan)
    w = [weights.get(a, 1.0) for a, _ in slots]
    true = render_caption(attrs, plan)
    out: list[str] = []
    tries = 0
    while len(out) < k and tries < 4 * k + 8:
        tries += 1
        attr, idx = rng.choices(slots, weights=w, k=1)[0]
        if attr in ("swap_colour", "swap_shape"):
            value = None
        elif attr == "relation":
            value = _INVERSE[attrs["relation"]]
        elif attr == "count":
            value = rng.choice([c for c in (1, 2, 3) if c != attrs["count"]])
        elif attr == "background":
            value = rng.choice([b for b in BACKGROUNDS if b != attrs["background"]])
        else:
            value = rng.choice([v for v in _VALUES[attr] if v != attrs["objects"][idx][attr]])
        text = render_caption(with_attribute(attrs, attr, value, idx), plan)
        if text != true and text not in out:
            out.append(text)
    return out


# ----------------------------------------------------------------------------- attribute captions
# Short true captions naming one attribute only ("a disc", "something red", "three shapes").
# With every other value of that attribute as candidates they make a focused contrastive
# task: the text side differs in exactly one word from the first step of training.
_PARTIAL_FORMS = {
    "shape": ("{article} {shape}", "{shape}", "a drawing of {article} {shape}"),
    "colour": ("something {colour}", "{colour}", "{article} {colour} shape"),
    "position": ("something {pos}", "{pos}", "an object {pos}"),
    "size": ("{article} {size} shape", "{size}", "something {size}"),
    "count": ("{count} shapes", "{count} objects", "{count} things"),
}
PARTIAL_ATTRIBUTES = {"single": ("shape", "colour", "position", "size"), "count": ("count", "shape", "colour")}


def partial_captions(attrs: dict, attribute: str, rng_or_seed) -> list[str]:
    """Short captions naming only ``attribute``: the true one first, then one per other value.

    Words (synonyms, form) are drawn once and shared by all candidates, so they differ
    only in the attribute's words. Only for ``single`` and ``count`` scenes.
    """
    rng = _rng(rng_or_seed)
    u = [rng.random() for _ in range(3)]
    form = _PARTIAL_FORMS[attribute][int(u[0] * len(_PARTIAL_FORMS[attribute]))]
    o = attrs["objects"][0]
    true = attrs["count"] if attribute == "count" else o[attribute]
    values = [true] + [v for v in ([1, 2, 3] if attribute == "count" else _VALUES[attribute]) if v != true]
    out = []
    for v in values:
        w = _Words([u[1]])
        if attribute == "shape":
            word = SHAPES[v][w.index(len(SHAPES[v]))][0]
        elif attribute == "colour":
            word = w.pick(COLOURS[v][1])
        elif attribute == "position":
            word = w.pick(POSITION_WORDS[v])
        elif attribute == "size":
            word = w.pick(SIZES[v])
        else:
            word = {1: ("one", "a single"), 2: ("two", "2"), 3: ("three", "3")}[v][int(u[1] * 2)]
        text = form.format(article=_article(word), shape=word, colour=word, pos=word, size=word, count=word)
        if attribute == "count" and v == 1:
            text = text.replace("shapes", "shape").replace("objects", "object").replace("things", "thing")
        out.append(text)
    return out


# ----------------------------------------------------------------------------- convenience
def make_scene(rng_or_seed, size: int = 64, templates: str = "all", kind: str | None = None):
    """-> (image ``(3, size, size)`` in [0, 1], caption, attributes), deterministic per seed."""
    rng = _rng(rng_or_seed)
    attrs = sample_scene(rng, kind)
    caption, _ = caption_scene(attrs, rng, templates)
    return render_scene(attrs, size), caption, attrs


class SceneDataset(torch.utils.data.Dataset):
    """Scenes ``seed0 .. seed0 + count - 1``: item i -> (image, caption), deterministic.

    For fast loading use :meth:`render_range`, which rasterizes in tiled batches.
    """

    def __init__(self, seed0: int = 0, count: int = 10_000, size: int = 64, templates: str = "all") -> None:
        self.seed0, self.count, self.size, self.templates = int(seed0), int(count), int(size), templates

    def __len__(self) -> int:
        return self.count

    def attrs(self, i: int) -> dict:
        return sample_scene(random.Random(self.seed0 + i))

    def __getitem__(self, i: int):
        if not 0 <= i < self.count:
            raise IndexError(i)
        img, caption, _ = make_scene(self.seed0 + i, self.size, self.templates)
        return img, caption

    def batches(self, batch_size: int = 64):
        """Yield (images ``(B, 3, S, S)``, captions, attributes) in order, rendered in tiles."""
        for start in range(0, self.count, batch_size):
            rngs = [random.Random(self.seed0 + i) for i in range(start, min(self.count, start + batch_size))]
            attrs = [sample_scene(r) for r in rngs]
            caps = [caption_scene(a, r, self.templates)[0] for a, r in zip(attrs, rngs)]
            yield render_batch(attrs, self.size), caps, attrs
