"""Loss terms beyond the global CLIP term of :mod:`vecgen.objective`.

* :class:`LatentL2` -- StyleCLIP's squared L2 distance of the optimized latent
  to where it started (a term that reads the parameterization).
* :class:`DirectionalClipTerm` -- StyleGAN-NADA's directional CLIP loss: the
  CLIP-space step from a reference render to the current render should point
  the same way as the step from a source text to a target text.
* :func:`text_distance` -- plain "global" CLIP loss per image (the probe that
  NADA's adaptive layer freezing runs).
* :func:`score_images` -- the objective's value *per image* of a batch, no
  grad, batched (FuseDream's ranking of random latents).

Every term follows the :class:`vecgen.objective.Term` protocol: a ``name``, a
``weight`` and ``__call__(ctx) -> unweighted scalar``.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from vecgen.errors import VecgenError
from vecgen.objective import ClipTerm, Context

__all__ = ["DIRECTION_FLOOR", "DirectionalClipTerm", "LatentL2", "score_images", "text_distance"]

#: Floor under the norm of the image-space step in the directional loss (unit
#: CLIP embeddings). At the start of NADA the trained and frozen generators are
#: identical, so the step is exactly zero and a plain normalisation is 0/0; with
#: the floor the loss is a smooth ``1 - <dI, dT> / sqrt(|dI|^2 + floor^2)``,
#: bounded in (0, 2), equal to 1 at the start and linear in ``dI`` while tiny.
DIRECTION_FLOOR = 1e-2


class LatentL2:
    """``weight * sum((latent - latent_at_start)**2)`` (StyleCLIP's L2 term).

    ``param`` must have ``l2_to_init() -> scalar tensor`` (see
    :class:`vecgen.params.latent.Latent`). The sum runs over every entry of
    the optimized latent (StyleCLIP's convention: ``--l2 0.008`` for W+).
    Not used when ranking samples (``scorable = False``).
    """

    scorable = False

    def __init__(self, param: Any, weight: float = 0.008, name: str = "l2") -> None:
        if not hasattr(param, "l2_to_init"):
            raise VecgenError(f"{type(param).__name__} has no latent to regularize (needs l2_to_init)")
        self.param, self.weight, self.name = param, float(weight), name

    def __call__(self, ctx: Context) -> Tensor:
        return self.param.l2_to_init()


def _mean_text(perceptor, texts: Sequence[str]) -> Tensor:
    """Unit mean embedding ``(D,)`` of one or more texts."""
    emb = perceptor.encode_text(list(texts)).detach()
    return F.normalize(emb.mean(0), dim=-1)


class DirectionalClipTerm:
    """StyleGAN-NADA's directional loss for one perceptor.

    ``dT = E_T(target) - E_T(source)`` (normalised), ``dI_b = E_I(x_b) -
    E_I(ref_b)`` per sample, loss ``= mean_b (1 - <dI_b, dT> / sqrt(|dI_b|^2 +
    floor^2))``. ``x`` is the render the engine hands in (``ctx.image``), ``ref``
    comes from ``reference()`` (same shape, e.g. the frozen generator's render
    of the same latents); no gradient flows into ``ref``. Images are resized
    whole to the perceptor's input (no cutouts: the two renders must be seen
    through the same window).
    """

    def __init__(self, perceptor, source: str | Sequence[str], target: str | Sequence[str],
                 reference: Callable[[], Tensor], weight: float = 1.0, name: str | None = None,
                 floor: float = DIRECTION_FLOOR) -> None:
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
            d = _mean_text(self.perceptor, self.target) - _mean_text(self.perceptor, self.source)
            if float(d.norm()) < 1e-6:
                raise VecgenError("--source and --target mean the same to this CLIP model; pick distinct texts")
            self._direction = F.normalize(d, dim=-1)
        return self._direction

    def __call__(self, ctx: Context) -> Tensor:
        d_text = self.text_direction()
        ref = self.reference()
        if ref.shape != ctx.image.shape:
            raise VecgenError(f"directional loss: reference {tuple(ref.shape)} and render "
                              f"{tuple(ctx.image.shape)} differ in shape")
        with torch.no_grad():
            e_ref = self.perceptor.encode_image(ref.detach())
        e_img = self.perceptor.encode_image(ctx.image)
        d_img = e_img - e_ref
        cos = (d_img @ d_text) / (d_img.pow(2).sum(-1) + self.floor ** 2).sqrt()
        return (1.0 - cos).mean()


def text_distance(perceptor, texts: Sequence[str], images: Tensor) -> Tensor:
    """Per-image global CLIP loss ``(B,)``: mean over ``texts`` of ``1 - cos``."""
    emb = perceptor.encode_text(list(texts)).detach()
    img = perceptor.encode_image(images)
    return (1.0 - img @ emb.t()).mean(-1)


def _clip_term_per_image(term: ClipTerm, views: Tensor, n_images: int) -> Tensor:
    """A ClipTerm's loss per image, ``views`` being ``(n_images * V, 3, s, s)`` grouped by image."""
    emb, weights, stops = term.targets()
    img = term.perceptor.encode_image(views.to(term.perceptor.device))
    dist = (1.0 - img @ emb.t()).reshape(n_images, -1, emb.shape[0]).mean(1)  # (N, P)
    cols = []
    for i, stop in enumerate(stops):
        d = dist[:, i]
        if stop is not None:
            d = d.clamp(min=stop) if weights[i] > 0 else d.clamp(max=stop)
        cols.append(weights[i] * d)
    return torch.stack(cols, 1).sum(1)


@torch.no_grad()
def score_images(terms: Sequence[Any], images: Tensor, cutouts=None,
                 generator: torch.Generator | None = None) -> Tensor:
    """Weighted objective value of each image of ``images`` ``(N, 3, H, W)`` -> ``(N,)``; lower is better.

    :class:`~vecgen.objective.ClipTerm` terms are evaluated batched, over
    ``cutouts(image)`` views when ``cutouts`` is given (FuseDream's augmented
    score: a sample must look right from several crops, which guards against
    adversarial picks) else over the resized image. Other terms are called
    per image with a one-image context; terms with ``scorable = False`` (such
    as :class:`LatentL2`) are skipped.
    """
    n = images.shape[0]
    out = torch.zeros(n, device=images.device)
    views = None
    for term in terms:
        if not getattr(term, "scorable", True) or term.weight == 0:
            continue
        if isinstance(term, ClipTerm):
            if views is None:
                views = cutouts(images, generator) if cutouts is not None else images
            out = out + term.weight * _clip_term_per_image(term, views, n).to(out.device)
        else:
            vals = [term(Context(images[i:i + 1], None)).reshape(()) for i in range(n)]
            out = out + term.weight * torch.stack(vals).to(out.device)
    return out
