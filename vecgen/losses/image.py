"""Terms on the render or the parameterization itself: total variation, L2 to the starting latent."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from vecgen.errors import VecgenError
from vecgen.objective import Context


def total_variation(image: Tensor) -> Tensor:
    """Mean absolute difference of neighbouring pixels of ``(B, 3, H, W)``."""
    return (image[..., 1:, :] - image[..., :-1, :]).abs().mean() + (image[..., :, 1:] - image[..., :, :-1]).abs().mean()


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
        """``param.l2_to_init()``, or the value the step's render published (the render is not read).

        Shape:

        - returns: ``()``
        """
        if ctx.step is not None and "l2_to_init" in ctx.step.refs:  # published by the render of this step
            return ctx.step.refs["l2_to_init"]
        return self.param.l2_to_init()
