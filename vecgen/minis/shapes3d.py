"""3-D primitives for the mini models: depth maps of point clouds and shaded, coloured views, with captions.

Six solids (cube, sphere, cylinder, cone, torus, square pyramid), each with random
proportions and a random pose, sampled as surface points with normals. A scene is
one picture of one solid, of one of two kinds:

- ``depth``: a point cloud (about 360-5000 points; per-axis noise, sometimes a
  stretch along the world axes and a spray of up to 2% stray points, as scans have)
  projected to a depth map by :func:`vecgen.backends.mesh.points.depth_maps` from
  one of classify3d's view directions, stray points dropped first -- exactly what
  ``vecgen classify3d`` shows the model; captions such as "point cloud depth map of a cone."
- ``shaded``: a dense cloud splatted with Lambert shading in one of the scene
  generator's colours on one of its backgrounds; captions such as "a red shaded cube".

Everything is deterministic per seed. :func:`mix_in` appends such scenes to the 2-D
training set of :mod:`vecgen.minis.train` (``--scenes3d N``); the caption functions
are reached through :mod:`vecgen.minis.captions`, which dispatches on ``kind``.
"""

from __future__ import annotations

import math
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from vecgen.backends.mesh.camera import project
from vecgen.backends.mesh.points import VIEW_SETS, cameras, depth_maps, normalize, splat
from vecgen.minis.scenes import BACKGROUNDS, COLOURS

GENERATOR_VERSION = 2  # bump when sampling or drawing changes (invalidates caches)
#: solid -> words (the first is canonical; it is the label classify3d uses)
SOLIDS: dict[str, tuple[str, ...]] = {
    "cube": ("cube",),
    "sphere": ("sphere", "ball"),
    "cylinder": ("cylinder",),
    "cone": ("cone",),
    "torus": ("torus",),
    "pyramid": ("pyramid", "square pyramid"),
}
KINDS = ("depth", "shaded")
DEFAULT_MIX = {"depth": 0.2, "shaded": 0.1}  # batch shares next to the 2-D kinds (which sum to 1)
DEPTH_TEMPLATE = "point cloud depth map of a {}."
_DEPTH_TEMPLATES = (
    DEPTH_TEMPLATE,
    "point cloud depth map of a {}",
    "a depth map of a {}",
    "depth image of a {}",
    "a point cloud of a {}",
    "a {}, depth map",
    "a depth map of a {} point cloud",
)
_SHADED_TEMPLATES = (
    "{a} {c} shaded {s}",
    "{a} shaded {c} {s}",
    "a 3d render of {a} {c} {s}",
    "{a} {c} {s}",
    "{a} {c} {s} on a {bg} background",
    "a rendering of {a} {c} {s}",
    "{a} {c} solid {s}",
)
_ALL_VIEWS = VIEW_SETS[12]


# ----------------------------------------------------------------------------- surfaces
def _disc(rng: np.random.Generator, n: int, r: float) -> np.ndarray:
    rad = r * np.sqrt(rng.random(n))
    th = rng.random(n) * 2 * math.pi
    return np.stack([rad * np.cos(th), rad * np.sin(th)], 1)


def _pick(rng: np.random.Generator, n: int, areas: list[float]) -> np.ndarray:
    a = np.asarray(areas, dtype=np.float64)
    return rng.choice(len(a), size=n, p=a / a.sum())


def solid_surface(solid: str, dims: dict, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` area-uniform surface points ``(n, 3)`` and outward normals of a solid standing on +y (up)."""
    pts, nrm = np.zeros((n, 3)), np.zeros((n, 3))
    if solid == "cube":
        half = np.array([dims["x"], dims["y"], dims["z"]])
        face = _pick(rng, n, [half[1] * half[2]] * 2 + [half[0] * half[2]] * 2 + [half[0] * half[1]] * 2)
        pts = (rng.random((n, 3)) * 2 - 1) * half
        axis, sign = face // 2, np.where(face % 2 == 0, 1.0, -1.0)
        pts[np.arange(n), axis] = sign * half[axis]
        nrm[np.arange(n), axis] = sign
    elif solid == "sphere":
        d = rng.normal(size=(n, 3))
        d /= np.linalg.norm(d, axis=1, keepdims=True)
        ax = np.array([dims["x"], dims["y"], dims["z"]])
        pts, nrm = d * ax, d / ax
    elif solid in ("cylinder", "cone"):
        r, h = dims["r"], dims["h"]
        side = 2 * math.pi * r * h if solid == "cylinder" else math.pi * r * math.hypot(r, h)
        part = _pick(rng, n, [side, math.pi * r * r] + ([math.pi * r * r] if solid == "cylinder" else []))
        th = rng.random(n) * 2 * math.pi
        if solid == "cylinder":
            y = (rng.random(n) * 2 - 1) * h / 2
            pts = np.stack([r * np.cos(th), y, r * np.sin(th)], 1)
            nrm = np.stack([np.cos(th), np.zeros(n), np.sin(th)], 1)
        else:  # area-uniform on the slanted side: radius grows with sqrt of a uniform number
            t = np.sqrt(rng.random(n))
            pts = np.stack([r * t * np.cos(th), h / 2 - t * h, r * t * np.sin(th)], 1)
            nrm = np.stack([h * np.cos(th), np.full(n, r), h * np.sin(th)], 1)
        for k, y in ((1, -h / 2), (2, h / 2)):
            m = part == k
            d = _disc(rng, int(m.sum()), r)
            pts[m] = np.stack([d[:, 0], np.full(len(d), y), d[:, 1]], 1)
            nrm[m] = [0.0, math.copysign(1.0, y), 0.0]
    elif solid == "torus":
        big, small = dims["R"], dims["r"]
        u, v = rng.random(n) * 2 * math.pi, rng.random(n) * 2 * math.pi
        # rejection keeps it area-uniform: the outer rim has more area than the inner one
        keep = rng.random(n) * (big + small) <= big + small * np.cos(v)
        while not keep.all():
            k = ~keep
            v[k] = rng.random(k.sum()) * 2 * math.pi
            keep[k] = rng.random(k.sum()) * (big + small) <= big + small * np.cos(v[k])
        ring = big + small * np.cos(v)
        pts = np.stack([ring * np.cos(u), small * np.sin(v), ring * np.sin(u)], 1)
        nrm = np.stack([np.cos(v) * np.cos(u), np.sin(v), np.cos(v) * np.sin(u)], 1)
    elif solid == "pyramid":
        b, h = dims["b"], dims["h"]
        slant = math.hypot(b, h)
        face = _pick(rng, n, [4 * b * b] + [b * slant] * 4)
        base = face == 0
        pts[base] = np.stack(
            [(rng.random(base.sum()) * 2 - 1) * b, np.full(base.sum(), -h / 2), (rng.random(base.sum()) * 2 - 1) * b], 1
        )
        nrm[base] = [0.0, -1.0, 0.0]
        for k in range(4):  # a triangle from the apex to one base edge
            m = face == k + 1
            c = int(m.sum())
            u, w = rng.random(c), rng.random(c)
            flip = u + w > 1
            u[flip], w[flip] = 1 - u[flip], 1 - w[flip]
            ang = k * math.pi / 2
            e1 = np.array([b * (math.cos(ang) - math.sin(ang)), -h, b * (math.sin(ang) + math.cos(ang))])
            e2 = np.array([b * (math.cos(ang) + math.sin(ang)), -h, b * (math.sin(ang) - math.cos(ang))])
            apex = np.array([0.0, h / 2, 0.0])
            pts[m] = apex + u[:, None] * e1 + w[:, None] * e2
            nrm[m] = [h * math.cos(ang), b, h * math.sin(ang)]
    else:
        raise ValueError(f"unknown solid {solid!r}")
    nrm /= np.linalg.norm(nrm, axis=1, keepdims=True).clip(1e-12)
    return pts, nrm


def sample_dims(solid: str, rng: random.Random) -> dict:
    """Random proportions that keep the solid recognisable."""
    if solid in ("cube", "sphere"):
        lo, hi = (0.8, 1.25) if solid == "cube" else (0.85, 1.15)
        return {k: rng.uniform(lo, hi) for k in "xyz"}
    if solid == "cylinder":
        return {"r": rng.uniform(0.3, 0.7), "h": rng.uniform(0.9, 2.2)}
    if solid == "cone":
        return {"r": rng.uniform(0.35, 0.8), "h": rng.uniform(0.9, 2.0)}
    if solid == "torus":
        return {"R": 1.0, "r": rng.uniform(0.15, 0.42)}
    return {"b": rng.uniform(0.5, 0.9), "h": rng.uniform(0.8, 1.7)}


def random_rotation(rng: random.Random, upright: bool) -> np.ndarray:
    """``(3, 3)``: a turn about the vertical and a tilt up to 25 degrees (``upright``), else any rotation."""
    if upright:
        yaw, tilt, roll = rng.uniform(0, 2 * math.pi), math.radians(rng.uniform(-25, 25)), rng.uniform(0, 2 * math.pi)
        cy, sy, ct, st = math.cos(yaw), math.sin(yaw), math.cos(tilt), math.sin(tilt)
        ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
        rx = np.array([[1, 0, 0], [0, ct, -st], [0, st, ct]])
        cr, sr = math.cos(roll), math.sin(roll)
        rr = np.array([[cr, 0, sr], [0, 1, 0], [-sr, 0, cr]])
        return rr @ rx @ ry
    q = np.array([rng.gauss(0, 1) for _ in range(4)])
    w, x, y, z = q / np.linalg.norm(q)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


# ----------------------------------------------------------------------------- scenes
def sample_scene3d(rng_or_seed, kind: str | None = None, solid: str | None = None) -> dict:
    """Attributes of one 3-D scene (plain values; pixels come from :func:`render_scene3d`)."""
    rng = rng_or_seed if isinstance(rng_or_seed, random.Random) else random.Random(int(rng_or_seed))
    kind = kind or rng.choice(KINDS)
    solid = solid or rng.choice(list(SOLIDS))
    attrs = {
        "kind": kind,
        "solid": solid,
        "dims": sample_dims(solid, rng),
        "rotation": random_rotation(rng, rng.random() < 0.6).tolist(),
        "objects": [],
        "view": list(rng.choice(_ALL_VIEWS)),
        "jitter": [rng.uniform(-12, 12), rng.uniform(-12, 12)],
        "point_seed": rng.randrange(2**31),
    }
    if kind == "depth":
        attrs.update(
            points=int(2 ** rng.uniform(8.5, 12.3)),
            noise=[rng.uniform(0.0, 0.015) for _ in range(3)],
            stretch=[rng.uniform(0.85, 1.18) for _ in range(3)] if rng.random() < 0.5 else [1.0] * 3,
            outliers=rng.choice((0.0, 0.0, rng.uniform(0.002, 0.02))),
            splat=rng.uniform(1.2, 1.9),
            bg="black",
            bg_rgb=(0.0, 0.0, 0.0),
        )
    else:
        bg = rng.choices(list(BACKGROUNDS), weights=(0.5, 0.1, 0.1, 0.1, 0.1, 0.1))[0]
        colour = rng.choice([c for c in COLOURS if math.dist(COLOURS[c][0], BACKGROUNDS[bg][0]) > 0.45])
        attrs.update(
            colour=colour, bg=bg, bg_rgb=BACKGROUNDS[bg][0], light=[rng.uniform(-1, 1), rng.uniform(0.2, 1), 1.0]
        )
    return attrs


def scene_points(attrs: dict, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The scene's solid as ``n`` posed surface points and normals, world frame."""
    rng = np.random.default_rng(attrs["point_seed"])
    pts, nrm = solid_surface(attrs["solid"], attrs["dims"], n, rng)
    rot = np.asarray(attrs["rotation"])
    return pts @ rot.T, nrm @ rot.T


def render_scene3d(attrs: dict, size: int = 64) -> Tensor:
    """One scene as ``(3, size, size)`` in [0, 1]."""
    az, el = attrs["view"][0] + attrs["jitter"][0], attrs["view"][1] + attrs["jitter"][1]
    if attrs["kind"] == "depth":
        pts, _ = scene_points(attrs, attrs["points"])
        rng = np.random.default_rng(attrs["point_seed"] + 1)
        pts = pts * np.asarray(attrs["stretch"]) + rng.normal(size=pts.shape) * np.asarray(attrs["noise"])
        stray = int(round(attrs["outliers"] * len(pts)))
        if stray:  # spray inside the bounding box, as a scanner's stray returns
            lo, hi = pts.min(0), pts.max(0)
            pts[rng.choice(len(pts), stray, replace=False)] = rng.uniform(lo, hi, (stray, 3))
        return depth_maps(pts.astype(np.float32), [(az, el)], size, splat_scale=attrs["splat"], clean=True)[0]
    pts, nrm = scene_points(attrs, 9000)
    p = normalize(torch.as_tensor(pts, dtype=torch.float32))
    view = cameras(torch.tensor([az]), torch.tensor([el]))
    pix, depth = project(p, view, (size, size))
    win = splat(pix, depth, size, 1)[0]
    # Lambert light fixed to the camera (light dir in camera space), so every view is lit from the front
    light = torch.tensor(attrs["light"], dtype=torch.float32)
    light = light / light.norm()
    n_cam = torch.as_tensor(nrm, dtype=torch.float32) @ view[0, :3, :3].T
    lam = (n_cam @ light).abs()  # open surfaces show their inside: light both sides
    shade = 0.3 + 0.7 * lam
    rgb = torch.tensor(COLOURS[attrs["colour"]][0], dtype=torch.float32)
    col = shade[:, None] * rgb[None]  # (N, 3)
    bg = torch.tensor(attrs["bg_rgb"], dtype=torch.float32).view(3, 1, 1)
    img = torch.where(win >= 0, col[win.clamp_min(0)].permute(2, 0, 1), bg)
    return img.clamp(0, 1)


def scene_cache3d(seed0: int, count: int, size: int, cache_dir: Path | None) -> tuple[Tensor, list[dict]]:
    """3-D scenes ``seed0 .. seed0+count-1`` (their own seed space) as uint8 ``(N, 3, S, S)`` and attributes."""
    from vecgen.io import atomic_write, torch_bytes

    path = None if cache_dir is None else Path(cache_dir) / f"shapes3d-v{GENERATOR_VERSION}-{seed0}-{count}-{size}.pt"
    if path is not None and path.exists():
        data = torch.load(path, weights_only=False)
        return data["images"], data["attrs"]
    t0 = time.time()
    attrs = [sample_scene3d(random.Random(7_000_003 * (seed0 + i) + 11)) for i in range(count)]
    images = torch.empty(count, 3, size, size, dtype=torch.uint8)
    with torch.no_grad():
        for i, a in enumerate(attrs):
            images[i] = (render_scene3d(a, size) * 255).round().to(torch.uint8)
    print(f"rendered {count} 3-D scenes in {time.time() - t0:.0f}s", flush=True)
    if path is not None:
        atomic_write(path, torch_bytes({"images": images, "attrs": attrs}), mkdir=True)
    return images, attrs


def mix_in(images: Tensor, attrs: list[dict], seed0: int, count: int, size: int, cache_dir) -> tuple[Tensor, list]:
    """The 2-D training set with ``count`` 3-D scenes appended (``count`` 0: unchanged).

    Shape:

    - ``images``: uint8 ``(N, 3, S, S)``, ``S = size``
    - returns: ``(images, attrs)``, images uint8 ``(N + count, 3, S, S)``, the 3-D scenes last
    """
    if count <= 0:
        return images, attrs
    im3, at3 = scene_cache3d(seed0, count, size, cache_dir)
    return torch.cat([images, im3]), list(attrs) + list(at3)


# ----------------------------------------------------------------------------- captions
def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def caption3d(attrs: dict, rng: random.Random) -> tuple[str, dict]:
    """A caption and its plan (template and word choices, reused by :func:`negatives3d`)."""
    words = SOLIDS[attrs["solid"]]
    plan: dict[str, Any] = {"solid_word": rng.randrange(len(words))}
    if attrs["kind"] == "depth":
        plan["template"] = _DEPTH_TEMPLATES[0] if rng.random() < 0.4 else rng.choice(_DEPTH_TEMPLATES)
    else:
        plan["template"] = rng.choice(_SHADED_TEMPLATES)
        plan["colour_word"] = rng.randrange(len(COLOURS[attrs["colour"]][1]))
        plan["bg_word"] = rng.randrange(len(BACKGROUNDS[attrs["bg"]][1]))
    return render3d(attrs, plan), plan


def render3d(attrs: dict, plan: dict) -> str:
    words = SOLIDS[attrs["solid"]]
    solid = words[plan["solid_word"] % len(words)]
    if attrs["kind"] == "depth":
        return plan["template"].format(solid)
    cw = COLOURS[attrs["colour"]][1]
    colour = cw[plan["colour_word"] % len(cw)]
    bgw = BACKGROUNDS[attrs["bg"]][1]
    t = plan["template"]
    first = colour if t.index("{c}") < t.index("{s}") else solid  # the word right after the article
    return t.format(a=_article(first), c=colour, s=solid, bg=bgw[plan["bg_word"] % len(bgw)])


def negatives3d(attrs: dict, plan: dict, rng: random.Random, k: int) -> list[str]:
    """``k`` captions that differ from the true one in the solid (or, for shaded views, the colour)."""
    out = []
    others = [s for s in SOLIDS if s != attrs["solid"]]
    for _ in range(k):
        if attrs["kind"] == "shaded" and rng.random() < 0.35:
            alt = dict(attrs, colour=rng.choice([c for c in COLOURS if c != attrs["colour"]]))
        else:
            alt = dict(attrs, solid=rng.choice(others))
        out.append(render3d(alt, plan))
    return out


def partial3d(attrs: dict, rng: random.Random) -> list[str]:
    """The solid's short caption first, then the same caption for every other solid."""
    template = DEPTH_TEMPLATE if attrs["kind"] == "depth" else "a shaded {}"
    order = [attrs["solid"]] + [s for s in SOLIDS if s != attrs["solid"]]
    return [template.format(s) for s in order]


@torch.no_grad()
def probe3d(perceptor, n: int = 300, seed: int = 10**9, template: str = DEPTH_TEMPLATE) -> dict:
    """Zero-shot accuracy on ``n`` held-out single-view depth scenes (six solids, chance 1/6)."""
    attrs = [sample_scene3d(random.Random(seed + i), kind="depth") for i in range(n)]
    x = torch.stack([render_scene3d(a) for a in attrs])
    names = list(SOLIDS)
    txt = perceptor.encode_text([template.format(s) for s in names])
    pred = (perceptor.encode_image(x.to(txt.device)) @ txt.T).argmax(1).cpu()
    truth = torch.tensor([names.index(a["solid"]) for a in attrs])
    return {"accuracy": float((pred == truth).float().mean()), "chance": 1 / len(names), "n": n}


@torch.no_grad()
def anchor_head(
    head: torch.nn.Linear, model, tokenizer, images: Tensor, mean: Tensor, std: Tensor, template: str = DEPTH_TEMPLATE
) -> None:
    """Make the trainer's ``solid`` head the frozen text embeddings of ``template`` for each solid.

    Training the image tower on that head is then the zero-shot task itself (the image
    embedding of a cone's depth map must be nearest the text "point cloud depth map of a
    cone."), at the cost of an image-only step. Rows are scaled so that, at the start,
    logits are ~100 x cosine, CLIP's temperature; the text tower is not touched.

    Shape:

    - ``head``: weight ``(len(SOLIDS), D)``, bias ``(len(SOLIDS),)``; ``images``: uint8 ``(N, 3, S, S)``,
      of which the last 64 (3-D scenes) set the scale; ``mean``, ``std``: ``(1, 3, 1, 1)``
    """
    text = torch.nn.functional.normalize(model.encode_text(tokenizer([template.format(s) for s in SOLIDS])), dim=-1)
    was = model.training
    model.eval()
    x = (images[-64:].float() / 255.0 - mean) / std  # the last scenes are the 3-D ones mix_in appended
    norm = model.encode_image(x).norm(dim=-1).median().clamp_min(1e-6)
    model.train(was)
    head.weight.copy_(text * (100.0 / norm))
    head.bias.zero_()
    head.requires_grad_(False)
