"""The options every optimizing verb shares, declared once (see :mod:`vecgen.config`).

A verb's config subclasses :class:`RunConfig`; a verb whose shared option has
another default redeclares it with :func:`vecgen.config.like` (the help and
bounds stay here). No torch here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vecgen.config import VerbConfig, option
from vecgen.options import LIMITS, MAX_SEED, VIEWS

#: The views' settings a verb may ask for (``auto`` = what the perceptors hint).
VIEW_CHOICES = ("auto", *VIEWS)


@dataclass(frozen=True)
class RunConfig(VerbConfig):
    """Steps, size, perceptors, views, seed, device, image prompts, snapshots, checkpoints, progress."""

    steps: int | None = option(200, "optimization steps", "int", minimum=1, maximum=LIMITS["steps"], section="main")
    size: Any = option(224, "W or WxH in pixels (max 4096 per side)", "size", section="main")
    clip: str = option(
        "auto", "auto, or MODEL[@PRETRAINED|@PATH][:WEIGHT],... e.g. ViT-B-32:1,RN50@openai:0.5", "clip", section="main"
    )
    cutouts: int = option(
        8,
        "augmented views per step (0 = the plain image)",
        "int",
        minimum=0,
        maximum=LIMITS["cutouts"],
        section="advanced",
    )
    views: str = option(
        "auto",
        "kind of views: crops inside the picture, or crops mixed with zoomed-out "
        "whole-picture views on its background, or crops mixed with 56 px thumbnails of the whole picture "
        "(lowres) (auto: zoom for the built-in mini models, lowres for ImageNet classifiers in draw, sketch "
        "and mesh, crops otherwise)",
        "choice",
        choices=VIEW_CHOICES,
        section="advanced",
    )
    seed: int = option(
        0,
        "random seed (same seed + machine + options = same bytes)",
        "int",
        minimum=0,
        maximum=MAX_SEED,
        section="main",
    )
    device: str | None = option("auto", "auto, cpu, cuda, cuda:N or mps", "device", section="advanced")
    image_prompt: Any = option(
        None,
        "image whose CLIP embedding is a target (repeatable)",
        "image",
        multiple=True,
        metavar="IMG[:W]",
        section="advanced",
    )
    snapshots: str | Path | None = option(None, "write numbered frames to DIR", "output", metavar="DIR")
    every: int = option(10, "snapshot every K steps", "int", minimum=1, maximum=LIMITS["every"])
    checkpoint: str | Path | None = option(None, "save resumable state here while running", "output", metavar="FILE")
    resume: str | Path | None = option(None, "resume from a checkpoint", "file", metavar="FILE")
    quiet: bool = option(False, "no progress bar", short="-q")

    def run_values(self, **runtime: Any) -> dict[str, Any]:
        """Every option, plus the Python-only ``runtime`` values, as :func:`vecgen.api._run.common` reads them."""
        return {**self.asdict(), **runtime}
