"""Tests of StyleGAN-NADA: directional loss, GeneratorWeights, ``adapt`` and ``vecgen adapt``."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from conftest import TINY, small_stylegan2
from vecgen.api import adapt
from vecgen.backends.generators import load_generator
from vecgen.backends.generators.base import Generator
from vecgen.cli import main
from vecgen.engine import optimize
from vecgen.errors import VecgenError
from vecgen.losses import DirectionalClipTerm, text_distance
from vecgen.objective import Context, Objective
from vecgen.params.base import Parameterization
from vecgen.params.generator_weights import ADAPT_LR, GeneratorWeights, default_adapt_lr

SHARED = Path(__file__).resolve().parents[2] / "shared"
TAEF2_DECODER = SHARED / "weights" / "taef2" / "taef2_decoder.pth"
CPU = torch.device("cpu")
TERM = f"direction:{TINY}"

needs_taef2 = pytest.mark.skipif(not TAEF2_DECODER.is_file(), reason="../shared/weights/taef2 not available")


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tiny():
    from vecgen.api import load_perceptors

    return load_perceptors(TINY, CPU)


def snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def changed_keys(module: torch.nn.Module, before: dict[str, torch.Tensor]) -> set[str]:
    return {k for k, v in module.state_dict().items() if not torch.equal(v, before[k])}


def make_param(gen, perceptor, **kw) -> GeneratorWeights:
    def probe(images):
        return text_distance(perceptor, ["pencil sketch"], images)

    return GeneratorWeights(gen, probe=probe, **kw)


# ----------------------------------------------------------------------------- the loss
def test_directional_term(tiny):
    perceptor = tiny[0][0]
    img = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    ref = img.clone()
    term = DirectionalClipTerm(perceptor, "photo", "pencil sketch", reference=lambda: ref)
    x = img.clone().requires_grad_(True)
    loss = term(Context(x, None))
    assert (
        abs(float(loss.detach()) - 1.0) < 1e-5
    )  # identical renders: no step, loss 1 (not NaN; float noise varies with threads)
    loss.backward()
    assert torch.isfinite(x.grad).all() and float(x.grad.abs().sum()) > 0
    # a render moved along the gradient scores better
    with torch.no_grad():
        moved = img - 0.5 * x.grad / x.grad.abs().max()
        assert float(term(Context(moved, None))) < 1.0
    with pytest.raises(VecgenError):
        DirectionalClipTerm(perceptor, "", "x", reference=lambda: ref)
    same = DirectionalClipTerm(perceptor, "photo", "photo", reference=lambda: ref)
    with pytest.raises(VecgenError, match="same"):
        same(Context(img, None))


# ----------------------------------------------------------------------------- StyleGAN2
def test_layer_table_matches_wplus(tiny):
    p = make_param(small_stylegan2(), tiny[0][0], layers_k=3)
    assert isinstance(p, Parameterization)
    assert p.mode == "wplus"
    assert len(p.layer_names) == p.frozen.n_latent == 8
    assert p.layer_names[:4] == ["w0:conv1", "w1:to_rgb1+convs.0", "w2:convs.1", "w3:to_rgbs.0+convs.2"]
    names = {id(t): n for n, t in p.trained.named_parameters()}
    trainable = {names[id(t)] for t in p.parameters()}
    assert not any(n.startswith("style.") for n in trainable)  # mapping stays frozen
    assert "input.input" not in trainable
    assert len(trainable) == len(p.parameters())


def test_nada_stylegan2_selected_layers_only(tiny):
    gen = small_stylegan2()
    frozen_before = snapshot(gen)
    p = make_param(gen, tiny[0][0], layers_k=2, batch=2, lr=0.01)
    term = DirectionalClipTerm(tiny[0][0], "photo", "pencil sketch", reference=lambda: p.frozen_image)
    objective = Objective([term])
    names = {id(t): n for n, t in p.trained.named_parameters()}
    per_step = []

    def record(step, param, values):
        per_step.append(list(param.selected))

    before = snapshot(p.trained)
    state = optimize(p, objective, 1, callbacks=[record], progress=False)
    assert len(state.history) == 1 and len(per_step[0]) == 2
    allowed = {names[id(t)] for i in per_step[0] for t in p._layer_params[i]}
    moved = changed_keys(p.trained, before)
    assert moved and moved <= allowed  # one step: only the two chosen layers change
    assert p.last_scores is not None and p.last_scores.shape == (8,)
    assert set(torch.argsort(-p.last_scores)[:2].tolist()) == set(per_step[0])
    assert not changed_keys(gen, frozen_before)  # the frozen copy is untouched
    assert p.frozen is gen and p.trained is not gen


def test_adapt_stylegan2_loss_decreases(tiny, tmp_path):
    gen = small_stylegan2()
    frozen_before = snapshot(gen)
    trained_start = snapshot(gen)
    res = adapt(
        "photo",
        "pencil sketch",
        generator=gen,
        steps=20,
        layers_k=3,
        lr=0.01,
        device="cpu",
        quiet=True,
        perceptors=tiny,
        output=tmp_path / "a.pt",
        grid=tmp_path / "a.png",
    )
    h = [v[TERM] for v in res.history]
    assert h[0] == pytest.approx(1.0, abs=1e-4)
    assert sum(h[-5:]) / 5 < sum(h[:5]) / 5 - 0.02, h
    p = res.param
    # layers never selected never changed; the mapping never changes; the frozen copy is intact
    names = {id(t): n for n, t in p.trained.named_parameters()}
    never = {names[id(t)] for i, c in enumerate(p.selection_counts.tolist()) if c == 0 for t in p._layer_params[i]}
    moved = changed_keys(p.trained, trained_start)
    assert moved and not (moved & never)
    assert not any(k.startswith("style.") for k in moved)
    assert not changed_keys(gen, frozen_before)
    assert int(p.selection_counts.sum()) == 20 * 3
    # outputs: a weights-only loadable generator equal to the trained copy, and a 2-row grid
    state = torch.load(tmp_path / "a.pt", weights_only=True)
    assert state["vecgen"]["target"] == "pencil sketch"
    again = load_generator(f"stylegan2:{tmp_path / 'a.pt'}")
    for k, v in p.trained.state_dict().items():
        assert torch.equal(again.state_dict()[k], v), k
    from PIL import Image

    with Image.open(tmp_path / "a.png") as im:
        assert im.size == (4 * 32, 2 * 32)
    assert res.image.size == (4 * 32, 2 * 32)


def test_adapt_checkpoint_resume(tiny, tmp_path):
    ck = tmp_path / "ck.pt"
    a = adapt(
        "photo",
        "sketch",
        generator=small_stylegan2(),
        steps=3,
        layers_k=2,
        device="cpu",
        quiet=True,
        perceptors=tiny,
        checkpoint=ck,
    )
    b = adapt(
        "photo",
        "sketch",
        generator=small_stylegan2(),
        steps=4,
        layers_k=2,
        device="cpu",
        quiet=True,
        perceptors=tiny,
        resume=ck,
    )
    assert len(b.history) == 4 and b.history[:3] == a.history
    assert b.param.step == 4


def test_adapt_bad_input(tiny):
    kw = dict(generator=small_stylegan2(), steps=1, device="cpu", quiet=True, perceptors=tiny)
    with pytest.raises(VecgenError, match="same"):
        adapt("photo", "photo", **kw)
    with pytest.raises(VecgenError, match="--source"):
        adapt("", "x", **kw)
    with pytest.raises(VecgenError, match="layers-k"):
        adapt("a", "b", layers_k=0, **kw)
    with pytest.raises(VecgenError, match=".pt"):
        adapt("a", "b", output="x.png", **kw)


# ----------------------------------------------------------------------------- TAEF2 (no W+)
@needs_taef2
def test_nada_taef2_gradient_selection(tiny):
    gen = load_generator("taef2", image_size=32)
    frozen_before = snapshot(gen)
    p = make_param(gen, tiny[0][0], layers_k=3, batch=1, lr=0.002)
    assert p.mode == "grad" and len(p.layer_names) == 15 and p.layer_names[0] == "decoder.1"
    term = DirectionalClipTerm(tiny[0][0], "photo", "pencil sketch", reference=lambda: p.frozen_image)
    start = snapshot(p.trained)
    selections = []
    state = optimize(
        p, Objective([term]), 4, progress=False, callbacks=[lambda s, prm, v: selections.append(list(prm.selected))]
    )
    h = [v[term.name] for v in state.history]
    assert h[0] == pytest.approx(1.0, abs=1e-4) and min(h[1:]) < 1.0
    assert p.last_scores.shape == (15,)
    used = {i for sel in selections for i in sel}
    allowed = {p.layer_names[i] for i in used}
    moved = changed_keys(p.trained, start)
    assert moved and {".".join(k.split(".")[:2]) for k in moved} <= allowed
    assert not changed_keys(gen, frozen_before)
    # the saved decoder loads back as a TAEF2 generator
    import io

    buf = io.BytesIO()
    torch.save(p.generator_state({"target": "pencil sketch"}), buf)
    buf.seek(0)
    state_dict = torch.load(buf, weights_only=True)["state_dict"]
    assert set(state_dict) == set(gen.decoder.state_dict())


# ----------------------------------------------------------------------------- default lr
class _Toy(Generator):
    """A weight-only generator whose conv weights have RMS ``scale`` (no adapt_lr of its own)."""

    kind = "toy"

    def __init__(self, scale: float = 0.05) -> None:
        super().__init__()
        self.latent_shape = (4, 8, 8)
        self.decoder = torch.nn.Sequential(torch.nn.Conv2d(4, 8, 3, padding=1), torch.nn.Conv2d(8, 3, 3, padding=1))
        with torch.no_grad():
            for m in self.decoder:
                m.weight.copy_(torch.sign(torch.randn_like(m.weight)) * scale)
                m.bias.zero_()
        self.requires_grad_(False)

    def forward(self, latent):
        return torch.sigmoid(self.decoder(latent))


def test_default_lr_per_generator():
    assert GeneratorWeights(small_stylegan2()).lr == 0.002  # NADA's value for StyleGAN2, kept
    assert GeneratorWeights(small_stylegan2()).lr_source == "stylegan2"
    assert ADAPT_LR["taef2"] == pytest.approx(1e-4)
    assert GeneratorWeights(small_stylegan2(), lr=0.01).lr == 0.01  # a given lr wins
    toy = _Toy(0.05)
    p = GeneratorWeights(toy)
    assert p.lr == pytest.approx(0.002 * 0.05) and p.lr_source == "weight scale"
    toy.adapt_lr = 3e-4  # a generator may declare its own
    assert default_adapt_lr(toy) == (3e-4, "generator")
    assert GeneratorWeights(toy).lr == 3e-4
    for bad in (0, -1.0, float("nan")):
        with pytest.raises(VecgenError, match="--lr"):
            GeneratorWeights(toy, lr=bad)


def test_adapt_records_resolved_lr(tiny):
    res = adapt(
        "photo", "sketch", generator=small_stylegan2(), steps=1, layers_k=1, device="cpu", quiet=True, perceptors=tiny
    )
    assert res.settings["lr"] == 0.002
    res = adapt("photo", "sketch", generator=_Toy(0.05), steps=1, device="cpu", quiet=True, perceptors=tiny)
    assert res.settings["lr"] == pytest.approx(1e-4)


def _image_stats(images: torch.Tensor) -> tuple[float, float, torch.Tensor]:
    """Mean, mean per-image per-channel spatial std, per-channel means of ``(B, 3, H, W)``."""
    return float(images.mean()), float(images.flatten(2).std(-1).mean()), images.mean((0, 2, 3))


def _assert_natural(frozen: torch.Tensor, adapted: torch.Tensor, what: str) -> None:
    """``adapted`` still looks like ``frozen``'s images: no noise burst, no flat/black/magenta collapse."""
    f_mean, f_std, f_chan = _image_stats(frozen)
    a_mean, a_std, a_chan = _image_stats(adapted)
    psnr = -10 * math.log10(max(float((frozen - adapted).pow(2).mean()), 1e-12))
    said = (
        f"{what}: frozen mean/std {f_mean:.3f}/{f_std:.3f}, adapted {a_mean:.3f}/{a_std:.3f}, "
        f"channels {a_chan.tolist()} vs {f_chan.tolist()}, PSNR {psnr:.1f} dB"
    )
    assert 0.15 < a_mean < 0.85, said
    assert f_std / 2 < a_std < 2 * f_std, said
    assert float((a_chan - f_chan).abs().max()) < 0.1, said  # no colour cast
    assert psnr > 20, said


@needs_taef2
def test_adapt_taef2_defaults_do_not_collapse(tiny, tmp_path):
    """The pretrained TAEF2 decoder at adapt's defaults (issue: lr 0.002 gave magenta noise after 1 step, then
    black/flat colour; ``vecgen generate`` with the saved .pt drew black). Small size and steps for CPU."""
    out = tmp_path / "sketch.pt"
    res = adapt(
        "photo",
        "pencil sketch",
        generator=f"taef2:{TAEF2_DECODER}",
        steps=5,
        size="32x32",
        device="cpu",
        quiet=True,
        perceptors=tiny,
        output=out,
    )
    assert res.settings["lr"] == pytest.approx(ADAPT_LR["taef2"])
    h = [v[TERM] for v in res.history]
    assert h[0] == pytest.approx(1.0, abs=1e-4) and min(h[1:]) < 0.9, h  # it still adapts
    grid = res.param.grid(4, seed=12345)  # (1, 3, 2H, 4W): frozen row over adapted row
    rows = grid[0].reshape(3, 2, 32, 4, 32).permute(1, 3, 0, 2, 4)  # (row, sample, 3, H, W)
    frozen, adapted = rows[0], rows[1]
    assert float((frozen - adapted).abs().max()) > 0.01  # the images moved
    _assert_natural(frozen, adapted, "adapted grid")
    # the saved generator draws the same natural images (the issue: `generate` with it drew black)
    again = load_generator(f"taef2:{out}", image_size=32)
    z = again.sample_latent(4, 7)
    with torch.no_grad():
        drawn, ref = again(z), res.param.trained(z)
    assert torch.allclose(drawn, ref, atol=1e-5)
    with torch.no_grad():
        _assert_natural(res.param.frozen(z), drawn, "saved generator")


# ----------------------------------------------------------------------------- CLI
@pytest.fixture(scope="module")
def sg2_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("gen") / "sg2.pt"
    small_stylegan2().save(path)
    return path


def test_cli_adapt_end_to_end(sg2_file, tmp_path, capsys):
    out = tmp_path / "adapted.pt"
    rc = main(
        [
            "adapt",
            "--generator",
            f"stylegan2:{sg2_file}",
            "--source",
            "photo",
            "--target",
            "pencil sketch",
            "--clip",
            TINY,
            "--steps",
            "3",
            "--layers-k",
            "2",
            "-o",
            str(out),
            "-q",
        ]
    )
    assert rc == 0
    lines = capsys.readouterr().out.split()
    assert lines == [str(out.with_suffix(".png")), str(out)]  # companions first, the main output last
    assert out.is_file() and out.with_suffix(".png").is_file()
    state = torch.load(out, weights_only=True)
    assert "g_ema" in state and state["vecgen"]["steps"] == "3"
    # the adapted file is itself a generator spec
    rc = main(
        [
            "generate",
            "a red circle",
            "--generator",
            f"stylegan2:{out}",
            "--clip",
            TINY,
            "--steps",
            "1",
            "-o",
            str(tmp_path / "g.png"),
            "-q",
        ]
    )
    assert rc == 0


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--generator", "stylegan2:/nonexistent/gen.pt", "--source", "a", "--target", "b"], "not found"),
        (["--generator", "GEN", "--target", "b"], "--source is required"),
        (["--generator", "GEN", "--source", "a", "--target", "b", "-o", "x.png"], ".pt"),
        (
            ["--generator", "GEN", "--source", "a", "--target", "b", "--cutouts", "4"],
            "unrecognized arguments: --cutouts",
        ),
        (["--source", "a", "--target", "b"], "--generator is required"),
        (["--generator", "GEN", "--source", "a", "--target", "b", "--layers-k", "x"], "invalid int"),
    ],
)
def test_cli_adapt_bad_input(sg2_file, tmp_path, capsys, args, needle):
    args = [a.replace("GEN", f"stylegan2:{sg2_file}") for a in args]
    if "-o" not in args:
        args += ["-o", str(tmp_path / "o.pt")]
    rc = main(["adapt", "--clip", TINY, "--steps", "1", "-q"] + args)
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert len(err.splitlines()) == 1 and needle in err, err


# ----------------------------------------------------------------------------- bounds and cross checks
def _no_model(*args, **kwargs):
    raise AssertionError("a model was loaded before the options were checked")


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--batch", "100"], "--batch 100 is above the limit of 64"),
        (["--batch", "0"], "--batch must be >= 1"),
        (["--grid-samples", "100"], "--grid-samples 100 is above the limit of 64"),
        (["--layers-k", "0"], "--layers-k must be >= 1"),
        (["--probe-steps", "0"], "--probe-steps must be >= 1"),
        (["--probe-steps", "5000"], "--probe-steps 5000 is above the limit"),
        (["--lr", "-1"], "--lr must be > 0"),
        (["--truncation", "-1"], "--truncation must be >= 0"),
        (["--truncation", "nan"], "--truncation must be finite"),
        (["--steps", "0"], "--steps must be >= 1"),
        (["--every", "0"], "--every must be >= 1"),
        (["--grid", "g.jpg"], "the grid is written as .png"),
        (["--target", "photo "], "--source and --target are the same text"),
        (["--source", " "], "adapt needs a non-empty --source text"),
    ],
)
def test_cli_adapt_bounds_refused_before_any_model_loads(args, needle, tmp_path, capsys, monkeypatch):
    from vecgen.backends import generators, perceptors

    monkeypatch.setattr(perceptors, "load_perceptor", _no_model)
    monkeypatch.setattr(generators, "load_generator", _no_model)
    out = tmp_path / "o.pt"
    rc = main(
        [
            "adapt",
            "--generator",
            "stylegan2:whatever.pt",
            "--source",
            "photo",
            "--target",
            "sketch",
            "--clip",
            TINY,
            "--steps",
            "1",
            "-q",
            "-o",
            str(out),
            *args,
        ]
    )
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and needle in err, err
    assert not out.exists() and not out.with_suffix(".png").exists()


def test_api_adapt_config():
    """source and target stay positional, generator keyword-only without a default, as before."""
    import inspect

    params = inspect.signature(adapt).parameters
    assert list(params)[:3] == ["source", "target", "generator"]
    assert params["source"].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    assert params["generator"].kind is inspect.Parameter.KEYWORD_ONLY
    assert params["generator"].default is inspect.Parameter.empty
    with pytest.raises(VecgenError, match="--generator is required"):
        adapt("photo", "sketch", generator=None)
    with pytest.raises(VecgenError, match="the adapted generator is written as .pt"):
        adapt("photo", "sketch", generator="taef2", output="x.png")
    with pytest.raises(TypeError, match="cutouts"):  # no views in adapt: the term sees whole renders
        adapt("photo", "sketch", generator="taef2", cutouts=2)
