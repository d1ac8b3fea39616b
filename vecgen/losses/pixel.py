"""A pixel term: mean squared error of the render against a reference picture (vectorize's loss)."""

from __future__ import annotations

from torch import Tensor

from vecgen.errors import VecgenError
from vecgen.objective import Context


class PixelTerm:
    """``mean(w * (render - reference)^2)`` over ``(B, 3, H, W)``; ``pixel_weight``: optional ``(1, 1, H, W)``.

    The reference is a tensor given up front (no closure on the parameterization);
    a render of another shape is refused in one line.
    """

    needs_views = False

    def __init__(
        self, reference: Tensor, weight: float = 1.0, pixel_weight: Tensor | None = None, name: str = "pixel"
    ) -> None:
        self.reference = reference.detach()
        self.pixel_weight = None if pixel_weight is None else pixel_weight.detach()
        self.weight, self.name = float(weight), name

    def __call__(self, ctx: Context) -> Tensor:
        """The weighted mean squared error of the render.

        Shape:

        - ``ctx.image``: the reference's shape, e.g. ``(1, 3, H, W)``; a transparent vectorize target:
          ``(1, 3, H, 2W)``
        - returns: ``()``
        """
        image = ctx.image
        if image.shape != self.reference.shape:
            raise VecgenError(f"render {tuple(image.shape)} does not match the reference {tuple(self.reference.shape)}")
        d = (image - self.reference.to(image)).square()
        if self.pixel_weight is not None:
            d = d * self.pixel_weight.to(image)
        return d.mean()
