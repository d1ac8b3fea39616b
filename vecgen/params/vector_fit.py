"""Filled closed paths fitted to a picture, grown layer by layer (LIVE), on the native rasterizer.

:class:`FilledPaths` holds room for every path from the start (one points
tensor, one colours tensor), but renders only the ``active`` ones; the growth
schedule (``(step, active)`` pairs) is applied by :meth:`FilledPaths.grow`,
which the verb calls after every step. Each new path starts on the region the
render misses most (:mod:`vecgen.params.vector_regions`), coloured with that
region's mean colour. Points not yet active get no gradient, so Adam leaves
them alone until they are placed.

Transparency: an input with alpha renders as two images, the paths over black
and over white, side by side (``(1, 3, H, 2W)``); matching both matches premultiplied colour
and alpha, so a transparent background stays transparent and no background
rectangle is written. An opaque input renders over a learnt background colour.
"""

from __future__ import annotations

import math
from pathlib import Path as FsPath
from typing import Any

import torch
from torch import Tensor

from vecgen.backends.raster.native import NativeRasterizer
from vecgen.errors import VecgenError
from vecgen.params.base import StepContext
from vecgen.params.vector_regions import kmeans_colours, pick_regions, region_shape
from vecgen.params.vector_svg import compact_svg
from vecgen.scene import Path, Scene

#: Error (mean squared over the channels) above which a pixel counts as missed when placing a path.
MISS_THRESHOLD = 0.004
#: Colour clusters of the target that new paths are matched to.
CLUSTERS = 16


def growth_schedule(
    paths: int, stages: int, steps: int, start: int = 0, grow_share: float = 0.6
) -> list[tuple[int, int]]:
    """``(step, active paths)`` pairs: ``stages`` geometric steps from ``start + 1`` paths up to ``paths``.

    The stages share the first ``grow_share`` of the run; the last stage (all
    paths) runs to the end. ``start``: paths already there (from ``--init``).
    """
    new = paths - start
    if new <= 0:
        return [(0, paths)]
    stages = max(1, min(stages, new))
    counts: list[int] = []
    for s in range(1, stages + 1):
        c = start + max(1, round(new ** (s / stages)))
        counts.append(max(c, counts[-1] + 1 if counts else c))
    counts[-1] = paths
    counts = [min(c, paths) for c in counts]
    at = [0] + [int(steps * grow_share * s / (stages - 1)) for s in range(1, stages)] if stages > 1 else [0]
    return list(zip(at, counts))


class FilledPaths:
    """Closed filled cubic paths fitted to ``target`` ``(1, 4, H, W)`` (straight RGBA in ``[0, 1]``).

    render() -> ``(1, 3, H, W)`` over the background, or ``(1, 3, H, 2W)``
    (over black | over white) for a transparent target; :attr:`reference` is
    the target in the same form. ``out_size``: the SVG's ``(W, H)`` (the input's
    size; the working canvas is the target's). ``palette``: ``(K, 3)`` fills are
    snapped to. ``decimals``: coordinates written (in output pixels).
    """

    kind = "vector"

    def __init__(
        self,
        target: Tensor,
        *,
        paths: int,
        segments: int = 4,
        schedule: list[tuple[int, int]] | None = None,
        out_size: tuple[int, int] | None = None,
        palette: Tensor | None = None,
        decimals: int = 0,
        init_paths: list[Path] | None = None,
        seed: int = 0,
        device: str | torch.device = "cpu",
        lr_points: float = 0.5,
        lr_colors: float = 0.01,
    ) -> None:
        if target.dim() != 4 or target.shape[:2] != (1, 4):
            raise VecgenError(f"target must be (1, 4, H, W) RGBA, got {tuple(target.shape)}")
        if paths <= 0:
            raise VecgenError("--paths must be > 0")
        if segments <= 0:
            raise VecgenError("--segments must be > 0")
        self.device = torch.device(device)
        self.target = target.detach().float().clamp(0, 1).to(self.device)
        h, w = self.target.shape[2:]
        self.size = (int(w), int(h))
        self.out_size = out_size or self.size
        self.transparent = bool(self.target[0, 3].min() < 0.99)
        self.palette = None if palette is None else palette.float().to(self.device)
        self.decimals = int(decimals)
        self.segments = int(segments)
        self.rasterizer = NativeRasterizer()
        rgb, a = self.target[0, :3], self.target[0, 3:4]
        pm = rgb * a
        self.reference = self._form(torch.cat([pm, a]))
        # colour clusters of the target (premultiplied RGB + alpha): where new paths are matched to
        px = torch.cat([pm, a]).flatten(1).t()
        centres, labels = kmeans_colours(px, CLUSTERS, seed=seed)
        self.labels = labels.view(h, w)
        self.usable = centres[:, 3] > 0.5
        init_paths = list(init_paths or [])
        if len(init_paths) > paths:
            paths = len(init_paths)
        self.schedule = schedule or [(0, paths)]
        counts = [int(p.points.shape[0]) for p in init_paths] + [3 * self.segments] * (paths - len(init_paths))
        self.counts = counts
        self.starts = [sum(counts[:i]) for i in range(len(counts))]
        pts = torch.zeros(sum(counts), 2)
        cols = torch.zeros(paths, 3)
        for i, p in enumerate(init_paths):
            pts[self.starts[i] : self.starts[i] + counts[i]] = p.points.float()
            cols[i] = p.fill[:3].float() if p.fill is not None else 0.5
        self.points = pts.to(self.device).requires_grad_(True)
        self.colors = cols.to(self.device).requires_grad_(True)
        self.active = len(init_paths)
        if self.transparent:
            self.background = None
        else:
            border = torch.cat([rgb[:, 0], rgb[:, -1], rgb[:, :, 0], rgb[:, :, -1]], 1)
            self.background = border.median(1).values.clone().requires_grad_(True)
        self.lrs = {"points": lr_points * max(w, h) / 256.0, "colors": lr_colors}
        with torch.no_grad():
            self._snap_colors()
        self.grow(0)

    # ------------------------------------------------------------------ growth
    def grow(self, step: int) -> int:
        """Place the paths the schedule wants active after ``step`` steps; returns how many were added."""
        want = max((n for at, n in self.schedule if at <= step), default=self.active)
        want = min(want, len(self.counts))
        if want <= self.active:
            return 0
        with torch.no_grad():
            return self._add(want - self.active)

    def _error(self) -> Tensor:
        """Per-pixel squared error of the current render ``(H, W)``."""
        err = (self.render() - self.reference).square().mean((0, 1))
        w = self.size[0]
        return (err[:, :w] + err[:, w:]) / 2 if self.transparent else err

    def _add(self, k: int) -> int:
        err = self._error().cpu()  # regions are found on the CPU (small integer work), whatever the device
        labels, usable = self.labels.cpu(), self.usable.cpu()
        regions = pick_regions(err, labels, usable, k, threshold=MISS_THRESHOLD)
        if len(regions) < k:  # nothing left to miss: spread the rest over the largest errors anyway
            regions += pick_regions(err, labels, usable, k - len(regions), threshold=0.0)[: k - len(regions)]
        regions = [m.to(self.device) for m in regions]
        added = 0
        for mask in regions:
            i = self.active
            shape = torch.as_tensor(region_shape(mask, self.counts[i] // 3), dtype=torch.float32)
            self.points[self.starts[i] : self.starts[i] + self.counts[i]] = shape.to(self.device)
            a = self.target[0, 3][mask].clamp(min=1e-6)
            self.colors[i] = (self.target[0, :3][:, mask] * a).sum(1) / a.sum()
            self.active += 1
            added += 1
        self._snap_colors()
        return added

    # ------------------------------------------------------------------ protocol
    def param_groups(self) -> list[dict[str, Any]]:
        final = max(at for at, _ in self.schedule)

        def decay(step: int, steps: int) -> float:  # full lr while growing, then down to 5% by the end
            if step < final or steps <= final:
                return 1.0
            t = (step - final) / max(1, steps - final)
            return 0.05 + 0.95 * 0.5 * (1 + math.cos(t * math.pi))

        colors = [self.colors] + ([self.background] if self.background is not None else [])
        return [
            {"params": [self.points], "lr": self.lrs["points"], "name": "points", "schedule": decay},
            {"params": colors, "lr": self.lrs["colors"], "name": "colors", "schedule": decay},
        ]

    def scene(self, keep: list[int] | None = None) -> Scene:
        """The active paths (or those in ``keep``) as a scene on the working canvas."""
        idx = range(self.active) if keep is None else keep
        one = torch.ones(1, device=self.device)
        paths = [
            Path(
                self.points[self.starts[i] : self.starts[i] + self.counts[i]],
                closed=True,
                stroke_width=0.0,
                fill=torch.cat([self.colors[i], one]),
            )
            for i in idx
        ]
        return Scene(self.size[0], self.size[1], paths, self.background)

    def render_rgba(self, keep: list[int] | None = None) -> Tensor:
        """Premultiplied RGBA ``(1, 4, H, W)`` of the paths over the background (if any)."""
        rgba = self.rasterizer.render(self.scene(keep), self.size)
        if not rgba.requires_grad and self.points.requires_grad:  # nothing drawn yet: keep a (zero) gradient path
            rgba = rgba + 0.0 * self.points.sum()
        if self.background is not None:
            rgb = rgba[:3] + (1 - rgba[3:4]) * self.background.view(3, 1, 1)
            rgba = torch.cat([rgb, torch.ones_like(rgba[3:4])])
        return rgba.unsqueeze(0)

    def _form(self, rgba: Tensor) -> Tensor:
        """Premultiplied ``(4, H, W)`` -> what is compared: ``(1, 3, H, W)``, or for a transparent target
        ``(1, 3, H, 2W)``, the picture over black beside it over white (that pair fixes colour and alpha)."""
        if self.transparent:
            return torch.cat([rgba[:3], rgba[:3] + (1 - rgba[3:4])], 2).unsqueeze(0)
        return rgba[:3].unsqueeze(0)

    def render(self, ctx: StepContext | None = None, keep: list[int] | None = None) -> Tensor:
        """The paths (or those in ``keep``) in the compared form (see the class); ``ctx``: the engine's step.

        Shape:

        - returns: ``(1, 3, H, W)``; for a transparent target ``(1, 3, H, 2W)``, over black then over white
        """
        return self._form(self.render_rgba(keep)[0])

    def _snap_colors(self) -> None:
        self.colors.data.clamp_(0, 1)
        if self.background is not None:
            self.background.data.clamp_(0, 1)
        if self.palette is not None:
            self.colors.data.copy_(self.palette[torch.cdist(self.colors.data, self.palette).argmin(1)])
            if self.background is not None:
                self.background.data.copy_(
                    self.palette[torch.cdist(self.background.data[None], self.palette).argmin(1)[0]]
                )

    def project_(self) -> None:
        self._snap_colors()
        w, h = self.size
        self.points.data[:, 0].clamp_(-0.25 * w, 1.25 * w)
        self.points.data[:, 1].clamp_(-0.25 * h, 1.25 * h)

    # ------------------------------------------------------------------ the end: prune, snap, export
    def finalize(self, prune: float = 2e-6) -> None:
        """Snap colours to 8 bits (or the palette) and points to the written grid, then drop paths that change
        the render by less than ``prune`` in mean squared error."""
        with torch.no_grad():
            self._snap_colors()
            self.colors.data.copy_((self.colors.data * 255).round() / 255)
            if self.background is not None:
                self.background.data.copy_((self.background.data * 255).round() / 255)
            sx, sy = self.out_size[0] / self.size[0], self.out_size[1] / self.size[1]
            q = 10**self.decimals
            scale = torch.tensor([sx, sy], device=self.device)
            self.points.data.copy_(torch.round(self.points.data * scale * q) / q / scale)
            keep = list(range(self.active))
            base = (self.render(keep=keep) - self.reference).square().mean()
            for i in reversed(range(self.active)):  # top paths first: a hidden path under them goes too
                trial = [j for j in keep if j != i]
                loss = (self.render(keep=trial) - self.reference).square().mean()
                if float(loss - base) < prune:
                    keep, base = trial, loss
            self._keep(keep)

    def _keep(self, keep: list[int]) -> None:
        pts = [self.points.data[self.starts[i] : self.starts[i] + self.counts[i]] for i in keep]
        self.counts = [self.counts[i] for i in keep]
        self.starts = [sum(self.counts[:i]) for i in range(len(keep))]
        self.points = (torch.cat(pts) if pts else torch.zeros(0, 2, device=self.device)).requires_grad_(True)
        self.colors = self.colors.data[keep].clone().requires_grad_(True)
        self.active = len(keep)
        self.schedule = [(0, len(keep))]

    def svg(self, metadata: dict[str, str] | None = None) -> str:
        """The compact SVG (hex fills, relative integer-grid path data) in the output's coordinates."""
        return compact_svg(self.scene(), self.out_size, metadata, decimals=self.decimals)

    def export(self, path: str | FsPath, metadata: dict[str, str] | None = None) -> None:
        from vecgen.io import atomic_write

        atomic_write(path, self.svg(metadata).encode("utf-8"))

    def state_dict(self) -> dict[str, Any]:
        out = {
            "points": self.points.detach().clone(),
            "colors": self.colors.detach().clone(),
            "active": self.active,
            "counts": list(self.counts),
        }
        if self.background is not None:
            out["background"] = self.background.detach().clone()
        return out

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if list(state.get("counts", [])) != self.counts:
            raise VecgenError("checkpoint was made with different --paths/--segments/--init")
        with torch.no_grad():
            self.points.copy_(state["points"])
            self.colors.copy_(state["colors"])
            if self.background is not None and "background" in state:
                self.background.copy_(state["background"])
        self.active = int(state["active"])
