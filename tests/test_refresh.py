"""draw's mid-run restart of the weakest strokes (issue 25): which strokes, what they become, when it applies."""

from __future__ import annotations

import pytest
import torch

from conftest import TINY
from vecgen.api.draw import draw_refresh
from vecgen.api.draw_refresh import refresh_callback, refresh_step, weakest
from vecgen.backends.perceptors.classifier import CLASSIFIER_DRAW_HINT
from vecgen.params.strokes import Strokes, removal_effect

pytestmark = pytest.mark.usefixtures("one_thread")


class _Hinted:
    def __init__(self, hint: dict) -> None:
        self.draw_hint = hint


def test_refresh_follows_the_models_hint_unless_given():
    hinted = [(_Hinted({**CLASSIFIER_DRAW_HINT, "refresh": 0.25}), 1.0)] * 2
    assert draw_refresh(hinted) == 0.25 and draw_refresh(hinted, 0.0) == 0.0
    assert draw_refresh([(_Hinted(CLASSIFIER_DRAW_HINT), 1.0)]) == 0.0  # opt-in: no model hints it yet
    assert draw_refresh([(_Hinted({}), 1.0)]) == 0.0


def test_refresh_step_and_weakest():
    assert refresh_step(100) == 40 and refresh_step(10) == 4 and refresh_step(2) == 0
    effect = torch.tensor([0.5, 0.01, 0.9, 0.2, 0.0, 0.7, 0.3, 0.6])
    assert sorted(weakest(effect, 0.25)) == [1, 4]
    assert weakest(effect, 0.01) == [4]  # at least one


def _strokes(seed: int) -> Strokes:
    return Strokes((48, 48), strokes=8, width=(2.0, 6.0), seed=seed)


def test_refresh_callback_restarts_only_the_weakest_and_only_at_its_step():
    param = _strokes(1)
    with torch.no_grad():
        param.stroke_rgba[:4, 3] = 0.02  # four nearly invisible strokes: the weakest
    before = param.state_dict()
    effect = removal_effect(param.scene(), param.rasterizer, param.size)
    idx = set(weakest(effect, 0.5))
    assert idx == {0, 1, 2, 3}
    cb = refresh_callback(5, 0.5, lambda: _strokes(2))
    cb(4, param, {})
    assert torch.equal(param.points, before["points"])  # not its step: nothing moves
    cb(5, param, {})
    fresh = _strokes(2)
    n = param.counts[0]
    for i in range(8):
        pts, rgba = param.points[i * n : (i + 1) * n], param.stroke_rgba[i]
        want = fresh if i in idx else None
        if want is not None:
            assert torch.equal(pts, want.points[i * n : (i + 1) * n]) and torch.equal(rgba, want.stroke_rgba[i])
            assert torch.equal(param.widths[i], want.widths[i])
        else:
            assert torch.equal(pts, before["points"][i * n : (i + 1) * n])
            assert torch.equal(rgba, before["stroke_rgba"][i])


def _draw(**kw):
    import vecgen

    opts = {"clip": TINY, "steps": 10, "size": 48, "strokes": 6, "seed": 2, "quiet": True, "device": "cpu", **kw}
    return vecgen.draw("a red circle", **opts)


def test_draw_records_the_refresh_and_skips_it_for_an_init_svg(tmp_path):
    res = _draw(refresh=0.5)
    assert res.settings["refresh"] == 0.5
    plain = _draw()
    assert "refresh" not in plain.settings  # the tiny model hints none
    assert plain.svg != res.svg  # three strokes restarted at step 4 end elsewhere
    init = tmp_path / "init.svg"
    init.write_text(plain.svg)
    assert "refresh" not in _draw(refresh=0.5, init=str(init), strokes=None).settings
