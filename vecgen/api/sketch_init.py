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


def edges(photo: Tensor) -> Tensor:
    """``(1, 3, H, W)`` -> ``(H, W)`` Sobel gradient magnitude of the grey photo, in ``[0, 1]``."""
    grey = photo.float().mean(1, keepdim=True).cpu()
    kx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]).view(1, 1, 3, 3) / 8
    g = F.pad(_blur(grey, 1.0), (1, 1, 1, 1), mode="replicate")
    mag = (F.conv2d(g, kx).pow(2) + F.conv2d(g, kx.transpose(2, 3)).pow(2)).sqrt()[0, 0]
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
