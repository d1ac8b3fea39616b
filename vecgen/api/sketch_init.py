"""Where a sketch's strokes start (CLIPasso): where the perceptor's saliency of the photo is high.

Saliency here is integrated gradients of the perceptor's own view of the photo:
the cosine between the embedding of ``baseline + a (photo - baseline)`` and the
photo's embedding, its gradient averaged over ``a`` in ``(0, 1]`` and times
``photo - baseline`` (a white baseline: the sketch's paper). That is the share of
"looks like this photo" each pixel carries, for any perceptor (CLIP, mini model
or classifier). Stroke starts are drawn from it, weighted by the photo's edges
(strokes belong on contours), one per cell of a coarse grid so they spread.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from vecgen.scene import Path


def _blur(x: Tensor, sigma: float) -> Tensor:
    """Gaussian blur of ``(1, 1, H, W)`` (reflect padding)."""
    if sigma <= 0:
        return x
    r = max(1, int(math.ceil(2.5 * sigma)))
    t = torch.arange(-r, r + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    r_h, r_w = min(r, x.shape[-2] - 1), min(r, x.shape[-1] - 1)
    x = F.pad(x, (r_w, r_w, r_h, r_h), mode="reflect") if r_h > 0 and r_w > 0 else x
    k_h = k[r - r_h : r + r_h + 1] if r_h > 0 else k[r : r + 1]
    k_w = k[r - r_w : r + r_w + 1] if r_w > 0 else k[r : r + 1]
    x = F.conv2d(x, k_w.view(1, 1, 1, -1))
    return F.conv2d(x, k_h.view(1, 1, -1, 1))


def saliency(perceptor, photo: Tensor, steps: int = 8, baseline: float = 1.0) -> Tensor:
    """``photo`` ``(1, 3, H, W)`` in ``[0, 1]`` -> ``(H, W)`` saliency in ``[0, 1]`` (integrated gradients)."""
    photo = photo.to(perceptor.device).float()
    with torch.no_grad():
        target = F.normalize(perceptor.encode_image(photo), dim=-1)
    base = torch.full_like(photo, baseline)
    alphas = (torch.arange(steps, device=photo.device, dtype=photo.dtype) + 1) / steps
    grad = torch.zeros_like(photo)
    for a in alphas:  # one at a time: memory stays that of one forward pass
        x = (base + a * (photo - base)).requires_grad_(True)
        sim = (F.normalize(perceptor.encode_image(x), dim=-1) * target).sum()
        grad += torch.autograd.grad(sim, x)[0]
    attr = ((photo - base) * grad / steps).abs().sum(1, keepdim=True)
    sal = _blur(attr, 0.015 * min(photo.shape[-2:]))[0, 0]
    return (sal / sal.max().clamp(min=1e-12)).detach().cpu()


def sobel(photo: Tensor, sigma: float) -> tuple[Tensor, Tensor]:
    """``(1, 3, H, W)`` -> Sobel ``(gx, gy)``, each ``(H, W)``, of the grey photo blurred by ``sigma`` (x 1/8)."""
    grey = photo.float().mean(1, keepdim=True).cpu()
    kx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]).view(1, 1, 3, 3) / 8
    g = F.pad(_blur(grey, sigma), (1, 1, 1, 1), mode="replicate")
    return F.conv2d(g, kx)[0, 0], F.conv2d(g, kx.transpose(2, 3))[0, 0]


def edges(photo: Tensor) -> Tensor:
    """``(1, 3, H, W)`` -> ``(H, W)`` Sobel gradient magnitude of the grey photo, in ``[0, 1]``."""
    gx, gy = sobel(photo, 1.0)
    mag = (gx.pow(2) + gy.pow(2)).sqrt()
    return mag / mag.max().clamp(min=1e-12)


def start_points(weight: Tensor, n: int, generator: torch.Generator, cell: int | None = None) -> Tensor:
    """``n`` points ``(n, 2)`` (x, y pixels) drawn from ``weight`` ``(H, W)``: one per grid cell at most
    (cells drawn by their summed weight, without replacement), the point inside its cell by its weight."""
    h, w = weight.shape
    cell = cell or max(2, int(math.sqrt(h * w / max(4 * n, 1))))
    gh, gw = math.ceil(h / cell), math.ceil(w / cell)
    pad = F.pad(weight[None, None], (0, gw * cell - w, 0, gh * cell - h))[0, 0]
    cells = pad.view(gh, cell, gw, cell).permute(0, 2, 1, 3).reshape(gh * gw, cell * cell)
    mass = cells.sum(1)
    if float(mass.sum()) <= 0:
        mass = torch.ones_like(mass)
    live = int((mass > 0).sum())
    picks = torch.multinomial(mass, min(n, live), replacement=False, generator=generator)
    if len(picks) < n:  # fewer weighted cells than strokes: the rest anywhere weighted, repeats allowed
        picks = torch.cat([picks, torch.multinomial(mass, n - len(picks), replacement=True, generator=generator)])
    out = []
    for c in picks.tolist():
        inside = cells[c] + 1e-12
        j = int(torch.multinomial(inside, 1, generator=generator))
        y = (c // gw) * cell + j // cell
        x = (c % gw) * cell + j % cell
        out.append((min(x, w - 1) + 0.5, min(y, h - 1) + 0.5))
    return torch.tensor(out, dtype=torch.float32)


def place_strokes(
    weight: Tensor, n: int, segments: int, width: float, colour: Tensor, seed: int, radius: float = 0.05
) -> list[Path]:
    """``n`` open strokes of ``segments`` cubics, each starting at a point drawn from ``weight`` ``(H, W)``,
    its other control points a short random walk (``radius`` of the short side per step) from there."""
    gen = torch.Generator().manual_seed(seed)
    h, w = weight.shape
    starts = start_points(weight, n, gen)
    step = radius * min(w, h)
    bound = torch.tensor([w, h], dtype=torch.float32)
    out = []
    for p0 in starts:
        walk = (torch.rand(3 * segments, 2, generator=gen) * 2 - 1) * step
        pts = torch.cat([p0[None], p0 + torch.cumsum(walk, 0)])
        pts = torch.minimum(pts.clamp(min=0), bound)
        out.append(Path(pts, closed=False, stroke_width=torch.tensor(float(width)), stroke=colour.clone()))
    return out


def _bezier_fit(pts: Tensor) -> Tensor:
    """Least-squares cubic Bézier ``(4, 2)`` through ``pts`` ``(m, 2)`` (chord-length parameters, ends kept)."""
    if len(pts) < 4:
        a, b = pts[0], pts[-1]
        return torch.stack([a, a + (b - a) / 3, a + 2 * (b - a) / 3, b])
    d = (pts[1:] - pts[:-1]).norm(dim=1)
    t = torch.cat([torch.zeros(1), d.cumsum(0)])
    if float(t[-1]) < 1e-6:  # all one point (a trace that found no way on): a dot, not a spike to (0, 0)
        return pts[:1].repeat(4, 1)
    t = t / t[-1]
    basis = torch.stack([(1 - t) ** 3, 3 * t * (1 - t) ** 2, 3 * t**2 * (1 - t), t**3], 1)  # (m, 4)
    # ends fixed: solve for the two inner control points only
    rest = pts - basis[:, :1] * pts[0] - basis[:, 3:] * pts[-1]
    inner = torch.linalg.lstsq(basis[:, 1:3], rest).solution
    return torch.cat([pts[:1], inner, pts[-1:]])


def _trace(
    weight: Tensor,
    tangent: Tensor,
    start: tuple[int, int],
    step: float,
    longest: float,
    least: float = 0.0,
    bend: float = math.pi / 2,
) -> Tensor:
    """Follow the ridge of ``weight`` ``(H, W)`` both ways from ``start`` (x, y) along ``tangent`` ``(2, H, W)``;
    the points ``(m, 2)`` in order. Stops where the weight falls under a fifth of the start's or under ``least``
    (without it, a weak start's trace runs straight on through smooth regions), or where one way has turned by
    more than ``bend`` (a trace around an eye closes its loop, and one cubic fitted to a loop is a long spike)."""
    h, w = weight.shape
    x0, y0 = start
    floor = max(0.2 * float(weight[y0, x0]), least)
    d0 = tangent[:, y0, x0]
    turns = [math.radians(a) for a in (-30, -15, 0, 15, 30)]
    halves = []
    for sign in (1.0, -1.0):
        p, d, out = torch.tensor([x0 + 0.5, y0 + 0.5]), sign * d0, []
        heading, turned = math.atan2(float(d[1]), float(d[0])), 0.0
        for _ in range(int(longest / 2 / step)):
            best, best_w = None, floor
            for a in turns:
                c, s = math.cos(a), math.sin(a)
                nd = torch.stack([c * d[0] - s * d[1], s * d[0] + c * d[1]])
                q = p + step * nd
                xi, yi = int(q[0]), int(q[1])
                if 0 <= xi < w and 0 <= yi < h and float(weight[yi, xi]) > best_w:
                    best, best_w = (q, nd), float(weight[yi, xi])
            if best is None:
                break
            now = math.atan2(float(best[0][1] - p[1]), float(best[0][0] - p[0]))
            turned += (now - heading + math.pi) % (2 * math.pi) - math.pi
            heading = now
            if abs(turned) > bend:
                break
            p, nd = best
            t = tangent[:, int(p[1]), int(p[0])]
            d = t if float((t * nd).sum()) >= 0 else -t  # keep going the same way along the edge
            d = 0.5 * (d + nd)
            d = d / d.norm().clamp(min=1e-9)
            out.append(p)
        halves.append(out)
    pts = [*reversed(halves[1]), torch.tensor([x0 + 0.5, y0 + 0.5]), *halves[0]]
    return torch.stack(pts)


def trace_strokes(
    weight: Tensor, photo: Tensor, n: int, segments: int, width: float, colour: Tensor, longest: float = 0.5
) -> list[Path]:
    """``n`` open strokes traced along the photo's strongest contours, strongest first.

    ``weight`` ``(H, W)`` (saliency times edges) picks where; each stroke follows the edge's tangent (the
    grey photo's gradient turned 90 degrees) up to ``longest`` of the short side, is fitted with
    ``segments`` cubics, and blanks the weight around it so the next one draws another contour.
    """
    h, w = weight.shape
    gx, gy = sobel(photo, 1.5)
    tangent = torch.stack([-gy, gx])
    tangent = tangent / tangent.norm(dim=0, keepdim=True).clamp(min=1e-9)
    left = weight.clone()
    top = float(weight.max())
    short = min(h, w)
    yy, xx = torch.meshgrid(torch.arange(h) + 0.5, torch.arange(w) + 0.5, indexing="ij")
    out = []
    for _ in range(n):
        i = int(left.argmax())
        y0, x0 = divmod(i, w)
        pts = _trace(left, tangent, (x0, y0), 2.0, longest * short, least=0.1 * top, bend=math.pi / 2 * segments)
        if len(pts) < 3:  # no way on from here: a short dash along the edge, which the optimizer can grow
            pts = pts[:1] + torch.linspace(-2.0, 2.0, 3)[:, None] * tangent[:, y0, x0]
        if len(pts) < 4 * segments:  # too short to split: resample the polyline
            at = torch.linspace(0, len(pts) - 1, 4 * segments)
            lo = at.floor().long().clamp(max=len(pts) - 1)
            hi = (lo + 1).clamp(max=len(pts) - 1)
            pts_fit = pts[lo] + (at - lo)[:, None] * (pts[hi] - pts[lo])
        else:
            pts_fit = pts
        # consecutive chunks share their end point, so the cubics join
        bounds = torch.linspace(0, len(pts_fit) - 1, segments + 1).round().long().tolist()
        ctrl = [_bezier_fit(pts_fit[a : b + 1]) for a, b in zip(bounds[:-1], bounds[1:])]
        seq = [ctrl[0][0]]
        for c in ctrl:
            seq += [c[1], c[2], c[3]]
        stroke = torch.stack(seq)
        out.append(Path(stroke, closed=False, stroke_width=torch.tensor(float(width)), stroke=colour.clone()))
        # blank a band around the stroke (a few widths) so the next stroke takes another contour
        dist = ((xx[..., None] - pts[:, 0]) ** 2 + (yy[..., None] - pts[:, 1]) ** 2).min(-1).values
        left = left * (dist > (0.04 * short) ** 2)
    return out
