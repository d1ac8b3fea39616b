"""The kit that makes vecgen's shipped mini models (``mini-vit``, ``mini-rn``).

Not needed to draw: vecgen loads the finished weights from
``vecgen/backends/perceptors/weights``. This kit is how they were made and how
they are checked:

- :mod:`vecgen.minis.scenes`: procedural captioned scenes (shapes drawn with
  vecgen's own rasterizer, captions from templates, hard-negative captions);
- :mod:`vecgen.minis.train`: ``python -m vecgen.minis.train`` trains a mini CLIP on them;
- :mod:`vecgen.minis.probes`: ``python -m vecgen.minis.probes`` measures attribute probes.

It sits above the backends and params layers (it uses the rasterizer, the CLIP
loader and the stroke parametrization); nothing below imports it.
"""

from vecgen.minis.captions import SceneDataset, caption_scene, make_scene, negatives
from vecgen.minis.scenes import COLOURS, POSITIONS, SHAPES, SIZES, STYLES, render_batch, sample_scene

__all__ = [
    "COLOURS",
    "POSITIONS",
    "SHAPES",
    "SIZES",
    "STYLES",
    "SceneDataset",
    "caption_scene",
    "make_scene",
    "negatives",
    "render_batch",
    "sample_scene",
]
