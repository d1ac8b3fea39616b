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


class Term(Protocol):
    """A named, weighted loss. ``needs_views`` (optional, default False): the term reads
    ``ctx.views``, the augmented cutouts, so the objective must make them."""

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


class FnTerm:
    """Any ``fn(image) -> scalar`` as a named term (MSE to a target, TV, ...)."""

    def __init__(self, name: str, fn: Callable[[Tensor], Tensor], weight: float = 1.0) -> None:
        self.name, self.fn, self.weight = name, fn, weight

    def __call__(self, ctx: Context) -> Tensor:
        return self.fn(ctx.image)


class Objective:
    """Weighted sum of terms over augmented views of the render."""

    def __init__(self, terms: list[Term], cutouts: Callable[..., Tensor] | None = None) -> None:
        self.terms = terms
        self.cutouts = cutouts

    @property
    def needs_views(self) -> bool:
        return self.cutouts is not None and any(getattr(t, "needs_views", False) for t in self.terms)

    def __call__(self, image: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, dict[str, float]]:
        views = self.cutouts(image, generator) if self.cutouts is not None and self.needs_views else None
        ctx = Context(image, views)
        total = image.new_zeros(())
        values: dict[str, float] = {}
        for term in self.terms:
            v = term(ctx)
            values[term.name] = float(v.detach())
            total = total + term.weight * v
        values["total"] = float(total.detach())
        return total, values
