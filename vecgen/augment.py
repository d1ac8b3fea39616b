"""Differentiable, batched cutouts: crop/zoom + perspective + noise.

Random numbers come from a ``torch.Generator`` owned by the caller, so a run is
reproducible without touching global RNG state. Warping uses kornia.
"""
from __future__ import annotations

import torch
from torch import Tensor


class Cutouts:
    """``(B, 3, H, W)`` image -> ``(B * n, 3, size, size)`` augmented views.

    n: number of cutouts (0 = the plain image, resized).
    min_frac / max_frac: side of a crop as a fraction of the image's short side; above 1 the
    view zooms out and holds the whole picture with a margin.
    perspective: max corner jitter as a fraction of the crop side.
    noise: max std of additive Gaussian noise (per cutout, uniformly drawn).
    antialias: first low-pass the image to a short side of ``size / max_frac`` when it is
    larger, so the largest crop maps 1:1 onto a view and smaller ones are upsampled. Without
    it, a crop is decimated to ``size`` and the optimizer can draw aliasing patterns that only
    the optimizing model sees (perceptors and judges resize with antialiasing).
    pad: what fills a view outside the image: ``"reflection"`` (mirror it) or ``"border"``
    (the image's border colour, i.e. its background: the median of its edge pixels).
    The same views feed every perceptor; each resizes to its own input size.
    """

    def __init__(self, n: int = 8, size: int = 224, min_frac: float = 0.5, max_frac: float = 0.95,
                 perspective: float = 0.15, noise: float = 0.05, antialias: bool = True,
                 pad: str = "reflection") -> None:
        if n < 0:
            raise ValueError("cutouts must be >= 0")
        if not 0 < min_frac <= max_frac:
            raise ValueError("need 0 < min_frac <= max_frac")
        if pad not in ("reflection", "border"):
            raise ValueError(f"pad must be 'reflection' or 'border', not {pad!r}")
        self.n, self.size = n, size
        self.min_frac, self.max_frac = min_frac, max_frac
        self.perspective, self.noise = perspective, noise
        self.antialias, self.pad = antialias, pad

    def __call__(self, img: Tensor, generator: torch.Generator | None = None) -> Tensor:
        from kornia.geometry.transform import get_perspective_transform, warp_perspective

        b, _, h, w = img.shape
        s = self.size
        if self.n == 0:
            return torch.nn.functional.interpolate(img, size=(s, s), mode="bilinear", align_corners=False,
                                                   antialias=max(h, w) > s)
        n, dev = self.n, img.device
        work = self.size / self.max_frac
        if self.antialias and min(h, w) > work + 0.5:
            k = work / min(h, w)
            img = torch.nn.functional.interpolate(img, size=(max(1, round(h * k)), max(1, round(w * k))),
                                                  mode="bilinear", align_corners=False, antialias=True)
            h, w = img.shape[-2:]

        def rand(*shape):
            return torch.rand(*shape, generator=generator).to(dev)

        short = min(h, w)
        side = short * (self.min_frac + (self.max_frac - self.min_frac) * rand(b * n))
        x0 = rand(b * n) * (w - side)
        y0 = rand(b * n) * (h - side)
        base = torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]], device=dev)
        jitter = (rand(b * n, 4, 2) * 2 - 1) * self.perspective
        corners = (base + jitter) * side.view(-1, 1, 1) + torch.stack([x0, y0], 1).view(-1, 1, 2)
        dst = base * (s - 1)
        m = get_perspective_transform(corners, dst.expand(b * n, 4, 2))
        bg: Tensor | float = 0.0
        if self.pad == "border":
            # Warp the difference to the background with zero padding, then add it back:
            # outside the image a view shows plain background, as the mini models' scenes do.
            edge = torch.cat([img[..., 0, :], img[..., -1, :], img[..., :, 0], img[..., :, -1]], -1)
            bg = edge.median(-1).values.detach().view(b, 3, 1, 1).repeat_interleave(n, dim=0)
        src = img.repeat_interleave(n, dim=0) - bg
        out = warp_perspective(src, m, (s, s), mode="bilinear", align_corners=True,
                               padding_mode="zeros" if self.pad == "border" else "reflection") + bg
        if self.noise > 0:
            sigma = rand(b * n, 1, 1, 1) * self.noise
            out = out + sigma * torch.randn(out.shape, generator=generator).to(dev)
        return out


# Named view settings. "crops": CLIPDraw-style crops inside the picture, for real CLIP.
# "zoom": crops mixed with zoomed-out whole-picture views on the picture's own background;
# the mini models were trained on whole scenes on plain backgrounds, and with crops alone
# the optimizer fills the canvas with copies of the object so that every crop holds one.
VIEWS: dict[str, dict] = {
    "crops": {"min_frac": 0.5, "max_frac": 0.95, "pad": "reflection"},
    "zoom": {"min_frac": 0.5, "max_frac": 1.2, "pad": "border"},
}


def make_views(name: str, n: int, size: int) -> Cutouts:
    """A :class:`Cutouts` with the named settings of :data:`VIEWS` (``n`` views of ``size`` px)."""
    if name not in VIEWS:
        raise ValueError(f"unknown views {name!r} (choose {', '.join(VIEWS)})")
    return Cutouts(n, size=size, **VIEWS[name])
