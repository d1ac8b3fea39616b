"""Python API: Result, perceptors, objective terms, engine guards."""

import math

import pytest
import torch

import vecgen
from conftest import TINY
from vecgen.errors import VecgenError
from vecgen.prompts import parse_prompts


def test_draw_result_api(tmp_path):
    res = vecgen.draw(
        "a red circle | a blue square:-0.5",
        clip=f"{TINY}:1,vecgen-tiny-rn@random:0.5",
        steps=4,
        strokes=6,
        size="40x32",
        cutouts=2,
        quiet=True,
        seed=2,
    )
    assert res.image.size == (40, 32)
    assert res.svg.startswith("<svg") and res._repr_svg_() == res.svg
    assert res._repr_png_()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(res.history) == 4
    step = res.history[-1]
    # one named term per perceptor, and the total is their weighted sum
    assert set(step) == {f"clip:{TINY}", "clip:vecgen-tiny-rn@random", "total"}
    assert step["total"] == pytest.approx(step[f"clip:{TINY}"] + 0.5 * step["clip:vecgen-tiny-rn@random"], rel=1e-5)
    assert res.save(tmp_path / "a.svg").read_text() == res.svg
    with pytest.raises(VecgenError):
        res.save(tmp_path / "a.gif")


def test_perceptor_is_frozen_and_differentiable():
    p = vecgen.load_perceptor(TINY)
    assert all(not q.requires_grad for q in p.parameters())
    x = torch.rand(2, 3, 50, 70, requires_grad=True)  # any size: resized inside
    e = p.encode_image(x)
    assert e.shape == (2, p.model.text_projection.shape[1])  # (N, D): D = the joint embedding width
    assert torch.allclose(e.norm(dim=-1), torch.ones(2), atol=1e-5)
    e.sum().backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0
    t1 = p.encode_text(["a", "b"])
    assert torch.equal(p.encode_text(["b"])[0], t1[1])  # cached


def test_prompt_syntax():
    ps = parse_prompts("a lighthouse:1 | blurry:-0.5 | a boat:2:0.3 | time: 12:30")
    assert [(p.text, p.weight, p.stop) for p in ps[:3]] == [
        ("a lighthouse", 1.0, None),
        ("blurry", -0.5, None),
        ("a boat", 2.0, 0.3),
    ]
    # a colon inside the text stays in it; only a trailing ":NUMBER" (no space before it) is read as the weight
    assert (ps[3].text, ps[3].weight, ps[3].stop) == ("time: 12", 30.0, None)
    for bad in ["", "   ", " | ", "ugly:-1"]:
        with pytest.raises(VecgenError):
            parse_prompts(bad)


def test_negative_prompt_pushes_away():
    """The same run with a negative weight ends farther from the text than a positive one."""
    p = vecgen.load_perceptor(TINY)
    out = {}
    for w in (1.0, -1.0):
        res = vecgen.draw(
            f"a red circle:{w} | a tree:0.01",
            steps=15,
            strokes=12,
            size=48,
            cutouts=0,
            quiet=True,
            perceptors=[(p, 1.0)],
            seed=0,
        )
        img = torch.tensor(list(res.image.getdata()), dtype=torch.float32).view(48, 48, 3).permute(2, 0, 1)[None] / 255
        with torch.no_grad():
            out[w] = float(p.encode_image(img) @ p.encode_text(["a red circle"])[0])
    assert out[1.0] > out[-1.0]


def test_nan_guard_restores_and_continues():
    from vecgen.engine import optimize
    from vecgen.objective import FnTerm, Objective
    from vecgen.params.strokes import Strokes

    param = Strokes((32, 32), strokes=4)
    calls = {"n": 0}

    def loss(img):
        calls["n"] += 1
        return img.mean() * (math.nan if calls["n"] == 3 else 1.0)

    state = optimize(param, Objective([FnTerm("mean", loss)]), 5, progress=False)
    assert state.step == 5 and state.nan_events == 1
    assert torch.isfinite(param.points).all()


def test_engine_optimizes_toward_target():
    """MSE to a rendered target: the loss falls a lot, through the whole engine."""
    from vecgen.engine import optimize
    from vecgen.objective import FnTerm, Objective
    from vecgen.params.strokes import Strokes

    target = Strokes((48, 48), strokes=8, seed=5, width=(2, 6)).render().detach()
    param = Strokes((48, 48), strokes=8, seed=6, width=(2, 6))
    state = optimize(param, Objective([FnTerm("mse", lambda im: ((im - target) ** 2).mean())]), 80, progress=False)
    assert state.history[-1]["mse"] < 0.6 * state.history[0]["mse"]


def test_draw_refuses_bad_shapes_and_strokes_before_loading_models(monkeypatch):
    import vecgen.api as api

    def no_models(*a, **k):
        raise AssertionError("models loaded before the options were checked")

    monkeypatch.setattr(api, "load_perceptors", no_models)
    with pytest.raises(VecgenError, match="shapes"):
        vecgen.draw("a red circle", shapes="squiggles")
    with pytest.raises(VecgenError, match="strokes"):
        vecgen.draw("a red circle", strokes=-3)
