"""Bézier strokes and blobs (CLIPDraw's parameterization), drawn by a vector rasterizer.

All paths' control points live in one ``(N, 2)`` tensor (pixel units), so any
mix of open strokes, closed blobs and paths read from an SVG shares one
optimizer group. What is optimized is exactly what ``export`` writes.

A clean SVG: :meth:`Strokes.finalize` (called once after the last step) drops the
paths that paint nothing (fully transparent, zero width, off the canvas) and,
unless ``keep_all``, those whose removal changes no pixel of the engine's raster
by more than 1/255 (:func:`removal_effect`); the SVG's metadata counts both.
"""

from __future__ import annotations

import math
from itertools import accumulate
from pathlib import Path as FsPath
from typing import Any

import torch
from torch import Tensor

from vecgen.backends.raster import composite, get_rasterizer
from vecgen.errors import VecgenError
from vecgen.options import SHAPES
from vecgen.params.base import StepContext
from vecgen.scene import Path, Scene
from vecgen.svg import read_svg, scene_to_svg

#: A path whose removal changes no channel of any pixel by more than this is pruned (1/255: invisible in 8 bits).
PRUNE_TOLERANCE = 1.0 / 255.0


class Strokes:
    """Coloured Bézier paths on a ``size = (W, H)`` canvas.

    render() -> ``(1, 3, H, W)`` in ``[0, 1]``. Groups: points (scheduled),
    widths, colours, with CLIPDraw's learning rates scaled to the canvas.
    """

    kind = "vector"

    def __init__(
        self,
        size: tuple[int, int],
        *,
        strokes: int = 256,
        segments: int = 3,
        width: tuple[float, float] = (1.0, 8.0),
        shapes: str = "strokes",
        background=(1.0, 1.0, 1.0),
        init: str | FsPath | None = None,
        seed: int = 0,
        device: str | torch.device = "cpu",
        rasterizer: str = "native",
        lr_points: float = 1.0,
        lr_width: float = 0.1,
        lr_color: float = 0.01,
        keep_all: bool = False,
        palette: Tensor | None = None,
        colors: int | None = None,
        init_paths: list[Path] | None = None,
    ) -> None:
        """``init``: start from an SVG's paths; ``init_paths``: from these paths (control points in pixels of
        ``size``), e.g. strokes placed by a saliency map. Either replaces the ``strokes`` random ones."""
        w, h = size
        if shapes not in SHAPES:
            raise VecgenError(f"unknown --shapes {shapes!r} (choose {', '.join(SHAPES)})")
        if strokes < 0 or (strokes == 0 and init is None and not init_paths):
            raise VecgenError("--strokes must be > 0")
        if segments <= 0:
            raise VecgenError("--segments must be > 0")
        if not (0 <= width[0] <= width[1]):
            raise VecgenError("--width must be MIN,MAX with 0 <= MIN <= MAX")
        self.size = (int(w), int(h))
        self.keep_all = bool(keep_all)
        # finalize() snaps every stroke/fill colour to the palette (``palette`` (K, 3), or ``colors`` k-means colours)
        self.palette, self.colors = palette, colors
        self.cleaned: dict[str, int] = {}  # finalize()'s counts: "pruned" (invisible), "dropped" (paint nothing)
        self.width_range = (float(width[0]), float(width[1]))
        self.device = torch.device(device)
        self.rasterizer = get_rasterizer(rasterizer)
        self.background = torch.tensor(background, dtype=torch.float32, device=self.device)
        scale = min(w, h) / 224.0
        self.lrs = {"points": lr_points * scale, "widths": lr_width, "colors": lr_color}
        gen = torch.Generator().manual_seed(seed)
        paths = self._read_init(init) if init is not None else list(init_paths or [])
        paths += self._random_paths(strokes if init is None and not init_paths else 0, segments, shapes, gen)
        self._from_paths(paths)

    # ------------------------------------------------------------------ construction
    def _read_init(self, init) -> list[Path]:
        scene = read_svg(init)
        if not scene.paths:
            raise VecgenError(f"{init}: SVG has no paths to start from")
        sx, sy = self.size[0] / scene.width, self.size[1] / scene.height
        for p in scene.paths:
            p.points = p.points * torch.tensor([sx, sy])
            p.stroke_width = torch.as_tensor(p.stroke_width) * math.sqrt(sx * sy)
        return scene.paths

    def _random_paths(self, n: int, segments: int, shapes: str, gen: torch.Generator) -> list[Path]:
        w, h = self.size
        wh = torch.tensor([w, h], dtype=torch.float32)
        short = min(w, h)
        lo, hi = self.width_range
        n_blobs = n if shapes == "blobs" else (n // 2 if shapes == "mixed" else 0)
        out = []
        for i in range(n):
            r = lambda *s: torch.rand(*s, generator=gen)  # noqa: E731
            colour = r(4)
            if i < n_blobs:  # closed filled blob around a random centre (drawn first, behind strokes)
                c = r(2) * wh
                rad = short * (0.04 + 0.08 * r(1))
                k = 3 * segments
                ang = torch.arange(k) / k * 2 * math.pi
                pts = c + rad * torch.stack([ang.cos(), ang.sin()], 1) * (0.8 + 0.4 * r(k, 1))
                out.append(Path(pts, closed=True, stroke_width=torch.tensor(lo), fill=colour))
            else:  # open stroke: a short random walk (CLIPDraw's init)
                p0 = r(2) * wh
                steps = (r(3 * segments, 2) * 2 - 1) * 0.1 * short
                pts = torch.cat([p0[None], p0 + torch.cumsum(steps, 0)])
                width = lo + (hi - lo) * 0.25 * r(())
                out.append(Path(pts, closed=False, stroke_width=width, stroke=colour))
        return out

    def _from_paths(self, paths: list[Path]) -> None:
        d = self.device
        self.counts = [int(p.points.shape[0]) for p in paths]
        self.closed = [bool(p.closed) for p in paths]
        self.has_fill = [p.fill is not None for p in paths]
        self.has_stroke = [p.stroke is not None for p in paths]
        self.evenodd = [p.fill_rule == "evenodd" for p in paths]
        zero4 = torch.zeros(4)
        self.points = torch.cat([p.points.float() for p in paths]).to(d).requires_grad_(True)
        self.widths = (
            torch.stack([torch.as_tensor(p.stroke_width, dtype=torch.float32).reshape(()) for p in paths])
            .to(d)
            .requires_grad_(True)
        )
        self.stroke_rgba = (
            torch.stack([p.stroke if p.stroke is not None else zero4 for p in paths]).float().to(d).requires_grad_(True)
        )
        self.fill_rgba = (
            torch.stack([p.fill if p.fill is not None else zero4 for p in paths]).float().to(d).requires_grad_(True)
        )

    # ------------------------------------------------------------------ protocol
    def param_groups(self) -> list[dict[str, Any]]:
        return [
            {"params": [self.points], "lr": self.lrs["points"], "name": "points", "schedule": True},
            {"params": [self.widths], "lr": self.lrs["widths"], "name": "widths"},
            {"params": [self.stroke_rgba, self.fill_rgba], "lr": self.lrs["colors"], "name": "colors"},
        ]

    def replace_paths_(self, idx: list[int], other: "Strokes") -> None:
        """Give paths ``idx`` the points, width and colours of the same paths of ``other`` (same path sizes)."""
        starts = [0, *accumulate(self.counts)]
        with torch.no_grad():
            for i in idx:
                self.points[starts[i] : starts[i + 1]] = other.points[starts[i] : starts[i + 1]]
                for name in ("widths", "stroke_rgba", "fill_rgba"):
                    getattr(self, name)[i] = getattr(other, name)[i]

    def scene(self) -> Scene:
        paths, start = [], 0
        for i, n in enumerate(self.counts):
            paths.append(
                Path(
                    points=self.points[start : start + n],
                    closed=self.closed[i],
                    stroke_width=self.widths[i],
                    stroke=self.stroke_rgba[i] if self.has_stroke[i] else None,
                    fill=self.fill_rgba[i] if self.has_fill[i] else None,
                    fill_rule="evenodd" if self.evenodd[i] else "nonzero",
                )
            )
            start += n
        return Scene(self.size[0], self.size[1], paths, self.background)

    def render(self, ctx: StepContext | None = None) -> Tensor:
        """The strokes over the background, ``(1, 3, H, W)`` (differentiable)."""
        rgba = self.rasterizer.render(self.scene(), self.size)
        # No clamp: colours are kept in [0, 1] by project_(), and a clamp would zero the
        # gradient of pixels sitting exactly at 0 or 1.
        return composite(rgba, self.background).unsqueeze(0)

    def project_(self) -> None:
        lo, hi = self.width_range
        self.widths.data.clamp_(lo, hi)
        self.stroke_rgba.data.clamp_(0, 1)
        self.fill_rgba.data.clamp_(0, 1)

    def colour_values(self) -> Tensor:
        """``(M, 3)`` RGB of every stroke and fill that is drawn (differentiable): what a palette constrains."""
        d = self.stroke_rgba.device
        stroke = torch.tensor([i for i, s in enumerate(self.has_stroke) if s], dtype=torch.long, device=d)
        fill = torch.tensor([i for i, f in enumerate(self.has_fill) if f], dtype=torch.long, device=d)
        return torch.cat([self.stroke_rgba[stroke, :3], self.fill_rgba[fill, :3]])

    def snap_colours_(self) -> None:
        """Put every stroke and fill colour on its nearest palette colour (no-op without a palette)."""
        if self.palette is None and not self.colors:
            return
        from vecgen.params.palette import nearest, palette_for

        with torch.no_grad():
            pal = palette_for(self.colour_values(), self.palette, self.colors)
            for rgba in (self.stroke_rgba, self.fill_rgba):
                rgba[:, :3] = nearest(rgba[:, :3], pal)

    def finalize(self) -> None:
        """Snap the colours to the palette if there is one, then keep only the paths that show: drop those that
        paint nothing, and (unless ``keep_all``) prune those whose removal changes no pixel by more than
        :data:`PRUNE_TOLERANCE`. ``render`` and ``svg`` then agree."""
        self.snap_colours_()
        scene = self.scene()
        with torch.no_grad():
            paints = paints_something(scene)
            keep = paints.clone()
            if not self.keep_all and bool(paints.any()):
                shown = [i for i in range(len(scene.paths)) if paints[i]]
                sub = Scene(scene.width, scene.height, [scene.paths[i] for i in shown], scene.background)
                for j, gone in enumerate(prunable(sub, self.rasterizer, self.size).tolist()):
                    keep[shown[j]] = not gone
        self.cleaned = {"pruned": int((paints & ~keep).sum()), "dropped": int((~paints).sum())}
        if bool(keep.all()):
            return
        if not bool(keep.any()):  # nothing shows: keep the first path (a scene has paths), made invisible
            keep[0] = True
        self._from_paths([_visible_part(p) for p, k in zip(scene.paths, keep.tolist()) if k])

    def svg(self, metadata: dict[str, str] | None = None) -> str:
        """The SVG: ids ``p0``... in paint order; metadata adds ``paths``, ``bytes`` and, after
        :meth:`finalize`, ``pruned`` and ``dropped``. Parts that paint nothing (a zero-width stroke, a fully
        transparent fill) are not written."""
        scene = self.scene()
        with torch.no_grad():
            scene.paths = [_visible_part(p) for p in scene.paths]
        return scene_to_svg(scene, {**(metadata or {}), **{k: str(v) for k, v in self.cleaned.items()}})

    def export(self, path: str | FsPath, metadata: dict[str, str] | None = None) -> None:
        from vecgen.io import atomic_write

        atomic_write(path, self.svg(metadata).encode("utf-8"))

    def state_dict(self) -> dict[str, Any]:
        return {
            "points": self.points.detach().clone(),
            "widths": self.widths.detach().clone(),
            "stroke_rgba": self.stroke_rgba.detach().clone(),
            "fill_rgba": self.fill_rgba.detach().clone(),
            "counts": list(self.counts),
            "closed": list(self.closed),
            "has_fill": list(self.has_fill),
            "has_stroke": list(self.has_stroke),
            "evenodd": list(self.evenodd),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if list(state["counts"]) != self.counts or list(state["closed"]) != self.closed:
            raise VecgenError("checkpoint was made with different --strokes/--segments/--shapes")
        with torch.no_grad():
            for k in ("points", "widths", "stroke_rgba", "fill_rgba"):
                getattr(self, k).copy_(state[k])


# ----------------------------------------------------------------------------- clean SVG
def _fill_shows(p: Path) -> bool:
    return p.fill is not None and float(p.fill[3].detach()) > 0


def _stroke_shows(p: Path) -> bool:
    return (
        p.stroke is not None and float(p.stroke[3].detach()) > 0 and float(torch.as_tensor(p.stroke_width).detach()) > 0
    )


def _visible_part(p: Path) -> Path:
    """``p`` without a fill or stroke that paints nothing (same raster); a path with neither keeps both off."""
    stroke = p.stroke.detach() if p.stroke is not None and _stroke_shows(p) else None
    fill = p.fill.detach() if p.fill is not None and _fill_shows(p) else None
    return Path(
        p.points.detach(),
        closed=p.closed,
        stroke_width=torch.as_tensor(p.stroke_width).detach(),
        stroke=stroke,
        fill=fill,
        fill_rule=p.fill_rule,
    )


def paints_something(scene: Scene) -> Tensor:
    """``(N,)`` bool: the path has a visible fill or stroke and its box (control points, which hold the curve,
    grown by half the stroke width and a pixel) meets the canvas."""
    out = torch.zeros(len(scene.paths), dtype=torch.bool)
    for i, p in enumerate(scene.paths):
        fill, stroke = _fill_shows(p), _stroke_shows(p)
        if not (fill or stroke):
            continue
        pts = p.points.detach().float()
        if not bool(torch.isfinite(pts).all()):
            out[i] = True  # not ours to judge: the writer refuses it with one line
            continue
        grow = 1.0 + (float(torch.as_tensor(p.stroke_width).detach()) / 2 if stroke else 0.0)
        lo, hi = pts.min(0).values - grow, pts.max(0).values + grow
        out[i] = bool(hi[0] > 0 and hi[1] > 0 and lo[0] < scene.width and lo[1] < scene.height)
    return out


def _layers(scene: Scene, rasterizer, size: tuple[int, int]) -> list:
    """Per path, in paint order: ``(box, change, alpha)`` -- its pixel box ``(y0, y1, x0, x1)``, the largest
    channel change it makes over what lies below it, and its coverage -- or None where it covers nothing."""
    w, h = size
    bg = scene.background if scene.background is not None else torch.zeros(3)
    canvas = bg.detach().float().reshape(3, 1, 1).expand(3, h, w).clone()
    layers: list = []
    for p in scene.paths:  # each path alone (premultiplied), then over what lies below it
        rgba = rasterizer.render(Scene(scene.width, scene.height, [p], None), (w, h)).detach().float()
        ys, xs = torch.nonzero(rgba[3] > 0, as_tuple=True)
        if ys.numel() == 0:
            layers.append(None)
            continue
        y0, y1, x0, x1 = int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1
        part = rgba[:, y0:y1, x0:x1]
        below = canvas[:, y0:y1, x0:x1]
        above = part[:3] + (1 - part[3:4]) * below
        layers.append(((y0, y1, x0, x1), (above - below).abs().amax(0), part[3]))
        canvas[:, y0:y1, x0:x1] = above
    return layers


def removal_effect(scene: Scene, rasterizer, size: tuple[int, int] | None = None) -> Tensor:
    """``(N,)``: for each path, the largest change of any channel of any pixel when that path alone is removed
    from the raster (composited on the background), in ``[0, 1]``.

    One render per path (alone, over its own box), then the layers are composited in paint order once: with
    ``C_i`` the picture up to path i and ``T_i`` what the paths above let through, removing path i changes the
    picture by ``T_i * (C_i - C_(i-1))`` -- the engine's own "over" -- so N paths cost N small renders, not N
    renders of the whole scene.
    """
    return _judge(scene, rasterizer, size, None)[0]


def prunable(
    scene: Scene, rasterizer, size: tuple[int, int] | None = None, tolerance: float = PRUNE_TOLERANCE
) -> Tensor:
    """``(N,)`` bool: paths to drop, top path first, while the summed change of the dropped ones stays within
    ``tolerance`` at every pixel (a dropped path no longer hides those below it). Hidden paths change nothing."""
    return _judge(scene, rasterizer, size, tolerance)[1]


def _judge(scene: Scene, rasterizer, size, tolerance: float | None) -> tuple[Tensor, Tensor]:
    w, h = size if size is not None else (scene.width, scene.height)
    layers = _layers(scene, rasterizer, (w, h))
    n = len(layers)
    effect, drop = torch.zeros(n), torch.zeros(n, dtype=torch.bool)
    through = torch.ones(h, w)  # transmittance of the (kept) paths above
    spent = torch.zeros(h, w)  # summed change of the dropped paths
    for i in range(n - 1, -1, -1):
        if layers[i] is None:
            drop[i] = tolerance is not None
            continue
        (y0, y1, x0, x1), change, alpha = layers[i]
        seen = change * through[y0:y1, x0:x1]
        effect[i] = seen.max()
        if tolerance is not None and float((spent[y0:y1, x0:x1] + seen).max()) <= tolerance:
            drop[i] = True
            spent[y0:y1, x0:x1] += seen
        else:
            through[y0:y1, x0:x1] *= 1 - alpha
    return effect, drop
