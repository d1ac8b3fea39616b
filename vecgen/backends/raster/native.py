"""Native differentiable rasterizer, pure PyTorch (the default backend).

How it works, and why it is fast and bounded in memory:

1. Every cubic segment is flattened into short lines (count chosen per segment
   from its curvature and length, so error stays below ``tol`` pixels). Line
   endpoints are Bernstein combinations of control points, so gradients reach
   the control points.
2. Each *layer* (a path's fill, then its stroke, in SVG paint order) owns a
   packed pixel array over its bounding box. Work is generated only for
   (line, pixel) pairs inside each line's own small box: nothing of size
   paths x pixels x segments ever exists.
3. Strokes: coverage from the distance ``d`` to the nearest line, integrated
   over a one-pixel box filter: ``min(d + w/2, .5) - max(d - w/2, -.5)``.
   Round caps and joins fall out of the point-to-segment distance.
4. Fills: the winding number at pixel centres comes from scanline crossings
   summed along each row (exact, non-zero or even-odd); pixels within half a
   pixel of an edge get the same box-filter coverage from the signed distance,
   which is where fill gradients come from.
5. Compositing: per pixel, layers in order with premultiplied "over", written
   as a segmented sum of ``log(1 - alpha)`` so all layers composite at once.

Differentiable gathers use ``index_select``, never ``x[idx]``: on multi-threaded CPU
the backward of advanced indexing accumulates repeated indices in a varying order,
so the same seed gave different bytes run to run.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from vecgen.scene import Scene

_FAR = 1.0e4  # "no edge nearby" distance, beyond any stroke radius
_MAX_LINES_PER_SEGMENT = 64


class NativeRasterizer:
    """Pure-torch rasterizer. ``render(scene) -> (4, H, W)`` premultiplied RGBA.

    tol: flattening tolerance in pixels. max_line: longest flattened line in
    pixels (keeps each line's pixel box small).
    """

    name = "native"

    def __init__(self, tol: float = 0.1, max_line: float = 6.0) -> None:
        self.tol = tol
        self.max_line = max_line

    def render(self, scene: Scene, size: tuple[int, int] | None = None) -> Tensor:
        """``scene`` -> premultiplied RGBA ``(4, H, W)``, at ``size`` ``(W, H)`` (default: the scene's own)."""
        return rasterize(scene, size, tol=self.tol, max_line=self.max_line)


def composite(rgba: Tensor, background: Tensor | None) -> Tensor:
    """Premultiplied ``(4, H, W)`` over an RGB ``(3,)`` background -> ``(3, H, W)``."""
    if background is None:
        return rgba[:3]
    bg = background.to(rgba)[:3].view(3, 1, 1)
    return rgba[:3] + (1.0 - rgba[3:4]) * bg


def _ranges(count: Tensor) -> tuple[Tensor, Tensor]:
    """For counts per item, return (item index, local index) of every unit."""
    item = torch.repeat_interleave(torch.arange(count.numel(), device=count.device), count)
    start = torch.cumsum(count, 0) - count
    local = torch.arange(item.numel(), device=count.device) - start[item]
    return item, local


def _bezier(p: Tensor, seg: Tensor, t: Tensor) -> Tensor:
    """Points of cubic segments ``p (S, 4, 2)`` at parameters ``t`` for segments ``seg``."""
    c = p.index_select(0, seg)  # index_select: its backward sums deterministically on CPU
    t = t.unsqueeze(1)
    s = 1.0 - t
    return (s * s * s) * c[:, 0] + (3 * s * s * t) * c[:, 1] + (3 * s * t * t) * c[:, 2] + (t * t * t) * c[:, 3]


def _flatten(p: Tensor, tol: float, max_line: float) -> tuple[Tensor, Tensor, Tensor]:
    """Cubics ``(S, 4, 2)`` -> lines: start ``(L, 2)``, end ``(L, 2)``, segment id ``(L,)``."""
    with torch.no_grad():
        d2 = torch.maximum((p[:, 0] - 2 * p[:, 1] + p[:, 2]).norm(dim=1), (p[:, 1] - 2 * p[:, 2] + p[:, 3]).norm(dim=1))
        # Max flattening error of n uniform pieces is <= 6 * d2 / (8 n^2).
        n_curv = torch.sqrt(6.0 * d2 / (8.0 * tol))
        length = (p[:, 1:] - p[:, :-1]).norm(dim=2).sum(1)
        n = torch.maximum(n_curv, length / max_line).ceil().clamp(1, _MAX_LINES_PER_SEGMENT).long()
        seg, j = _ranges(n)
        nf = n[seg].to(p.dtype)
        ta, tb = j.to(p.dtype) / nf, (j + 1).to(p.dtype) / nf
    return _bezier(p, seg, ta), _bezier(p, seg, tb), seg


def _layer_boxes(a: Tensor, b: Tensor, r: Tensor, layer: Tensor, n_layers: int, w: int, h: int):
    """Integer pixel boxes ``(x0, y0, bw, bh)`` covering each layer's lines grown by ``r``."""
    lo = torch.minimum(a, b) - r.unsqueeze(1)
    hi = torch.maximum(a, b) + r.unsqueeze(1)
    big = torch.full((n_layers, 2), float("inf"), device=a.device, dtype=a.dtype)
    lo_l = big.scatter_reduce(0, layer.unsqueeze(1).expand(-1, 2), lo, "amin")
    hi_l = (-big).scatter_reduce(0, layer.unsqueeze(1).expand(-1, 2), hi, "amax")
    limit = torch.tensor([w - 1, h - 1], device=a.device)
    x0y0 = torch.ceil(lo_l - 0.5).clamp(min=-1).long().clamp(min=0)
    x1y1 = torch.floor(hi_l - 0.5).clamp(max=1e7).long().clamp(max=limit)
    size = (x1y1 - x0y0 + 1).clamp(min=0)
    return x0y0, size


def _line_pixel_pairs(a: Tensor, b: Tensor, r: Tensor, box0: Tensor, box_size: Tensor):
    """Pixels within ``r`` of each line's box, clipped to its layer's box.

    Returns (line index, pixel x, pixel y) for every pair; no gradients.
    """
    lo = torch.ceil(torch.minimum(a, b) - r.unsqueeze(1) - 0.5).long()
    hi = torch.floor(torch.maximum(a, b) + r.unsqueeze(1) - 0.5).clamp(max=1e7).long()
    lo = torch.maximum(lo, box0)
    hi = torch.minimum(hi, box0 + box_size - 1)
    n = (hi - lo + 1).clamp(min=0)
    line, k = _ranges(n[:, 0] * n[:, 1])
    nx = n[line, 0]
    return line, lo[line, 0] + k % nx, lo[line, 1] + k // nx


def _distance(a: Tensor, b: Tensor, px: Tensor, py: Tensor) -> Tensor:
    """Distance from pixel centres to segments ``a-b`` (all ``(N, 2)``) -> ``(N,)``."""
    c = torch.stack([px, py], 1).to(a.dtype) + 0.5
    ab = b - a
    ac = c - a
    den = (ab * ab).sum(1).clamp(min=1e-12)
    t = ((ac * ab).sum(1) / den).clamp(0.0, 1.0)
    q = ac - t.unsqueeze(1) * ab
    return torch.sqrt((q * q).sum(1) + 1e-12)


def _winding(a: Tensor, b: Tensor, layer: Tensor, box0: Tensor, box_size: Tensor, wrow: Tensor) -> Tensor:
    """Winding numbers at pixel centres for fill layers, packed row-major with one spare column.

    ``wrow[l]`` is the packed offset of layer l; rows have ``bw + 1`` entries.
    """
    total = int((box_size[:, 1] * (box_size[:, 0] + 1)).sum())
    acc = torch.zeros(total + 1, dtype=torch.long, device=a.device)
    if a.shape[0] == 0 or total == 0:
        return acc[:-1]
    ylo = torch.minimum(a[:, 1], b[:, 1])
    yhi = torch.maximum(a[:, 1], b[:, 1])
    bx0, by0 = box0[layer, 0], box0[layer, 1]
    bw, bh = box_size[layer, 0], box_size[layer, 1]
    r0 = torch.maximum(torch.ceil(ylo - 0.5).long(), by0)
    r1 = torch.minimum(torch.ceil(yhi - 0.5).clamp(max=1e7).long() - 1, by0 + bh - 1)
    line, k = _ranges((r1 - r0 + 1).clamp(min=0))
    row = r0[line] + k
    yc = row.to(a.dtype) + 0.5
    ax, ay, bxx, byy = a[line, 0], a[line, 1], b[line, 0], b[line, 1]
    xc = ax + (yc - ay) * (bxx - ax) / (byy - ay)
    col = torch.floor(xc - 0.5).clamp(-1e7, 1e7).long() + 1
    lx0, lw = bx0[line], bw[line]
    col = (col - lx0).clamp(min=0)
    col = torch.minimum(col, lw)
    idx = wrow[layer[line]] + (row - by0[line]) * (lw + 1) + col
    sign = torch.where(byy > ay, 1, -1)
    acc.index_add_(0, idx, sign)
    acc = acc[:-1]
    # Cumulative sum along each row: global cumsum minus the value before the row.
    cs = torch.cumsum(acc, 0)
    row_len = (box_size[:, 0] + 1).repeat_interleave(box_size[:, 1])
    row_end = torch.cumsum(row_len, 0)
    before = torch.cat([cs.new_zeros(1), cs[row_end[:-1] - 1]])
    return cs - before.repeat_interleave(row_len)


def rasterize(scene: Scene, size: tuple[int, int] | None = None, *, tol: float = 0.1, max_line: float = 6.0) -> Tensor:
    """Render ``scene`` to premultiplied RGBA ``(4, H, W)``.

    size: output ``(W, H)``; the scene is scaled to it (default: scene size).
    Differentiable w.r.t. points, stroke widths and colours.
    """
    w, h = size if size is not None else (scene.width, scene.height)
    w, h = int(w), int(h)
    ref = next((p.points for p in scene.paths), None)
    device = ref.device if ref is not None else torch.device("cpu")
    dtype = ref.dtype if ref is not None and ref.is_floating_point() else torch.float32
    if not scene.paths:
        return torch.zeros(4, h, w, device=device, dtype=dtype)
    sx, sy = w / scene.width, h / scene.height
    scale = torch.tensor([sx, sy], device=device, dtype=dtype)
    wscale = math.sqrt(sx * sy)

    # --- topology: segment control-point indices, layers (fill then stroke per path)
    seg_idx, seg_path, pts = [], [], []
    layer_path, layer_is_fill, layer_rgba, layer_evenodd = [], [], [], []
    base = 0
    for i, path in enumerate(scene.paths):
        m = path.points.shape[0]
        nseg = path.num_segments
        j = torch.arange(nseg) * 3
        idx = torch.stack([j, j + 1, j + 2, j + 3], 1)
        if path.closed:
            idx = idx % m
        seg_idx.append(idx + base)
        seg_path.append(torch.full((nseg,), i))
        pts.append(path.points.to(dtype))
        base += m
        if path.fill is not None:
            layer_path.append(i)
            layer_is_fill.append(True)
            layer_rgba.append(path.fill.to(device, dtype))
            layer_evenodd.append(path.fill_rule == "evenodd")
        if path.stroke is not None:
            layer_path.append(i)
            layer_is_fill.append(False)
            layer_rgba.append(path.stroke.to(device, dtype))
            layer_evenodd.append(False)
    n_layers = len(layer_path)
    if n_layers == 0:
        return torch.zeros(4, h, w, device=device, dtype=dtype)
    points = torch.cat(pts, 0) * scale
    seg_idx_t = torch.cat(seg_idx, 0).to(device)
    seg_path_t = torch.cat(seg_path, 0).to(device)
    widths = torch.stack([torch.as_tensor(p.stroke_width, dtype=dtype, device=device).reshape(()) for p in scene.paths])
    half = widths.clamp(min=0) * (0.5 * wscale)
    rgba = torch.stack(layer_rgba, 0)
    layer_path_t = torch.tensor(layer_path, device=device)
    is_fill = torch.tensor(layer_is_fill, device=device)
    evenodd = torch.tensor(layer_evenodd, device=device)

    # --- flatten
    a, b, seg = _flatten(points[seg_idx_t], tol, max_line)
    line_path = seg_path_t[seg]

    # Map each path's lines onto its layers. Fills also get the implicit closing line.
    path_to_fill = torch.full((len(scene.paths),), -1, device=device, dtype=torch.long)
    path_to_stroke = torch.full_like(path_to_fill, -1)
    lid = torch.arange(n_layers, device=device)
    path_to_fill[layer_path_t[is_fill]] = lid[is_fill]
    path_to_stroke[layer_path_t[~is_fill]] = lid[~is_fill]

    sl = path_to_stroke[line_path] >= 0
    s_a, s_b, s_layer = a[sl], b[sl], path_to_stroke[line_path[sl]]
    s_r = half.index_select(0, layer_path_t[s_layer]) + 0.5

    fl = path_to_fill[line_path] >= 0
    f_a, f_b, f_layer = a[fl], b[fl], path_to_fill[line_path[fl]]
    fill_paths = layer_path_t[is_fill]
    if fill_paths.numel():
        # closing line: from the last point of each open path to its first.
        starts = torch.cumsum(torch.tensor([p.points.shape[0] for p in scene.paths], device=device), 0)
        first = starts - torch.tensor([p.points.shape[0] for p in scene.paths], device=device)
        last = starts - 1
        closed = torch.tensor([p.closed for p in scene.paths], device=device)
        fp = fill_paths[~closed[fill_paths]]
        f_a = torch.cat([f_a, points[last[fp]]])
        f_b = torch.cat([f_b, points[first[fp]]])
        f_layer = torch.cat([f_layer, path_to_fill[fp]])
    f_r = torch.full((f_a.shape[0],), 0.5, device=device, dtype=dtype)

    la = torch.cat([s_a, f_a])
    lb = torch.cat([s_b, f_b])
    lr = torch.cat([s_r, f_r])
    ll = torch.cat([s_layer, f_layer])

    # --- pixel slots: fills own a packed box (their interiors need winding numbers);
    # strokes only get the (layer, pixel) slots their lines actually touch.
    with torch.no_grad():
        box0, box_size = _layer_boxes(la.detach(), lb.detach(), lr.detach(), ll, n_layers, w, h)
        line, px, py = _line_pixel_pairs(la.detach(), lb.detach(), lr.detach(), box0[ll], box_size[ll])
        pl = ll[line]
        fill_pair = is_fill[pl]
        area = box_size[:, 0] * box_size[:, 1] * is_fill
        offset = torch.cumsum(area, 0) - area
        slot_layer, local = _ranges(area)
        sbw = box_size[slot_layer, 0]
        scol, srow = local % sbw, local // sbw
        n_fill_slots = slot_layer.numel()
        sp = ~fill_pair
        ukey, inv = torch.unique(pl[sp] * (h * w) + py[sp] * w + px[sp], return_inverse=True)
        slot = torch.empty_like(line)
        fpl = pl[fill_pair]
        slot[fill_pair] = (
            offset[fpl] + (py[fill_pair] - box0[fpl, 1]) * box_size[fpl, 0] + (px[fill_pair] - box0[fpl, 0])
        )
        slot[sp] = n_fill_slots + inv
        slot_pix = torch.cat([(box0[slot_layer, 1] + srow) * w + box0[slot_layer, 0] + scol, ukey % (h * w)])
        slot_layer = torch.cat([slot_layer, ukey // (h * w)])
    # --- winding numbers at pixel centres of fill slots (exact, no gradient)
    inside = torch.zeros(slot_layer.numel(), dtype=torch.bool, device=device)
    if bool(is_fill.any()):
        with torch.no_grad():
            wrow_size = box_size[:, 1] * (box_size[:, 0] + 1) * is_fill
            wrow = torch.cumsum(wrow_size, 0) - wrow_size
            fb = box_size * is_fill.unsqueeze(1)
            wind = _winding(f_a.detach(), f_b.detach(), f_layer, box0, fb, wrow)
            fl_layer = slot_layer[:n_fill_slots]
            wn = torch.zeros(slot_layer.numel(), dtype=torch.long, device=device)
            wn[:n_fill_slots] = wind[wrow[fl_layer] + srow * (sbw + 1) + scol]
            eo = evenodd[slot_layer]
            inside = torch.where(eo, wn % 2 == 1, wn != 0)
            # An edge only anti-aliases pixels where it separates inside from outside:
            # crossing it changes the winding by +1 from its left (cross > 0) side.
            pa, pb = la.detach()[line], lb.detach()[line]
            v = pb - pa
            cross = v[:, 0] * (py.to(dtype) + 0.5 - pa[:, 1]) - v[:, 1] * (px.to(dtype) + 0.5 - pa[:, 0])
            w_here = wn[slot]
            eo_s, in_here = eo[slot], inside[slot]

            def inside_at(wv: Tensor) -> Tensor:
                return torch.where(eo_s, wv % 2 == 1, wv != 0)

            # On the edge's line (cross == 0) the centre could belong to either side: try both.
            step = torch.where(cross > 0, 1, -1)
            useful = (inside_at(w_here + step) != in_here) | ((cross == 0) & (inside_at(w_here + 1) != in_here))
            useful = ~fill_pair | useful
            line, px, py, slot = line[useful], px[useful], py[useful], slot[useful]
    dist = _distance(la.index_select(0, line), lb.index_select(0, line), px, py)
    dmin = torch.full((slot_layer.numel(),), _FAR, device=device, dtype=dtype)
    dmin = dmin.scatter_reduce(0, slot, dist, "amin", include_self=True)

    # --- coverage (box filter across the nearest edge)
    lhalf = torch.where(is_fill, 0.0, half.index_select(0, layer_path_t)).index_select(0, slot_layer)
    cov_stroke = (torch.clamp(dmin + lhalf, max=0.5) - torch.clamp(dmin - lhalf, min=-0.5)).clamp(0.0, 1.0)
    cov_fill = torch.where(inside, (0.5 + dmin).clamp(max=1.0), (0.5 - dmin).clamp(min=0.0))
    cov = torch.where(is_fill[slot_layer], cov_fill, cov_stroke)

    # --- composite all layers at once, per pixel in layer order
    with torch.no_grad():
        keep = torch.nonzero(cov > 0).squeeze(1)
        key, order = torch.sort(slot_pix[keep] * n_layers + slot_layer[keep])
        keep = keep[order]
        pix = key // n_layers
        _, counts = torch.unique_consecutive(pix, return_counts=True)
    if keep.numel() == 0:  # nothing covers any pixel (a path off the canvas, alone): a blank, still in the graph
        return torch.zeros(4, h, w, device=device, dtype=dtype) + 0.0 * cov.sum()
    k_layer = slot_layer[keep]
    k_rgba = rgba.index_select(0, k_layer)
    alpha = cov[keep] * k_rgba[:, 3]
    log_t = torch.log1p(-alpha.double().clamp(max=1.0 - 1e-9))
    cs = torch.cumsum(log_t, 0)
    ends = torch.cumsum(counts, 0) - 1
    group_before = torch.cat([cs.new_zeros(1), cs[ends[:-1]]])
    group_total = cs[ends] - group_before
    # transmittance of everything above each layer in its pixel
    above = group_total.repeat_interleave(counts) - (cs - group_before.repeat_interleave(counts))
    weight = (alpha.double() * torch.exp(above)).to(dtype)
    colour = k_rgba[:, :3] * weight.unsqueeze(1)
    upix = pix[ends]
    rgb = torch.zeros(h * w, 3, device=device, dtype=dtype).index_add(0, pix, colour)
    alpha_out = torch.zeros(h * w, device=device, dtype=dtype).index_put(
        (upix,), (1.0 - torch.exp(group_total)).to(dtype)
    )
    out = torch.cat([rgb, alpha_out.unsqueeze(1)], 1)
    return out.t().reshape(4, h, w)
