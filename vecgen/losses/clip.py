"""The global CLIP term: cosine distance of the augmented views to text and image targets.

Also :func:`score_images`, the same loss per image of a batch without grad
(FuseDream's ranking of random latents).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from vecgen.objective import Context
from vecgen.prompts import Prompt


def clamp_stops(dist: Tensor, weights: Tensor, stops: list[float | None]) -> Tensor:
    """Weighted prompt distances, summed over the prompts; a prompt's ``stop`` clamps its distance
    so it stops pulling (or pushing, for a negative weight) past it.

    Shape:

    - ``dist``: ``(..., P)``, ``P`` prompts; ``weights``: ``(P,)``; ``stops``: ``P`` floats or ``None``
    - returns: ``(...)``, e.g. ``()`` for ``dist`` ``(P,)``
    """
    cols = []
    for i, stop in enumerate(stops):
        d = dist[..., i]
        if stop is not None:
            d = d.clamp(min=stop) if weights[i] > 0 else d.clamp(max=stop)
        cols.append(weights[i] * d)
    return torch.stack(cols, -1).sum(-1)


@dataclass
class ImageTarget:
    """An image prompt: a ``(1, 3, H, W)`` tensor in ``[0, 1]`` with a weight."""

    image: Tensor
    weight: float = 1.0
    label: str = "image"


class ClipTerm:
    """Spherical-free cosine-distance loss of the views to text/image targets, one perceptor.

    loss = sum_prompts weight * mean_views(1 - cos); ``stop`` clamps a prompt's
    distance so it stops pulling (or pushing, for negative weights) past it.
    ``turn = (k, n)``: while optimizing, the term runs on the steps ``s`` with ``s % n == k`` only and is 0
    on the others (perceptors of an ensemble taking turns; outside a run, e.g. scoring, it always runs).
    """

    needs_views = True  # the objective makes cutouts only when a term asks for them

    def __init__(
        self,
        perceptor,
        prompts: list[Prompt],
        images: list[ImageTarget] | None = None,
        weight: float = 1.0,
        name: str | None = None,
        turn: tuple[int, int] | None = None,
    ) -> None:
        self.perceptor = perceptor
        self.prompts = prompts
        self.images = images or []
        self.weight = weight
        self.name = name or f"clip:{perceptor.name}"
        self.turn = turn
        self._targets: tuple[Tensor, Tensor, list[float | None]] | None = None

    def targets(self) -> tuple[Tensor, Tensor, list[float | None]]:
        """The target embeddings ``(T, D)`` (text prompts, then image prompts), their weights ``(T,)`` and stops."""
        if self._targets is None:
            parts, weights, stops = [], [], []
            if self.prompts:
                parts.append(self.perceptor.encode_text([p.text for p in self.prompts]))
                weights += [p.weight for p in self.prompts]
                stops += [p.stop for p in self.prompts]
            for t in self.images:
                with torch.no_grad():
                    parts.append(self.perceptor.encode_image(t.image.to(self.perceptor.device)))
                weights.append(t.weight)
                stops.append(None)
            emb = torch.cat(parts).detach()
            self._targets = (emb, torch.tensor(weights, device=emb.device), stops)
        return self._targets

    def __call__(self, ctx: Context) -> Tensor:
        """The loss over all views of the batch (their embeddings cached in ``ctx.cache`` per perceptor).

        Shape:

        - ``ctx.views``: ``(B * n, 3, S, S)``
        - returns: ``()``
        """
        step = ctx.step
        if self.turn is not None and step is not None and step.steps and step.step % self.turn[1] != self.turn[0]:
            return ctx.image.new_zeros(())  # another perceptor's turn: no forward, no backward
        emb, weights, stops = self.targets()
        key = ("embed", id(self.perceptor))
        if key not in ctx.cache:
            ctx.cache[key] = self.perceptor.encode_image(ctx.views)
        img = ctx.cache[key]
        return clamp_stops((1.0 - img @ emb.t()).mean(0), weights, stops)


def _clip_term_per_image(term: ClipTerm, views: Tensor, n_images: int) -> Tensor:
    """A ClipTerm's loss per image, ``views`` being ``(n_images * V, 3, s, s)`` grouped by image."""
    emb, weights, stops = term.targets()
    img = term.perceptor.encode_image(views.to(term.perceptor.device))
    dist = (1.0 - img @ emb.t()).reshape(n_images, -1, emb.shape[0]).mean(1)  # (N, P)
    return clamp_stops(dist, weights, stops)


@torch.no_grad()
def score_images(
    terms: Sequence[Any], images: Tensor, cutouts=None, generator: torch.Generator | None = None
) -> Tensor:
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
            vals = [term(Context(images[i : i + 1], None)).reshape(()) for i in range(n)]
            out = out + term.weight * torch.stack(vals).to(out.device)
    return out
