"""Procedural data: captioned vector scenes drawn with vecgen's own rasterizer."""
from vecgen.data.scenes import (
    COLOURS,
    POSITIONS,
    SHAPES,
    SIZES,
    STYLES,
    SceneDataset,
    caption_scene,
    make_scene,
    negatives,
    render_batch,
    sample_scene,
)

__all__ = ["COLOURS", "POSITIONS", "SHAPES", "SIZES", "STYLES", "SceneDataset", "caption_scene", "make_scene",
           "negatives", "render_batch", "sample_scene"]
