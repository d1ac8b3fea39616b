"""SVG out for :class:`~vecgen.scene.Scene`, and the reader's public names (:mod:`vecgen.svg_read`).

Writing builds the elements with svgwrite (its validation on) and serializes them
with ElementTree; it is deterministic (fixed decimals), so the same scene gives
the same bytes, in the same layout vecgen has always written.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import torch
from torch import Tensor

from vecgen.errors import VecgenError
from vecgen.io import one_line
from vecgen.scene import Path, Scene
from vecgen.svg_read import (  # noqa: F401
    MAX_SVG_BYTES,
    MAX_SVG_DEPTH,
    MAX_SVG_ELEMENTS,
    MAX_SVG_PATHS,
    MAX_SVG_POINTS,
    read_svg,
    svg_to_scene,
)

# ----------------------------------------------------------------------------- writing
SVG_NS = "http://www.w3.org/2000/svg"
VECGEN_NS = "https://vecgen.dev/ns"
# The attribute order vecgen has always written (svgwrite's get_xml sorts them by name).
_RANK = {
    k: i
    for i, k in enumerate(
        (
            "xmlns",
            "x",
            "y",
            "width",
            "height",
            "viewBox",
            "preserveAspectRatio",
            "id",
            "d",
            "fill",
            "fill-opacity",
            "fill-rule",
            "stroke",
            "stroke-opacity",
            "stroke-width",
            "stroke-linecap",
            "stroke-linejoin",
        )
    )
}


#: Decimals of path coordinates in written SVGs (pixel units). Measured with resvg against the engine's raster
#: on 226-236-path scenes (strokes, blobs, mixed) and the quick-start drawing: 1 decimal (at most 0.05 px off)
#: stays within 0.3 dB of 4 decimals and writes 14-23% fewer bytes; 0 decimals cost 6-11 dB.
COORD_DECIMALS = 1


def _num(v: float, decimals: int = 4) -> str:
    s = f"{v:.{decimals}f}".rstrip("0").rstrip(".") if decimals > 0 else f"{v:.0f}"
    return "0" if s in ("-0", "") else s


def _rgb(c: Tensor) -> tuple[str, str]:
    # one tolist() instead of a float() per channel: the same floats, far fewer tensor calls
    vals = c.detach().clamp(0, 1).tolist()
    if not all(math.isfinite(x) for x in vals):
        raise VecgenError(f"colour {vals} is not finite")
    r, g, b = (int(round(x * 255)) for x in vals[:3])
    return f"#{r:02x}{g:02x}{b:02x}", _num(vals[3], 3) if len(vals) > 3 else "1"


def _written_points(path: Path) -> list[list[float]]:
    """The points ``d`` lists: start, then 3 per segment (a closed path's last wraps to the first)."""
    p = path.points.detach().cpu().tolist()
    if not p:
        raise VecgenError("a path has no points")
    return [p[i % len(p)] for i in range(3 * path.num_segments + 1)]


def _d(points: list[list[float]], closed: bool, decimals: int = 4) -> str:
    parts = [f"M {_num(points[0][0], decimals)} {_num(points[0][1], decimals)}"]
    for j in range(1, len(points), 3):
        parts.append("C " + " ".join(f"{_num(x, decimals)} {_num(y, decimals)}" for x, y in points[j : j + 3]))
    if closed:
        parts.append("Z")
    return " ".join(parts)


def path_data(path: Path) -> str:
    """The ``d`` attribute of one path (all segments written as cubics)."""
    return _d(_written_points(path), path.closed)


def _short(err: BaseException, limit: int = 200) -> str:
    """One line, cut short: svgwrite quotes the refused value, and a path's d can be long."""
    text = one_line(err)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def element(tag: str, **attrs: str) -> ET.Element:
    """One SVG element built and validated by svgwrite (attribute names with ``_`` for ``-``).

    Returned as an ElementTree element in vecgen's attribute order. A value
    svgwrite refuses (NaN or infinite numbers, an unknown fill rule...) raises
    a one-line :class:`VecgenError`.
    """
    import svgwrite  # here, on the first write: importing vecgen and reading SVG stay fast

    try:
        el = svgwrite.base.BaseElement(debug=True, profile="full")
        el.elementname = tag
        el.update(attrs)
        xml = el.get_xml()
    except (TypeError, ValueError, KeyError) as e:  # svgwrite refuses with these
        raise VecgenError(_short(e)) from None
    items = sorted(xml.attrib.items(), key=lambda kv: _RANK.get(kv[0], len(_RANK)))  # stable: others last
    xml.attrib.clear()
    xml.attrib.update(items)
    xml.tail = "\n"  # one element per line
    return xml


#: Paint every written path shares, said once on the ``<g>`` that holds them (a path's own ``fill`` wins):
#: about 60 bytes a path, a quarter of a 32-stroke drawing's SVG (issue 25: <= 8 KB a drawing).
SHARED_PAINT = {"fill": "none", "stroke_linecap": "round", "stroke_linejoin": "round"}


def _path_element(path: Path, decimals: int = 4, pid: str | None = None, shared: bool = False) -> ET.Element:
    """One ``<path>``; ``shared``: leave out what :data:`SHARED_PAINT` says on the enclosing ``<g>``."""
    paint: dict[str, str] = {} if pid is None else {"id": pid}
    if path.fill is not None:
        fill, op = _rgb(path.fill)
        paint.update({"fill": fill, "fill_opacity": op, "fill_rule": path.fill_rule})
    elif not shared:
        paint["fill"] = "none"
    if path.stroke is not None:
        stroke, op = _rgb(path.stroke)
        sw = float(torch.as_tensor(path.stroke_width).detach())
        if sw < 0:  # svgwrite takes any number; SVG calls a negative width an error
            raise VecgenError(f"stroke width {_num(sw)} is negative")
        paint.update(
            {
                "stroke": stroke,
                "stroke_opacity": op,
                "stroke_width": _num(sw, max(decimals, 2)),
                **({} if shared else {"stroke_linecap": "round", "stroke_linejoin": "round"}),
            }
        )
    return element("path", d=_d(_written_points(path), path.closed, decimals), **paint)


def _metadata(metadata: dict[str, str]) -> ET.Element:
    """``<metadata>`` with one ``<vecgen:entry key=...>text</vecgen:entry>`` line per item.

    Built with ElementTree directly: svgwrite has no elements for foreign
    namespaces (its set_metadata takes ElementTree elements too). Escaping is
    ElementTree's. Text escapes ``& < >``, as saxutils.escape did. Keys: ordinary
    ones give the same bytes as before, but (a deliberate choice: one escaper for
    the whole file) a key with ``"`` is now ``key="a&quot;b"`` where
    saxutils.quoteattr wrote ``key='a"b'``, and a tab is ``&#09;`` (was ``&#9;``).
    Both parse back to the same key; newlines were and are ``&#10;``.
    """
    md = ET.Element("metadata")
    md.text = md.tail = "\n"
    for k, v in metadata.items():
        entry = ET.SubElement(md, "vecgen:entry", {"xmlns:vecgen": VECGEN_NS, "key": str(k)})
        entry.text, entry.tail = str(v), "\n"
    return md


def svg_document(
    width: int,
    height: int,
    children: list[ET.Element],
    metadata: dict[str, str] | None = None,
    *,
    view_box: str | None = None,
    **root_attrs: str,
) -> str:
    """A whole SVG file: ``<svg>`` (svgwrite-validated), ``<metadata>``, then ``children``, one per line.

    Every vecgen SVG (strokes, pixel art) is written here, so all carry the
    same metadata block and the same deterministic layout.
    """
    root = element(
        "svg",
        xmlns=SVG_NS,
        width=str(width),
        height=str(height),
        viewBox=view_box or f"0 0 {width} {height}",
        **root_attrs,
    )
    root.text, root.tail = "\n", None
    if metadata:
        root.append(_metadata(metadata))
    root.extend(children)
    # Written with explicit end tags, so an entry with empty text stays
    # "<vecgen:entry ...></vecgen:entry>"; shapes then get "/>". A "<" never
    # occurs unescaped in text or attribute values, so the replace is exact.
    text = ET.tostring(root, encoding="unicode", short_empty_elements=False)
    for tag in {c.tag for child in children for c in child.iter() if len(c) == 0}:
        text = text.replace(f"></{tag}>", "/>")
    return text + "\n"


def scene_to_svg(scene: Scene, metadata: dict[str, str] | None = None, *, decimals: int = COORD_DECIMALS) -> str:
    """Serialize ``scene`` to an SVG string; metadata goes into ``<metadata>`` (escaped).

    Paths get ids ``p0``, ``p1``... in paint order, inside one ``<g>`` that carries the paint they share
    (:data:`SHARED_PAINT`); colours are ``#rrggbb``; coordinates are written with
    ``decimals`` decimals (:data:`COORD_DECIMALS`). ``<metadata>`` also records
    ``paths`` (how many are written) and ``bytes`` (the size of the whole file,
    this entry included). A value svgwrite refuses (NaN or infinite numbers, an
    unknown fill rule), a non-finite colour or a negative stroke width raises a
    one-line :class:`VecgenError`.
    """
    if not 0 <= int(decimals) <= 6:
        raise VecgenError(f"SVG decimals must be 0-6, got {decimals}")
    w, h = scene.width, scene.height
    children = []
    if scene.background is not None:
        try:
            children.append(element("rect", width=str(w), height=str(h), fill=_rgb(scene.background)[0]))
        except VecgenError as e:
            raise VecgenError(f"cannot write SVG: background: {e}") from None
    group = element("g", **SHARED_PAINT)
    group.text = "\n"
    for i, path in enumerate(scene.paths):
        try:
            group.append(_path_element(path, int(decimals), f"p{i}", shared=True))
        except VecgenError as e:
            raise VecgenError(f"cannot write SVG: path {i}: {e}") from None
    if len(group):
        children.append(group)
    meta = {**(metadata or {}), "paths": str(len(scene.paths)), "bytes": "0"}
    while True:  # the size counts its own digits: at most a couple of rounds
        text = svg_document(w, h, children, meta)
        size = str(len(text.encode("utf-8")))
        if size == meta["bytes"]:
            return text
        meta["bytes"] = size


__all__ = [
    "COORD_DECIMALS",
    "MAX_SVG_BYTES",
    "MAX_SVG_DEPTH",
    "MAX_SVG_ELEMENTS",
    "MAX_SVG_PATHS",
    "MAX_SVG_POINTS",
    "element",
    "path_data",
    "read_svg",
    "scene_to_svg",
    "svg_document",
    "svg_to_scene",
]
