"""Where a new filled path goes, and its first shape: the geometry behind :mod:`vecgen.params.vector_fit`.

LIVE's component-wise initialisation, done without scipy: the picture's colours
are clustered (k-means), the pixels the render still misses are split by
cluster into 4-connected components (min-label propagation with pointer
jumping, in torch), and the component holding the most error wins. Its outer
boundary is traced (Moore neighbours) and resampled into ``segments`` cubics
that interpolate the boundary, so a new path starts close to the region's shape
(arcs and rings included, where a circle at the centroid would not).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor


def kmeans_colours(
    pixels: Tensor, k: int, *, iters: int = 12, seed: int = 0, sample: int = 20000
) -> tuple[Tensor, Tensor]:
    """Cluster ``(N, C)`` pixels into at most ``k`` colours -> ``(centres (k', C), labels (N,))``.

    Deterministic for a seed: k-means++ seeding and Lloyd steps on a subsample,
    then every pixel takes its nearest centre. Empty clusters are dropped.
    """
    gen = torch.Generator().manual_seed(seed)
    x = pixels.float()
    sub = x[torch.randperm(x.shape[0], generator=gen)[:sample]] if x.shape[0] > sample else x
    k = max(1, min(k, sub.shape[0]))
    centres = sub[torch.randint(sub.shape[0], (1,), generator=gen)]
    for _ in range(1, k):  # k-means++: next centre drawn in proportion to squared distance
        d = torch.cdist(sub, centres).min(1).values.square()
        if float(d.sum()) <= 0:
            break
        centres = torch.cat([centres, sub[torch.multinomial(d, 1, generator=gen)]])
    for _ in range(iters):
        lab = torch.cdist(sub, centres).argmin(1)
        sums = torch.zeros_like(centres).index_add_(0, lab, sub)
        n = torch.bincount(lab, minlength=centres.shape[0]).unsqueeze(1)
        centres = torch.where(n > 0, sums / n.clamp(min=1), centres)
    labels = torch.cdist(x, centres).argmin(1)
    used = torch.bincount(labels, minlength=centres.shape[0]) > 0
    remap = torch.cumsum(used.long(), 0) - 1
    return centres[used], remap[labels]


#: Squared colour distance to the nearest of 16 clusters above which a pixel is "off the palette".
OFF_PALETTE = 0.001
#: Share of off-palette pixels above which a picture is continuous-tone (a photo). Measured: the six
#: benchmark icons 0.011-0.030, the skimage photos astronaut, chelsea, coffee 0.72-0.76.
PHOTO_SHARE = 0.25


def continuous_tone(rgba: Tensor, *, seed: int = 0) -> bool:
    """Whether a straight RGBA picture ``(1, 4, H, W)`` is continuous-tone (a photo) rather than flat colours.

    Flat art (icons, logos) sits on a few colours: clustered into 16, nearly every
    pixel but the anti-aliased edges matches its cluster. In a photo most pixels
    are off every cluster (shading, texture, noise).
    """
    t = rgba[0].float()
    px = torch.cat([t[:3] * t[3:4], t[3:4]]).flatten(1).t()
    centres, labels = kmeans_colours(px, 16, seed=seed)
    off = (px - centres[labels]).square().sum(1) > OFF_PALETTE
    return float(off.float().mean()) > PHOTO_SHARE


def components(mask: Tensor) -> Tensor:
    """4-connected components of a boolean ``(H, W)`` mask -> int64 labels (-1 outside the mask).

    Each component is labelled by the smallest flat index of its pixels.
    """
    h, w = mask.shape
    big = h * w
    idx = torch.arange(big, dtype=torch.float64).view(h, w)
    lab = torch.where(mask, idx, torch.full_like(idx, big))
    while True:
        # min over the 4-neighbourhood (a -max-pool of -labels), inside the mask only
        p = F.pad(lab, (1, 1, 1, 1), value=big)
        m = torch.minimum(torch.minimum(p[1:-1, :-2], p[1:-1, 2:]), torch.minimum(p[:-2, 1:-1], p[2:, 1:-1]))
        new = torch.where(mask, torch.minimum(lab, m), lab)
        flat = new.view(-1)
        inside = mask.view(-1)
        # pointer jumping: a pixel's label names a pixel of the same component, whose label is no larger
        jumped = flat.clone()
        jumped[inside] = flat[flat[inside].long()]
        new = jumped.view(h, w)
        if torch.equal(new, lab):
            break
        lab = new
    return torch.where(mask, lab, torch.full_like(lab, -1)).long()


_DIRS = ((1, 0), (1, 1), (0, 1), (-1, 1), (-1, 0), (-1, -1), (0, -1), (1, -1))  # (dx, dy), clockwise on screen


def trace_boundary(mask: np.ndarray) -> np.ndarray:
    """The outer boundary of the component of a boolean ``(H, W)`` array holding its first pixel (row-major).

    Moore-neighbour tracing with Jacob's stopping rule -> ``(K, 2)`` pixel ``(x, y)`` indices, in order.
    """
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        return np.zeros((0, 2), dtype=np.int64)
    h, w = mask.shape
    start = (int(xs[0]), int(ys[0]))  # topmost, then leftmost: its left neighbour is outside
    out = [start]

    def on(x: int, y: int) -> bool:
        return 0 <= x < w and 0 <= y < h and bool(mask[y, x])

    cur, back = start, 4  # we "came" from the left (direction index of the backtrack)
    first_move = None
    for _ in range(4 * mask.size + 8):
        found = False
        for k in range(1, 9):
            d = (back + k) % 8
            nx, ny = cur[0] + _DIRS[d][0], cur[1] + _DIRS[d][1]
            if on(nx, ny):
                nxt = (nx, ny)
                # the new backtrack: the background neighbour scanned just before, seen from the new pixel
                bx = cur[0] + _DIRS[(d - 1) % 8][0] - nx
                by = cur[1] + _DIRS[(d - 1) % 8][1] - ny
                back = _DIRS.index((bx, by))
                found = True
                break
        if not found:  # a lone pixel
            return np.array(out, dtype=np.int64)
        if first_move is None:
            first_move = nxt
        elif cur == start and nxt == first_move:
            out.pop()  # the start was appended again on arrival
            break
        out.append(nxt)
        cur = nxt
    return np.array(out, dtype=np.int64)


def fit_closed_cubics(poly: np.ndarray, segments: int) -> np.ndarray:
    """A closed polyline ``(K, 2)`` -> ``(3 * segments, 2)`` cubic control points interpolating it.

    Anchors are spaced evenly by arc length; each segment's two inner control
    points are solved so the cubic passes through the polyline at 1/3 and 2/3
    of the arc between its anchors.
    """
    pts = np.concatenate([poly, poly[:1]]).astype(np.float64)
    seg = np.linalg.norm(np.diff(pts, axis=0), axis=1)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    total = s[-1]
    t = np.linspace(0.0, total, 3 * segments + 1)[:-1]
    q = np.stack([np.interp(t, s, pts[:, 0]), np.interp(t, s, pts[:, 1])], 1)
    out = np.empty((3 * segments, 2))
    for i in range(segments):
        p0, q1, q2, p3 = q[3 * i], q[3 * i + 1], q[3 * i + 2], q[(3 * i + 3) % (3 * segments)]
        u = 27 * q1 - 8 * p0 - p3
        v = 27 * q2 - p0 - 8 * p3
        out[3 * i] = p0
        out[3 * i + 1] = (2 * u - v) / 18
        out[3 * i + 2] = (2 * v - u) / 18
    return out


def circle_cubics(centre: tuple[float, float], radius: float, segments: int) -> np.ndarray:
    """A circle as ``segments`` closed cubics -> ``(3 * segments, 2)`` control points."""
    ang = np.arange(3 * segments) / (3 * segments) * 2 * math.pi
    return np.stack([centre[0] + radius * np.cos(ang), centre[1] + radius * np.sin(ang)], 1)


def pick_regions(error: Tensor, labels: Tensor, usable: Tensor, count: int, *, threshold: float) -> list[Tensor]:
    """Up to ``count`` boolean ``(H, W)`` masks where the render misses most, one colour cluster each.

    ``error``: ``(H, W)`` per-pixel error; ``labels``: ``(H, W)`` colour cluster
    of the target; ``usable``: ``(C,)`` clusters a path may take (opaque
    enough). Components are ranked by their summed error; the chosen ones do not
    overlap.
    """
    miss = error > threshold
    cands: list[tuple[float, Tensor]] = []
    for c in torch.nonzero(usable).flatten().tolist():
        m = miss & (labels == c)
        if not bool(m.any()):
            continue
        comp = components(m)
        ids, inv = torch.unique(comp[m], return_inverse=True)
        score = torch.zeros(ids.numel(), dtype=torch.float64).index_add_(0, inv, error[m].double())
        top = torch.argsort(score, descending=True)[:count]
        for j in top.tolist():
            cands.append((float(score[j]), comp == ids[j]))
    cands.sort(key=lambda sc: -sc[0])
    return [m for _, m in cands[:count]]


def region_shape(mask: Tensor, segments: int) -> np.ndarray:
    """A closed path (pixel units) hugging the outer boundary of a region mask.

    Shape:

    - ``mask``: boolean ``(H, W)``, not empty
    - returns: a NumPy ``(3 * segments, 2)`` float64 array of ``(x, y)`` cubic control points
    """
    m = mask.cpu().numpy()
    area = int(m.sum())
    ys, xs = np.nonzero(m)
    centre = (float(xs.mean()) + 0.5, float(ys.mean()) + 0.5)
    if area < 12:
        return circle_cubics(centre, max(1.5, math.sqrt(area / math.pi) + 0.5), segments)
    poly = trace_boundary(m).astype(np.float64) + 0.5
    if len(poly) < 2 * segments:
        return circle_cubics(centre, max(1.5, math.sqrt(area / math.pi) + 0.5), segments)
    # push the boundary (through pixel centres) half a pixel outwards, away from the centre
    d = poly - np.array(centre)
    n = np.linalg.norm(d, axis=1, keepdims=True)
    poly = poly + 0.5 * d / np.maximum(n, 1e-6)
    return fit_closed_cubics(poly, segments)
