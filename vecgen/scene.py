"""A vector scene as plain tensors: what rasterizers consume and svg.py writes.

Every segment is stored as a cubic Bézier (lines and quadratics are exactly
elevated), so one code path renders, differentiates and exports everything.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor


@dataclass
class Path:
    """One SVG path.

    points: ``(3n+1, 2)`` cubic control points for an open path of ``n``
    segments, ``(3n, 2)`` for a closed one (the last segment returns to the
    first point). Pixel units, origin top-left.
    stroke_width: scalar tensor, full SVG width (not half).
    stroke / fill: ``(4,)`` straight (non-premultiplied) RGBA in ``[0, 1]`` or None.
    """

    points: Tensor
    closed: bool = False
    stroke_width: Tensor | float = 1.0
    stroke: Tensor | None = None
    fill: Tensor | None = None
    fill_rule: str = "nonzero"

    @property
    def num_segments(self) -> int:
        n = self.points.shape[0]
        return n // 3 if self.closed else (n - 1) // 3


@dataclass
class Scene:
    """An ordered list of paths on a ``width x height`` canvas.

    background: ``(3,)`` RGB the paths are composited onto (None = transparent).
    """

    width: int
    height: int
    paths: list[Path] = field(default_factory=list)
    background: Tensor | None = None


def line_to_cubic(p0: Tensor, p1: Tensor) -> Tensor:
    """Exact cubic for a straight line: ``(2,), (2,) -> (3, 2)`` (c1, c2, p1)."""
    return torch.stack([p0 + (p1 - p0) / 3.0, p0 + (p1 - p0) * (2.0 / 3.0), p1])


def quad_to_cubic(p0: Tensor, q: Tensor, p1: Tensor) -> Tensor:
    """Exact degree elevation of a quadratic Bézier: returns (c1, c2, p1)."""
    return torch.stack([p0 + (q - p0) * (2.0 / 3.0), p1 + (q - p1) * (2.0 / 3.0), p1])
