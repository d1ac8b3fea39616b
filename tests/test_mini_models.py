"""Tests for the built-in mini CLIP models (mini-vit, mini-rn, mini-vit-3d): configs, shipped weights, probes, training."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
import torch

import vecgen
from vecgen.backends.perceptors import clip as clip_mod
from vecgen.errors import VecgenError
from vecgen.minis.probes import PROBE_SEED0, probe, probe_items

NAMES = ("mini-vit", "mini-rn", "mini-vit-3d")
WEIGHTS = clip_mod.WEIGHTS_DIR
needs_weights = pytest.mark.skipif(
    not all((WEIGHTS / f"{n}.safetensors").is_file() for n in NAMES), reason="shipped mini-* weights not present"
)
# A little below what the shipped weights measure on 1,000 held-out scenes (weights/metrics.json;
# these tests use 100): chance is 1/12 colour, 1/8 shape, 1/9 position, 1/2 size, 1/3 count.
MIN_ACCURACY = {
    "mini-vit": {"colour": 0.9, "shape": 0.85, "position": 0.9, "size": 0.9, "count": 0.9},
    "mini-rn": {"colour": 0.9, "shape": 0.9, "position": 0.9, "size": 0.9, "count": 0.9},
    "mini-vit-3d": {"colour": 0.9, "shape": 0.85, "position": 0.9, "size": 0.9, "count": 0.9},
}


@pytest.fixture(scope="module")
def perceptors():
    torch.manual_seed(0)
    return {n: vecgen.load_perceptor(n) for n in NAMES}


def test_configs_registered_and_small():
    import open_clip

    clip_mod._register_configs()
    for name in NAMES:
        assert name in open_clip.list_models()
        p = vecgen.load_perceptor(f"{name}@random")
        n_params = sum(t.numel() for t in p.model.parameters())
        assert n_params <= 8_000_000, (name, n_params)
        assert p.input_size <= 96
    vit = vecgen.load_perceptor("mini-vit@random").model.visual
    rn = vecgen.load_perceptor("mini-rn@random").model.visual
    assert type(vit).__name__ == "VisionTransformer" and type(rn).__name__ == "ModifiedResNet"


@needs_weights
def test_shipped_files_fp16_and_small():
    from safetensors import safe_open

    total = 0
    for name in NAMES:
        path = WEIGHTS / f"{name}.safetensors"
        total += path.stat().st_size
        with safe_open(str(path), framework="pt") as f:
            dtypes = {f.get_slice(k).get_dtype() for k in f.keys()}  # noqa: SIM118 (not a dict)
        assert dtypes <= {"F16", "I64"}, dtypes
    assert total <= 40 * 1024 * 1024
    metrics = json.loads((WEIGHTS / "metrics.json").read_text())
    for name in NAMES:
        m = metrics[name]
        assert m["params"] <= 8_000_000 and m["steps"] > 0 and m["train_seconds"] > 0
        assert {"colour", "shape", "position", "size", "count"} <= set(m["probes"])


@needs_weights
def test_load_by_name(perceptors):
    from safetensors.torch import load_file

    for name, p in perceptors.items():
        assert p.name == name
        shipped = load_file(str(WEIGHTS / f"{name}.safetensors"))
        key = "logit_scale"
        assert torch.allclose(p.model.state_dict()[key], shipped[key].float())
        img = torch.rand(2, 3, 100, 100)
        fi = p.encode_image(img)
        ft = p.encode_text(["a red circle", "two blue triangles"])
        assert fi.shape == (2, ft.shape[1])
        assert torch.allclose(fi.norm(dim=-1), torch.ones(2), atol=1e-4)


def test_auto_falls_back_to_mini_vit(monkeypatch):
    monkeypatch.setattr(clip_mod, "weights_available", lambda spec: False)
    if not (WEIGHTS / "mini-vit.safetensors").is_file():
        pytest.skip("mini-vit weights not present")
    warnings = []
    assert clip_mod.resolve_auto(warnings.append) == "mini-vit"
    assert warnings and "mini-vit" in warnings[0]


@needs_weights
def test_two_mini_vits_2d_for_drawing_3d_for_shapes(monkeypatch, capsys):
    """mini-vit is the 2-D model (drawing's offline default), mini-vit-3d its 3-D fine-tune (the offline default of
    classify3d and mesh): same architecture, different image towers, one text tower."""
    from safetensors.torch import load_file

    import vecgen.backends.perceptors as perceptors_mod
    from vecgen.api.classify3d import classify3d
    from vecgen.cli import main

    two, three = (load_file(str(WEIGHTS / f"{n}.safetensors")) for n in ("mini-vit", "mini-vit-3d"))
    assert two.keys() == three.keys()
    assert not torch.equal(two["visual.conv1.weight"], three["visual.conv1.weight"])
    assert torch.equal(two["token_embedding.weight"], three["token_embedding.weight"])  # frozen text tower
    p3 = vecgen.load_perceptor("mini-vit-3d")
    assert p3.name == "mini-vit-3d" and p3.draw_hint == clip_mod.MINI_DRAW_HINT
    metrics = json.loads((WEIGHTS / "metrics.json").read_text())
    assert "finetune3d" in metrics["mini-vit-3d"] and "finetune3d" not in metrics["mini-vit"]
    assert metrics["mini-vit"]["probes"]["shape"]["accuracy"] > 0.9

    assert main(["models"]) == 0
    shipped = capsys.readouterr().out.splitlines()[0]
    assert "mini-vit," in shipped + "," and "mini-vit-3d" in shipped

    monkeypatch.setattr(clip_mod, "weights_available", lambda spec: False)
    assert clip_mod.resolve_auto() == "mini-vit"
    assert clip_mod.resolve_auto(fallback=clip_mod.FALLBACK_3D) == "mini-vit-3d"
    seen = []
    monkeypatch.setattr(perceptors_mod, "load_perceptor", lambda name, device="cpu": seen.append(name) or p3)
    cloud = torch.rand(300, 3)
    res = classify3d([cloud.numpy()], labels="cube,sphere", device="cpu", quiet=True, mesh_points=64)
    assert seen == ["mini-vit-3d"] and res is not None


def test_probe_items_are_held_out_and_differ_in_one_attribute():
    items = probe_items("colour", 5)
    for _attrs, caps in items:
        assert len(caps) == 12 and len(set(caps)) == 12
        words = [set(c.split()) for c in caps]
        assert all(len(w ^ words[0]) <= 3 for w in words[1:])
    assert PROBE_SEED0 >= 10**9


@needs_weights
@pytest.mark.parametrize("name", NAMES)
def test_probe_accuracy(perceptors, name):
    for attribute in ("colour", "shape", "position", "size", "count"):
        res = probe(perceptors[name], attribute, n=100)
        assert res["accuracy"] >= MIN_ACCURACY[name][attribute], (name, attribute, res)


def test_training_smoke(tmp_path):
    from vecgen.minis.train import load_trained, main

    rc = main(
        [
            "--arch",
            "vit",
            "--seed",
            "3",
            "--steps",
            "3",
            "--batch",
            "8",
            "--scenes",
            "16",
            "--size",
            "64",
            "--warmup",
            "1",
            "--cache-dir",
            "none",
            "--probe-n",
            "0",
            "--name",
            "smoke-vit",
            "--out",
            str(tmp_path),
        ]
    )
    assert rc == 0
    weights = tmp_path / "smoke-vit.safetensors"
    metrics = json.loads((tmp_path / "metrics.json").read_text())["smoke-vit"]
    assert weights.is_file() and metrics["steps"] == 3 and metrics["params"] <= 8_000_000
    assert metrics["final_loss"] == metrics["final_loss"]  # not NaN
    p = load_trained("smoke-vit", weights, "mini-vit")
    assert p.encode_text(["a red circle"]).shape[0] == 1


@pytest.mark.slow  # a full draw plus judging (16 s on 2 busy cores)
@needs_weights
def test_draw_red_circle_judged_by_the_other_model(perceptors):
    """Drawing 'a red circle' against mini-vit makes mini-rn prefer that caption too."""
    from vecgen.api import pil_to_tensor

    res = vecgen.draw(
        "a red circle", clip="mini-vit", steps=40, strokes=12, size=64, cutouts=4, seed=0, device="cpu", quiet=True
    )
    img = pil_to_tensor(res.image)
    judge = perceptors["mini-rn"]
    with torch.no_grad():
        sims = judge.encode_text(["a red circle", "a blue square", "a green triangle"]) @ judge.encode_image(img)[0]
    assert sims[0] > sims[1] and sims[0] > sims[2], sims.tolist()


def test_attribute_labels_match_scenes():
    import random

    from vecgen.minis.scenes import COLOURS, SHAPES, sample_scene
    from vecgen.minis.train import attribute_labels

    attrs = [sample_scene(random.Random(i), k) for i, k in enumerate(["single", "count", "relation", "list"])]
    lab = attribute_labels(attrs)
    single = attrs[0]["objects"][0]
    assert lab["shape"][0] == list(SHAPES).index(single["shape"])
    assert lab["colour"][0] == list(COLOURS).index(single["colour"])
    assert lab["position"][0] >= 0 and lab["size"][0] >= 0
    assert lab["position"][1] == -100 and lab["size"][2] == -100  # only single scenes have one place / size
    assert lab["shape"][2] == -100 and lab["shape"][3] == -100  # two different objects: no single shape
    assert [int(c) for c in lab["count"]] == [len(a["objects"]) - 1 for a in attrs]
    for i, a in enumerate(attrs):  # presence vectors name exactly the shapes drawn
        want = {o["shape"] for o in a["objects"]}
        assert {s for j, s in enumerate(SHAPES) if lab["shapes"][i, j] > 0} == want


def test_attribute_heads_learn_and_reach_the_image_tower():
    from vecgen.minis.train import AttributeHeads

    torch.manual_seed(0)
    heads = AttributeHeads(16)
    emb = torch.randn(32, 16, requires_grad=True)
    labels = {
        "shape": torch.randint(8, (32,)),
        "colour": torch.randint(12, (32,)),
        "size": torch.full((32,), -100),
        "style": torch.randint(4, (32,)),
        "position": torch.randint(9, (32,)),
        "count": torch.randint(3, (32,)),
        "shapes": torch.zeros(32, 8),
        "colours": torch.zeros(32, 12),
    }
    loss0, accs = heads.loss(emb, labels)
    assert "size" not in accs and set(accs) >= {"shape", "colour", "count"}  # all -100: skipped, no NaN
    loss0.backward()
    assert emb.grad is not None and emb.grad.abs().sum() > 0
    opt = torch.optim.Adam([emb, *heads.parameters()], lr=0.05)
    for _ in range(100):
        loss, accs = heads.loss(emb, labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.3 * loss0.item() and accs["shape"] == 1.0


def test_recalibrate_bn_matches_batch_statistics():
    from vecgen.minis.train import recalibrate_bn

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    images = (torch.rand(64, 3, 8, 8) * 100 + 100).to(torch.uint8)  # far from the initial stats (0, 1)
    mean, std = torch.zeros(1, 3, 1, 1), torch.ones(1, 3, 1, 1)
    recalibrate_bn(net, images, mean, std, batches=20, batch=32)
    with torch.no_grad():
        feats = net[0](images.float() / 255.0)
    bn = net[1]
    assert torch.allclose(bn.running_mean, feats.mean((0, 2, 3)), atol=2e-3)
    assert torch.allclose(bn.running_var, feats.var((0, 2, 3)), rtol=0.05)
    assert bn.momentum == 0.1 and net.training


@pytest.mark.slow  # a training run with pretraining (about 2 minutes on 2 busy cores)
def test_training_smoke_with_pretraining(tmp_path):
    from safetensors.torch import load_file

    from vecgen.minis.train import main

    common = [
        "--arch",
        "rn",
        "--seed",
        "2",
        "--batch",
        "8",
        "--scenes",
        "32",
        "--warmup",
        "1",
        "--cache-dir",
        "none",
        "--probe-n",
        "0",
        "--out",
        str(tmp_path),
    ]
    assert main([*common, "--steps", "1", "--pretrain-steps", "0", "--name", "a"]) == 0
    assert (
        main(
            [
                *common,
                "--steps",
                "1",
                "--pretrain-steps",
                "4",
                "--aux",
                "1",
                "--clutter",
                "0.5",
                "--adv",
                "0.5",
                "--adv-steps",
                "1",
                "--name",
                "b",
            ]
        )
        == 0
    )
    a, b = load_file(str(tmp_path / "a.safetensors")), load_file(str(tmp_path / "b.safetensors"))
    moved = (a["visual.layer1.0.conv1.weight"].float() - b["visual.layer1.0.conv1.weight"].float()).abs().max()
    assert moved > 1e-3  # the pretraining phase changed the image tower
    m = json.loads((tmp_path / "metrics.json").read_text())["b"]
    assert m["pretrain_steps"] == 4 and m["aux_weight"] == 1.0 and m["clutter"] == 0.5 and m["adv"] == 0.5


def hinted():
    """Stand-ins for a mini model (its draw hint) and a real CLIP model (no hint)."""
    from types import SimpleNamespace

    return SimpleNamespace(draw_hint=dict(clip_mod.MINI_DRAW_HINT)), SimpleNamespace(draw_hint={})


def test_draw_style_follows_the_models():
    """shapes=auto / strokes=None: the models' shared hint, else CLIPDraw's 256 strokes; user values win."""
    from vecgen.api import draw_style

    mini, real = hinted()
    assert draw_style([(mini, 1.0)]) == ("blobs", 32)
    assert draw_style([(mini, 1.0), (mini, 0.5)]) == ("blobs", 32)
    assert draw_style([(real, 1.0)]) == ("strokes", 256)
    assert draw_style([(mini, 1.0), (real, 1.0)]) == ("strokes", 256)  # mixed models: no hint applies
    assert draw_style([(mini, 1.0)], "mixed", 10) == ("mixed", 10)
    assert draw_style([(mini, 1.0)], "strokes") == ("strokes", 256)  # the hint is a bundle
    assert draw_style([(real, 1.0)], "auto", 7) == ("strokes", 7)


def test_draw_steps_follow_the_models():
    from vecgen.api import draw_steps

    mini, real = hinted()
    assert draw_steps([(mini, 1.0)]) == 300 and draw_steps([(real, 1.0)]) == 200
    assert draw_steps([(mini, 1.0), (real, 1.0)]) == 200 and draw_steps([(mini, 1.0)], 7) == 7


def test_view_style_follows_the_models():
    """views=auto: zoomed-out views for the mini models, crops for real CLIP or a mix; a name given wins."""
    from vecgen.api import view_style

    mini, real = hinted()
    assert view_style([(mini, 1.0)]) == "zoom" and view_style([(mini, 1.0), (mini, 0.5)]) == "zoom"
    assert view_style([(real, 1.0)]) == "crops" and view_style([]) == "crops"
    assert view_style([(mini, 1.0), (real, 1.0)]) == "crops"
    assert view_style([(mini, 1.0)], "crops") == "crops" and view_style([(real, 1.0)], "zoom") == "zoom"
    with pytest.raises(VecgenError, match="unknown --views 'tiles'"):
        view_style([(mini, 1.0)], "tiles")


@needs_weights
def test_mini_models_draw_filled_blobs_by_default(tmp_path):
    res = vecgen.draw("a red circle", clip="mini-vit", steps=2, size=48, cutouts=0, device="cpu", quiet=True)
    assert res.settings["shapes"] == "blobs" and res.settings["strokes"] == 32 and res.settings["views"] == "zoom"
    written = res.svg.count("<path")  # 32 blobs, less those a clean SVG prunes (hidden ones), counted in its metadata
    pruned = int(re.search(r'key="pruned">(\d+)<', res.svg).group(1))
    assert written + pruned == 32 and written >= 24
    assert all(' fill="#' in p for p in re.findall(r"<path[^>]*>", res.svg))  # every path filled
    assert vecgen.load_perceptor("mini-vit@random").draw_hint == {}  # random weights know no domain
    import shutil

    own = shutil.copy(WEIGHTS / "mini-vit.safetensors", tmp_path / "my-mini-vit.safetensors")
    assert vecgen.load_perceptor(f"mini-vit@{own}").draw_hint == clip_mod.MINI_DRAW_HINT  # a user's fine-tune
    res = vecgen.draw(
        "a red circle", clip="mini-vit", shapes="strokes", steps=2, size=48, cutouts=0, device="cpu", quiet=True
    )
    assert res.settings["shapes"] == "strokes" and res.settings["strokes"] == 256


def test_clutter_goes_behind_objects_only():
    """Training clutter changes background pixels only, faintly, and only for the chosen fraction."""
    import random

    from vecgen.minis.scenes import render_batch, sample_scene
    from vecgen.minis.train import add_clutter, clutter_pool

    attrs = [sample_scene(random.Random(i), "single") for i in range(6)]
    x = (render_batch(attrs, 64) * 255).round() / 255
    bg = torch.tensor([a["bg_rgb"] for a in attrs])
    pool = clutter_pool(4, 64, seed=0)
    assert pool.shape == (4, 4, 64, 64) and 0 < pool[:, 3].max() <= 0.5
    gen = torch.Generator().manual_seed(0)
    assert torch.equal(add_clutter(x, bg, pool, 0.0, gen), x)
    y = add_clutter(x, bg, pool, 1.0, gen)
    is_bg = ((x - bg.view(-1, 3, 1, 1)).abs() < 0.02).all(1)
    changed = (y - x).abs().amax(1) > 1e-6
    assert not (changed & ~is_bg).any()  # object pixels untouched
    assert changed.flatten(1).any(1).all()  # every image got some clutter


def test_adversarial_views_stay_close_and_raise_the_loss():
    """--adv: PGD images lie within the L2 radius of the scene and match their captions worse."""
    import random

    import open_clip
    import torch.nn.functional as F

    from vecgen.minis.captions import caption_scene
    from vecgen.minis.scenes import render_batch, sample_scene
    from vecgen.minis.train import adversarial, build_model, contrastive_loss, encode_text_trimmed

    torch.manual_seed(0)
    model, tokenizer = build_model("vecgen-tiny-vit")
    attrs = [sample_scene(random.Random(i), "single") for i in range(6)]
    x = render_batch(
        attrs, model.visual.image_size if isinstance(model.visual.image_size, int) else model.visual.image_size[0]
    )
    caps = [caption_scene(a, random.Random(0), "a")[0] for a in attrs]
    mean = torch.tensor(open_clip.OPENAI_DATASET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(open_clip.OPENAI_DATASET_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        txt = F.normalize(encode_text_trimmed(model, tokenizer(caps)), dim=-1)
    neg = txt.new_zeros(0, txt.shape[1])

    def loss(img):
        with torch.no_grad():
            fi = F.normalize(model.encode_image((img - mean) / std), dim=-1)
            return contrastive_loss(fi, txt, neg, caps, model.logit_scale)[0]

    adv = adversarial(model, x, txt, neg, caps, mean, std, eps=2.0, steps=3, gen=torch.Generator().manual_seed(0))
    assert adv.shape == x.shape and 0 <= adv.min() and adv.max() <= 1
    assert ((adv - x).flatten(1).norm(dim=1) <= 2.0 + 1e-4).all()
    assert ((adv - x).flatten(1).norm(dim=1) > 0.5).all()  # it did move
    assert loss(adv) > loss(x) + 0.1  # random noise of the same norm moves it by ~0.004


@pytest.mark.parametrize(
    "module",
    [
        "vecgen.minis.train",
        "vecgen.backends.perceptors.train",
        "vecgen.minis.probes",
        "vecgen.backends.perceptors.probes",
    ],
)
def test_kit_commands_run_under_new_and_old_paths(module):
    """The old backends paths are forwarders: same --help, exit 0."""
    res = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.startswith("usage: python -m vecgen.minis.") and "--help" in res.stdout


def test_backends_do_not_import_the_kit():
    """Importing the old paths (the forwarders) must not pull in vecgen.minis."""
    code = (
        "import sys, vecgen.backends.perceptors.train, vecgen.backends.perceptors.probes; "
        "print(sorted(m for m in sys.modules if m.startswith(('vecgen.minis', 'vecgen.params'))))"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and res.stdout.strip() == "[]", res.stdout + res.stderr[-2000:]
