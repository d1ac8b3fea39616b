"""Pixel art as vector graphics: a ``gw x gh`` grid of flat-coloured cells.

The idea is pixray's pixel drawer: the picture is a coarse grid of coloured
rectangles laid over the canvas, so CLIP can only ever see blocky pixel art.
Here every cell is a closed path of four straight (cubic-elevated) segments in
a :class:`~vecgen.scene.Scene`, rasterized by the vector rasterizer, and the
result exports as a compact SVG (horizontal runs of equal colour become one
``<rect>``).

Geometry never changes, only colours do, and the cells are opaque, so the
rasterized image is *exactly linear* in the cell colours.  The rasterizer is
therefore run a handful of times at construction with probe colours, which
yields, per pixel, the weight of each cell that touches it; :meth:`render`
then recombines the current colours with those weights.  The result equals
rasterizing the scene directly (see :meth:`PixelArt.render_scene`) to float
precision, at a tiny fraction of the cost.

Seams: where cell edges fall between pixel centres (canvas size not a
multiple of the grid), each cell is drawn one canvas pixel wider/taller than
its slot, in row-major order, so the next cell covers the overlap.  A pixel
straddling two cells is then a proper mix of the two colours, with no
background showing through the shared edge.

Colour palettes (``palette=k``):

* ``palette_mode="end"``: colours are free while optimizing; at the end they
  are snapped to ``k`` colours found by k-means on the cell colours.
* ``palette_mode="throughout"``: there are ``k`` learnable palette colours and
  each cell holds ``k`` logits; its colour is the softmax-weighted mix of the
  palette, hardened to the most likely palette colour.  By default the
  hardening is straight-through: the forward pass shows the hard colour (what
  CLIP sees is what the SVG holds) while gradients flow through the soft mix.
  With ``straight_through=False`` the render is the soft mix and only export
  hardens it (on a plain MSE fit with 6 colours: 31 dB soft but 12 dB once
  hardened, against 17 dB straight-through; k-means on the target: 20 dB).

:meth:`svg` / :meth:`export` always write the final colours (snapped or
hardened); :meth:`finalize` makes :meth:`render` show them too.
"""

from __future__ import annotations

import functools
import math
import re
from pathlib import Path as FsPath
from typing import Any

import numpy as np
import torch
from torch import Tensor

from vecgen.backends.raster import composite, get_rasterizer
from vecgen.errors import VecgenError
from vecgen.io import FITS, InitSource, load_init_image
from vecgen.options import PALETTE_MODES, check_number, check_size, make_generator, parse_grid_spec
from vecgen.params.base import StepContext
from vecgen.scene import Path, Scene
from vecgen.svg import element, svg_document

# Logit-gradient gain relative to the colour learning rate in "throughout" mode:
# logits live on a wider scale than colours in [0, 1].
LOGIT_LR_SCALE = 5.0


# --------------------------------------------------------------------------
# Validation helpers
# --------------------------------------------------------------------------


def parse_grid(grid: Any, size: tuple[int, int] | None = None) -> tuple[int, int]:
    """``"32x24"``, ``(32, 24)`` or ``32`` -> ``(columns, rows)``.

    A single number gives that many columns and as many rows as keep the
    cells square on a canvas of ``size`` (square grid when no size is given).
    The syntax is :func:`vecgen.options.parse_grid_spec`'s.
    """
    cols, rows = parse_grid_spec(grid)
    if rows is None:
        rows = cols if size is None else max(1, round(cols * size[1] / size[0]))
    return cols, int(rows)


def check_palette(palette: Any) -> int | None:
    if palette is None:
        return None
    if isinstance(palette, bool) or not isinstance(palette, (int, np.integer)):
        if isinstance(palette, str) and re.fullmatch(r"\s*-?\d+\s*", palette):
            palette = int(palette)
        else:
            raise VecgenError(f"palette must be a whole number of colours, got {palette!r}")
    if palette <= 0:
        raise VecgenError(f"palette must be > 0 colours, got {palette}")
    return int(palette)


def check_palette_mode(mode: Any) -> str:
    if mode not in PALETTE_MODES:
        raise VecgenError(f"unknown palette mode {mode!r}: expected one of {', '.join(PALETTE_MODES)}")
    return mode


# --------------------------------------------------------------------------
# k-means palette
# --------------------------------------------------------------------------


def kmeans_palette(colors: Tensor, k: int, *, iters: int = 40, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Snap ``(N, 3)`` colours in ``[0, 1]`` to at most ``k`` 8-bit colours.

    Weighted k-means (k-means++ start from a fixed seed, Lloyd iterations) on
    the distinct 8-bit colours.  Returns ``(palette (m, 3), labels (N,))``
    with ``m <= k`` distinct entries, all exact multiples of 1/255.
    Deterministic for given inputs.
    """
    x = (colors.detach().to("cpu", torch.float64).clamp(0, 1) * 255.0).round()
    uniq, inverse = torch.unique(x, dim=0, return_inverse=True)
    if uniq.shape[0] <= k:
        return (uniq / 255.0).to(torch.float32), inverse
    counts = torch.bincount(inverse, minlength=uniq.shape[0]).to(torch.float64)
    gen = make_generator(seed)
    # k-means++ seeding, weighted by how many cells have each colour
    centers = [uniq[int(torch.multinomial(counts, 1, generator=gen))]]
    d2 = ((uniq - centers[0]) ** 2).sum(1)
    for _ in range(1, k):
        w = d2 * counts
        if float(w.sum()) <= 0:
            break
        centers.append(uniq[int(torch.multinomial(w, 1, generator=gen))])
        d2 = torch.minimum(d2, ((uniq - centers[-1]) ** 2).sum(1))
    c = torch.stack(centers)
    for _ in range(iters):
        lab = torch.cdist(uniq, c).argmin(1)
        mass = torch.zeros(c.shape[0], dtype=torch.float64).index_add_(0, lab, counts)
        sums = torch.zeros_like(c).index_add_(0, lab, uniq * counts[:, None])
        new = torch.where(mass[:, None] > 0, sums / mass.clamp_min(1e-12)[:, None], c)
        if torch.allclose(new, c):
            break
        c = new
    pal = torch.unique(c.round().clamp(0, 255), dim=0)
    lab = torch.cdist(uniq, pal).argmin(1)
    used = torch.unique(lab)
    pal = pal[used]
    remap = torch.full((int(used.max()) + 1,), -1, dtype=torch.long)
    remap[used] = torch.arange(used.numel())
    return (pal / 255.0).to(torch.float32), remap[lab][inverse]


# --------------------------------------------------------------------------
# Geometry
# --------------------------------------------------------------------------


def _closed_rect_points(x0: Tensor, y0: Tensor, x1: Tensor, y1: Tensor) -> Tensor:
    """Rectangles -> ``(N, 12, 2)`` control points of closed 4-segment cubic paths."""
    corners = torch.stack(
        [torch.stack([x0, y0], -1), torch.stack([x1, y0], -1), torch.stack([x1, y1], -1), torch.stack([x0, y1], -1)], 1
    )  # (N, 4, 2)
    nxt = corners.roll(-1, dims=1)
    thirds = [corners, corners + (nxt - corners) / 3.0, corners + (nxt - corners) * (2.0 / 3.0)]
    return torch.stack(thirds, 2).reshape(-1, 12, 2)  # corner, 1/3, 2/3 of each edge


def grid_margins(size: tuple[int, int], grid: tuple[int, int]) -> tuple[float, float]:
    """Overlap (canvas px) of each cell over its right/bottom neighbour: none
    where cell edges fall on pixel edges, one pixel otherwise."""
    mx = 0.0 if size[0] % grid[0] == 0 else 1.0
    my = 0.0 if size[1] % grid[1] == 0 else 1.0
    return mx, my


def cell_rect_points(size: tuple[int, int], grid: tuple[int, int]) -> Tensor:
    """Float32 control points of every cell's closed rect path (canvas px, row-major), overlaps included.

    Shape:

    - ``size``: ``(width, height)`` px; ``grid``: ``(cols, rows)``
    - returns: ``(rows * cols, 12, 2)``, ``(x, y)`` points
    """
    (width, height), (cols, rows) = size, grid
    mx, my = grid_margins(size, grid)

    def spans(n: int, extent: int, margin: float) -> tuple[Tensor, Tensor]:
        k = torch.arange(n, dtype=torch.float64)
        cell = extent / n
        end = torch.where(k < n - 1, (k + 1) * cell + margin, torch.full_like(k, float(extent)))
        return k * cell, end

    def off_centre(edge: Tensor) -> Tensor:
        # An edge exactly through pixel centres (k + 0.5, e.g. 720 px / 32 rows)
        # is a tie for the native rasterizer's inside/outside test, which then
        # covers those pixels fully instead of half; 1/1024 px off, they get
        # the half coverage they should (to 0.1%).
        on = (edge - torch.floor(edge) - 0.5).abs() < 1e-9
        return torch.where(on, edge + 2.0**-10, edge)

    x0, x1 = (off_centre(e) for e in spans(cols, width, mx))
    y0, y1 = (off_centre(e) for e in spans(rows, height, my))
    pts = _closed_rect_points(x0.repeat(rows), y0.repeat_interleave(cols), x1.repeat(rows), y1.repeat_interleave(cols))
    return pts.to(torch.float32)


def grid_scene(points: Tensor, colors: Tensor, size: tuple[int, int], background: Tensor | None) -> Scene:
    """Cells (``points`` from :func:`cell_rect_points`) with opaque ``(cells, 3)`` colours."""
    ones = torch.ones(colors.shape[0], 1, device=colors.device, dtype=colors.dtype)
    rgba = torch.cat([colors, ones], 1)
    paths = [Path(points=points[c], closed=True, stroke_width=0.0, fill=rgba[c]) for c in range(rgba.shape[0])]
    return Scene(size[0], size[1], paths, background)


def _touching(n_pix: int, n_cells: int, margin: float) -> tuple[np.ndarray, int]:
    """Per pixel column (or row): the first cell that may touch it, and the
    most cells that may touch one pixel.  Exact (one cell) when cell edges sit
    on pixel edges, generous otherwise."""
    x = np.arange(n_pix, dtype=np.int64)
    if margin == 0 and n_pix % n_cells == 0:
        return x // (n_pix // n_cells), 1
    cell, eps = n_pix / n_cells, 1e-3
    xf = x.astype(np.float64)
    lo = np.floor((xf - margin - eps) / cell).astype(np.int64)  # (j+1)*cell + margin >= x
    hi = np.ceil((xf + 1 + eps) / cell).astype(np.int64) - 1  # j*cell <= x + 1
    lo = np.clip(lo, 0, n_cells - 1)
    hi = np.clip(hi, 0, n_cells - 1)
    return lo, int((hi - lo).max()) + 1


@functools.lru_cache(maxsize=4)
@torch.no_grad()
def probe_weights(
    size: tuple[int, int], grid: tuple[int, int], rasterizer: str = "native", device: str = "cpu"
) -> tuple[Tensor, Tensor, Tensor]:
    """Per-pixel cell weights of the rasterized grid: ``(weights (S, H*W),
    index (S*H*W,), background weight (H*W,))`` for ``S`` slots per pixel.

    The image of the grid is linear in the (opaque) cell colours, so it is
    ``sum_s weights[s] * colour[index[s]] + bg_weight * background``.  The
    weights come from the rasterizer itself: cells are split into classes by
    ``(column mod Kx, row mod Ky)``, with ``Kx``/``Ky`` large enough that no
    pixel touches two cells of one class, and each probe render lights up
    three classes (one per channel) with every other cell black (still
    opaque, so occlusion is exact).  Cached (a few geometries): only colours
    change while optimizing.  The tensors are shared: never modify them.
    """
    (width, height), (cols, rows) = size, grid
    mx, my = grid_margins(size, grid)
    lo_x, kx = _touching(width, cols, mx)
    lo_y, ky = _touching(height, rows, my)
    raster = get_rasterizer(rasterizer)
    points = cell_rect_points(size, grid).to(device)
    col, row = np.arange(cols), np.arange(rows)
    cell_class = torch.from_numpy(((row[:, None] % ky) * kx + (col[None, :] % kx)).reshape(-1))
    n_cls = kx * ky
    weights = torch.zeros(n_cls, height, width, dtype=torch.float32)
    alpha = torch.zeros(height, width)
    for r in range(math.ceil(n_cls / 3)):
        probe = torch.zeros(cols * rows, 3)
        lit = [(ch, 3 * r + ch) for ch in range(3) if 3 * r + ch < n_cls]
        for ch, cls in lit:
            probe[cell_class == cls, ch] = 1.0
        rgba = raster.render(grid_scene(points, probe.to(device), size, None), size).float().cpu()
        for ch, cls in lit:
            weights[cls] = rgba[ch]
        alpha = rgba[3]
    # which cell of class (a, b) a pixel sees: the one in its touching range
    idx = torch.empty(n_cls, height, width, dtype=torch.long)
    for b in range(ky):
        iy = np.clip(lo_y + (b - lo_y) % ky, 0, rows - 1)
        for a in range(kx):
            jx = np.clip(lo_x + (a - lo_x) % kx, 0, cols - 1)
            idx[b * kx + a] = torch.from_numpy(iy[:, None] * cols + jx[None, :])
    # keep, per pixel, only the cells that actually touch it (one where cell
    # edges sit on pixel edges, up to four at fractional corners)
    weights, idx = weights.reshape(n_cls, -1), idx.reshape(n_cls, -1)
    touching = weights > 0
    slots = max(1, int(touching.sum(0).max()))
    order = torch.argsort((~touching).to(torch.int8), dim=0, stable=True)[:slots]
    weights = torch.where(touching, weights, torch.zeros(())).gather(0, order)
    index = idx.gather(0, order).reshape(-1)
    bg = (1.0 - alpha).clamp(0, 1).reshape(-1)
    return weights.to(device), index.to(device), bg.to(device)


def _fmt(v: float) -> str:
    s = f"{v:.4f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def _hex(rgb8: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb8)


class PixelArt:
    """A ``grid = (columns, rows)`` of flat-coloured cells on a ``size = (W, H)`` canvas.

    Args:
        size: canvas ``(W, H)`` in pixels; the grid must fit (``columns <= W``,
            ``rows <= H``).
        grid: ``(columns, rows)``, ``"32x32"`` or a column count (see
            :func:`parse_grid`).
        palette: ``None`` (free colours) or the number of colours ``k >= 1``.
        palette_mode: ``"end"`` (k-means snap at the end) or ``"throughout"``
            (softmax mix over ``k`` learnable colours, hardened at export).
        straight_through: ``throughout`` mode only: render the hardened
            colours with soft-mix gradients (default) instead of the soft mix.
        init: start image (path, PIL image or tensor): it is fitted to the
            canvas and area-averaged into the cells.
        seed: seeds the random start (and the k-means seeding).
        lr: colour learning rate (logits in ``throughout`` mode use
            ``LOGIT_LR_SCALE * lr``).
        fit: how an init image is fitted: ``"cover"`` or ``"stretch"``.
        rasterizer: ``"native"`` (default) or ``"diffvg"``.
        device: torch device.
    """

    kind = "vector"
    name = "pixels"

    def __init__(
        self,
        size: tuple[int, int],
        *,
        grid: Any = (32, 32),
        palette: int | None = None,
        palette_mode: str = "end",
        straight_through: bool = True,
        init: InitSource = None,
        seed: int = 0,
        lr: float = 0.03,
        fit: str = "cover",
        rasterizer: str = "native",
        background: tuple[float, float, float] = (1.0, 1.0, 1.0),
        device: str | torch.device = "cpu",
    ) -> None:
        self.size = check_size(size)
        self.width, self.height = self.size
        self.grid = parse_grid(grid, self.size)
        self.cols, self.rows = self.grid
        if self.cols > self.width or self.rows > self.height:
            raise VecgenError(
                f"grid {self.cols}x{self.rows} is larger than the {self.width}x{self.height} image: "
                "use a smaller --grid or a larger --size"
            )
        self.palette_k = check_palette(palette)
        self.palette_mode = check_palette_mode(palette_mode)
        if self.palette_mode == "throughout" and self.palette_k is None:
            raise VecgenError("palette mode 'throughout' needs a palette size (e.g. --palette 16)")
        self.straight_through = bool(straight_through)
        self.lr = check_number("lr", lr, positive=True)
        if fit not in FITS:
            raise VecgenError(f"unknown fit {fit!r}: expected one of {', '.join(FITS)}")
        self.fit = fit
        self.seed = seed
        try:
            self.device = torch.device(device)
        except (RuntimeError, TypeError):
            raise VecgenError(f"bad device {device!r}") from None
        self.rasterizer = get_rasterizer(rasterizer)
        self.rasterizer_name = rasterizer
        self.background = torch.tensor(background, dtype=torch.float32, device=self.device)
        self.hard = False  # "throughout" mode after finalize(): argmax colours
        self.cell_w, self.cell_h = self.width / self.cols, self.height / self.rows
        gen = make_generator(seed)
        n = self.cols * self.rows
        start = self._init_cells(init) if init is not None else None  # (n, 3) float64
        self._points = cell_rect_points(self.size, self.grid).to(self.device)
        weights, index, bg = probe_weights(self.size, self.grid, rasterizer, str(self.device))
        self._weights, self._index, self._bg_weight = weights, index, bg

        self.palette: Tensor | None
        self.logits: Tensor | None
        self.colors: Tensor | None
        if self.palette_mode == "throughout":
            k = self.palette_k
            assert k is not None  # checked above: "throughout" needs a palette size
            if start is not None:
                pal, lab = kmeans_palette(start, k, seed=seed)
                extra = torch.rand(k - pal.shape[0], 3, generator=gen)
                palette_t = torch.cat([pal, extra])
                logits = torch.full((n, k), -2.0)
                logits[torch.arange(n), lab] = 2.0
            else:
                palette_t = torch.rand(k, 3, generator=gen)
                logits = torch.randn(n, k, generator=gen) * 2.0
            self.palette = palette_t.to(self.device, torch.float32).contiguous().requires_grad_(True)
            self.logits = logits.to(self.device, torch.float32).contiguous().requires_grad_(True)
            self.colors = None
        else:
            cells = start.float() if start is not None else torch.rand(n, 3, generator=gen)
            self.colors = cells.to(self.device, torch.float32).contiguous().requires_grad_(True)
            self.palette = self.logits = None

    # ------------------------------------------------------------------ construction
    def _margins(self) -> tuple[float, float]:
        return grid_margins(self.size, self.grid)

    def scene(self, colors: Tensor | None = None) -> Scene:
        """The grid as a Scene of closed rect paths, in row-major paint order.

        ``colors``: ``(cells, 3)``; defaults to :meth:`cell_colors` (differentiable).
        """
        if colors is None:
            colors = self.cell_colors()
        return grid_scene(self._points, colors, self.size, self.background)

    def _init_cells(self, init: InitSource) -> Tensor:
        rgb = load_init_image(init, self.size, fit=self.fit)  # (1, 3, H, W) float64
        cells = torch.nn.functional.adaptive_avg_pool2d(rgb, (self.rows, self.cols))
        return cells[0].permute(1, 2, 0).reshape(-1, 3).clamp(0, 1)

    # ------------------------------------------------------------------ colours
    def _palette_logits(self) -> tuple[Tensor, Tensor]:
        """The palette ``(K, 3)`` and per-cell logits ``(rows * cols, K)`` (set whenever ``colors`` is None)."""
        if self.palette is None or self.logits is None:
            raise RuntimeError("PixelArt holds neither free colours nor a palette")
        return self.palette, self.logits

    def cell_colors(self) -> Tensor:
        """Current per-cell colours, row-major (differentiable).

        Shape:

        - returns: ``(rows * cols, 3)`` RGB
        """
        if self.colors is not None:
            return self.colors
        palette, logits = self._palette_logits()
        if self.hard:
            return palette[logits.argmax(1)]
        weights = torch.softmax(logits, dim=1)
        if self.straight_through:
            one_hot = torch.nn.functional.one_hot(weights.argmax(1), weights.shape[1]).to(weights)
            weights = one_hot + (weights - weights.detach())
        return weights @ palette

    @torch.no_grad()
    def final_colors(self) -> Tensor:
        """The colours that export writes: palette-snapped or hardened.

        Shape:

        - returns: ``(rows * cols, 3)`` float32 RGB in ``[0, 1]``, row-major
        """
        if self.colors is None:
            palette, logits = self._palette_logits()
            return palette[logits.argmax(1)].clamp(0, 1).float()
        cells = self.colors.clamp(0, 1)
        if self.palette_k is None:
            return cells.float()
        pal, lab = kmeans_palette(cells, self.palette_k, seed=self.seed if isinstance(self.seed, int) else 0)
        return pal[lab].to(cells.device)

    @torch.no_grad()
    def finalize(self) -> None:
        """Apply the final colours to the parameters (snap / harden), so that
        :meth:`render` shows exactly what :meth:`export` writes."""
        if self.colors is None:
            self.hard = True
        else:
            self.colors.copy_(self.final_colors())

    # ------------------------------------------------------------------ protocol
    def param_groups(self) -> list[dict[str, Any]]:
        if self.colors is not None:
            return [{"params": [self.colors], "lr": self.lr, "name": "pixel_colors"}]
        return [
            {"params": [self.palette], "lr": self.lr, "name": "palette"},
            {"params": [self.logits], "lr": self.lr * LOGIT_LR_SCALE, "name": "palette_logits"},
        ]

    def _compose(self, colors: Tensor) -> Tensor:
        slots = self._weights.shape[0]
        seen = colors.index_select(0, self._index).view(slots, -1, 3)
        rgb = (seen * self._weights.unsqueeze(2)).sum(0)
        rgb = rgb + self._bg_weight.unsqueeze(1) * self.background
        return rgb.t().reshape(1, 3, self.height, self.width)

    def render(self, ctx: StepContext | None = None) -> Tensor:
        """``(1, 3, H, W)`` in ``[0, 1]``, equal to :meth:`render_scene`."""
        image = self._compose(self.cell_colors())
        # The pixels are convex mixes of colours in [0, 1]; the clamp only
        # trims float rounding.  It passes gradients straight through, since
        # torch's clamp has zero gradient *at* the bounds, where project_()
        # leaves saturated colours, which would then never move again.
        return image - (image - image.clamp(0, 1)).detach()

    def render_scene(self) -> Tensor:
        """Rasterize :meth:`scene` directly to ``(1, 3, H, W)`` (slow reference for :meth:`render`)."""
        rgba = self.rasterizer.render(self.scene(), self.size)
        return composite(rgba, self.background).unsqueeze(0).clamp(0, 1)

    def project_(self) -> None:
        with torch.no_grad():
            if self.colors is not None:
                self.colors.clamp_(0, 1)
            else:
                palette, logits = self._palette_logits()
                palette.clamp_(0, 1)
                logits.clamp_(-30.0, 30.0)

    # ------------------------------------------------------------------ export
    def runs(self) -> list[tuple[int, int, int, tuple[int, int, int]]]:
        """Horizontal runs of equal 8-bit final colour: ``(row, col0, col1, rgb8)``,
        cells ``col0 <= j < col1``, in paint order."""
        rgb8 = (self.final_colors().cpu().double() * 255.0).round().to(torch.int64)
        rows8 = rgb8.view(self.rows, self.cols, 3).tolist()
        out = []
        for i, row in enumerate(rows8):
            start = 0
            for j in range(1, self.cols + 1):
                if j == self.cols or row[j] != row[start]:
                    out.append((i, start, j, tuple(row[start])))
                    start = j
        return out

    def svg(self, metadata: dict[str, str] | None = None) -> str:
        """A compact SVG: viewBox in grid units, one ``<rect>`` per run."""
        w, h = self.size
        mx, my = self._margins()
        mxg, myg = mx / self.cell_w, my / self.cell_h  # overlaps in grid units
        rects = []
        for i, j0, j1, rgb in self.runs():
            width = (j1 - j0) + (mxg if j1 < self.cols else 0.0)
            height = 1.0 + (myg if i < self.rows - 1 else 0.0)
            xy = ({"x": str(j0)} if j0 else {}) | ({"y": str(i)} if i else {})
            rects.append(element("rect", **xy, width=_fmt(width), height=_fmt(height), fill=_hex(rgb)))
        return svg_document(w, h, rects, metadata, view_box=f"0 0 {self.cols} {self.rows}", preserveAspectRatio="none")

    def export(self, path: str | FsPath, metadata: dict[str, str] | None = None) -> None:
        from vecgen.io import atomic_write

        atomic_write(path, self.svg(metadata).encode("utf-8"))

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "type": self.name,
            "version": 1,
            "size": list(self.size),
            "grid": list(self.grid),
            "palette": self.palette_k,
            "palette_mode": self.palette_mode,
            "hard": self.hard,
        }
        if self.colors is not None:
            state["colors"] = self.colors.detach().to("cpu").clone()
        else:
            palette, logits = self._palette_logits()
            state["palette_colors"] = palette.detach().to("cpu").clone()
            state["logits"] = logits.detach().to("cpu").clone()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not isinstance(state, dict) or state.get("type") != self.name:
            got = state.get("type") if isinstance(state, dict) else type(state).__name__
            raise VecgenError(f"state is for parameterization {got!r}, not {self.name!r}")
        for key, mine in (
            ("size", list(self.size)),
            ("grid", list(self.grid)),
            ("palette", self.palette_k),
            ("palette_mode", self.palette_mode),
        ):
            theirs = state.get(key)
            if isinstance(theirs, (tuple, list)):
                theirs = list(theirs)
            if theirs != mine:
                raise VecgenError(f"state has {key} {theirs!r}, this pixel image has {mine!r}")
        names = ["colors"] if self.colors is not None else ["palette_colors", "logits"]
        live = [self.colors] if self.colors is not None else list(self._palette_logits())
        for name, tensor in zip(names, live):
            saved = state.get(name)
            if not isinstance(saved, Tensor) or tuple(saved.shape) != tuple(tensor.shape):
                raise VecgenError(f"state entry {name!r} is missing or has the wrong shape")
        with torch.no_grad():
            for name, tensor in zip(names, live):
                tensor.copy_(state[name].to(tensor.device, tensor.dtype))
        self.hard = bool(state.get("hard", False))

    def __repr__(self) -> str:
        return (
            f"PixelArt(size={self.size}, grid={self.cols}x{self.rows}, palette={self.palette_k}, "
            f"palette_mode={self.palette_mode!r})"
        )
