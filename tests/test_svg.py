"""SVG reading is safe and faithful; writing round-trips."""
import pytest
import torch

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


@pytest.mark.parametrize("text,match", [
    ("<svg", "malformed"),
    ("<html/>", "not an SVG"),
    ('<svg xmlns="http://www.w3.org/2000/svg"/>', "width"),
    ('<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"><path d="M 1 1 L"/></svg>', "malformed"),
    ('<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"><path d="M 1 1 A 2 2 0 0 0 4 4"/></svg>', "arc"),
])
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
    rel = svg_to_scene('<svg xmlns="http://www.w3.org/2000/svg" width="50" height="50">'
                       '<path d="m 10 10 l 10 0 h 5 v 5 c 1 1 2 2 3 3 s 4 4 5 5 q 1 0 2 2 t 3 3 z"/></svg>')
    ab = svg_to_scene('<svg xmlns="http://www.w3.org/2000/svg" width="50" height="50">'
                      '<path d="M 10 10 L 20 10 H 25 V 15 C 26 16 27 17 28 18 S 32 22 33 23 Q 34 23 35 25 T 38 28 Z"/></svg>')
    assert torch.allclose(rel.paths[0].points, ab.paths[0].points, atol=1e-5)


def test_write_then_read_round_trip_and_escaping():
    pts = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [7.0, 8.0]])
    scene = Scene(16, 16, [Path(pts, stroke=torch.tensor([1.0, 0.5, 0.0, 0.75]), stroke_width=torch.tensor(2.5)),
                           Path(pts[:3], closed=True, fill=torch.tensor([0.0, 0.0, 1.0, 1.0]), fill_rule="evenodd")],
                  torch.ones(3))
    text = scene_to_svg(scene, {"prompt": '<script>alert("x")</script> & more'})
    assert "<script>" not in text and "&lt;script&gt;" in text
    back = svg_to_scene(text)
    assert len(back.paths) == 3  # background rect + 2 paths
    s, f = back.paths[1], back.paths[2]
    assert torch.allclose(s.points, pts, atol=1e-4) and float(s.stroke_width) == pytest.approx(2.5)
    assert f.closed and f.fill_rule == "evenodd" and torch.allclose(f.points, pts[:3], atol=1e-4)
    assert scene_to_svg(scene) == scene_to_svg(scene)  # deterministic bytes
