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
    lowres: share of the ``n`` views (at least one when > 0) that are the whole picture seen
    as a ``thumb`` px thumbnail (longer side, drawn from +-15% per view; antialiased down,
    bilinear back up to ``size``, square on the border colour): the perceptor must find the
    class at thumbnail scale, where fine texture does not survive. They come after each
    image's crops.
    The same views feed every perceptor; each resizes to its own input size.
    """

    def __init__(
        self,
        n: int = 8,
        size: int = 224,
        min_frac: float = 0.5,
        max_frac: float = 0.95,
        perspective: float = 0.15,
        noise: float = 0.05,
        antialias: bool = True,
        pad: str = "reflection",
        lowres: float = 0.0,
        thumb: int = 56,
    ) -> None:
        if n < 0:
            raise ValueError("cutouts must be >= 0")
        if not 0 < min_frac <= max_frac:
            raise ValueError("need 0 < min_frac <= max_frac")
        if pad not in ("reflection", "border"):
            raise ValueError(f"pad must be 'reflection' or 'border', not {pad!r}")
        self.n, self.size = n, size
        self.min_frac, self.max_frac = min_frac, max_frac
        self.perspective, self.noise = perspective, noise
        if not 0.0 <= lowres <= 1.0 or thumb < 2:
            raise ValueError("need 0 <= lowres <= 1 and thumb >= 2")
        self.antialias, self.pad = antialias, pad
        self.lowres, self.thumb = float(lowres), int(thumb)

    def thumbs(self) -> int:
        """How many of the ``n`` views are whole-picture thumbnails."""
        return 0 if self.lowres <= 0 or self.n == 0 else min(self.n, max(1, round(self.n * self.lowres)))

    def __call__(self, img: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """The views of ``img``, every draw from ``generator`` (the global RNG when ``None``).

        Shape:

        - ``img``: ``(B, 3, H, W)``; with ``pad="reflection"`` and no thumbnails any channel count ``C``
          works (the patch term warps output and content together, ``(B, 6, H, W)``)
        - returns: ``(B * n, 3, size, size)`` (``C`` channels likewise), each image's ``n`` views together
          (crops, then thumbnails); ``(B, 3, size, size)``, the plain images resized, when ``n`` is 0
        """
        b, _, h, w = img.shape
        s = self.size
        if self.n == 0:
            return torch.nn.functional.interpolate(
                img, size=(s, s), mode="bilinear", align_corners=False, antialias=max(h, w) > s
            )
        n, dev = self.n, img.device
        k = self.thumbs()

        def rand(*shape):
            return torch.rand(*shape, generator=generator).to(dev)

        out = self._crops(img, n - k, rand) if n > k else None
        if k:
            small = self._thumbnails(img, k, rand)
            out = (
                small
                if out is None
                else torch.cat([out.view(b, n - k, 3, s, s), small.view(b, k, 3, s, s)], 1).view(b * n, 3, s, s)
            )
        assert out is not None
        if self.noise > 0:
            sigma = rand(b * n, 1, 1, 1) * self.noise
            out = out + sigma * torch.randn(out.shape, generator=generator).to(dev)
        return out

    def _crops(self, img: Tensor, n: int, rand) -> Tensor:
        """``n`` perspective crops of each image, ``(B * n, 3, size, size)``."""
        from kornia.geometry.transform import get_perspective_transform, warp_perspective

        b, _, h, w = img.shape
        s, dev = self.size, img.device
        work = self.size / self.max_frac
        if self.antialias and min(h, w) > work + 0.5:
            k = work / min(h, w)
            img = torch.nn.functional.interpolate(
                img,
                size=(max(1, round(h * k)), max(1, round(w * k))),
                mode="bilinear",
                align_corners=False,
                antialias=True,
            )
            h, w = img.shape[-2:]
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
        return (
            warp_perspective(
                src,
                m,
                (s, s),
                mode="bilinear",
                align_corners=True,
                padding_mode="zeros" if self.pad == "border" else "reflection",
            )
            + bg
        )

    def _thumbnails(self, img: Tensor, k: int, rand) -> Tensor:
        """``k`` thumbnails of each whole image, ``(B * k, 3, size, size)``."""
        import torch.nn.functional as F

        b, _, h, w = img.shape
        s = self.size
        edge = torch.cat([img[..., 0, :], img[..., -1, :], img[..., :, 0], img[..., :, -1]], -1)
        bg = edge.median(-1).values.detach().view(b, 3, 1, 1)
        sides = self.thumb * (0.85 + 0.3 * rand(k))
        views = []
        for t in sides.tolist():
            scale = t / max(h, w)
            th, tw = max(1, round(h * scale)), max(1, round(w * scale))
            small = F.interpolate(img, size=(th, tw), mode="bilinear", align_corners=False, antialias=True)
            side = max(th, tw)
            top, left = (side - th) // 2, (side - tw) // 2
            square = F.pad(small - bg, (left, side - tw - left, top, side - th - top)) + bg
            views.append(F.interpolate(square, size=(s, s), mode="bilinear", align_corners=False))
        return torch.stack(views, 1).reshape(b * k, 3, s, s)


# Named view settings. "crops": CLIPDraw-style crops inside the picture, for real CLIP.
# "zoom": crops mixed with zoomed-out whole-picture views on the picture's own background;
# the mini models were trained on whole scenes on plain backgrounds, and with crops alone
# the optimizer fills the canvas with copies of the object so that every crop holds one.
# "lowres": the crops, with half the views the whole picture as a 56 px thumbnail (issue 25: a class a
# person can read survives being seen small; texture does not). Half, not a quarter: with Lite0 drawing
# 6 hard classes (seed 0), Lite2's thumbnail top-5 went 0 -> 2 of 6 and plain top-5 2 -> 3; three
# quarters lost plain ranks (orange 22 -> 159, lemon 20 -> 72) (docs/draw.md, "Legible drawings").
VIEWS: dict[str, dict] = {
    "crops": {"min_frac": 0.5, "max_frac": 0.95, "pad": "reflection"},
    "zoom": {"min_frac": 0.5, "max_frac": 1.2, "pad": "border"},
    "lowres": {"min_frac": 0.5, "max_frac": 0.95, "pad": "reflection", "lowres": 0.5},
}


def make_views(name: str, n: int, size: int) -> Cutouts:
    """A :class:`Cutouts` with the named settings of :data:`VIEWS` (``n`` views of ``size`` px)."""
    if name not in VIEWS:
        raise ValueError(f"unknown views {name!r} (choose {', '.join(VIEWS)})")
    return Cutouts(n, size=size, **VIEWS[name])
