"""Restart the weakest strokes once mid-run (LIVE-style) for ``draw`` (issue 25).

With 32 wide strokes and the ink term, the strokes the classifiers have no use for fade into pale
marks that hold no class evidence. Once, at :data:`REFRESH_AT` of the run (before the learning rate
drops at half), the ``share`` of strokes whose removal changes the picture least
(:func:`~vecgen.params.strokes.removal_effect`) start again from a fresh random layout's strokes in the
same slots, and the run goes on: they get a second chance to land where a classifier needs them.
Opt-in (``--refresh 0.25``): on issue 25's benchmark it moved the plain top-5 from 50 to 51 of 60 (docs/draw.md).
"""

from __future__ import annotations

from typing import Any, Callable

#: When the weakest strokes restart: this share of the run's steps done.
REFRESH_AT = 0.4
#: The fresh strokes come from the random layout of ``seed + FRESH_SEED`` (as measured in docs/draw.md).
FRESH_SEED = 7919 * 99


def refresh_step(steps: int) -> int:
    """The step after which the strokes restart (``0``: never, a run too short to leave them time)."""
    at = int(REFRESH_AT * steps)
    return at if 0 < at < steps else 0


def weakest(effect, share: float) -> list[int]:
    """Indices of the ``share`` (at least one) of paths with the lowest ``effect`` ``(N,)``."""
    k = max(1, round(share * len(effect)))
    return effect.argsort()[:k].tolist()


def refresh_callback(at: int, share: float, fresh: Callable[[], Any]) -> Callable:
    """A run callback ``f(step, param, values)``: after step ``at``, the :func:`weakest` ``share`` of the
    :class:`~vecgen.params.strokes.Strokes` ``param``'s paths take the points, width and colours of the same
    paths of ``fresh()`` (a new random layout with the same path sizes)."""
    import torch

    from vecgen.params.strokes import removal_effect

    def cb(step: int, param, values) -> None:
        if step == at:
            with torch.no_grad():
                effect = removal_effect(param.scene(), param.rasterizer, param.size)
            param.replace_paths_(weakest(effect, share), fresh())

    return cb
