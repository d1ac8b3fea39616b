"""StyleGAN-NADA's directional CLIP loss, and the plain per-image text distance its layer probe runs."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from vecgen.errors import VecgenError
from vecgen.objective import Context

#: Floor under the norm of the image-space step in the directional loss (unit
#: CLIP embeddings). At the start of NADA the trained and frozen generators are
#: identical, so the step is exactly zero and a plain normalisation is 0/0; with
#: the floor the loss is a smooth ``1 - <dI, dT> / sqrt(|dI|^2 + floor^2)``,
#: bounded in (0, 2), equal to 1 at the start and linear in ``dI`` while tiny.
DIRECTION_FLOOR = 1e-2


def mean_text(perceptor, texts: Sequence[str]) -> Tensor:
    """Unit mean embedding ``(D,)`` of one or more texts."""
    emb = perceptor.encode_text(list(texts)).detach()
    return F.normalize(emb.mean(0), dim=-1)


class DirectionalClipTerm:
    """StyleGAN-NADA's directional loss for one perceptor.

    ``dT = E_T(target) - E_T(source)`` (normalised), ``dI_b = E_I(x_b) -
    E_I(ref_b)`` per sample, loss ``= mean_b (1 - <dI_b, dT> / sqrt(|dI_b|^2 +
    floor^2))``. ``x`` is the render the engine hands in (``ctx.image``), ``ref``
    the step's ``"reference"`` tensor (``ctx.ref("reference")``, same shape, e.g.
    the frozen generator's render of the same latents, published by the
    parameterization), or ``reference()`` when a callable is given; no gradient
    flows into ``ref``. Images are resized
    whole to the perceptor's input (no cutouts: the two renders must be seen
    through the same window).
    """

    def __init__(
        self,
        perceptor,
        source: str | Sequence[str],
        target: str | Sequence[str],
        reference: Callable[[], Tensor | None] | None = None,
        weight: float = 1.0,
        name: str | None = None,
        floor: float = DIRECTION_FLOOR,
    ) -> None:
        src = [source] if isinstance(source, str) else list(source)
        tgt = [target] if isinstance(target, str) else list(target)
        if not src or not tgt or not all(str(t).strip() for t in src + tgt):
            raise VecgenError("directional loss needs a non-empty --source and --target text")
        self.perceptor, self.source, self.target = perceptor, src, tgt
        self.reference = reference
        self.weight, self.floor = float(weight), float(floor)
        self.name = name or f"direction:{perceptor.name}"
        self._direction: Tensor | None = None

    def text_direction(self) -> Tensor:
        """Unit ``(D,)`` step from the source text(s) to the target text(s)."""
        if self._direction is None:
            d = mean_text(self.perceptor, self.target) - mean_text(self.perceptor, self.source)
            if float(d.norm()) < 1e-6:
                raise VecgenError("--source and --target mean the same to this CLIP model; pick distinct texts")
            self._direction = F.normalize(d, dim=-1)
        return self._direction

    def __call__(self, ctx: Context) -> Tensor:
        """The mean directional loss of the renders against their references.

        Shape:

        - ``ctx.image``: ``(B, 3, H, W)``; the reference: the same shape
        - returns: ``()``
        """
        d_text = self.text_direction()
        ref = self.reference() if self.reference is not None else ctx.ref("reference")
        if ref is None:
            raise VecgenError("directional loss: no reference render yet (the parameterization renders it first)")
        if ref.shape != ctx.image.shape:
            raise VecgenError(
                f"directional loss: reference {tuple(ref.shape)} and render {tuple(ctx.image.shape)} differ in shape"
            )
        with torch.no_grad():
            e_ref = self.perceptor.encode_image(ref.detach())
        e_img = self.perceptor.encode_image(ctx.image)
        d_img = e_img - e_ref
        cos = (d_img @ d_text) / (d_img.pow(2).sum(-1) + self.floor**2).sqrt()
        return (1.0 - cos).mean()


def text_distance(perceptor, texts: Sequence[str], images: Tensor) -> Tensor:
    """Per-image global CLIP loss ``(B,)``: mean over ``texts`` of ``1 - cos``."""
    emb = perceptor.encode_text(list(texts)).detach()
    img = perceptor.encode_image(images)
    return (1.0 - img @ emb.t()).mean(-1)
