"""Terms for drawings a person can read (issue 25): a palette term and an ink (sparsity) term.

* :class:`PaletteTerm` -- mean squared distance of every stroke and fill colour to its nearest palette colour
  (a fixed palette, or ``k`` colours re-found by k-means from the drawing each step), as pixray's palette loss;
  the parameterization snaps the colours onto the palette at the end.
* :class:`InkTerm` -- mean difference of the render from its background: less ink, fewer and thinner marks.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from vecgen.objective import Context
from vecgen.params.palette import palette_distance, palette_for


class PaletteTerm:
    """``mean_i min_p |c_i - p|^2`` over the ``(N, 3)`` colours that ``colours()`` returns (with gradient)."""

    needs_views = False

    def __init__(
        self,
        colours: Callable[[], Tensor],
        palette: Tensor | None = None,
        k: int | None = None,
        weight: float = 1.0,
        name: str = "palette",
    ) -> None:
        if palette is None and not k:
            raise ValueError("PaletteTerm needs a palette or k")
        self.colours, self.palette, self.k = colours, palette, k
        self.weight, self.name = float(weight), name

    def __call__(self, ctx: Context) -> Tensor:
        """The palette distance of the current colours (the render is not read).

        Shape:

        - ``colours()``: ``(N, 3)`` RGB; the palette: ``(K, 3)``
        - returns: ``()``
        """
        c = self.colours()
        return palette_distance(c, palette_for(c, self.palette, self.k))


class InkTerm:
    """Mean over pixels of ``sum_c |render - background| / 3`` for ``(B, 3, H, W)`` renders: 0 on a blank
    canvas, 1 where every pixel is the background's opposite."""

    needs_views = False

    def __init__(self, background: tuple[float, float, float] | Tensor, weight: float = 1.0, name: str = "ink") -> None:
        self.background = torch.as_tensor(background, dtype=torch.float32).view(1, 3, 1, 1)
        self.weight, self.name = float(weight), name

    def __call__(self, ctx: Context) -> Tensor:
        """The ink of the render.

        Shape:

        - ``ctx.image``: ``(B, 3, H, W)`` (channels past the third are ignored)
        - returns: ``()``
        """
        image = ctx.image[:, :3]
        return (image - self.background.to(image)).abs().mean()
