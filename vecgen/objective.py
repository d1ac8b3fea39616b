"""Objective = a sum of named, weighted loss terms (as in StyleGAN-NADA).

The engine calls ``objective(image, generator)`` and gets the total plus every
term's value, which it records per step. Objectives never know which
parameterization made the image.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Protocol

import torch
from torch import Tensor

from vecgen.augment import Cutouts
from vecgen.prompts import Prompt


class Term(Protocol):
    name: str
    weight: float

    def __call__(self, ctx: "Context") -> Tensor:
        """Unweighted scalar loss for this step."""
        ...


@dataclass
class Context:
    """What terms see: the render ``(B, 3, H, W)``, the augmented views, and a per-step cache."""

    image: Tensor
    views: Tensor | None
    cache: dict = field(default_factory=dict)


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
    """

    def __init__(self, perceptor, prompts: list[Prompt], images: list[ImageTarget] | None = None,
                 weight: float = 1.0, name: str | None = None) -> None:
        self.perceptor = perceptor
        self.prompts = prompts
        self.images = images or []
        self.weight = weight
        self.name = name or f"clip:{perceptor.name}"
        self._targets: tuple[Tensor, Tensor, list[float | None]] | None = None

    def targets(self) -> tuple[Tensor, Tensor, list[float | None]]:
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
        emb, weights, stops = self.targets()
        key = ("embed", id(self.perceptor))
        if key not in ctx.cache:
            ctx.cache[key] = self.perceptor.encode_image(ctx.views)
        img = ctx.cache[key]
        dist = (1.0 - img @ emb.t()).mean(0)  # (P,)
        terms = []
        for i, stop in enumerate(stops):
            d = dist[i]
            if stop is not None:
                d = d.clamp(min=stop) if weights[i] > 0 else d.clamp(max=stop)
            terms.append(weights[i] * d)
        return torch.stack(terms).sum()


class FnTerm:
    """Any ``fn(image) -> scalar`` as a named term (MSE to a target, TV, ...)."""

    def __init__(self, name: str, fn: Callable[[Tensor], Tensor], weight: float = 1.0) -> None:
        self.name, self.fn, self.weight = name, fn, weight

    def __call__(self, ctx: Context) -> Tensor:
        return self.fn(ctx.image)


def total_variation(image: Tensor) -> Tensor:
    """Mean absolute difference of neighbouring pixels of ``(B, 3, H, W)``."""
    return (image[..., 1:, :] - image[..., :-1, :]).abs().mean() + (image[..., :, 1:] - image[..., :, :-1]).abs().mean()


class Objective:
    """Weighted sum of terms over augmented views of the render."""

    def __init__(self, terms: list[Term], cutouts: Cutouts | None = None) -> None:
        self.terms = terms
        self.cutouts = cutouts

    @property
    def needs_views(self) -> bool:
        return self.cutouts is not None and any(isinstance(t, ClipTerm) for t in self.terms)

    def __call__(self, image: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, dict[str, float]]:
        views = self.cutouts(image, generator) if self.needs_views else None
        ctx = Context(image, views)
        total = image.new_zeros(())
        values: dict[str, float] = {}
        for term in self.terms:
            v = term(ctx)
            values[term.name] = float(v.detach())
            total = total + term.weight * v
        values["total"] = float(total.detach())
        return total, values
