"""``render_svg``: an SVG file through vecgen's own rasterizer (what the optimizer saw)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from vecgen.options import parse_size


def render_svg(path: str | Path, size: Any = None, rasterizer: str = "native"):
    """Rasterize an SVG file with vecgen's own rasterizer -> PIL RGB (on its background, or white)."""
    import torch

    from vecgen.backends.raster import composite, get_rasterizer
    from vecgen.io import tensor_to_pil
    from vecgen.svg import read_svg

    scene = read_svg(path)
    wh = parse_size(size) if size is not None else parse_size((scene.width, scene.height))
    with torch.no_grad():
        rgba = get_rasterizer(rasterizer).render(scene, wh)
        bg = scene.background if scene.background is not None else torch.ones(3)
        return tensor_to_pil(composite(rgba, bg))
