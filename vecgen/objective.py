"""Objective = a sum of named, weighted loss terms (as in StyleGAN-NADA).

The engine calls ``objective(image, step)`` with the render and the
:class:`~vecgen.params.base.StepContext` of the step, and gets the total plus
every term's value, which it records per step. Objectives never know which
parameterization made the image: what a term needs besides the render (a
reference render, a content batch) comes through the step context's ``refs``.

Chunked backward is a capability of the objective: a term that is a
:class:`ChunkedTerm` hands over its differentiable input and a way to compute
its loss piece by piece; the objective runs each piece's backward into a
detached copy of the input and carries the summed gradient back through the
input, so only one piece's activations are alive at a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Callable, Protocol, runtime_checkable

import torch
from torch import Tensor

from vecgen.params.base import StepContext


class Term(Protocol):
    """A named, weighted loss. ``needs_views`` (optional, default False): the term reads
    ``ctx.views``, the augmented cutouts, so the objective must make them."""

    name: str
    weight: float

    def __call__(self, ctx: "Context") -> Tensor:
        """Unweighted scalar loss for this step.

        Shape:

        - ``ctx.image``: ``(B, 3, H, W)``; ``ctx.views``: ``(B * n, 3, S, S)`` (see :class:`Context`)
        - returns: ``()``
        """
        ...


@dataclass
class Chunks:
    """A chunked term's work for one step.

    ``inputs``: the differentiable tensor the pieces read (e.g. the render
    ``(B, 3, H, W)`` the patch terms crop); ``pieces(leaf)``: yields scalar
    losses over a detached copy ``leaf`` of ``inputs`` (same shape), whose sum
    is the term's unweighted value. A piece should read only what it needs of
    ``leaf`` through ops whose backward is its own size (the patch terms sample
    each chunk's crops from the render): a slice of a big tensor backpropagates
    a gradient of the big tensor's size per piece (with 64 crops of 256 px, 50 MB
    zero-filled 16 times a step: a fifth of the step).
    """

    inputs: Tensor
    pieces: Callable[[Tensor], Iterator[Tensor]]


@runtime_checkable
class ChunkedTerm(Protocol):
    """Optional term capability: ``chunks(ctx)`` -> :class:`Chunks`, evaluated by the objective one piece
    (one piece's backward) at a time."""

    name: str
    weight: float

    def chunks(self, ctx: "Context") -> Chunks: ...


@dataclass
class Context:
    """What terms see: the render ``(B, 3, H, W)``, the augmented views, a per-step cache, and the step.

    ``views``: ``(B * n, 3, S, S)``, each render's ``n`` cutouts together (see
    :class:`~vecgen.augment.Cutouts`), or ``None`` when no term reads them.

    ``step``: the engine's :class:`~vecgen.params.base.StepContext` (``None`` when a term is
    called outside a run, e.g. to score images); its ``refs`` hold the step's reference tensors.
    """

    image: Tensor
    views: Tensor | None
    cache: dict = field(default_factory=dict)
    step: StepContext | None = None

    @property
    def generator(self) -> torch.Generator | None:
        """The run's random generator (``None`` outside a run: then the global RNG is used)."""
        return None if self.step is None else self.step.generator

    def ref(self, name: str) -> Tensor:
        """The step's reference tensor ``name`` (see :class:`~vecgen.params.base.StepContext`).

        Shape:

        - returns: whatever the parameterization published under ``name``, e.g. ``"reference"``
          ``(B, 3, H, W)``, ``"content"`` ``(B, 3, h, w)``, ``"l2_to_init"`` ``()``
        """
        if self.step is None:
            return StepContext(0, 0).ref(name)  # its one-line error
        return self.step.ref(name)


class FnTerm:
    """Any ``fn(image) -> scalar`` as a named term (MSE to a target, TV, ...)."""

    def __init__(self, name: str, fn: Callable[[Tensor], Tensor], weight: float = 1.0) -> None:
        self.name, self.fn, self.weight = name, fn, weight

    def __call__(self, ctx: Context) -> Tensor:
        """``fn`` of the render.

        Shape:

        - ``ctx.image``: ``(B, 3, H, W)``
        - returns: what ``fn`` returns, a scalar ``()`` for a term
        """
        return self.fn(ctx.image)


def chunked_value(chunks: Chunks) -> Tensor:
    """The value of a chunked term, each piece's backward run here (when gradients are on).

    Returns a scalar whose value is the sum of the pieces and whose gradient,
    flowing back through ``chunks.inputs``, is the summed gradient of the
    pieces: the same value and gradient as one pass, one piece's activations at
    a time, no recomputation.

    Shape:

    - ``chunks.inputs``: any shape, e.g. the render ``(B, 3, H, W)``; each piece: ``()``
    - returns: ``()``
    """
    views = chunks.inputs
    grad_on = torch.is_grad_enabled() and views.requires_grad
    leaf = views.detach().requires_grad_(grad_on)
    total = views.new_zeros(())
    for loss in chunks.pieces(leaf):
        if grad_on:
            loss.backward()
        total = total + loss.detach()
    if not grad_on or leaf.grad is None:
        return total
    g = leaf.grad
    return total + (views * g).sum() - (views.detach() * g).sum()  # value: total; gradient: g through views


class Objective:
    """Weighted sum of terms over augmented views of the render."""

    def __init__(self, terms: list[Term], cutouts: Callable[..., Tensor] | None = None) -> None:
        self.terms = terms
        self.cutouts = cutouts

    @property
    def needs_views(self) -> bool:
        return self.cutouts is not None and any(getattr(t, "needs_views", False) for t in self.terms)

    @property
    def chunked(self) -> bool:
        """Whether any term runs its backward in pieces (see :func:`chunked_value`)."""
        return any(isinstance(t, ChunkedTerm) for t in self.terms)

    def __call__(
        self, image: Tensor, step: StepContext | torch.Generator | None = None
    ) -> tuple[Tensor, dict[str, float]]:
        """``(total, values)`` of the render ``(B, 3, H, W)`` at ``step`` (a bare generator: a step context
        holding only it)."""
        if not isinstance(step, StepContext):
            step = StepContext(0, 0, step)
        views = self.cutouts(image, step.generator) if self.cutouts is not None and self.needs_views else None
        ctx = Context(image, views, step=step)
        total = image.new_zeros(())
        values: dict[str, float] = {}
        for term in self.terms:
            v = chunked_value(term.chunks(ctx)) if isinstance(term, ChunkedTerm) else term(ctx)
            values[term.name] = float(v.detach())
            total = total + term.weight * v
        values["total"] = float(total.detach())
        return total, values
