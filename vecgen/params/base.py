"""The parameterization protocol: what the engine loop drives.

At heart a parameterization is ``(params, render_fn)`` (as in aphantasia): the
engine only ever calls the methods below, and never knows which one it drives.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from torch import Tensor


@runtime_checkable
class Parameterization(Protocol):
    """Something the engine can optimize.

    ``render`` returns ``(B, 3, H, W)`` in ``[0, 1]``, differentiable w.r.t. the
    tensors handed out by ``param_groups``.
    """

    kind: str  # "vector" (exports SVG) or "raster" (exports PNG) or "mesh"

    def param_groups(self) -> list[dict[str, Any]]:
        """Torch optimizer groups, each ``{"params": [...], "lr": float, "name": str}``."""
        ...

    def render(self) -> Tensor:
        """Draw the current state: ``(B, 3, H, W)`` in ``[0, 1]``."""
        ...

    def project_(self) -> None:
        """Clamp/repair after an optimizer step (in place, no grad)."""
        ...

    # Optional: ``finalize()`` -- called once after the last step, before the result is
    # rendered and exported (pixel art snaps its colours to the palette there).

    def export(self, path: str | Path) -> None:
        """Write the natural file format (SVG for vector, PNG for raster)."""
        ...

    def state_dict(self) -> dict[str, Any]:
        ...

    def load_state_dict(self, state: dict[str, Any]) -> None:
        ...
