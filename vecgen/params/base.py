"""The parameterization protocol: what the engine loop drives, and the step context it hands over.

At heart a parameterization is ``(params, render_fn)`` (as in aphantasia): the
engine only ever calls the methods below, and never knows which one it drives.
Besides the required :class:`Parameterization` methods there are three optional
capabilities, each a protocol of its own that the engine and the runner test
with ``isinstance`` (a parameterization without one simply lacks it):
:class:`StepAware` (an end-of-step hook), :class:`Finalizes` (a last touch
before the result is rendered) and :class:`VectorExport` (an SVG of the result).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from vecgen.errors import VecgenError

if TYPE_CHECKING:  # torch-free at import: the CLI's parser and the verb registry load without it
    import torch
    from torch import Tensor


@dataclass
class StepContext:
    """What the engine tells a parameterization and the loss terms about the step being taken.

    ``step``: 0-based index of the step (the steps done before it); ``steps``:
    the run's length; ``generator``: the run's seeded random generator (views,
    patch crops: every draw of the objective comes from it, so a run repeats
    and resumes exactly). ``refs``: reference tensors of this step that the
    parameterization publishes in :meth:`Parameterization.render` for the terms
    (e.g. ``"reference"``, the frozen generator's render of the same latents,
    ``(B, 3, H, W)``; ``"content"``, the content batch of a style network), so
    terms never reach into the parameterization.
    """

    step: int
    steps: int
    generator: torch.Generator | None = None
    refs: dict[str, Tensor] = field(default_factory=dict)

    def ref(self, name: str) -> Tensor:
        """The reference tensor ``name`` published this step; a one-line error when there is none.

        Shape:

        - returns: as published, e.g. ``"reference"`` ``(B, 3, H, W)``, ``"content"`` ``(B, 3, h, w)``,
          ``"l2_to_init"`` ``()``
        """
        t = self.refs.get(name)
        if t is None:
            raise VecgenError(
                f"no {name!r} reference this step: the parameterization does not publish one "
                f"(it renders it in render(ctx))"
            )
        return t


@runtime_checkable
class Parameterization(Protocol):
    """Something the engine can optimize.

    ``render`` returns ``(B, 3, H, W)`` in ``[0, 1]``, differentiable w.r.t. the
    tensors handed out by ``param_groups``.
    """

    kind: str  # "vector" (exports SVG) or "raster" (exports PNG) or "mesh": descriptive only

    def param_groups(self) -> list[dict[str, Any]]:
        """Torch optimizer groups, each ``{"params": [...], "lr": float, "name": str}``."""
        ...

    def render(self, ctx: StepContext | None = None) -> Tensor:
        """Draw the current state: ``(B, 3, H, W)`` in ``[0, 1]``.

        ``ctx``: the step being taken (the engine always passes one; ``None``:
        outside a run, the state as it is). A parameterization with reference
        tensors for the terms puts them in ``ctx.refs`` here.
        """
        ...

    def project_(self) -> None:
        """Clamp/repair after an optimizer step (in place, no grad) -- nothing else."""
        ...

    def export(self, path: str | Path) -> None:
        """Write the natural file format (SVG for vector, PNG for raster)."""
        ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


@runtime_checkable
class StepAware(Protocol):
    """Optional: ``end_step(ctx)`` is called by the engine once after each completed step
    (after :meth:`Parameterization.project_`), e.g. to move on to the next step's cameras or data batch."""

    def end_step(self, ctx: StepContext) -> None: ...


@runtime_checkable
class Finalizes(Protocol):
    """Optional: ``finalize()`` is called once after the last step, before the result is rendered and
    exported (pixel art snaps its colours to the palette there; strokes drop what paints nothing)."""

    def finalize(self) -> None: ...


@runtime_checkable
class VectorExport(Protocol):
    """Optional: the result is also an SVG document (``svg(metadata)`` -> text); the runner stores it."""

    def svg(self, metadata: dict[str, str] | None = None) -> str: ...
