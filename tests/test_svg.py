"""SVG reading is safe and faithful; writing round-trips and keeps its exact bytes."""

import hashlib
import random

import pytest
import torch
from defusedxml import ElementTree as SafeET

from vecgen.errors import VecgenError
from vecgen.scene import Path, Scene
from vecgen.svg import scene_to_svg, svg_to_scene

BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><text>&lol3;</text></svg>"""

EXTERNAL = """<?xml version="1.0"?>
<!DOCTYPE svg [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><text>&xxe;</text></svg>"""


@pytest.mark.parametrize("text", [BILLION_LAUGHS, EXTERNAL])
def test_hostile_svg_refused(text):
    with pytest.raises(VecgenError, match="unsafe"):
        svg_to_scene(text)


@pytest.mark.parametrize(
    "text,match",
    [
        ("<svg", "malformed"),
        ("<html/>", "not an SVG"),
        ('<svg xmlns="http://www.w3.org/2000/svg"/>', "width"),
        ('<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"><path d="M 1 1 L"/></svg>', "malformed"),
        ('<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"><path d="M 1 1 A 2 2 0 0 0 4 4"/></svg>', "arc"),
    ],
)
def test_bad_svg_one_line_errors(text, match):
    with pytest.raises(VecgenError, match=match) as e:
        svg_to_scene(text)
    assert "\n" not in str(e.value)


def test_shapes_transforms_and_paint():
    text = """<svg xmlns="http://www.w3.org/2000/svg" width="100" height="50" viewBox="0 0 200 100">
    <g fill="#ff0000" transform="translate(10,0)"><rect x="0" y="0" width="20" height="10"/>
    <circle cx="50" cy="50" r="10" style="fill:blue;fill-opacity:0.5"/></g>
    <polyline points="0,0 10,10 20,0" stroke="black" stroke-width="4"/></svg>"""
    scene = svg_to_scene(text)
    assert (scene.width, scene.height) == (100, 50)
    rect, circle, line = scene.paths
    # viewBox halves everything; the group translates by 10 user units (5 px)
    assert torch.allclose(rect.points.min(0).values, torch.tensor([5.0, 0.0]))
    assert torch.allclose(rect.fill, torch.tensor([1.0, 0, 0, 1]))
    assert torch.allclose(circle.fill, torch.tensor([0, 0, 1.0, 0.5]))
    assert rect.closed and circle.closed and circle.num_segments == 4
    assert line.fill is None and float(line.stroke_width) == pytest.approx(2.0)


def test_relative_and_smooth_commands_match_absolute():
    rel = svg_to_scene(
        '<svg xmlns="http://www.w3.org/2000/svg" width="50" height="50">'
        '<path d="m 10 10 l 10 0 h 5 v 5 c 1 1 2 2 3 3 s 4 4 5 5 q 1 0 2 2 t 3 3 z"/></svg>'
    )
    ab = svg_to_scene(
        '<svg xmlns="http://www.w3.org/2000/svg" width="50" height="50">'
        '<path d="M 10 10 L 20 10 H 25 V 15 C 26 16 27 17 28 18 S 32 22 33 23 Q 34 23 35 25 T 38 28 Z"/></svg>'
    )
    assert torch.allclose(rel.paths[0].points, ab.paths[0].points, atol=1e-5)


def test_write_then_read_round_trip_and_escaping():
    pts = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [7.0, 8.0]])
    scene = Scene(
        16,
        16,
        [
            Path(pts, stroke=torch.tensor([1.0, 0.5, 0.0, 0.75]), stroke_width=torch.tensor(2.5)),
            Path(pts[:3], closed=True, fill=torch.tensor([0.0, 0.0, 1.0, 1.0]), fill_rule="evenodd"),
        ],
        torch.ones(3),
    )
    text = scene_to_svg(scene, {"prompt": '<script>alert("x")</script> & more'})
    assert "<script>" not in text and "&lt;script&gt;" in text
    back = svg_to_scene(text)
    assert len(back.paths) == 3  # background rect + 2 paths
    s, f = back.paths[1], back.paths[2]
    assert torch.allclose(s.points, pts, atol=1e-4) and float(s.stroke_width) == pytest.approx(2.5)
    assert f.closed and f.fill_rule == "evenodd" and torch.allclose(f.points, pts[:3], atol=1e-4)
    assert scene_to_svg(scene) == scene_to_svg(scene)  # deterministic bytes


# ----------------------------------------------------------------------------- exact bytes
# The writer's exact format (attribute order, spacing, "/>", escaping; ids in paint order, coordinates at
# COORD_DECIMALS, the paths/bytes entries last): if it drifts, these fail. The layout is the one the
# hand-written writer that svgwrite replaced produced, plus the clean-SVG additions of issue 25 (ids, the
# shared paint on one <g>, #rrggbb colours).
FIXED_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="32" height="24" viewBox="0 0 32 24">\n'
    "<metadata>\n"
    '<vecgen:entry xmlns:vecgen="https://vecgen.dev/ns" key="prompt">a &lt;b&gt; &amp; "c"</vecgen:entry>\n'
    '<vecgen:entry xmlns:vecgen="https://vecgen.dev/ns" key="seed">3</vecgen:entry>\n'
    '<vecgen:entry xmlns:vecgen="https://vecgen.dev/ns" key="empty"></vecgen:entry>\n'
    '<vecgen:entry xmlns:vecgen="https://vecgen.dev/ns" key="paths">4</vecgen:entry>\n'
    '<vecgen:entry xmlns:vecgen="https://vecgen.dev/ns" key="bytes">1036</vecgen:entry>\n'
    "</metadata>\n"
    '<rect width="32" height="24" fill="#ffffe5"/>\n'
    '<g fill="none" stroke-linecap="round" stroke-linejoin="round">\n'
    '<path id="p0" d="M 1 2 C 3.2 -4 5.5 6 7 8.1" stroke="#ff8000" stroke-opacity="0.75" stroke-width="2.5"/>\n'
    '<path id="p1" d="M 1 2 C 3.2 -4 5.5 6 1 2 Z" fill="#0000ff" fill-opacity="1" fill-rule="evenodd"/>\n'
    '<path id="p2" d="M 2 4 C 6.5 -8 11 12 2 4 Z" fill="#336699" fill-opacity="0.3" fill-rule="nonzero" '
    'stroke="#000000" stroke-opacity="1" stroke-width="0.5"/>\n'
    '<path id="p3" d="M 1 2"/>\n'
    "</g>\n"
    "</svg>\n"
)
MANY_SHA256 = "8ccf62b80b010f7ebc95d603f998accecef43d85c69e804758e30eb48bed11df"


def fixed_scene() -> Scene:
    pts = torch.tensor([[1.0, 2.0], [3.25, -4.0], [5.5, 6.0], [7.0, 8.125]])
    return Scene(
        32,
        24,
        [
            Path(pts, stroke=torch.tensor([1.0, 0.5, 0.0, 0.75]), stroke_width=torch.tensor(2.5)),
            Path(pts[:3], closed=True, fill=torch.tensor([0.0, 0.0, 1.0, 1.0]), fill_rule="evenodd"),
            Path(
                pts[:3] * 2,
                closed=True,
                fill=torch.tensor([0.2, 0.4, 0.6, 0.3]),
                stroke=torch.tensor([0.0, 0.0, 0.0]),
                stroke_width=0.5,
            ),
            Path(pts[:1]),
        ],
        torch.tensor([1.0, 1.0, 0.9]),
    )


def many_scene() -> Scene:
    """64 paths from Python's own RNG (stable across torch versions)."""
    rng = random.Random(0)
    paths = []
    for _ in range(64):
        segs = rng.randint(1, 4)
        closed = rng.random() < 0.5
        n = 3 * segs if closed else 3 * segs + 1
        pts = torch.tensor([[rng.uniform(-10, 234), rng.uniform(-10, 234)] for _ in range(n)])
        col = lambda: torch.tensor([rng.random() for _ in range(4)])  # noqa: E731
        paths.append(
            Path(
                pts,
                closed=closed,
                stroke_width=torch.tensor(rng.uniform(0, 8)),
                stroke=col() if rng.random() < 0.7 else None,
                fill=col() if rng.random() < 0.6 else None,
                fill_rule="evenodd" if rng.random() < 0.3 else "nonzero",
            )
        )
    return Scene(224, 224, paths, None)


def test_bytes_are_exactly_the_format():
    assert scene_to_svg(fixed_scene(), {"prompt": 'a <b> & "c"', "seed": "3", "empty": ""}) == FIXED_SVG
    text = scene_to_svg(many_scene(), {"prompt": "many"})
    assert hashlib.sha256(text.encode("utf-8")).hexdigest() == MANY_SHA256
    assert "baseProfile" not in text and "xmlns:ev" not in text and "<defs" not in text


def test_metadata_escaping_parses_back_exactly():
    value = "x < y && z > \"w\" 'q' é ☃"
    text = scene_to_svg(Scene(8, 8, [], None), {"prompt": value, "a<&>b": "<&>"})
    assert "<&>" not in text and "&lt;&amp;&gt;" in text
    entries = SafeET.fromstring(text).find("{http://www.w3.org/2000/svg}metadata")
    got = {e.get("key"): e.text for e in entries if e.get("key") not in ("paths", "bytes")}
    assert got == {"prompt": value, "a<&>b": "<&>"}


def path_with(**kw) -> Path:
    base = dict(
        points=torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [7.0, 8.0]]),
        stroke=torch.tensor([0.0, 0.0, 0.0, 1.0]),
        stroke_width=torch.tensor(1.0),
    )
    return Path(**{**base, **kw})


@pytest.mark.parametrize(
    "bad,match",
    [
        (dict(stroke_width=torch.tensor(float("nan"))), "'nan' is not a valid value for attribute 'stroke-width'"),
        (dict(stroke_width=float("inf")), "'inf' is not a valid value for attribute 'stroke-width'"),
        (dict(points=torch.tensor([[1.0, 2.0], [float("nan"), 4.0], [5.0, 6.0], [7.0, 8.0]])), "attribute 'd'"),
        (dict(fill=torch.tensor([1.0, 0.0, 0.0, 1.0]), fill_rule="sometimes"), "attribute 'fill-rule'"),
        (dict(stroke_width=-2.0), "stroke width -2 is negative"),
        (dict(stroke=torch.tensor([float("nan"), 0.0, 0.0, 1.0])), "not finite"),
    ],
)
def test_bad_values_are_refused_in_one_line(bad, match):
    good = path_with()
    # the good path first: a bad value must be caught even after its kind was validated
    scene = Scene(16, 16, [good, path_with(**bad)], None)
    with pytest.raises(VecgenError, match=match) as e:
        scene_to_svg(scene)
    assert str(e.value).startswith("cannot write SVG: path 1: ") and "\n" not in str(e.value)
    assert scene_to_svg(Scene(16, 16, [good], None))  # nothing stuck: good paths still write
