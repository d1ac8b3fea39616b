"""Where ``vecgen edit`` may change a photo, how the change goes back in, and how local it stayed.

* :func:`subject_mask` -- a soft mask ``(1, 1, h, w)`` in ``[0, 1]`` at the
  generator's size: the subject the perceptor sees (:func:`saliency`, Grad-CAM of
  a classifier's top class, or of ``source`` when it names one; occlusion of the
  image embedding for other perceptors), or a box given in photo pixels
  (``where="X,Y,W,H"``), or everywhere (``where="all"``).
* :class:`MaskedLatent` -- the optimized latent rendered as
  ``inversion + mask * (render - inversion)``: the perceptor sees, and the loss
  pulls on, only the change inside the mask.
* :func:`residual_paste` -- the edit goes back as a residual at the photo's own
  resolution: ``photo + upsample(edited - inversion)`` inside the crop box,
  clamped to ``[0, 1]``; pixels whose change is zero keep the photo's values.
* :func:`locality` -- the share of the change (sum of ``|result - photo|``)
  inside the subject region and the PSNR outside it.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from vecgen.errors import VecgenError
from vecgen.params.base import StepContext
from vecgen.params.latent import Latent

#: Grad-CAM values (relative to the map's maximum) mapped to mask 0 and mask 1: everything the classifier
#: weighs at least half as much as its strongest evidence is fully editable, below a fifth not at all.
MASK_LO, MASK_HI = 0.2, 0.5
#: Occlusion grid (rows, columns) for perceptors without class logits.
OCCLUSION_GRID = (6, 8)
#: Feather of a ``where`` box, as a fraction of the box's shorter side (a hard edge would show a seam).
FEATHER = 0.08


# ----------------------------------------------------------------------------- the subject
def parse_where(where: Any, photo_hw: tuple[int, int]) -> str | tuple[int, int, int, int]:
    """``None``/``"auto"`` -> ``"auto"`` (saliency); ``"all"`` -> ``"all"``; ``"X,Y,W,H"`` (photo pixels, or a
    4-sequence) -> ``(x, y, w, h)`` clipped to the photo; anything else is one clear error line."""
    if where is None or (isinstance(where, str) and where.strip().lower() in ("", "auto")):
        return "auto"
    if isinstance(where, str) and where.strip().lower() in ("all", "none", "everywhere"):
        return "all"
    parts = [p for p in where.replace(" ", ",").split(",") if p] if isinstance(where, str) else list(where)
    try:
        x, y, w, h = (round(float(v)) for v in parts)
    except (TypeError, ValueError):
        raise VecgenError(f"--where takes X,Y,W,H in photo pixels (or auto / all), got {where!r}") from None
    ph, pw = photo_hw
    if w <= 0 or h <= 0:
        raise VecgenError(f"--where {where!r}: width and height must be > 0")
    x0, y0, x1, y1 = max(0, x), max(0, y), min(pw, x + w), min(ph, y + h)
    if x1 <= x0 or y1 <= y0:
        raise VecgenError(f"--where {where!r} lies outside the {pw}x{ph} photo")
    return x0, y0, x1 - x0, y1 - y0


def box_in_crop(
    where: tuple[int, int, int, int], crop: tuple[int, int, int, int], hw: tuple[int, int]
) -> tuple[float, float, float, float]:
    """A photo-pixel box ``(x, y, w, h)`` -> the same box in the generator's ``hw`` frame (floats)."""
    top, left, bh, bw = crop
    sy, sx = hw[0] / bh, hw[1] / bw
    x, y, w, h = where
    return (x - left) * sx, (y - top) * sy, w * sx, h * sy


def box_mask(hw: tuple[int, int], box: tuple[float, float, float, float], feather: float = 0.0) -> Tensor:
    """``(1, 1, h, w)``: 1 inside ``box`` ``(x, y, w, h)``, 0 outside, ramping over ``feather`` pixels inside it."""
    h, w = hw
    x, y, bw, bh = box
    ys = torch.arange(h, dtype=torch.float32)[:, None] + 0.5
    xs = torch.arange(w, dtype=torch.float32)[None, :] + 0.5
    inside = torch.minimum(torch.minimum(xs - x, x + bw - xs), torch.minimum(ys - y, y + bh - ys))
    m = (inside / feather).clamp(0, 1) if feather > 0 else (inside > 0).float()
    return m[None, None]


def _classifier(perceptors) -> Any | None:
    for p, _ in perceptors or []:
        if callable(getattr(p, "logits", None)) and callable(getattr(p, "features", None)):
            return p
    return None


def _class_of(perceptor, source: str | None) -> int | None:
    if not source:
        return None
    try:
        return int(perceptor.class_index(str(source).strip()))
    except VecgenError:
        return None


def grad_cam(perceptor, image: Tensor, cls: int | None = None) -> tuple[Tensor, int]:
    """Grad-CAM of class ``cls`` (default: the top class) on the classifier's last spatial feature layer.

    ``image`` ``(1, 3, h, w)`` -> ``(map (1, 1, h, w) in [0, 1] (max 1), the class)``.
    """
    spatial = [n for n in getattr(perceptor, "feature_layers", ()) if n not in ("pool", "logits")]
    if not spatial:
        raise VecgenError(f"{getattr(perceptor, 'name', 'perceptor')}: no spatial feature layer for a saliency map")
    x = image.detach().to(perceptor.device).requires_grad_(True)
    with torch.enable_grad():
        got = perceptor.features(x, [spatial[-1], "logits"])
        act, logits = got[spatial[-1]], got["logits"][0]
        cls = int(logits.detach().argmax()) if cls is None else int(cls)
        (grad,) = torch.autograd.grad(logits[cls], act)
    cam = F.relu((grad.mean((2, 3), keepdim=True) * act).sum(1, keepdim=True)).detach()
    return _unit(F.interpolate(cam, size=image.shape[-2:], mode="bilinear", align_corners=False)), cls


@torch.no_grad()
def occlusion(perceptor, image: Tensor, grid: tuple[int, int] = OCCLUSION_GRID) -> Tensor:
    """How far the image embedding moves (``1 - cos``) when each cell of a ``grid`` is greyed out
    -> ``(1, 1, h, w)`` in ``[0, 1]`` (max 1). Works with any perceptor."""
    h, w = image.shape[-2:]
    rows, cols = grid
    x = image.to(getattr(perceptor, "device", image.device))
    base = F.normalize(perceptor.encode_image(x).float(), dim=-1)
    cells = torch.zeros(rows * cols)
    for i in range(rows):
        for j in range(cols):
            y0, y1, x0, x1 = i * h // rows, (i + 1) * h // rows, j * w // cols, (j + 1) * w // cols
            occ = x.clone()
            occ[..., y0:y1, x0:x1] = 0.5
            e = F.normalize(perceptor.encode_image(occ).float(), dim=-1)
            cells[i * cols + j] = 1.0 - float((e * base).sum())
    cam = cells.reshape(1, 1, rows, cols).clamp_min(0)
    return _unit(F.interpolate(cam, size=(h, w), mode="bilinear", align_corners=False))


def _unit(cam: Tensor) -> Tensor:
    return cam / cam.amax().clamp_min(1e-12)


def saliency(perceptors, image: Tensor, source: str | None = None) -> tuple[Tensor, str]:
    """Where the perceptors see the photo's subject: ``((1, 1, h, w)`` in ``[0, 1]``, how it was found)."""
    clf = _classifier(perceptors)
    if clf is not None:
        cam, cls = grad_cam(clf, image, _class_of(clf, source))
        from vecgen.backends.perceptors.imagenet import class_name

        return cam, f"grad-cam:{getattr(clf, 'name', 'classifier')}:{class_name(cls)}"
    if not perceptors:
        raise VecgenError("a saliency mask needs a perceptor (give --clip, or --where X,Y,W,H / all)")
    p = perceptors[0][0]
    return occlusion(p, image), f"occlusion:{getattr(p, 'name', 'perceptor')}"


def shape_mask(cam: Tensor, lo: float | None = None, hi: float | None = None) -> Tensor:
    """A saliency map in ``[0, 1]`` -> a soft mask: 0 below ``lo``, 1 above ``hi`` (default
    :data:`MASK_LO`, :data:`MASK_HI`), linear between.

    Shape:

    - ``cam``: any shape, e.g. :func:`saliency`'s ``(1, 1, h, w)``
    - returns: the same shape, in ``[0, 1]``
    """
    lo = MASK_LO if lo is None else lo
    hi = MASK_HI if hi is None else hi
    return ((cam - lo) / max(hi - lo, 1e-6)).clamp(0, 1)


def subject_mask(
    where: Any,
    perceptors,
    target: Tensor,
    crop: tuple[int, int, int, int],
    photo_hw: tuple[int, int],
    source: str | None = None,
) -> tuple[Tensor, dict[str, Any]]:
    """The edit's soft mask ``(1, 1, h, w)`` at the generator's size (``target`` ``(1, 3, h, w)`` is the
    cropped photo there) and what the settings record about it (``where``, ``mask``, ``mask_area``)."""
    hw = (int(target.shape[-2]), int(target.shape[-1]))
    spec = parse_where(where, photo_hw)
    if spec == "all":
        mask, how = torch.ones(1, 1, *hw), "all"
    elif spec == "auto":
        cam, how = saliency(perceptors, target, source)
        mask = shape_mask(cam)
    else:
        assert not isinstance(spec, str)
        b = box_in_crop(spec, crop, hw)
        mask, how = box_mask(hw, b, FEATHER * min(b[2], b[3])), "box"
    mask = mask.to(target.device)
    info = {
        "where": list(spec) if isinstance(spec, tuple) else spec,
        "mask": how,
        "mask_area": round(float(mask.mean()), 4),
    }
    return mask, info


# ----------------------------------------------------------------------------- the masked edit
class MaskedLatent(Latent):
    """A :class:`~vecgen.params.latent.Latent` whose render is ``base + mask * (render - base)``.

    ``base`` ``(1, 3, h, w)``: the inversion's render; ``mask`` ``(1, 1, h, w)`` in ``[0, 1]``.
    """

    def __init__(self, generator, *, base: Tensor, mask: Tensor, **kw: Any) -> None:
        super().__init__(generator, **kw)
        self.base, self.mask = base.detach(), mask.detach().to(base)

    def render(self, ctx: StepContext | None = None) -> Tensor:
        """The latent's render, kept only inside the mask (see :func:`compose`).

        Shape:

        - returns: ``(1, 3, h, w)`` in ``[0, 1]``, the generator's size
        """
        return compose(self.base, super().render(ctx), self.mask)


def compose(base: Tensor, raw: Tensor, mask: Tensor) -> Tensor:
    """``base + mask * (raw - base)`` (all at the generator's size; ``mask`` ``(1, 1, h, w)``)."""
    return base + mask.to(raw) * (raw - base.to(raw))


def residual_paste(photo: Tensor, base: Tensor, edited: Tensor, crop: tuple[int, int, int, int]) -> Tensor:
    """``photo`` ``(1, 3, H, W)`` plus the change ``edited - base`` (both ``(1, 3, h, w)``), upsampled
    (bilinear) into the ``crop`` box ``(top, left, height, width)``; clamped to ``[0, 1]``."""
    top, left, bh, bw = crop
    delta = edited.detach().float() - base.detach().float().to(edited.device)
    if tuple(delta.shape[-2:]) != (bh, bw):
        delta = F.interpolate(delta, size=(bh, bw), mode="bilinear", align_corners=False)
    out = photo.detach().float().clone().to(delta.device)
    out[..., top : top + bh, left : left + bw] = (out[..., top : top + bh, left : left + bw] + delta).clamp(0, 1)
    return out


def region_at(mask: Tensor, crop: tuple[int, int, int, int], photo_hw: tuple[int, int]) -> Tensor:
    """The subject region at the photo's size, ``(1, 1, H, W)`` bool: the mask (upsampled into ``crop``) >= 0.5."""
    top, left, bh, bw = crop
    out = torch.zeros(1, 1, *photo_hw, dtype=torch.bool)
    up = F.interpolate(mask.detach().float().cpu(), size=(bh, bw), mode="bilinear", align_corners=False)
    out[..., top : top + bh, left : left + bw] = up >= 0.5
    return out


def locality(photo: Tensor, result: Tensor, region: Tensor) -> dict[str, float | None]:
    """How local an edit is: ``change_inside`` -- the share of ``sum |result - photo|`` inside ``region``
    ``(1, 1, H, W)`` bool (None when nothing changed); ``psnr_outside`` -- PSNR (dB, capped at 120) of
    ``result`` to ``photo`` ``(1, 3, H, W)`` over the pixels outside it (None when it covers everything)."""
    diff = (result.detach().double().cpu() - photo.detach().double().cpu()).abs()
    inside = region.to(torch.bool).expand_as(diff)
    total = float(diff.sum())
    share = None if total <= 0 else float(diff[inside].sum()) / total
    out = diff[~inside]
    if out.numel() == 0:
        psnr = None
    else:
        mse = float(out.pow(2).mean())
        psnr = min(120.0, 10.0 * torch.log10(torch.tensor(1.0 / max(mse, 1e-12))).item())
    return {
        "change_inside": None if share is None else round(share, 4),
        "psnr_outside": None if psnr is None else round(psnr, 2),
    }
