"""Palettes for vector drawings (issue 25, as pixray's palette loss): a fixed list of colours, or ``k`` colours
found from the drawing itself; every stroke and fill colour is pulled towards its nearest palette colour while
drawing and snapped onto it at the end, so the SVG uses palette colours only.
"""

from __future__ import annotations

import torch
from torch import Tensor

from vecgen.options import parse_palette as _palette_text


def parse_palette(text: str) -> Tensor:
    """``"#000000,#ff8800"`` -> ``(K, 3)`` colours in ``[0, 1]`` (see :func:`vecgen.options.parse_palette`)."""
    return torch.tensor(_palette_text(text), dtype=torch.float32)


def nearest(colours: Tensor, palette: Tensor) -> Tensor:
    """``(N, 3)`` colours -> the nearest ``(N, 3)`` palette colours (Euclidean RGB)."""
    pal = palette.to(colours)
    return pal[torch.cdist(colours.detach(), pal).argmin(1)]


def palette_for(colours: Tensor, palette: Tensor | None, k: int | None, seed: int = 0) -> Tensor:
    """The palette in force: the fixed ``palette``, else ``k`` colours found by k-means over ``colours``
    ``(N, 3)`` (deterministic; 8-bit exact)."""
    if palette is not None:
        return palette.to(colours)
    if not k:
        raise ValueError("palette_for needs a palette or k")
    from vecgen.params.pixels import kmeans_palette

    return kmeans_palette(colours.detach(), int(k), iters=20, seed=seed)[0].to(colours)


def palette_distance(colours: Tensor, palette: Tensor) -> Tensor:
    """Mean squared RGB distance of ``(N, 3)`` colours to their nearest palette colour (differentiable)."""
    if colours.numel() == 0:
        return colours.new_zeros(())
    return (colours - nearest(colours, palette)).square().sum(1).mean()
