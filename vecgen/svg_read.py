"""SVG in: a safe reader of SVG files into :class:`~vecgen.scene.Scene` (the writer is :mod:`vecgen.svg`).

Reading uses defusedxml (no entity expansion, no external entities, no DTDs) and
accepts the subset vecgen writes plus common shapes: ``path`` (M L H V C S Q T Z,
absolute and relative), ``rect``, ``circle``, ``ellipse``, ``line``,
``polyline``, ``polygon``, nested ``g`` with inherited paint and transforms.

The reader refuses, in one line, files over the ``MAX_SVG_*`` limits below (the
files vecgen writes are far inside them: a drawing has hundreds of paths, a
256x256 pixel-art grid 65,536) and any number that is not finite (``NaN``,
``inf``, ``1e999``), in attributes, path data, transforms, ``viewBox``, or after
the transforms.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Iterator
from pathlib import Path as FsPath
from typing import Any

import torch

from vecgen.errors import VecgenError
from vecgen.scene import Path, Scene

MAX_SVG_BYTES = 50 * 1024 * 1024
MAX_SVG_DEPTH = 256  # levels of nested elements, <svg> being 1: deeper files are refused while parsing
MAX_SVG_ELEMENTS = 1_000_000  # elements of any kind, counted while parsing
MAX_SVG_PATHS = 100_000  # paths of the scene (each subpath of a d is one)
MAX_SVG_POINTS = 2_000_000  # cubic control points of the scene, all paths together
_KAPPA = 0.5522847498  # cubic approximation of a quarter circle

_NAMED = {
    "black": (0, 0, 0),
    "white": (255, 255, 255),
    "red": (255, 0, 0),
    "green": (0, 128, 0),
    "lime": (0, 255, 0),
    "blue": (0, 0, 255),
    "yellow": (255, 255, 0),
    "cyan": (0, 255, 255),
    "aqua": (0, 255, 255),
    "magenta": (255, 0, 255),
    "fuchsia": (255, 0, 255),
    "gray": (128, 128, 128),
    "grey": (128, 128, 128),
    "silver": (192, 192, 192),
    "maroon": (128, 0, 0),
    "olive": (128, 128, 0),
    "purple": (128, 0, 128),
    "teal": (0, 128, 128),
    "navy": (0, 0, 128),
    "orange": (255, 165, 0),
    "pink": (255, 192, 203),
    "brown": (165, 42, 42),
}


# ----------------------------------------------------------------------------- reading
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def _finite(x: float, what: str, text: str) -> float:
    if not math.isfinite(x):
        raise VecgenError(f"bad SVG number for {what}: {text!r} (not finite)")
    return x


def _parse_color(value: str | None) -> tuple[float, float, float] | None:
    if value is None:
        return None
    v = value.strip().lower()
    if v in ("none", "transparent"):
        return None
    if v.startswith("#"):
        hx = v[1:]
        if len(hx) == 3:
            hx = "".join(ch * 2 for ch in hx)
        if len(hx) != 6 or not re.fullmatch(r"[0-9a-f]{6}", hx):
            raise VecgenError(f"bad SVG colour {value!r}")
        return tuple(int(hx[i : i + 2], 16) / 255 for i in (0, 2, 4))  # type: ignore[return-value]
    m = re.fullmatch(r"rgb\(\s*([\d.]+)(%?)\s*,\s*([\d.]+)(%?)\s*,\s*([\d.]+)(%?)\s*\)", v)
    if m:
        try:
            vals = [float(m.group(k)) / (100 if m.group(k + 1) else 255) for k in (1, 3, 5)]
        except ValueError:  # "1.2.3" matches [\d.]+
            raise VecgenError(f"bad SVG colour {value!r}") from None
        return tuple(min(1.0, x) for x in vals)  # type: ignore[return-value]
    if v in _NAMED:
        return tuple(x / 255 for x in _NAMED[v])  # type: ignore[return-value]
    raise VecgenError(f"unsupported SVG colour {value!r}")


def _float(value: str | None, default: float, what: str, unit: bool = False) -> float:
    """An attribute's number (``px``/``pt`` ignored; NaN and infinities refused); ``unit``: clamped to [0, 1]."""
    if value is None:
        return default
    try:
        x = _finite(float(re.sub(r"(px|pt)$", "", value.strip())), what, value)
    except ValueError:
        raise VecgenError(f"bad SVG number for {what}: {value!r}") from None
    return min(1.0, max(0.0, x)) if unit else x


def _view_box(value: str | None) -> list[float] | None:
    """``viewBox`` -> ``[x, y, w, h]`` (None when absent or empty); anything but 4 finite numbers is refused."""
    parts = re.split(r"[\s,]+", (value or "").strip())
    if parts == [""]:
        return None
    try:
        vb = [float(t) for t in parts]
    except ValueError:
        vb = []
    if len(vb) != 4 or not all(map(math.isfinite, vb)):
        raise VecgenError(f"bad SVG viewBox {value!r}: expected 4 finite numbers (min-x min-y width height)")
    return vb


_TOKEN = re.compile(r"[MmLlHhVvCcSsQqTtZzAa]|[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def _path_error(d: str, i: int, what: str = "malformed SVG path data") -> VecgenError:
    """``what`` at token ``i`` of ``d``, quoting the file's own text from three tokens before to two after.

    The tokens' places are found again only here, so parsing keeps its plain token list.
    """
    spans = [m.span() for j, m in zip(range(i + 3), _TOKEN.finditer(d)) if j >= i - 3]
    k = min(i, 3)  # token i among the spans; past them, the data ended
    pos = spans[k][0] if k < len(spans) else len(d)
    text = " ".join(d[spans[0][0] if spans else pos : spans[-1][1] if spans else pos].split())
    where = f"character {pos}" if k < len(spans) else "the end"
    return VecgenError(f"{what} near {text if len(text) <= 60 else text[:57] + '...'!r} (at {where} of the path data)")


def _parse_d(d: str) -> list[tuple[list[tuple[float, float]], bool]]:
    """Path data -> subpaths as cubic control-point lists (3n+1 points) and closed flags."""
    tokens = _TOKEN.findall(d)
    subs: list[tuple[list[tuple[float, float]], bool]] = []
    pts: list[tuple[float, float]] = []
    cur = (0.0, 0.0)
    start = cur
    last_ctrl = None
    cmd = None
    i = 0
    total = 0  # points in finished subpaths

    def nums(k: int) -> list[float]:
        nonlocal i
        chunk = tokens[i : i + k]
        if len(chunk) < k or any(t.isalpha() for t in chunk):
            bad = next((j for j, t in enumerate(chunk) if t.isalpha()), len(chunk))
            raise _path_error(d, i + bad)
        vals = [float(t) for t in chunk]
        if not math.isfinite(sum(vals)):  # fast test; a sum of huge finite numbers may overflow too
            for j, x in enumerate(vals):
                if not math.isfinite(x):
                    raise _path_error(d, i + j, f"number {chunk[j]} out of range in SVG path data")
        i += k
        return vals

    def line(p):
        nonlocal cur
        a = cur
        pts.extend(
            [
                (a[0] + (p[0] - a[0]) / 3, a[1] + (p[1] - a[1]) / 3),
                (a[0] + (p[0] - a[0]) * 2 / 3, a[1] + (p[1] - a[1]) * 2 / 3),
                p,
            ]
        )
        cur = p

    def flush(closed: bool):
        nonlocal pts, total
        if len(pts) >= (3 if closed else 4):
            subs.append((pts, closed))
            total += len(pts)
        pts = []

    while i < len(tokens):
        if total + len(pts) > MAX_SVG_POINTS:
            raise VecgenError(f"SVG path has more than {MAX_SVG_POINTS:,} control points (vecgen's limit)")
        tok = tokens[i]
        if tok.isalpha():
            cmd = tok
            i += 1
        elif cmd is None:
            raise _path_error(d, i, "malformed SVG path data: numbers without a command")
        rel = cmd.islower()
        c = cmd.upper()
        ox, oy = cur if rel else (0.0, 0.0)
        if c == "M":
            x, y = nums(2)
            flush(False)
            cur = (ox + x, oy + y)
            start = cur
            pts = [cur]
            cmd = "l" if rel else "L"  # implicit lineto after moveto
            last_ctrl = None
        elif c == "Z":
            if pts and (abs(cur[0] - start[0]) > 1e-9 or abs(cur[1] - start[1]) > 1e-9):
                line(start)
            if len(pts) >= 4:
                pts = pts[:-1]  # closed paths do not repeat the first point
                if len(pts) % 3 == 0:
                    flush(True)
                else:
                    pts = []
            cur = start
            last_ctrl = None
            cmd = None
        elif c in "LHV":
            if not pts:
                pts = [cur]
            if c == "L":
                x, y = nums(2)
                p = (ox + x, oy + y)
            elif c == "H":
                (x,) = nums(1)
                p = ((cur[0] if rel else 0.0) + x, cur[1])
            else:
                (y,) = nums(1)
                p = (cur[0], (cur[1] if rel else 0.0) + y)
            line(p)
            last_ctrl = None
        elif c in "CS":
            if not pts:
                pts = [cur]
            if c == "C":
                v = nums(6)
                c1 = (ox + v[0], oy + v[1])
                c2, p = (ox + v[2], oy + v[3]), (ox + v[4], oy + v[5])
            else:
                v = nums(4)
                c1 = (2 * cur[0] - last_ctrl[0], 2 * cur[1] - last_ctrl[1]) if last_ctrl else cur
                c2, p = (ox + v[0], oy + v[1]), (ox + v[2], oy + v[3])
            pts.extend([c1, c2, p])
            cur, last_ctrl = p, c2
        elif c in "QT":
            if not pts:
                pts = [cur]
            if c == "Q":
                v = nums(4)
                q, p = (ox + v[0], oy + v[1]), (ox + v[2], oy + v[3])
            else:
                v = nums(2)
                q = (2 * cur[0] - last_ctrl[0], 2 * cur[1] - last_ctrl[1]) if last_ctrl else cur
                p = (ox + v[0], oy + v[1])
            a = cur
            pts.extend(
                [
                    (a[0] + 2 / 3 * (q[0] - a[0]), a[1] + 2 / 3 * (q[1] - a[1])),
                    (p[0] + 2 / 3 * (q[0] - p[0]), p[1] + 2 / 3 * (q[1] - p[1])),
                    p,
                ]
            )
            cur, last_ctrl = p, q
        elif c == "A":
            raise VecgenError("SVG arc commands (A) are not supported; convert arcs to curves first")
        else:
            raise VecgenError(f"unsupported SVG path command {cmd!r}")
    flush(False)
    return subs


def _parse_transform(value: str | None) -> list[float]:
    """SVG transform list -> affine ``[a, b, c, d, e, f]``."""
    m = [1.0, 0.0, 0.0, 1.0, 0.0, 0.0]
    if not value:
        return m
    for name, args in re.findall(r"(\w+)\s*\(([^)]*)\)", value):
        v = [_finite(float(x), "transform", f"{name}({args})") for x in _NUMBER.findall(args)]
        if name == "matrix" and len(v) == 6:
            t = v
        elif name == "translate" and v:
            t = [1, 0, 0, 1, v[0], v[1] if len(v) > 1 else 0.0]
        elif name == "scale" and v:
            t = [v[0], 0, 0, v[1] if len(v) > 1 else v[0], 0, 0]
        elif name == "rotate" and v:
            r = math.radians(v[0])
            cx, cy = (v[1], v[2]) if len(v) == 3 else (0.0, 0.0)
            co, si = math.cos(r), math.sin(r)
            t = [co, si, -si, co, cx - co * cx + si * cy, cy - si * cx - co * cy]
        else:
            raise VecgenError(f"unsupported SVG transform {name}({args})")
        m = _compose(m, t)
    return m


def _compose(m: list[float], t: list[float]) -> list[float]:
    a, b, c, d, e, f = m
    a2, b2, c2, d2, e2, f2 = t
    return [
        a * a2 + c * b2,
        b * a2 + d * b2,
        a * c2 + c * d2,
        b * c2 + d * d2,
        a * e2 + c * f2 + e,
        b * e2 + d * f2 + f,
    ]


def _style(el, inherited: dict[str, str]) -> dict[str, str]:
    st = dict(inherited)
    for key in ("fill", "stroke", "stroke-width", "fill-opacity", "stroke-opacity", "opacity", "fill-rule"):
        if el.get(key) is not None:
            st[key] = el.get(key)
    for decl in (el.get("style") or "").split(";"):
        if ":" in decl:
            k, v = decl.split(":", 1)
            st[k.strip()] = v.strip()
    if "opacity" in el.attrib:  # group opacity approximated by multiplying into paints
        op = _float(el.get("opacity"), 1.0, "opacity", unit=True)
        st["_opacity"] = str(float(inherited.get("_opacity", "1")) * op)
    return st


def _geometry(tag: str, *values: float) -> None:  # e.g. x + width of two huge numbers
    if not all(map(math.isfinite, values)):
        raise VecgenError(f"<{tag}> coordinates are out of range")


def _shape_subpaths(tag: str, el) -> list[tuple[list[tuple[float, float]], bool]]:
    g = lambda k, dflt=0.0: _float(el.get(k), dflt, k)  # noqa: E731
    if tag == "path":
        return _parse_d(el.get("d") or "")
    if tag == "rect":
        x, y, w, h = g("x"), g("y"), g("width"), g("height")
        if w <= 0 or h <= 0:
            return []
        _geometry(tag, x + w, y + h)
        return _parse_d(f"M {x} {y} H {x + w} V {y + h} H {x} Z")
    if tag in ("circle", "ellipse"):
        cx, cy = g("cx"), g("cy")
        rx, ry = (g("r"), g("r")) if tag == "circle" else (g("rx"), g("ry"))
        if rx <= 0 or ry <= 0:
            return []
        kx, ky = rx * _KAPPA, ry * _KAPPA
        _geometry(tag, cx + rx, cx - rx, cy + ry, cy - ry)
        d = (
            f"M {cx + rx} {cy} C {cx + rx} {cy + ky} {cx + kx} {cy + ry} {cx} {cy + ry} "
            f"C {cx - kx} {cy + ry} {cx - rx} {cy + ky} {cx - rx} {cy} "
            f"C {cx - rx} {cy - ky} {cx - kx} {cy - ry} {cx} {cy - ry} "
            f"C {cx + kx} {cy - ry} {cx + rx} {cy - ky} {cx + rx} {cy} Z"
        )
        return _parse_d(d)
    if tag == "line":
        return _parse_d(f"M {g('x1')} {g('y1')} L {g('x2')} {g('y2')}")
    if tag in ("polyline", "polygon"):
        v = _NUMBER.findall(el.get("points") or "")
        for t in v:
            _finite(float(t), f"<{tag}> points", t)
        if len(v) < 4:
            return []
        if len(v) % 2:
            raise VecgenError(f"<{tag}> points has an odd number of coordinates ({len(v)})")
        d = "M " + " ".join(v[:2]) + " L " + " ".join(v[2:]) + (" Z" if tag == "polygon" else "")
        return _parse_d(d)
    return []


def svg_to_scene(text: str, device: str | torch.device = "cpu") -> Scene:
    """Parse SVG text safely into a Scene (paths become tensors on ``device``); limits in the module docstring."""
    from defusedxml import ElementTree as SafeET
    from defusedxml.common import DefusedXmlException

    if len(text.encode("utf-8", "ignore")) > MAX_SVG_BYTES:
        raise VecgenError(f"SVG is larger than {MAX_SVG_BYTES // 2**20} MB")
    try:  # the depth and element limits are checked while parsing, before the whole tree exists
        root, depth, count = None, 0, 0
        for event, el in SafeET.iterparse(io.StringIO(text), events=("start", "end"), forbid_dtd=True):
            depth += 1 if event == "start" else -1
            count += event == "start"
            root = el if root is None else root
            if depth > MAX_SVG_DEPTH:
                raise VecgenError(f"SVG nests elements deeper than {MAX_SVG_DEPTH} levels (vecgen's limit)")
            if count > MAX_SVG_ELEMENTS:
                raise VecgenError(f"SVG has more than {MAX_SVG_ELEMENTS:,} elements (vecgen's limit)")
    except VecgenError:
        raise
    except DefusedXmlException as e:
        raise VecgenError(f"refusing unsafe SVG ({type(e).__name__}: DTDs and entities are not allowed)") from None
    except Exception as e:  # ParseError and friends
        raise VecgenError(f"malformed SVG: {str(e).splitlines()[0]}") from None
    if root is None:
        raise VecgenError("malformed SVG: no elements")
    if not isinstance(root.tag, str) or not root.tag.endswith("svg"):
        raise VecgenError("not an SVG document (root element is not <svg>)")
    vb = _view_box(root.get("viewBox"))
    width = _float(root.get("width"), vb[2] if vb else 0.0, "width")
    height = _float(root.get("height"), vb[3] if vb else 0.0, "height")
    if width <= 0 or height <= 0:
        bad = next((k for k, v in (("width", width), ("height", height)) if v <= 0 and root.get(k) is not None), None)
        raise VecgenError(
            f"SVG {bad} {root.get(bad)!r} is not positive" if bad else "SVG has no usable width/height or viewBox"
        )
    base = [1.0, 0.0, 0.0, 1.0, 0.0, 0.0]
    if vb and vb[2] > 0 and vb[3] > 0:
        base = [width / vb[2], 0.0, 0.0, height / vb[3], -vb[0] * width / vb[2], -vb[1] * height / vb[3]]
        if not all(map(math.isfinite, base)):
            raise VecgenError(f"SVG viewBox {root.get('viewBox')!r} gives no usable scale")
    scene = Scene(int(round(width)), int(round(height)), [], None)
    tags: list[str] = []  # each path's element, for the message if its coordinates overflow
    points = 0

    def add_paths(subs, st, m, tag):
        nonlocal points
        op = float(st.get("_opacity", "1"))
        fill = _parse_color(st.get("fill", "black"))
        stroke = _parse_color(st.get("stroke"))
        fa = _float(st.get("fill-opacity"), 1.0, "fill-opacity", unit=True) * op
        sa = _float(st.get("stroke-opacity"), 1.0, "stroke-opacity", unit=True) * op
        scale = math.sqrt(abs(m[0] * m[3] - m[1] * m[2]))
        sw = _float(st.get("stroke-width"), 1.0, "stroke-width") * scale
        if not math.isfinite(sw):
            raise VecgenError(f"<{tag}> stroke width is out of range after transforms")
        for pts, closed in subs:
            if len(scene.paths) >= MAX_SVG_PATHS:
                raise VecgenError(f"SVG has more than {MAX_SVG_PATHS:,} paths (vecgen's limit)")
            points += len(pts)
            if points > MAX_SVG_POINTS:
                raise VecgenError(f"SVG has more than {MAX_SVG_POINTS:,} control points (vecgen's limit)")
            fill_c = None if tag in ("line", "polyline") else fill
            xy = torch.tensor(
                [[m[0] * x + m[2] * y + m[4], m[1] * x + m[3] * y + m[5]] for x, y in pts],
                dtype=torch.float32,
                device=device,
            )
            tags.append(tag)
            scene.paths.append(
                Path(
                    points=xy,
                    closed=closed,
                    stroke_width=torch.tensor(sw, device=device),
                    stroke=None if stroke is None or sw <= 0 else torch.tensor([*stroke, sa], device=device),
                    fill=None if fill_c is None else torch.tensor([*fill_c, fa], device=device),
                    fill_rule="evenodd" if st.get("fill-rule") == "evenodd" else "nonzero",
                )
            )

    # The walk keeps its own stack (no recursion), in document order; parsing bounded the depth.
    stack: list[tuple[Iterator[Any], dict[str, str], list[float]]] = [(iter(root), {}, base)]
    while stack:
        children, style, mat = stack[-1]
        child = next(children, None)
        if child is None:
            stack.pop()
            continue
        tag = child.tag.rsplit("}", 1)[-1] if isinstance(child.tag, str) else ""
        if tag in ("metadata", "defs", "title", "desc", "style"):
            continue
        st = _style(child, style)
        m = _compose(mat, _parse_transform(child.get("transform")))
        if tag == "g":
            stack.append((iter(child), st, m))
            continue
        subs = _shape_subpaths(tag, child)
        if subs:
            add_paths(subs, st, m, tag)
    # Coordinates may overflow in the transforms (or in float32): one check for the whole scene.
    if scene.paths and not bool(torch.isfinite(torch.cat([p.points for p in scene.paths])).all()):
        first = next(i for i, p in enumerate(scene.paths) if not bool(torch.isfinite(p.points).all()))
        raise VecgenError(f"<{tags[first]}> coordinates are out of range after transforms")
    return scene


def read_svg(path: str | FsPath, device: str | torch.device = "cpu") -> Scene:
    """Read an SVG file; one-line :class:`VecgenError` for anything unreadable, unsafe or over the limits."""
    p = FsPath(path)
    try:
        if p.stat().st_size > MAX_SVG_BYTES:
            raise VecgenError(f"{p}: SVG is larger than {MAX_SVG_BYTES // 2**20} MB")
        text = p.read_text(encoding="utf-8")
    except VecgenError:
        raise
    except FileNotFoundError:
        raise VecgenError(f"{p}: no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise VecgenError(f"{p}: cannot read SVG ({type(e).__name__})") from None
    try:
        return svg_to_scene(text, device)
    except VecgenError as e:
        raise VecgenError(f"{p}: {e}") from None
