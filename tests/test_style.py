"""Tests of ``vecgen style`` (CLIPstyler): StyleNet, the patch/content terms, the verb, fast mode, bad input."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import TINY, random_net
from vecgen.cli import main
from vecgen.errors import VecgenError
from vecgen.objective import Context
from vecgen.params.stylenet import StyleNet, load_model, save_model

FAST = dict(clip=TINY, content_model=TINY, steps=2, work_size=32, crops=4, quiet=True)
FAST_FLAGS = ["--clip", TINY, "--content-model", TINY, "--steps", "2", "--work-size", "32", "--crops", "4", "-q"]
CPU = torch.device("cpu")


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tiny():
    from vecgen.api import load_perceptors

    return load_perceptors(TINY, CPU)[0][0]


def photo(name: str = "chelsea", size: tuple[int, int] | None = (90, 60)) -> Image.Image:
    """One of scikit-image's public-domain photos (offline), resized."""
    data = pytest.importorskip("skimage.data")

    img = Image.fromarray(getattr(data, name)())
    return img.resize(size, Image.LANCZOS) if size else img


def run_cli(capsys, *argv) -> tuple[int, str]:
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err


# ----------------------------------------------------------------------------- StyleNet
def test_stylenet_starts_at_the_content_and_tiles_exactly():
    x = torch.from_numpy(np.asarray(photo(size=(203, 141)), dtype=np.float32) / 255).permute(2, 0, 1)[None]
    fresh = StyleNet()
    with torch.no_grad():
        assert (fresh(x) - x.clamp(1e-3, 1 - 1e-3)).abs().max() < 1e-5  # step 0 renders the photo
    net = random_net()
    small = torch.nn.functional.interpolate(x, size=(48, 70), mode="bilinear", antialias=True)
    whole = net.apply(x, small, tile=10_000)
    tiled = net.apply(x, small, tile=48)
    assert whole.shape == x.shape and float(whole.std()) > 0.05
    assert float((whole - tiled).abs().max()) < 1e-5
    assert all(n.frozen is None for n in net.norms())  # statistics released after the pass


def test_model_round_trips_bit_exact(tmp_path):
    net = random_net(3)
    path = tmp_path / "m.safetensors"
    save_model(net, path, {"prompt": "chain mail", "settings": json.dumps({"steps": 3})})
    back, meta = load_model(path)
    assert meta["prompt"] == "chain mail" and json.loads(meta["settings"]) == {"steps": 3}
    for k, v in net.state_dict().items():
        assert torch.equal(v, back.state_dict()[k]), k
    x = torch.rand(1, 3, 40, 52, generator=torch.Generator().manual_seed(1))
    assert torch.equal(net.apply(x, x), back.apply(x, x))


def test_model_of_another_architecture_is_refused(tmp_path):
    from safetensors.torch import save_file

    other = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(3)}, str(other), metadata={"arch": "resnet"})
    with pytest.raises(VecgenError, match="not a style model of this kind"):
        load_model(other)
    wrong = tmp_path / "wrong.safetensors"
    tensors = {k: v.contiguous() for k, v in StyleNet(8).state_dict().items()}
    save_file(tensors, str(wrong), metadata={"arch": "stylenet-unet2", "ngf": "16"})
    with pytest.raises(VecgenError, match="does not match the StyleNet"):
        load_model(wrong)


# ----------------------------------------------------------------------------- the terms
def test_patch_rejection_gives_exactly_zero_gradient(tiny):
    from vecgen.losses.patch import PatchDirectionTerm, StyleDirection

    content = torch.rand(1, 3, 48, 48, generator=torch.Generator().manual_seed(0))
    term = PatchDirectionTerm(StyleDirection(tiny, "a photo", "chain mail", lambda: content), crops=8)
    views = torch.rand(8, 3, tiny.input_size, tiny.input_size, generator=torch.Generator().manual_seed(1))
    views.requires_grad_(True)
    dist = term.distances(views)
    term.threshold = float(dist.detach().median())  # half the crops are past it
    loss = term.reject(dist)
    loss.backward()
    rejected = dist.detach() < term.threshold
    assert 0 < int(rejected.sum()) < 8 and term.kept == pytest.approx(1 - float(rejected.float().mean()))
    per_crop = views.grad.flatten(1).abs().sum(1)
    assert torch.equal(per_crop[rejected], torch.zeros(int(rejected.sum())))  # exactly zero, not small
    assert bool((per_crop[~rejected] > 0).all())
    # through the term as the engine calls it: the render gets a gradient from the crops it keeps, and
    # running the perceptor 3 crops at a time (memory) gives the value and gradient of one pass
    term.threshold = -1.0
    img = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(4))
    out = {}
    for chunk in (3, 8):
        term.chunk = chunk
        x = img.clone().requires_grad_(True)
        torch.manual_seed(5)
        loss = term(Context(x, None))
        loss.backward()
        out[chunk] = (float(loss.detach()), x.grad)
    assert term.kept == 1.0 and float(out[8][1].abs().sum()) > 0
    assert out[3][0] == pytest.approx(out[8][0], abs=1e-6)
    assert torch.allclose(out[3][1], out[8][1], atol=1e-7, rtol=1e-4)


def content_models():
    names = ["mini-vit"]
    if importlib.util.find_spec("efficientnet_lite_pytorch") is not None:
        names.append("efficientnet-lite0")
    return names


@pytest.mark.parametrize("name", content_models())
def test_content_term_is_zero_for_the_identity(name):
    import vecgen
    from vecgen.losses.content import ContentTerm

    p = vecgen.load_perceptor(name)
    x = torch.from_numpy(np.asarray(photo(size=(96, 64)), dtype=np.float32) / 255).permute(2, 0, 1)[None]
    term = ContentTerm(p, lambda: x)
    assert term.layers == tuple(p.content_layers)
    with torch.no_grad():
        same = float(term(Context(x.clone(), None)))
        other = float(
            term(
                Context(
                    torch.from_numpy(np.asarray(photo("coffee", (96, 64)), dtype=np.float32) / 255).permute(2, 0, 1)[
                        None
                    ],
                    None,
                )
            )
        )
        noisy = float(term(Context((x + 0.05 * torch.randn_like(x)).clamp(0, 1), None)))
    assert same < 1e-8 and 0 < noisy < other and other > 0.05


def test_classifier_direction_starts_from_the_image(tiny):
    """A perceptor of kind "classifier" has no source text: its step starts at the content's embedding."""
    from vecgen.losses.patch import StyleDirection

    class Classifier:
        kind, name, input_size, device = "classifier", "fake", tiny.input_size, CPU

        def encode_image(self, x):
            return tiny.encode_image(x)

        def encode_text(self, texts):
            return tiny.encode_text(texts)

    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    d = StyleDirection(Classifier(), "", "chain mail", lambda: x)
    want = torch.nn.functional.normalize(tiny.encode_text(["chain mail"])[0] - tiny.encode_image(x), dim=-1)
    assert torch.allclose(d.direction(), want, atol=1e-6)
    assert not torch.allclose(d.direction()[0], d.direction()[1])
    # its patches start at the same crop of the photo: an unchanged output is 1 everywhere, none rejected
    from vecgen.losses.patch import PatchDirectionTerm

    term = PatchDirectionTerm(d, crops=4)
    assert term.source == "crop"
    with torch.no_grad():
        loss = term(Context(x.clone(), None))
    assert float(loss) == pytest.approx(1.0, abs=1e-4) and term.kept == 1.0


# ----------------------------------------------------------------------------- the verb
def test_output_keeps_size_and_alpha(tmp_path):
    import vecgen

    rgba = photo(size=(70, 45)).convert("RGBA")
    alpha = Image.linear_gradient("L").resize((70, 45))
    rgba.putalpha(alpha)
    rgba.save(tmp_path / "in.png")
    res = vecgen.style(tmp_path / "in.png", "chain mail", **FAST)
    assert res.image.size == (70, 45) and res.image.mode == "RGBA"
    assert np.array_equal(np.asarray(res.image.getchannel("A")), np.asarray(alpha))
    assert res.settings["size"] == [70, 45] and res.settings["work_size"] == [50, 32]
    assert res.work_image.size == (50, 32)
    assert set(res.history[0]) == {f"dir:{TINY}", f"patch:{TINY}", f"content:{TINY}", "tv", "total"}
    # greyscale and EXIF-rotated JPEGs: full size, orientation honoured
    photo(size=(41, 29)).convert("L").save(tmp_path / "grey.png")
    assert vecgen.style(tmp_path / "grey.png", "chain mail", **FAST).image.size == (41, 29)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    photo(size=(40, 30)).save(tmp_path / "rot.jpg", exif=exif.tobytes())
    out = vecgen.style(tmp_path / "rot.jpg", "chain mail", **FAST)
    assert out.image.size == (30, 40) and out.image.mode == "RGB"


def test_directional_term_falls_on_a_short_run():
    """The whole output's direction moves toward the text within a few steps (mini-vit, a real photo)."""
    import vecgen

    res = vecgen.style(
        photo(size=(96, 64)),
        "a red circle",
        clip="mini-vit",
        content_model="mini-vit",
        steps=12,
        work_size=64,
        crops=8,
        quiet=True,
    )
    d = [h["dir:mini-vit"] for h in res.history]
    assert d[0] == pytest.approx(1.0, abs=1e-3)  # the net starts at the photo: no step yet
    assert min(d[-3:]) < 0.7, d
    assert res.history[-1]["content:mini-vit"] > 0  # it moved away from the photo


def test_cli_end_to_end_and_fast_mode(tmp_path, capsys):
    from vecgen.api.style_train import train_style

    photo(size=(64, 48)).save(tmp_path / "a.png")
    out = tmp_path / "out.png"
    code, err = run_cli(capsys, "style", tmp_path / "a.png", "chain mail", "-o", out, *FAST_FLAGS)
    assert code == 0, err
    meta = Image.open(out).text
    assert meta["prompt"] == "chain mail" and json.loads(meta["settings"])["content_model"] == TINY
    folder = tmp_path / "photos"
    folder.mkdir()
    photo("astronaut", (60, 60)).save(folder / "1.png")
    photo("coffee", (80, 50)).save(folder / "2.jpg")
    model = tmp_path / "m.safetensors"
    code, err = run_cli(
        capsys,
        "style",
        "--train",
        folder,
        "chain mail",
        "-o",
        model,
        "--clip",
        TINY,
        "--content-model",
        TINY,
        "--steps",
        "3",
        "--work-size",
        "48",
        "--crop",
        "32",
        "--batch",
        "2",
        "--crops",
        "2",
        "-q",
    )
    assert code == 0, err
    net, meta = load_model(model)
    assert meta["prompt"] == "chain mail" and json.loads(meta["settings"])["images"] == 2
    styled = tmp_path / "styled.png"
    code, err = run_cli(capsys, "style", "--model", model, tmp_path / "a.png", "-o", styled)
    assert code == 0, err
    img = Image.open(styled)
    assert img.size == (64, 48) and img.text["prompt"] == "chain mail"
    # resumable: 3 steps at once = 2 steps, then resumed to 3 (bit for bit)
    kw = dict(clip=TINY, content_model=TINY, work_size=48, crop=32, batch=2, crops=2, quiet=True)
    whole = train_style(folder, "chain mail", steps=3, **kw)
    ck = tmp_path / "ck.pt"
    train_style(folder, "chain mail", steps=2, checkpoint=ck, **kw)
    resumed = train_style(folder, "chain mail", steps=3, resume=ck, **kw)
    for k, v in whole.net.state_dict().items():
        assert torch.equal(v, resumed.net.state_dict()[k]), k


def test_bad_input_one_line_exit_2(tmp_path, capsys):
    from safetensors.torch import save_file

    good = tmp_path / "good.png"
    photo(size=(40, 30)).save(good)
    (tmp_path / "text.png").write_text("not an image")
    (tmp_path / "empty.jpg").write_bytes(b"")
    Image.new("1", (8200, 8200)).save(tmp_path / "huge.png")  # 67 MP of 1-bit pixels: a small file
    (tmp_path / "empty_dir").mkdir()
    save_file({"w": torch.zeros(3)}, str(tmp_path / "other.safetensors"), metadata={"arch": "resnet"})
    net = tmp_path / "net.safetensors"
    save_model(StyleNet(), net, {"prompt": "x"})
    out = tmp_path / "out.png"
    cases = [
        ([tmp_path / "text.png", "chain mail"], "not a recognised image"),
        ([tmp_path / "empty.jpg", "chain mail"], "cannot read image"),
        ([tmp_path / "huge.png", "chain mail"], "too large"),
        ([tmp_path / "missing.png", "chain mail"], "not found"),
        ([good], "needs a photo and a text"),
        (["--model", tmp_path / "other.safetensors", good], "not a style model"),
        (["--model", tmp_path / "text.png", good], "not a style model"),
        (["--model", net, good, "--steps", "5"], "--steps does not apply with --model"),
        (["--model", net, good, "chain mail"], "the text is the model's own"),
        (["--train", tmp_path / "empty_dir", "chain mail"], "holds no images"),
        (["--train", tmp_path / "nowhere", "chain mail"], "training folder not found"),
        ([good, "chain mail", "--cutouts", "3"], "--cutouts does not apply"),
        ([good, "chain mail", "--crops", "0"], "--crops"),
        ([good, "chain mail", "--quality", "ultra"], "invalid choice"),
        ([good, "chain mail", "-o", tmp_path / "out.jpg"], "out.jpg"),
    ]
    for argv, needle in cases:
        extra = [] if "-o" in argv else ["-o", out if "--train" not in argv else tmp_path / "m.safetensors"]
        code, err = (
            run_cli(capsys, "style", *argv, *extra, "--clip", TINY, "-q")
            if "--model" not in argv
            else run_cli(capsys, "style", *argv, *extra, "-q")
        )
        assert code == 2, (argv, err)
        assert needle in err and len(err.strip().splitlines()) == 1, (argv, err)
    assert not out.exists() and not (tmp_path / "m.safetensors").exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temp files left


@pytest.mark.slow
def test_12_megapixel_photo_within_the_memory_bound(tmp_path):
    """A 4000x3000 JPEG is styled at full size in well under 3 GB (peak RSS of a fresh process)."""
    big = photo("astronaut", (4000, 3000))
    big.save(tmp_path / "big.jpg", quality=90)
    code = f"""
import resource, torch, vecgen
torch.set_num_threads(1)
res = vecgen.style({str(tmp_path / "big.jpg")!r}, "chain mail", clip={TINY!r}, content_model={TINY!r}, steps=1,
                   work_size=128, crops=4, quiet=True)
assert res.image.size == (4000, 3000), res.image.size
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=600,
        env={**__import__("os").environ, "OMP_NUM_THREADS": "1"},
    )
    assert out.returncode == 0, out.stderr[-2000:]
    peak_kb = int(out.stdout.strip().splitlines()[-1])
    assert peak_kb * 1024 < 3 * 2**30, f"peak RSS {peak_kb / 2**20:.2f} GiB"


# ----------------------------------------------------------------------------- the config: bounds, modes
@pytest.mark.parametrize(
    "argv, needle",
    [
        (["--crop-size", "100000"], "--crop-size 100000 is above the limit of 512"),
        (["--crops", "5000"], "--crops 5000 is above the limit of 1,024"),
        (["--work-size", "100000"], "--work-size 100000 is above the limit of 4,096"),
        (["--work-size", "8"], "--work-size must be >= 16"),
        (["--tile", "100000"], "--tile 100000 is above the limit of 4,096"),
        (["--snapshots", "snaps", "--every", "0"], "--every must be >= 1"),
        (["--lr", "0"], "--lr must be > 0"),
        (["--lr", "-1"], "--lr must be > 0"),
        (["--lr", "nan"], "--lr must be finite"),
        (["--threshold", "5"], "--threshold 5.0 is above the limit of 2"),
        (["--patch-weight", "0", "--dir-weight", "0"], "nothing pulls toward the text"),
        (["--content-weight", "-1"], "--content-weight must be >= 0"),
        (["--source", " "], "--source must be a non-empty text"),
        (["--batch", "2"], "--batch applies only to vecgen style-train"),
        (["--size", "64"], "--size does not apply to style"),
    ],
)
def test_style_bounds_one_line_before_any_model(tmp_path, capsys, monkeypatch, argv, needle):
    import vecgen.api._run as _run

    def no_models(*a, **k):
        raise AssertionError("a model loaded before the options were checked")

    monkeypatch.setattr(_run, "load_perceptors", no_models)
    photo(size=(40, 30)).save(tmp_path / "a.png")
    monkeypatch.chdir(tmp_path)
    code, err = run_cli(capsys, "style", tmp_path / "a.png", "chain mail", *argv, "--clip", TINY, "-q")
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1, (argv, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]


def test_style_train_is_a_verb_with_its_own_checks(tmp_path, capsys):
    import vecgen

    folder = tmp_path / "photos"
    folder.mkdir()
    photo("astronaut", (60, 60)).save(folder / "1.png")
    photo("coffee", (80, 50)).save(folder / "2.tif")  # one suffix list for every training folder
    new, old = tmp_path / "new.safetensors", tmp_path / "old.safetensors"
    flags = [
        "--clip",
        TINY,
        "--content-model",
        TINY,
        "--steps",
        "2",
        "--work-size",
        "32",
        "--crop",
        "32",
        "--batch",
        "2",
        "--crops",
        "2",
        "-q",
    ]
    assert run_cli(capsys, "style-train", folder, "chain mail", "-o", new, *flags)[0] == 0
    assert run_cli(capsys, "style", "--train", folder, "chain mail", "-o", old, *flags)[0] == 0
    (a, meta_a), (b, meta_b) = load_model(new), load_model(old)
    assert meta_a == meta_b and json.loads(meta_a["settings"])["images"] == 2
    for k, v in a.state_dict().items():
        assert torch.equal(v, b.state_dict()[k]), k
    res = vecgen.style_train(
        folder,
        "chain mail",
        clip=TINY,
        content_model=TINY,
        steps=1,
        work_size=32,
        crop=32,
        batch=1,
        crops=2,
        quiet=True,
    )
    assert res.settings["function"] == "style-train" and res.net is not None
    assert vecgen.VERBS["style-train"].function is vecgen.style_train
    bad = [
        (["style-train", folder, "chain mail", "--crop", "64", "--work-size", "32"], "--crop 64 is larger than"),
        (["style-train", folder, "chain mail", "--batch", "1000"], "--batch 1000 is above the limit of 64"),
        (["style-train", folder, "chain mail", "--lr", "-1"], "--lr must be > 0"),
        (["style-train", folder, "chain mail", "-o", tmp_path / "m.png"], "style-train's output"),
        (["style-train", folder, " "], "style-train needs a text"),
        (
            ["style", "--train", folder, "chain mail", "--quality", "draft"],
            "--quality does not apply to vecgen style-train",
        ),
        (["style", "--train", folder, "chain mail", "--tile", "64"], "--tile does not apply"),
        (["style", "--train", folder, "a", "b"], "--train DIR takes one text"),
        (["style", "--train", folder, "chain mail", "--model", new], "two modes"),
    ]
    for argv, needle in bad:
        code, err = run_cli(capsys, *argv, "--clip", TINY, "-q")
        assert code == 2 and needle in err and len(err.strip().splitlines()) == 1, (argv, err)
    with pytest.raises(VecgenError, match="--crop 64 is larger than --work-size 32"):
        vecgen.style_train(folder, "chain mail", crop=64, work_size=32)


def test_fast_mode_refuses_optimization_options_in_the_api(tmp_path):
    import vecgen

    net = tmp_path / "net.safetensors"
    save_model(StyleNet(), net, {"prompt": "x"})
    for kw, needle in (
        (dict(steps=5), "--steps does not apply with --model"),
        (dict(crop_size=64), "--crop-size does not apply with --model"),
        (dict(output=tmp_path / "x.safetensors"), "with --model the output is the stylized .png"),
    ):
        with pytest.raises(VecgenError, match=needle):
            vecgen.style(photo(size=(20, 20)), model=net, **kw)
    assert not (tmp_path / "x.safetensors").exists()


def test_network_memory_is_estimated_before_it_is_built(tmp_path, monkeypatch):
    import vecgen
    from vecgen.api import _run

    monkeypatch.setattr("vecgen.options.available_memory", lambda device=None: 2**20)  # a 1 MiB machine
    monkeypatch.setattr(_run, "load_perceptors", lambda *a, **k: pytest.fail("models loaded"))
    with pytest.raises(VecgenError, match=r"a working copy of 96x64 px \(--work-size 64\) need about .* GiB"):
        vecgen.style(photo(size=(96, 64)), "chain mail", clip=TINY, work_size=64, quiet=True)
    folder = tmp_path / "photos"
    folder.mkdir()
    photo(size=(40, 40)).save(folder / "1.png")
    with pytest.raises(VecgenError, match=r"--batch 64 crops of 1024 px need about 75.0 GiB"):
        vecgen.style_train(folder, "chain mail", clip=TINY, batch=64, crop=1024, work_size=1024, quiet=True)
