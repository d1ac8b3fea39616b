"""Tests of the mechanisms behind ``vecgen style``'s speed and texture (issue 28): the working-size
application, the crops warped from one grid, the shared whole-image pass, patch class evidence, presets."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from conftest import TINY, random_net
from vecgen.objective import Context
from vecgen.params.stylenet import EPS, StyleNet

pytestmark = pytest.mark.usefixtures("one_thread")


# ----------------------------------------------------------------------------- StyleNet at the working size
def test_apply_at_work_is_the_upsampled_change_in_bands():
    from vecgen.api.style import working_copy

    net = random_net().eval()
    x = torch.rand(1, 3, 301, 433, generator=torch.Generator().manual_seed(1))
    small = working_copy(x, 64)
    out = net.apply(x, small, at="work")
    with torch.no_grad():
        r = net.residual(small)
        want = torch.sigmoid(torch.logit(x.clamp(EPS, 1 - EPS)) + F.interpolate(r, size=x.shape[-2:], mode="bilinear"))
        # the residual is what the network adds at the working size (its own render there)
        assert torch.allclose(torch.sigmoid(torch.logit(small.clamp(EPS, 1 - EPS)) + r), net(small), atol=1e-6)
    assert out.shape == x.shape and float((out - want).abs().max()) < 1e-5
    # bands of 7 rows compute the same picture as one band
    assert float((net.apply_work(x, small, band=7) - out).abs().max()) < 1e-6
    # a fresh network (zero last layer) gives the photo back at full size: no blur from the working size
    fresh = StyleNet().eval()
    assert float((fresh.apply(x, small, at="work") - x.clamp(EPS, 1 - EPS)).abs().max()) < 1e-5


def test_apply_at_unknown_is_refused():
    from vecgen.errors import VecgenError

    with pytest.raises(VecgenError, match="'full' or 'work'"):
        StyleNet().apply(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8), at="half")


# ----------------------------------------------------------------------------- crops
def test_crops_from_one_grid_match_a_perspective_warp_of_each():
    pytest.importorskip("kornia")
    from kornia.geometry.transform import get_perspective_transform, warp_perspective

    from vecgen.losses.patch import warp_crops

    img = torch.rand(2, 3, 50, 70, generator=torch.Generator().manual_seed(0))
    b, n, s, frac, per = 2, 5, 24, 0.4, 0.25
    got = warp_crops(img, n, s, frac, per, torch.Generator().manual_seed(3))
    g = torch.Generator().manual_seed(3)  # the same draws, in the same order
    side = 50 * frac
    x0 = torch.rand(b * n, generator=g) * (70 - side)
    y0 = torch.rand(b * n, generator=g) * (50 - side)
    base = torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    corners = (base + (torch.rand(b * n, 4, 2, generator=g) * 2 - 1) * per) * side + torch.stack([x0, y0], 1).view(
        -1, 1, 2
    )
    m = get_perspective_transform(corners, (base * (s - 1)).expand(b * n, 4, 2))
    want = warp_perspective(
        img.repeat_interleave(n, 0), m, (s, s), mode="bilinear", align_corners=True, padding_mode="reflection"
    )
    assert got.shape == (b * n, 3, s, s)
    assert float((got - want).abs().max()) < 1e-4


# ----------------------------------------------------------------------------- classifier terms
def _classifier():
    pytest.importorskip("timm")
    import vecgen

    return vecgen.load_perceptor("efficientnet-lite0@random")


def test_shared_whole_pass_gives_the_same_values_and_gradient():
    from vecgen.losses.content import ContentTerm, WholePass
    from vecgen.losses.patch import GlobalDirectionTerm, StyleDirection

    p = _classifier()
    content = torch.rand(1, 3, 64, 96, generator=torch.Generator().manual_seed(0))
    img = torch.rand(1, 3, 64, 96, generator=torch.Generator().manual_seed(1))
    whole = WholePass(p, (*p.content_layers, "pool"))
    out = {}
    for shared in (None, whole):
        d = StyleDirection(p, "", "honeycomb", lambda: content)
        terms = [GlobalDirectionTerm(d, whole=shared), ContentTerm(p, lambda: content, whole=shared)]
        x = img.clone().requires_grad_(True)
        ctx = Context(x, None)
        calls = []
        handle = p.model.register_forward_hook(lambda *_, calls=calls: calls.append(1))
        try:
            values = [t(ctx) for t in terms]
            sum(values).backward()
        finally:
            handle.remove()
        out[shared is None] = ([float(v.detach()) for v in values], x.grad, len(calls))
    (v_one, g_one, n_one), (v_two, g_two, n_two) = out[False], out[True]
    assert v_one == pytest.approx(v_two, abs=1e-5) and torch.allclose(g_one, g_two, atol=1e-7, rtol=1e-4)
    # the content's own pass (no grad) and the direction's content embedding are once each either way
    assert n_two - n_one == 1


def test_patch_class_evidence_is_the_scaled_cross_entropy_with_rejection():
    from vecgen.losses.patch import CHANCE, PatchClassTerm, StyleDirection

    p = _classifier()
    content = torch.rand(1, 3, 80, 120, generator=torch.Generator().manual_seed(0))
    d = StyleDirection(p, "", "honeycomb", lambda: content)
    term = PatchClassTerm(d, crops=6, crop_frac=0.5, chunk=4)
    x = content.clone().requires_grad_(True)
    g = torch.Generator().manual_seed(7)
    loss = term(Context(x, None, step=_step(g)))
    assert term.size == 96  # 0.5 x 80 = 40 px crops, fed at MIN_NATIVE
    views = term.cutouts(content, torch.Generator().manual_seed(7))
    with torch.no_grad():
        logp = p.logits(views, native=True).log_softmax(-1)[:, p.class_index("honeycomb")]
    assert float(loss.detach()) == pytest.approx(float(-logp.mean() / CHANCE), rel=1e-4)
    assert CHANCE == pytest.approx(math.log(1000))
    loss.backward()
    assert float(x.grad.abs().sum()) > 0
    # crops already at the class (p >= threshold) are rejected: exactly zero loss and gradient
    term.threshold = 0.0
    x2 = content.clone().requires_grad_(True)
    loss2 = term(Context(x2, None, step=_step(torch.Generator().manual_seed(7))))
    loss2.backward()
    assert float(loss2.detach()) == 0.0 and term.kept == 0.0 and torch.equal(x2.grad, torch.zeros_like(x2))
    # a fixed size feeds the crops at that size
    fixed = PatchClassTerm(d, crops=2, crop_frac=0.5, size=64)
    with torch.no_grad():
        fixed(Context(content, None))
    assert fixed.size == 64


def test_grey_patches_see_luminance_only():
    from vecgen.errors import VecgenError
    from vecgen.losses.patch import LUMA, PatchClassTerm, StyleDirection

    p = _classifier()
    content = torch.rand(1, 3, 80, 120, generator=torch.Generator().manual_seed(0))
    d = StyleDirection(p, "", "chain mail", lambda: content)
    grads = {}
    for grey in (0.0, 1.0):
        x = content.clone().requires_grad_(True)
        term = PatchClassTerm(d, crops=4, crop_frac=0.5, grey=grey)
        term(Context(x, None, step=_step(torch.Generator().manual_seed(3)))).backward()
        grads[grey] = x.grad
    # greyscale crops: the gradient at every pixel is a multiple of the luminance weights, so no step
    # changes the colour at a fixed luminance; colour crops have no such structure
    per_pixel = grads[1.0] / LUMA.view(1, 3, 1, 1)
    assert float(grads[1.0].abs().sum()) > 0
    assert torch.allclose(per_pixel[:, 0], per_pixel[:, 1], atol=1e-9, rtol=1e-4)
    assert torch.allclose(per_pixel[:, 0], per_pixel[:, 2], atol=1e-9, rtol=1e-4)
    colour = grads[0.0] / LUMA.view(1, 3, 1, 1)
    assert not torch.allclose(colour[:, 0], colour[:, 1], atol=1e-9, rtol=1e-2)
    with pytest.raises(VecgenError, match="grey"):
        PatchClassTerm(d, grey=1.5)


def test_class_keeping_term_is_zero_at_the_photo_and_pulls_its_classes_back():
    from vecgen.losses.content import KEEP_CHANCE, ClassKeepTerm, WholePass

    p = _classifier()
    content = torch.rand(1, 3, 64, 96, generator=torch.Generator().manual_seed(0))
    term = ClassKeepTerm(p, top=3, content=lambda: content)
    assert float(term(Context(content.clone(), None))) == pytest.approx(0.0, abs=1e-6)
    with torch.no_grad():
        logp = p.logits(content).log_softmax(-1)[0]
    top = logp.topk(3)
    w = top.values.softmax(-1)
    x = (1 - content).requires_grad_(True)  # another picture: its classes differ from the photo's
    loss = term(Context(x, None))
    with torch.no_grad():
        got = p.logits(x).log_softmax(-1)[0, top.indices]
    want = max(0.0, float(-(w * got).sum() + (w * top.values).sum())) / KEEP_CHANCE
    assert float(loss.detach()) == pytest.approx(want, rel=1e-4) and want > 0
    loss.backward()
    assert float(x.grad.abs().sum()) > 0
    # the shared whole pass tapping the logits gives the same value
    shared = ClassKeepTerm(p, top=3, content=lambda: content, whole=WholePass(p, ("logits",)))
    assert float(shared(Context((1 - content), None)).detach()) == pytest.approx(want, rel=1e-4)


def test_class_keeping_term_needs_a_classifier_and_reads_the_optimized_one():
    import vecgen
    from vecgen.api import load_perceptors
    from vecgen.errors import VecgenError
    from vecgen.losses.content import ClassKeepTerm

    tiny = load_perceptors(TINY, torch.device("cpu"))[0][0]
    with pytest.raises(VecgenError, match="classifier"):
        ClassKeepTerm(tiny)
    p = _classifier()
    img = torch.rand(1, 3, 40, 60, generator=torch.Generator().manual_seed(0))
    res = vecgen.style(
        img, "chain mail", perceptors=[(p, 1.0)], content_model=p.name, steps=2, crops=2, keep_weight=100, quiet=True
    )
    assert res.settings["weights"]["keep"] == 100.0 and f"keep:{p.name}" in res.history[-1]
    # CLIP perceptors have no classes to keep: the term is left out
    res = vecgen.style(img, "chain mail", clip=TINY, content_model=TINY, steps=1, crops=2, keep_weight=100, quiet=True)
    assert not any(k.startswith("keep:") for k in res.history[-1])


def _step(generator):
    from vecgen.params.base import StepContext

    return StepContext(0, 0, generator)


def test_patch_class_needs_a_classifier():
    from vecgen.api import load_perceptors
    from vecgen.errors import VecgenError
    from vecgen.losses.patch import PatchClassTerm, StyleDirection

    tiny = load_perceptors(TINY, torch.device("cpu"))[0][0]
    with pytest.raises(VecgenError, match="classifier"):
        PatchClassTerm(StyleDirection(tiny, "a photo", "chain mail"))


# ----------------------------------------------------------------------------- presets
def test_quality_presets_fill_only_what_is_left_on_auto():
    from vecgen.api.style import QUALITY, resolve_quality

    assert resolve_quality("draft") == QUALITY["draft"]
    got = resolve_quality("draft", steps=7, lr=None, crop_size=100)
    assert got == {**QUALITY["draft"], "steps": 7, "crop_size": 100}
    assert isinstance(got["lr"], float) and isinstance(got["steps"], int)


def test_class_crops_meet_the_classifier_at_their_size_in_a_whole_photo_view():
    from vecgen.api.style import CANVAS, QUALITY, view_px

    half = QUALITY["normal"]["crop_size"] / CANVAS
    # draft's 256 px working copy: the crop's own 128 px; normal's 384 (192 px crops) and best's 512: 128 too
    assert view_px(half, 256) == view_px(half, 384) == view_px(half, 512) == 128
    assert view_px(1.0, 300) == 256 and view_px(0.1, 384) == 96  # a whole-side crop; never under 96 px


def test_style_records_the_patch_settings_and_where_it_applied():
    import vecgen
    from vecgen.api.style import QUALITY

    img = torch.rand(1, 3, 40, 60, generator=torch.Generator().manual_seed(0))
    res = vecgen.style(img, "chain mail", clip=TINY, content_model=TINY, steps=1, crops=2, quiet=True)
    s = res.settings
    assert s["apply_at"] == "work" and s["patch_loss"] == "auto" and s["lr"] == QUALITY["normal"]["lr"]
    assert s["patch_px"] == 96  # a 40 px photo's 20 px crops, fed at the 96 px floor
    assert res.image.size == (60, 40)
