"""Tests of ``vecgen edit``: photo preparation, inversion, the three methods, files, CLI, gallery."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import TINY, small_stylegan2
from vecgen import gallery
from vecgen.api import edit
from vecgen.api.edit_invert import crop_box, invert, paste, prepare_photo, psnr, read_photo
from vecgen.api.edit_mapper import train_mapper
from vecgen.backends.generators import StyleGAN2Generator
from vecgen.cli import main
from vecgen.errors import VecgenError
from vecgen.params.mapper import LatentMapper, generator_fingerprint, load_mapper

SHARED = Path(__file__).resolve().parents[2] / "shared"
TAEF2_DIR = SHARED / "weights" / "taef2"
CPU = torch.device("cpu")
needs_taef2 = pytest.mark.skipif(
    not (TAEF2_DIR / "taef2_encoder.pth").is_file(), reason="../shared/weights/taef2 not available"
)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def sg2_file(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("sg2") / "g.pt"
    small_stylegan2(0).save(p)
    return p


@pytest.fixture(scope="module")
def tiny():
    from vecgen.api import load_perceptors

    return load_perceptors(TINY, CPU)


def real_photo(name: str = "chelsea", path: Path | None = None):
    data = pytest.importorskip("skimage.data")
    arr = getattr(data, name)()
    if path is not None:
        Image.fromarray(arr).save(path)
    return torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1)[None].float() / 255


def photo_file(tmp_path: Path, name: str = "chelsea", size=(90, 60)) -> Path:
    """A real photo, made small so the default test run stays fast."""
    data = pytest.importorskip("skimage.data")
    p = tmp_path / f"{name}.png"
    Image.fromarray(getattr(data, name)()).resize(size, Image.BICUBIC).save(p)
    return p


# ----------------------------------------------------------------------------- photo in, edit out
def test_crop_box_and_paste_keep_the_photo_outside_the_box():
    assert crop_box((300, 451), (256, 256)) == (0, 75, 300, 300)  # wide photo: sides trimmed
    assert crop_box((400, 200), (64, 64)) == (100, 0, 200, 200)
    assert crop_box((300, 400), (48, 64)) == (0, 0, 300, 400)  # same aspect: all of it
    photo = torch.rand(1, 3, 30, 50, generator=torch.Generator().manual_seed(0))
    small, box = prepare_photo(photo, (16, 16))
    assert small.shape == (1, 3, 16, 16) and box == (0, 10, 30, 30)
    out = paste(photo, torch.zeros(1, 3, 16, 16), box)
    assert out.shape == photo.shape
    assert torch.equal(out[..., :, :10], photo[..., :, :10]) and torch.equal(out[..., :, 40:], photo[..., :, 40:])
    assert float(out[..., :, 10:40].abs().max()) == 0.0
    # an untouched edit pastes back close to the photo (only the resampling differs)
    assert psnr(paste(photo, small, box), photo) > 10


def test_unreadable_photo_is_one_line(tmp_path):
    bad = tmp_path / "photo.png"
    bad.write_text("not an image")
    for photo in (bad, tmp_path / "missing.jpg"):
        with pytest.raises(VecgenError) as e:
            read_photo(photo)
        assert "\n" not in str(e.value)


@needs_taef2
def test_taef2_inversion_psnr_on_a_real_photo():
    from vecgen.backends.generators import load_taef2
    from vecgen.backends.generators.encoders import load_encoder

    gen = load_taef2(TAEF2_DIR / "taef2_decoder.pth", image_size=(96, 128))
    enc = load_encoder(f"taef2:{TAEF2_DIR / 'taef2_encoder.pth'}")
    target, _ = prepare_photo(real_photo("chelsea"), (96, 128))
    inv = invert(gen, target, encoder=enc, steps=4)
    # measured 128x96 chelsea: encoded 29.2 dB, +4 refinement steps 30.4 dB (256 px: 34.1 / 37.8 after 20);
    # a random decoder gives ~5 dB
    assert inv.encoded_psnr > 27.0
    assert inv.psnr > inv.encoded_psnr + 0.3
    assert inv.latent.shape == (1, 1, 32, 12, 16) and inv.image.shape == target.shape


def test_inversion_by_optimization_reconstructs_a_generator_image():
    gen = small_stylegan2(0)
    with torch.no_grad():
        w = gen.to_w_plus(gen.mapping(gen.sample_latent(1, seed=5)))
        target = gen.synthesize(w)
        mean_psnr = psnr(gen.synthesize(gen.to_w_plus(gen.mean_latent())), target)
    inv = invert(gen, target, steps=60, lr=0.05)
    assert inv.how == "optimize" and inv.latent.shape == (1, gen.n_latent, 32)
    # measured: from the mean latent's 14.7 dB to 24.7 dB in 60 steps
    assert inv.psnr > mean_psnr + 5.0


def test_mismatched_encoder_is_refused(tmp_path):
    from vecgen.backends.generators.encoders import ImageEncoder, check_pair
    from vecgen.backends.generators.script import ScriptGenerator

    gen = ScriptGenerator(torch.nn.Conv2d(16, 3, 1), (16, 4, 4))
    enc = ImageEncoder(torch.nn.Conv2d(3, 8, 8, stride=8), "script", 8, 8)
    with pytest.raises(VecgenError, match="generator/encoder mismatch: .* 8-channel .* takes 16"):
        check_pair(enc, gen)
    with pytest.raises(VecgenError, match="mapping network"):
        check_pair(enc, small_stylegan2())


# ----------------------------------------------------------------------------- method optimize
def test_l2_keeps_the_latent_near_the_inversion(tiny):
    photo = torch.rand(1, 3, 40, 40, generator=torch.Generator().manual_seed(1))
    dist = {}
    for l2 in (0.0, 2.0):
        res = edit(
            "a red circle",
            photo=photo,
            generator=small_stylegan2(0),
            steps=12,
            lr=0.1,
            l2=l2,
            invert_steps=5,
            cutouts=2,
            clip=TINY,
            perceptors=tiny,
            device="cpu",
            quiet=True,
        )
        dist[l2] = res.settings["latent_l2"]
        assert res.image.size == (40, 40)
        assert res.settings["inversion"] == "optimize" and res.settings["inversion_steps"] == 5
        if l2 > 0:
            assert res.history[0]["l2"] == 0.0  # the run starts exactly at the inverted latent
    assert dist[0.0] > 0
    # measured 3.49 without L2, 0.19 with weight 2
    assert dist[2.0] < 0.25 * dist[0.0]


def test_directional_edit_and_callbacks_and_snapshots(tiny, tmp_path):
    seen = []
    res = edit(
        "a red circle",
        source="a blue square",
        photo=torch.rand(1, 3, 32, 32),
        generator=small_stylegan2(0),
        steps=4,
        invert_steps=2,
        clip=TINY,
        perceptors=tiny,
        device="cpu",
        quiet=True,
        callbacks=[lambda step, p, v: seen.append(step)],
        snapshots=tmp_path / "snaps",
        every=2,
    )
    assert seen == [1, 2, 3, 4]
    assert sorted(p.name for p in (tmp_path / "snaps").iterdir()) == ["00002.png", "00004.png"]
    assert any(k.startswith("direction:") for k in res.history[0])
    assert res.settings["source"] == "a blue square"


# ----------------------------------------------------------------------------- method global
class ColourGenerator(StyleGAN2Generator.__mro__[1]):  # the Generator base class
    """Six latent channels, each adding a known colour to a grey 8x8 picture (channel 5 adds nothing)."""

    kind = "colours"
    COLOURS = torch.tensor([[1.0, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 1], [1, 2, 0], [0, 0, 0]])

    def __init__(self) -> None:
        super().__init__()
        self.latent_shape = (6,)
        self.register_buffer("colours", self.COLOURS.clone())

    def sample_latent(self, n, seed, device=None):
        return super().sample_latent(n, seed, device) * 0.01  # near grey: responses are (almost) linear

    def forward(self, z):
        rgb = 0.5 + z @ self.colours  # (B, 3)
        return rgb[:, :, None, None].expand(-1, -1, 8, 8)


class MeanColourPerceptor(torch.nn.Module):
    """Embeds a picture as its unit mean colour offset from grey (plus a constant); texts are colours."""

    name = "mean-colour"
    input_size = 8
    TEXT = {"red": [1.0, 0, 0, 0], "green": [0, 1.0, 0, 0], "blue": [0, 0, 1.0, 0]}

    def encode_image(self, x):
        v = torch.cat([x.mean((2, 3)) - 0.5, torch.full((x.shape[0], 1), 0.05)], 1)
        return torch.nn.functional.normalize(v, dim=-1)

    def encode_text(self, texts):
        return torch.tensor([self.TEXT[t] for t in texts])


def test_global_direction_selects_channels_by_beta(tmp_path):
    from vecgen.api.edit_global import ChannelSpace, global_direction, load_or_compute, text_step

    gen, per = ColourGenerator().eval(), MeanColourPerceptor()
    res = load_or_compute(gen, per, cache=tmp_path, samples=4)
    assert res.responses.shape == (6, 4) and not res.cached
    step = text_step(per, "red", "blue")  # (1, 0, -1, 0) / sqrt 2
    expected = torch.tensor([0.707, 0.5, 0.0, -0.707, 0.316, 0.0])
    for beta, keep in ((0.6, {0, 3}), (0.4, {0, 1, 3}), (0.2, {0, 1, 3, 4})):
        offsets, rel = global_direction(res.responses, res.std, step, beta)
        assert torch.allclose(rel, expected, atol=0.03)
        assert {int(i) for i in torch.nonzero(offsets).flatten()} == keep
    # the kept channels move the picture toward red and away from blue
    space = ChannelSpace(gen)
    offsets, _ = global_direction(res.responses, res.std, step, 0.4)
    img = space.render(torch.zeros(1, 1, 6), offsets * 20)
    r, g, b = (img.mean((0, 2, 3)) - 0.5).tolist()
    assert r > 0.05 and b < 0 and r - b > 0.1
    again = load_or_compute(gen, per, cache=tmp_path, samples=4)  # reused, not recomputed
    assert again.cached and torch.equal(again.responses, res.responses)
    assert len(list(tmp_path.glob("*.safetensors"))) == 1


def test_global_edit_on_stylegan2_style_space(tiny, tmp_path):
    res = edit(
        "a red circle",
        photo=torch.rand(1, 3, 32, 32),
        generator=small_stylegan2(0),
        alpha=3.0,
        beta=0.0,
        global_samples=1,
        global_cache=tmp_path,
        invert_steps=2,
        clip=TINY,
        perceptors=tiny,
        device="cpu",
        quiet=True,
    )
    s = res.settings
    assert s["method"] == "global" and s["channel_space"] == "style"
    # style space: the input channels of the 11 modulated convs (conv1, to_rgb1, 6 convs, 3 toRGBs)
    assert s["channels"] == 16 + 16 + (16 + 16) + (16 + 8) + (8 + 8) + 16 + 8 + 8
    assert s["channels_kept"] == s["channels"] and s["apply_ms"] > 0
    assert psnr(res.edit, res.inversion.image) < 60  # the direction changed the picture
    again = edit(
        "a red circle",
        photo=torch.rand(1, 3, 32, 32),
        generator=small_stylegan2(0),
        alpha=3.0,
        global_samples=1,
        global_cache=tmp_path,
        invert_steps=2,
        clip=TINY,
        perceptors=tiny,
        device="cpu",
        quiet=True,
    )
    assert again.settings["precompute_cached"] is True and again.settings["channels_kept"] < s["channels"]


# ----------------------------------------------------------------------------- method mapper
def test_mapper_starts_as_identity_and_round_trips(tiny, tmp_path):
    m = LatentMapper((32,))
    w = torch.randn(2, 5, 32)
    assert torch.equal(m(w), torch.zeros_like(w))
    photos = [torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(i)) for i in range(3)]
    res = train_mapper(
        "a red circle",
        images=photos,
        generator=small_stylegan2(0),
        steps=4,
        batch=2,
        lr=0.01,
        invert_steps=2,
        cutouts=2,
        clip=TINY,
        perceptors=tiny,
        device="cpu",
        quiet=True,
        output=tmp_path / "m.safetensors",
    )
    assert res.settings["images"] == 3 and len(res.history) == 4
    net, meta = load_mapper(tmp_path / "m.safetensors")
    assert meta["target"] == "a red circle" and meta["generator_kind"] == "stylegan2"
    assert meta["generator_fingerprint"] == generator_fingerprint(small_stylegan2(0))
    w = res.bank[:2]
    assert torch.allclose(net(w), res.mapper(w), atol=1e-6) and float(net(w).abs().max()) > 0  # trained, saved
    out = edit(
        photo=photos[0],
        mapper=tmp_path / "m.safetensors",
        generator=small_stylegan2(0),
        invert_steps=2,
        device="cpu",
        quiet=True,
    )
    assert out.settings["method"] == "mapper" and out.settings["mapper_target"] == "a red circle"
    assert out.settings["apply_ms"] > 0 and out.image.size == (32, 32)
    with pytest.raises(VecgenError, match="mapper trained for another generator"):
        edit(
            photo=photos[0],
            mapper=tmp_path / "m.safetensors",
            generator=small_stylegan2(1),
            invert_steps=1,
            device="cpu",
            quiet=True,
        )


# ----------------------------------------------------------------------------- CLI and gallery
def test_cli_edit_bad_input(sg2_file, tmp_path, capsys):
    photo = photo_file(tmp_path)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG not really")
    cases = [
        ([str(bad), "x", "--generator", f"stylegan2:{sg2_file}"], "cannot read"),
        (
            [str(photo), "x", "--generator", f"stylegan2:{sg2_file}", "--alpha", "2", "--method", "optimize"],
            "--alpha applies to --method global only",
        ),
        (
            [str(photo), "x", "--generator", f"stylegan2:{sg2_file}", "--encoder", "script:/nope.pt"],
            "TorchScript encoder not found",
        ),
        ([str(photo), "--generator", f"stylegan2:{sg2_file}", "--mapper", str(bad)], "cannot read mapper"),
        ([str(photo), "x"], "--generator is required"),
        ([str(photo), "x", "--generator", f"stylegan2:{sg2_file}", "--where", "1,2"], "--where takes X,Y,W,H"),
    ]
    for args, needle in cases:
        assert main(["edit", *args, "-o", str(tmp_path / "o.png"), "-q"]) == 2
        err = capsys.readouterr().err.strip()
        assert needle in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "o.png").exists()


def test_cli_edit_and_train_mapper_end_to_end(sg2_file, tmp_path, capsys):
    photo = photo_file(tmp_path, size=(48, 32))
    out = tmp_path / "edited.png"
    args = ["--generator", f"stylegan2:{sg2_file}", "--clip", TINY, "--invert-steps", "2", "-q"]
    assert main(["edit", str(photo), "a red circle", "--steps", "2", "--cutouts", "2", *args, "-o", str(out)]) == 0
    im = Image.open(out)
    assert im.size == (48, 32)  # the photo's own size
    settings = json.loads(im.text["settings"])
    assert settings["function"] == "edit" and settings["inversion_psnr"] > 0 and "psnr_to_photo" in settings
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("chelsea", "coffee"):
        photo_file(folder, name, size=(32, 32))
    mapper = tmp_path / "m.safetensors"
    assert (
        main(
            [
                "edit",
                "--train-mapper",
                "a red circle",
                "--images",
                str(folder),
                "--steps",
                "2",
                "--cutouts",
                "2",
                *args,
                "-o",
                str(mapper),
            ]
        )
        == 0
    )
    assert mapper.is_file() and mapper.with_suffix(".png").is_file()
    assert main(["edit", str(photo), "--mapper", str(mapper), *args, "-o", str(out)]) == 0
    assert json.loads(Image.open(out).text["settings"])["method"] == "mapper"
    capsys.readouterr()
    # the mapper refuses another generator
    other = tmp_path / "g1.pt"
    small_stylegan2(1).save(other)
    assert (
        main(["edit", str(photo), "--mapper", str(mapper), "--generator", f"stylegan2:{other}", "-q", "-o", str(out)])
        == 2
    )
    assert "mapper trained for another generator" in capsys.readouterr().err


def test_gallery_runs_edit_jobs(sg2_file, tmp_path):
    photo = photo_file(tmp_path, size=(32, 32))
    spec = tmp_path / "edit.toml"
    spec.write_text(
        f'[defaults]\nclip = "{TINY}"\nsteps = 2\ncutouts = 2\n\n[[entry]]\nfunction = "edit"\n'
        f'prompt = "a red circle"\nphoto = "{photo}"\ngenerator = "stylegan2:{sg2_file}"\n'
        f"invert_steps = 2\n"
    )
    s = gallery.run_gallery(spec, tmp_path / "site", progress=False, build=False)
    assert s.done == 1 and set(s.jobs[0]["files"]) == {"png"}
    with pytest.raises(VecgenError, match="edit needs option 'photo'"):
        gallery.parse_spec('[[entry]]\nfunction = "edit"\nprompt = "x"\ngenerator = "taef2"\n', "g.toml")


@needs_taef2
def test_cli_taef2_edit_with_encoder_and_mismatch(tmp_path, capsys):
    photo = photo_file(tmp_path, size=(64, 48))
    out = tmp_path / "o.png"
    assert (
        main(
            [
                "edit",
                str(photo),
                "a red circle",
                "--generator",
                "taef2",
                "--encoder",
                "taef2",
                "--clip",
                TINY,
                "--steps",
                "1",
                "--cutouts",
                "1",
                "--size",
                "32x24",
                "--invert-steps",
                "1",
                "-q",
                "-o",
                str(out),
            ]
        )
        == 0
    )
    s = json.loads(Image.open(out).text["settings"])
    assert Image.open(out).size == (64, 48) and s["inversion"] == "encoder" and s["encoded_psnr"] > 15
    # a TorchScript generator with 16-channel latents cannot take the TAEF2 encoder's 32 channels
    mod = torch.jit.script(torch.nn.Sequential(torch.nn.Upsample(scale_factor=8.0), torch.nn.Conv2d(16, 3, 1)))
    mod.save(str(tmp_path / "g16.pt"))
    capsys.readouterr()
    assert (
        main(
            [
                "edit",
                str(photo),
                "x",
                "--generator",
                f"script:{tmp_path / 'g16.pt'}:16,6,8",
                "--encoder",
                "taef2",
                "-q",
                "-o",
                str(out),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "generator/encoder mismatch" in err and len(err.strip().splitlines()) == 1


# ----------------------------------------------------------------------------- bounds and the mapper verb
@pytest.mark.parametrize(
    "argv, needle",
    [
        (
            ["PHOTO", "x", "--method", "global", "--global-samples", "100000000"],
            "--global-samples 100000000 is above the limit of 4,096",
        ),
        (["PHOTO", "x", "--perceptual", "nan"], "--perceptual must be finite"),
        (["PHOTO", "x", "--perceptual", "-1"], "--perceptual must be >= 0"),
        (["PHOTO", "x", "--lr", "0"], "--lr must be > 0"),
        (["PHOTO", "x", "--invert-lr", "-0.1"], "--invert-lr must be > 0"),
        (["PHOTO", "x", "--invert-steps", "-1"], "--invert-steps must be >= 0"),
        (["PHOTO", "x", "--invert-steps", "100000000"], "--invert-steps 100000000 is above the limit"),
        (["PHOTO", "x", "--beta", "2"], "--beta 2.0 is above the limit of 1"),
        (["PHOTO", "a leopard", "--mapper", "m.safetensors"], "a prompt does not apply to --mapper"),
        (["PHOTO", "--mapper", "m.safetensors", "--steps", "5"], "--steps applies to --method optimize only (mapper"),
        (["PHOTO", "x", "--method", "global", "--steps", "5"], "--steps applies to --method optimize only (global"),
        (["--train-mapper", "x", "--images", "DIR", "--hidden", "10000000"], "--hidden 10000000 is above the limit"),
        (["--train-mapper", "x", "--images", "DIR", "--batch", "0"], "--batch must be >= 1"),
        (["--train-mapper", "x", "--images", "DIR", "--lr", "-1"], "--lr must be > 0"),
    ],
)
def test_edit_bounds_refused_in_one_line_before_any_model_loads(tmp_path, capsys, argv, needle):
    import sys

    photo = tmp_path / "p.png"
    Image.new("RGB", (32, 32)).save(photo)
    argv = [str(photo) if a == "PHOTO" else str(tmp_path) if a == "DIR" else a for a in argv]
    out = tmp_path / ("m.safetensors" if "--train-mapper" in argv else "o.png")
    before = set(sys.modules)
    assert main(["edit", *argv, "--generator", "stylegan2:/nope.pt", "--clip", TINY, "-q", "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1 and "internal error" not in err, err
    assert not out.exists()
    assert not any(m.startswith("vecgen.backends.generators") for m in set(sys.modules) - before)  # no model loaded


def test_edit_mapper_verb_same_limits_and_required_options(tmp_path, capsys):
    for argv, needle in [
        (
            ["x", "--images", str(tmp_path), "--hidden", "5000", "--generator", "taef2"],
            "--hidden 5000 is above the limit of 4,096",
        ),
        (["x", "--images", str(tmp_path)], "--generator is required"),
        (["x", "--generator", "taef2"], "--images is required"),
    ]:
        assert main(["edit-mapper", *argv, "-q", "-o", str(tmp_path / "m.safetensors")]) == 2
        err = capsys.readouterr().err.strip()
        assert needle in err and len(err.splitlines()) == 1, err


def test_global_bank_memory_estimate_refuses_what_cannot_fit(monkeypatch):
    edit_mod = __import__("importlib").import_module("vecgen.api.edit")
    gen = small_stylegan2(1)
    monkeypatch.setattr(edit_mod, "available_memory", lambda device=None: 10 * 2**20)  # a 10 MiB machine
    with pytest.raises(VecgenError, match=r"--global-samples 4096: the latent bank needs about"):
        edit_mod.check_bank_memory(gen, 4096, CPU)
    edit_mod.check_bank_memory(gen, 8, CPU)  # the default fits


def test_edit_mapper_verb_writes_the_mapper_and_its_grid(sg2_file, tmp_path, tiny, monkeypatch):
    import vecgen
    from vecgen.api import VERBS

    mapper_mod = __import__("importlib").import_module("vecgen.api.edit_mapper")
    assert vecgen.edit_mapper is train_mapper and VERBS["edit-mapper"].function is train_mapper
    folder = tmp_path / "photos"
    folder.mkdir()
    photo_file(folder, "chelsea", size=(32, 32))
    out = tmp_path / "m.safetensors"
    assert VERBS["edit-mapper"].files(out, {}) == [str(out.with_suffix(".png")), str(out)]
    assert (
        main(
            [
                "edit-mapper",
                "a red circle",
                "--images",
                str(folder),
                "--generator",
                f"stylegan2:{sg2_file}",
                "--clip",
                TINY,
                "--steps",
                "1",
                "--cutouts",
                "1",
                "--invert-steps",
                "1",
                "-q",
                "-o",
                str(out),
            ]
        )
        == 0
    )
    assert out.is_file() and out.with_suffix(".png").is_file()
    # the memory estimate of a mapper refuses, after the inversions and before the mapper is built
    monkeypatch.setattr(mapper_mod, "available_memory", lambda device=None: 2**10)
    with pytest.raises(VecgenError, match="needs about"):
        vecgen.edit_mapper(
            "x",
            images=folder,
            generator=small_stylegan2(0),
            invert_steps=1,
            steps=1,
            clip=TINY,
            perceptors=tiny,
            device="cpu",
            quiet=True,
        )


# ----------------------------------------------------------------------------- keeping the photo, locality
def test_residual_paste_keeps_unchanged_pixels_within_one_level():
    from vecgen.api.edit_mask import residual_paste

    g = torch.Generator().manual_seed(3)
    photo = torch.rand(1, 3, 120, 160, generator=g)
    base = torch.rand(1, 3, 30, 40, generator=g)  # the inversion: nothing like the photo, as it happens
    edited = base.clone()
    edited[..., 5:12, 8:20] = (edited[..., 5:12, 8:20] + 0.4).clamp(0, 1)  # a change in one block only
    box = (0, 0, 120, 160)
    out = residual_paste(photo, base, edited, box)
    assert out.shape == photo.shape and float(out.min()) >= 0 and float(out.max()) <= 1
    # upsampled x4 (bilinear): the block covers photo rows 20..48, columns 32..80, plus a 2-pixel fringe
    far = torch.ones(1, 1, 120, 160, dtype=torch.bool)
    far[..., 17:51, 29:83] = False
    assert float((out - photo).abs().amax(1, keepdim=True)[far].max()) <= 1 / 255
    assert float((out - photo)[..., 24:44, 36:76].mean()) > 0.2  # the change itself did arrive
    # no change at all: exactly the photo (the old paste replaced it with the blurry inversion: ~8 dB here)
    assert torch.equal(residual_paste(photo, base, base, box), photo)
    assert psnr(paste(photo, base, box), photo) < 15
    # a crop box: outside it the photo is untouched, inside the change lands where it belongs
    out = residual_paste(photo, base, edited, (10, 20, 60, 80))
    assert torch.equal(out[..., :10, :], photo[..., :10, :]) and torch.equal(out[..., :, 100:], photo[..., :, 100:])


def test_locality_figures_on_a_synthetic_edit():
    import math

    from vecgen.api.edit_mask import box_mask, locality

    photo = torch.full((1, 3, 20, 30), 0.5)
    result = photo.clone()
    result[..., 2:12, 4:14] += 0.1  # 100 pixels x 3 channels inside the region
    result[..., 15:20, 25:30] -= 0.05  # 25 pixels outside it
    region = box_mask((20, 30), (2, 0, 15, 14)).bool()  # x 2..17, y 0..14: holds the first block
    assert int(region.sum()) == 15 * 14
    got = locality(photo, result, region)
    assert got["change_inside"] == pytest.approx(100 * 0.1 / (100 * 0.1 + 25 * 0.05), abs=1e-4)
    mse = 25 * 0.05**2 / (600 - 210)
    assert got["psnr_outside"] == pytest.approx(10 * math.log10(1 / mse), abs=0.01)
    assert locality(photo, photo, region) == {"change_inside": None, "psnr_outside": 120.0}


def test_where_boxes_and_masks():
    from vecgen.api.edit_mask import box_in_crop, box_mask, parse_where, shape_mask

    assert parse_where(None, (300, 400)) == "auto" and parse_where(" All ", (300, 400)) == "all"
    assert parse_where("10,20,100,50", (300, 400)) == (10, 20, 100, 50)
    assert parse_where("-10,250,100,100", (300, 400)) == (0, 250, 90, 50)  # clipped to the photo
    for bad in ("1,2,3", "a,b,c,d", "0,0,0,5", "500,0,10,10"):
        with pytest.raises(VecgenError) as e:
            parse_where(bad, (300, 400))
        assert "\n" not in str(e.value) and "--where" in str(e.value)
    # photo 300x400 cropped to (0, 50, 300, 300), generator 150x150: the box halves and shifts
    assert box_in_crop((50, 0, 100, 300), (0, 50, 300, 300), (150, 150)) == (0.0, 0.0, 50.0, 150.0)
    m = box_mask((10, 10), (2, 2, 6, 6), feather=2.0)
    assert float(m[0, 0, 0, 0]) == 0 and float(m[0, 0, 5, 5]) == 1 and 0 < float(m[0, 0, 2, 5]) < 1
    cam = torch.tensor([0.0, 0.2, 0.35, 0.5, 1.0]).reshape(1, 1, 1, 5)
    assert shape_mask(cam).flatten().tolist() == pytest.approx([0, 0, 0.5, 1, 1])


def test_occlusion_saliency_finds_the_coloured_subject():
    from vecgen.api.edit_mask import saliency

    img = torch.full((1, 3, 48, 64), 0.5)
    img[..., 8:24, 40:56] = torch.tensor([0.9, 0.2, 0.2]).view(1, 3, 1, 1)  # a red square on grey
    cam, how = saliency([(MeanColourPerceptor(), 1.0)], img)
    assert how == "occlusion:mean-colour" and cam.shape == (1, 1, 48, 64)
    assert float(cam[..., 8:24, 40:56].mean()) > 5 * float(cam[..., 30:, :30].mean())


def test_grad_cam_of_a_real_classifier_lies_on_the_subject():
    from vecgen.api.edit_mask import grad_cam

    try:
        import vecgen

        clf = vecgen.load_perceptor("efficientnet-lite0")
    except VecgenError:
        pytest.skip("efficientnet-lite0 weights not installed")
    photo = real_photo("coffee")  # 600x400: the cup (x 170..410, y 15..310) on a saucer on a table
    small, _ = prepare_photo(photo, (128, 192))
    cam, cls = grad_cam(clf, small)
    assert cls == clf.class_index("espresso") and cam.shape == (1, 1, 128, 192)
    cup = torch.zeros(1, 1, 128, 192, dtype=torch.bool)
    cup[..., 5:100, 54:131] = True
    # measured at 192x128: mean map 0.64 on the cup, 0.28 elsewhere (a map blind to the cup gives a ratio ~1)
    assert float(cam[cup].mean()) > 1.8 * float(cam[~cup].mean())


def test_edit_where_box_changes_only_the_box(tiny):
    photo = torch.rand(1, 3, 40, 40, generator=torch.Generator().manual_seed(2))
    res = edit(
        "a red circle",
        photo=photo,
        generator=small_stylegan2(0),
        steps=6,
        lr=0.2,
        l2=0.0,
        invert_steps=3,
        cutouts=2,
        clip=TINY,
        perceptors=tiny,
        device="cpu",
        quiet=True,
        where="0,0,20,40",
    )
    s = res.settings
    assert s["mask"] == "box" and s["where"] == [0, 0, 20, 40] and 0.4 < s["mask_area"] < 0.5
    out = torch.from_numpy(np.array(res.image)).permute(2, 0, 1)[None].float() / 255
    right = (out - photo)[..., :, 22:].abs()
    assert float(right.max()) <= 1.5 / 255  # 8-bit PNG rounding on top of a zero change
    assert float((out - photo)[..., :, :18].abs().mean()) > 0.01  # the edit happened, on the left
    assert s["change_inside"] > 0.95 and s["psnr_outside"] > 45
    with pytest.raises(VecgenError, match="--where"):
        edit(
            "x",
            photo=photo,
            generator=small_stylegan2(0),
            clip=TINY,
            perceptors=tiny,
            device="cpu",
            quiet=True,
            where="1,2,3",
        )
