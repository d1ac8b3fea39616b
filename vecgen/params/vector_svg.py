"""The compact SVG a vectorized picture is written as: hex fills, relative path data on a rounded grid.

Coordinates are rounded to ``decimals`` in the output's pixels *before* the
relative offsets are taken, so the written shape is exactly the rounded one
(no drift along a path). Numbers are written shortest-first (``.5``, ``-3``, no
space before a minus). The root and ``<metadata>`` are :func:`vecgen.svg.svg_document`'s.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import torch

from vecgen.errors import VecgenError
from vecgen.scene import Scene
from vecgen.svg import svg_document


def _num(v: float, decimals: int) -> str:
    s = f"{v:.{decimals}f}"
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    if s in ("-0", ""):
        return "0"
    if s.startswith("0."):
        return s[1:]
    if s.startswith("-0."):
        return "-" + s[2:]
    return s


def _join(nums: list[str]) -> str:
    out = nums[0]
    for prev, n in zip(nums, nums[1:]):
        sep = "" if n.startswith("-") or (n.startswith(".") and "." in prev) else " "
        out += sep + n
    return out


def hex_colour(rgb: list[float]) -> str:
    """``[r, g, b]`` in ``[0, 1]`` -> ``#rrggbb`` (``#rgb`` where that is the same colour)."""
    if not all(math.isfinite(x) for x in rgb):
        raise VecgenError(f"colour {rgb} is not finite")
    h = "".join(f"{int(round(min(max(x, 0.0), 1.0) * 255)):02x}" for x in rgb[:3])
    return "#" + h[0] + h[2] + h[4] if h[0] == h[1] and h[2] == h[3] and h[4] == h[5] else "#" + h


def compact_d(points: list[list[float]], decimals: int) -> str:
    """Closed cubic control points ``(3n, 2)`` (output pixels) -> ``M x y c ... z`` (relative, rounded)."""
    q = 10**decimals
    r = [[round(x * q), round(y * q)] for x, y in points]  # integers on the grid: exact differences
    r.append(r[0])
    first = _join([_num(r[0][0] / q, decimals), _num(r[0][1] / q, decimals)])
    parts = [f"M{first}c"]
    nums: list[str] = []
    for j in range(1, len(r), 3):
        x0, y0 = r[j - 1]
        for x, y in r[j : j + 3]:
            nums += [_num((x - x0) / q, decimals), _num((y - y0) / q, decimals)]
    parts.append(_join(nums) + "z")
    return "".join(parts)


def compact_svg(
    scene: Scene, out_size: tuple[int, int], metadata: dict[str, str] | None = None, *, decimals: int = 0
) -> str:
    """``scene`` (filled closed paths on its own canvas) as an SVG of ``out_size = (W, H)``."""
    w, h = out_size
    sx, sy = w / scene.width, h / scene.height
    children = []
    if scene.background is not None:
        el = ET.Element("rect", {"width": str(w), "height": str(h), "fill": hex_colour(scene.background.tolist())})
        el.tail = "\n"
        children.append(el)
    for i, p in enumerate(scene.paths):
        pts = (p.points.detach().cpu().double() * torch.tensor([sx, sy], dtype=torch.float64)).tolist()
        if not all(math.isfinite(v) for xy in pts for v in xy):
            raise VecgenError(f"cannot write SVG: path {i} has a non-finite point")
        fill = hex_colour(p.fill.detach().cpu().tolist()) if p.fill is not None else "none"
        el = ET.Element("path", {"fill": fill, "d": compact_d(pts, decimals)})
        el.tail = "\n"
        children.append(el)
    return svg_document(w, h, children, metadata)
