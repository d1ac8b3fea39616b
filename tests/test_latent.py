"""Tests of the generator-latent parameterization, FuseDream start, ``generate`` and ``vecgen generate``."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import pytest
import torch

from conftest import TINY, small_stylegan2
from vecgen.api import generate, run
from vecgen.backends.generators import StyleGAN2Generator, load_generator
from vecgen.cli import main
from vecgen.errors import VecgenError
from vecgen.losses import ClipTerm, LatentL2, score_images
from vecgen.objective import Context, FnTerm
from vecgen.params.base import Parameterization
from vecgen.params.latent import Latent, lr_ramp
from vecgen.prompts import parse_prompts

SHARED = Path(__file__).resolve().parents[2] / "shared"
TAEF2_DECODER = SHARED / "weights" / "taef2" / "taef2_decoder.pth"
MINI_WEIGHTS = Path(__file__).resolve().parents[1] / "vecgen" / "backends" / "perceptors" / "weights"
CPU = torch.device("cpu")

needs_taef2 = pytest.mark.skipif(not TAEF2_DECODER.is_file(), reason="../shared/weights/taef2 not available")


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def sg2() -> StyleGAN2Generator:
    return small_stylegan2()


@pytest.fixture(scope="module")
def tiny():
    from vecgen.api import load_perceptors

    return load_perceptors(TINY, CPU)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return -10.0 * math.log10(max(float(((a - b) ** 2).mean()), 1e-12))


# ----------------------------------------------------------------------------- spaces
def test_protocol_and_shapes(sg2):
    shapes = {"z": (1, 32), "w": (1, 32), "wplus": (1, sg2.n_latent, 32)}
    for space, shape in shapes.items():
        p = Latent(sg2, space=space, seed=3)
        assert isinstance(p, Parameterization)
        assert tuple(p.latent().shape) == shape
        assert [g["name"] for g in p.param_groups()] == [f"latent_{space}"]
        img = p.render()
        assert img.shape == (1, 3, 32, 32) and img.requires_grad
        assert 0 <= float(img.detach().min()) and float(img.detach().max()) <= 1


def test_z_w_wplus_render_the_same_start(sg2):
    """Same seed: z renders G(z); w is mapping(z); W+ starts with identical rows and renders exactly as w."""
    z0 = sg2.sample_latent(1, 5)
    with torch.no_grad():
        ref = sg2(z0)
        pz, pw, pp = (Latent(sg2, space=s, seed=5) for s in ("z", "w", "wplus"))
        assert torch.equal(pz.latent(), z0)
        assert torch.allclose(pw.latent(), sg2.mapping(z0))
        rows = pp.latent()[0]
        assert torch.equal(rows, rows[:1].expand_as(rows))  # identical rows
        assert torch.allclose(rows[0], pw.latent()[0])
        for p in (pz, pw, pp):
            assert torch.allclose(p.render(), ref, atol=1e-6)


def test_wplus_with_identical_rows_equals_w(sg2):
    w = torch.randn(1, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        a = Latent(sg2, space="w", init=w).render()
        pp = Latent(sg2, space="wplus", init=sg2.to_w_plus(w))
        b = pp.render()
    assert torch.equal(a, b)
    assert torch.equal(pp.latent()[0], w.expand(sg2.n_latent, 32))


def test_wplus_rows_move_independently(sg2):
    p = Latent(sg2, space="wplus", seed=0)
    (p.render() ** 2).mean().backward()
    g = p.value.grad[0]
    assert g.shape == (sg2.n_latent, 32)
    assert not torch.allclose(g[0], g[-1])  # per-layer gradients differ


def test_bad_init_shape_and_space(sg2):
    with pytest.raises(VecgenError, match="shape"):
        Latent(sg2, space="wplus", init=torch.zeros(1, 3, 32))
    with pytest.raises(VecgenError, match="--space"):
        Latent(sg2, space="s")
    with pytest.raises(VecgenError, match="truncation"):
        Latent(sg2, truncation=-1)


# ----------------------------------------------------------------------------- truncation
def test_truncation(sg2):
    mean = sg2.mean_latent()
    with torch.no_grad():
        # w space: truncation applies to the start
        for psi in (0.0, 0.5):
            p = Latent(sg2, space="w", seed=2, truncation=psi)
            w = sg2.mapping(sg2.sample_latent(1, 2))
            assert torch.allclose(p.latent(), mean + psi * (w - mean), atol=1e-6)
        a = Latent(sg2, space="wplus", seed=1, truncation=0.0).render()
        b = Latent(sg2, space="wplus", seed=2, truncation=0.0).render()
        assert torch.allclose(a, b, atol=1e-6)  # psi = 0: every seed gives the mean image
        # z space: truncation applies at every render, as StyleGAN2's own forward does
        z = sg2.sample_latent(1, 4)
        pz = Latent(sg2, space="z", seed=4, truncation=0.7)
        assert torch.allclose(pz.render(), sg2(z, truncation=0.7), atol=1e-6)
        assert Latent(sg2, space="w", init="mean").latent().allclose(mean)


# ----------------------------------------------------------------------------- lr ramp, L2, state
def test_lr_ramp_shape_and_engine_schedule(sg2):
    from vecgen.engine import StopRun, optimize
    from vecgen.objective import Objective

    steps = 100
    f = [lr_ramp(i, steps) for i in range(steps)]
    assert 0 < f[0] < 0.2 and 0 < f[-1] < 0.05
    assert max(f) == 1.0 and f[50] == 1.0
    assert all(a <= b + 1e-12 for a, b in zip(f[:5], f[1:6]))  # warm-up rises
    assert all(a >= b - 1e-12 for a, b in zip(f[80:], f[81:]))  # cosine decay falls
    p = Latent(sg2, space="w", seed=0, steps=steps)
    assert p.param_groups()[0]["schedule"](3, steps) == f[3]  # the ramp is the group's lr schedule
    before = p.value.detach().clone()
    seen = []

    def first_step(step, param, values):
        seen.append(param.value.detach().clone())
        raise StopRun  # a callback may end the run; the engine keeps the result

    state = optimize(p, Objective([FnTerm("sum", lambda im: im.sum())]), 4, callbacks=[first_step], progress=False)
    assert state.interrupted and state.step == 1 and p.step == 1
    moved = (seen[0] - before).abs()
    # Adam's first step is lr * sign(grad): the engine ran it at lr * ramp(0 of 4 steps)
    assert torch.allclose(moved[moved > 0], torch.full_like(moved[moved > 0], 0.1 * lr_ramp(0, 4)), rtol=1e-3)


def test_l2_term(sg2):
    p = Latent(sg2, space="wplus", seed=0)
    term = LatentL2(p, 0.5)
    ctx = Context(p.render(), None)
    assert float(term(ctx).detach()) == 0.0
    with torch.no_grad():
        p.value.add_(0.1)
    assert math.isclose(float(term(ctx).detach()), 0.01 * p.value.numel(), rel_tol=1e-4)
    assert term.scorable is False
    with pytest.raises(VecgenError):
        LatentL2(object(), 1.0)


def test_l2_keeps_latent_close(sg2, tiny):
    dist = {}
    for l2 in (0.0, 1.0):
        res = generate(
            "a red circle",
            generator=sg2,
            space="wplus",
            l2=l2,
            steps=8,
            lr=0.2,
            cutouts=2,
            device="cpu",
            quiet=True,
            perceptors=tiny,
        )
        dist[l2] = float(res.param.l2_to_init().detach())
        if l2:
            assert "l2" in res.history[-1]
    assert dist[1.0] < dist[0.0]


def test_state_dict_roundtrip(sg2):
    a = Latent(sg2, space="wplus", seed=0)
    with torch.no_grad():
        a.value.add_(0.3)
    a.step = 7
    b = Latent(sg2, space="wplus", seed=9)
    b.load_state_dict(a.state_dict())
    assert torch.equal(a.latent(), b.latent()) and b.step == 7
    assert float(b.l2_to_init().detach()) == float(a.l2_to_init().detach())
    with pytest.raises(VecgenError):
        Latent(sg2, space="w").load_state_dict(a.state_dict())


# ----------------------------------------------------------------------------- FuseDream
def test_fusedream_keeps_the_k_best(sg2):
    def brightness(images):  # lower is better: the darkest samples win
        return images.mean(dim=(1, 2, 3))

    p = Latent.fusedream(sg2, brightness, samples=19, top=5, space="w", seed=0, chunk=4)
    assert p.scores.shape == (19,)
    best = torch.argsort(p.scores, stable=True)[:5]
    assert torch.equal(p.top_indices, best)
    assert torch.allclose(p.basis_scores, p.scores[best])
    # the scores belong to the samples: re-render sample i from its chunk and re-score
    for idx in p.top_indices.tolist():
        z = sg2.sample_latent(4, 0 + 1 + idx // 4)[idx % 4 : idx % 4 + 1]
        with torch.no_grad():
            s = brightness(sg2(z))
        assert math.isclose(float(s), float(p.scores[idx]), rel_tol=1e-5)
    # optimizes the mix logits and a residual; the best sample dominates at the start
    assert [g["name"] for g in p.param_groups()] == ["fusedream_logits", "latent_w"]
    wts = torch.softmax(p.logits, 0)
    assert int(wts.argmax()) == 0 and float(p.residual.detach().abs().sum()) == 0
    img = p.render()
    img.mean().backward()
    assert p.logits.grad is not None and p.residual.grad is not None


def test_fusedream_generate_with_objective(sg2, tiny):
    res = generate(
        "a red circle",
        generator=sg2,
        init="fusedream",
        samples=12,
        top=3,
        space="wplus",
        steps=2,
        cutouts=2,
        device="cpu",
        quiet=True,
        perceptors=tiny,
    )
    p = res.param
    assert p.scores.shape == (12,)
    assert set(p.top_indices.tolist()) == set(torch.argsort(p.scores)[:3].tolist())
    # the ranking is the objective's per-image value: check it for the winner
    terms = [ClipTerm(tiny[0][0], parse_prompts("a red circle"))]
    best = int(p.top_indices[0])
    z = sg2.sample_latent(8, 0 + 1 + best // 8)[best % 8 : best % 8 + 1]
    with torch.no_grad():
        img = sg2.synthesize(sg2.to_w_plus(sg2.mapping(z)))
    # scored with random cutouts, so compare against the plain-image score loosely
    plain = float(score_images(terms, img))
    assert abs(plain - float(p.scores[best])) < 0.2
    assert res.image.size == (32, 32)


def test_fusedream_checkpoint_resume(sg2, tiny, tmp_path):
    ck = tmp_path / "ck.pt"
    kw = dict(
        generator=sg2,
        init="fusedream",
        samples=6,
        top=2,
        space="w",
        cutouts=0,
        device="cpu",
        quiet=True,
        perceptors=tiny,
    )
    a = generate("a red circle", steps=3, checkpoint=ck, **kw)
    b = generate("a red circle", steps=4, resume=ck, **kw)
    assert b.history[:3] == a.history and len(b.history) == 4
    assert torch.equal(a.param.basis, b.param.basis) and b.param.step == 4


def test_fusedream_bad_counts(sg2):
    with pytest.raises(VecgenError, match="--top"):
        Latent.fusedream(sg2, lambda x: x.mean((1, 2, 3)), samples=3, top=4)
    with pytest.raises(VecgenError, match="--samples"):
        Latent.fusedream(sg2, lambda x: x.mean((1, 2, 3)), samples=0, top=1)


# ----------------------------------------------------------------------------- generate() API
def test_generate_api_errors(sg2, tiny):
    kw = dict(generator=sg2, steps=1, device="cpu", quiet=True, perceptors=tiny)
    with pytest.raises(VecgenError, match="--space"):
        generate("x", space="q", **kw)
    with pytest.raises(VecgenError, match="--init"):
        generate("x", init="best", **kw)
    with pytest.raises(VecgenError, match="--l2"):
        generate("x", l2=-1, **kw)
    with pytest.raises(VecgenError, match="cannot change"):
        generate("x", size=64, **kw)
    with pytest.raises(VecgenError, match="not found"):
        generate("x", **{**kw, "generator": "stylegan2:/nonexistent/g.pt"})
    with pytest.raises(VecgenError, match="unknown generator kind"):
        generate("x", **{**kw, "generator": "biggan:/x.pt"})


def test_generate_snapshots_and_latent_file(sg2, tiny, tmp_path):
    res = generate(
        "a blue square",
        generator=sg2,
        space="z",
        truncation=0.7,
        steps=2,
        every=1,
        cutouts=0,
        device="cpu",
        quiet=True,
        perceptors=tiny,
        snapshots=tmp_path / "snaps",
        save_latent=tmp_path / "lat.pt",
    )
    assert sorted(f.name for f in (tmp_path / "snaps").iterdir()) == ["00001.png", "00002.png"]
    data = torch.load(tmp_path / "lat.pt", weights_only=True)
    assert data["space"] == "z" and data["w_plus"].shape == (1, sg2.n_latent, 32)
    assert res.settings["function"] == "generate" and len(res.history) == 2
    out = res.save(tmp_path / "x.png")
    assert out.stat().st_size > 0


def test_generate_image_prompt_only(sg2, tiny, tmp_path):
    from PIL import Image

    Image.new("RGB", (40, 40), (200, 30, 30)).save(tmp_path / "red.png")
    res = generate(
        None,
        generator=sg2,
        image_prompt=[str(tmp_path / "red.png")],
        steps=2,
        cutouts=0,
        device="cpu",
        quiet=True,
        perceptors=tiny,
    )
    assert len(res.history) == 2 and res.settings["prompt"] is None
    with pytest.raises(VecgenError, match="nothing to optimize"):
        generate(None, generator=sg2, steps=1, device="cpu", quiet=True, perceptors=tiny)


# ----------------------------------------------------------------------------- real TAEF2
@needs_taef2
def test_taef2_latent_reaches_target_image():
    """Fit the latent to an image TAEF2 itself decoded (64 px) with an MSE term: >= 28 dB."""
    g = load_generator("taef2", image_size=64)
    with torch.no_grad():
        target = g(g.sample_latent(1, 123))
    p = Latent(g, space="w", init="mean", lr=0.1, steps=60)
    with torch.no_grad():
        start = psnr(p.render(), target)
    mse = FnTerm("mse", lambda im: ((im - target) ** 2).mean())
    res = run(p, extra_terms=[mse], steps=60, cutouts=0, device=CPU, quiet=True)
    with torch.no_grad():
        end = psnr(p.render(), target)
    assert start < 24
    assert end >= 28.0, f"{end:.2f} dB"
    assert res.history[-1]["mse"] < res.history[0]["mse"]


@needs_taef2
@pytest.mark.slow
def test_taef2_latent_reaches_smooth_image_128():
    """A smooth picture TAEF2 never made (gradient + soft red disc), 128 px: >= 28 dB (about 42 dB here)."""
    s = 128
    g = load_generator("taef2", image_size=s)
    y, x = torch.meshgrid(torch.linspace(0, 1, s), torch.linspace(0, 1, s), indexing="ij")
    img = torch.stack([0.2 + 0.6 * x, 0.3 + 0.4 * y, 0.8 - 0.5 * x * y])
    disc = torch.sigmoid((0.25 - ((x - 0.55) ** 2 + (y - 0.45) ** 2).sqrt()) * s / 4)
    target = (img * (1 - disc) + torch.tensor([0.9, 0.2, 0.15])[:, None, None] * disc)[None]
    p = Latent(g, space="w", init="mean", lr=0.1, steps=100)
    mse = FnTerm("mse", lambda im: ((im - target) ** 2).mean())
    run(p, extra_terms=[mse], steps=100, cutouts=0, device=CPU, quiet=True)
    with torch.no_grad():
        assert psnr(p.render(), target) >= 28.0


@needs_taef2
def test_taef2_generate_size(tiny):
    res = generate(
        "a red circle", generator="taef2", size="64x48", steps=1, cutouts=0, device="cpu", quiet=True, perceptors=tiny
    )
    assert res.image.size == (64, 48)
    assert res.param.space_shape == (32, 6, 8)
    with pytest.raises(VecgenError, match="multiples of 8"):
        generate("a red circle", generator="taef2", size=60, steps=1, device="cpu", quiet=True, perceptors=tiny)


@needs_taef2
@pytest.mark.skipif(not (MINI_WEIGHTS / "mini-rn.safetensors").is_file(), reason="mini-rn weights not trained yet")
def test_taef2_text_raises_judge_score():
    """Optimizing toward a text with mini-rn raises its score and the judge's (mini-vit when trained) over the start."""
    from vecgen.api import load_perceptors

    prompt = "a red circle"
    own = load_perceptors("mini-rn", CPU)[0][0]
    judge_name = "mini-vit" if (MINI_WEIGHTS / "mini-vit.safetensors").is_file() else "mini-rn"
    judge = own if judge_name == "mini-rn" else load_perceptors(judge_name, CPU)[0][0]
    g = load_generator("taef2", image_size=64)

    def score(perceptor, img):
        with torch.no_grad():
            return float(perceptor.encode_image(img) @ perceptor.encode_text([prompt])[0])

    p = Latent(g, space="w", seed=0, lr=0.1, steps=40)
    with torch.no_grad():
        start = p.render()
    run(p, prompt=prompt, perceptors=[(own, 1.0)], cutouts=4, steps=40, device=CPU, quiet=True)
    with torch.no_grad():
        end = p.render()
    assert score(own, end) > score(own, start) + 0.02
    assert score(judge, end) > score(judge, start), judge_name


# ----------------------------------------------------------------------------- CLI
@pytest.fixture(scope="module")
def sg2_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("gen") / "sg2.pt"
    small_stylegan2().save(path)
    return path


@pytest.fixture(scope="module")
def script_file(tmp_path_factory):
    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.latent_shape = [4, 4, 4]
            self.conv = torch.nn.Conv2d(4, 3, 3, padding=1)

        def forward(self, z):
            x = torch.nn.functional.interpolate(z, scale_factor=4.0, mode="nearest")
            return torch.sigmoid(self.conv(x))

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("gen") / "tiny_script.pt"
    with warnings.catch_warnings():  # torch >= 2.9 flags TorchScript as deprecated
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.save(torch.jit.script(Tiny()), str(path))
    return path


def test_cli_generate_end_to_end(sg2_file, tmp_path, capsys):
    out = tmp_path / "out.png"
    rc = main(
        [
            "generate",
            "a red circle",
            "--generator",
            f"stylegan2:{sg2_file}",
            "--clip",
            TINY,
            "--steps",
            "3",
            "--space",
            "wplus",
            "--l2",
            "0.008",
            "--cutouts",
            "2",
            "-o",
            str(out),
            "-q",
        ]
    )
    assert rc == 0 and out.is_file()
    assert capsys.readouterr().out.strip() == str(out)
    from PIL import Image

    with Image.open(out) as im:
        assert im.size == (32, 32)
        assert '"function": "generate"' in im.info["settings"]


def test_cli_generate_fusedream_script_config(script_file, tmp_path, capsys):
    cfg = tmp_path / "gen.toml"
    cfg.write_text(
        f'generator = "script:{script_file}"\ninit = "fusedream"\nsamples = 6\ntop = 2\n'
        f'clip = "{TINY}"\nsteps = 3\ncutouts = 0\nquiet = true\n'
    )
    out = tmp_path / "s.png"
    rc = main(["generate", "a green square", "--config", str(cfg), "-o", str(out)])
    assert rc == 0 and out.is_file()
    from PIL import Image

    with Image.open(out) as im:
        assert im.size == (16, 16)


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--generator", "stylegan2:/nonexistent/gen.pt"], "not found"),
        (["--generator", "SG2", "--space", "uplus"], "invalid choice"),
        ([], "--generator is required"),
        (["--generator", "GEN", "-o", "x.svg"], ".png"),
        (["--generator", "GEN", "--init", "fusedream", "--samples", "2", "--top", "3"], "--top"),
    ],
)
def test_cli_generate_bad_input(sg2_file, tmp_path, capsys, args, needle):
    args = [a.replace("SG2", f"stylegan2:{sg2_file}").replace("GEN", f"stylegan2:{sg2_file}") for a in args]
    if "-o" not in args:
        args += ["-o", str(tmp_path / "o.png")]
    rc = main(["generate", "x", "--clip", TINY, "--steps", "1", "-q"] + args)
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert len(err.splitlines()) == 1 and needle in err, err


def test_cli_generate_unknown_space_in_config(sg2_file, tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text('space = "u"\n')
    rc = main(
        [
            "generate",
            "x",
            "--generator",
            f"stylegan2:{sg2_file}",
            "--config",
            str(cfg),
            "--clip",
            TINY,
            "-o",
            str(tmp_path / "o.png"),
        ]
    )
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "--space" in err


def test_fusedream_ranking_shows_progress(sg2, tiny, capsys):
    """Ranking the samples can take minutes: it has its own bar unless quiet."""
    generate(
        "a red apple",
        generator=sg2,
        init="fusedream",
        samples=4,
        top=2,
        steps=1,
        cutouts=0,
        device="cpu",
        quiet=False,
        perceptors=tiny,
    )
    assert "fusedream: ranking" in capsys.readouterr().err


# ----------------------------------------------------------------------------- bounds and cross checks
def _no_model(*args, **kwargs):
    raise AssertionError("a model was loaded before the options were checked")


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--samples", "5000"], "--samples 5000 is above the limit of 4,096"),
        (["--samples", "0"], "--samples must be >= 1"),
        (["--top", "300"], "--top 300 is above the limit of 256"),
        (["--truncation", "3"], "--truncation 3.0 is above the limit of 2"),
        (["--truncation", "-0.5"], "--truncation must be >= 0"),
        (["--lr", "0"], "--lr must be > 0"),
        (["--l2", "-1"], "--l2 must be >= 0"),
        (["--l2", "inf"], "--l2 must be finite"),
        (["--init", "fusedream", "--samples", "3", "--top", "4"], "--top must be between 1 and samples (3), got 4"),
        (["--save-latent", "latent.npy"], "latent.npy: --save-latent is written as .pt or .pth"),
        ([], "--generator is required"),
    ],
)
def test_cli_generate_bounds_refused_before_any_model_loads(args, needle, tmp_path, capsys, monkeypatch):
    from vecgen.backends import generators, perceptors

    monkeypatch.setattr(perceptors, "load_perceptor", _no_model)
    monkeypatch.setattr(generators, "load_generator", _no_model)
    gen = [] if args == [] else ["--generator", "stylegan2:whatever.pt"]
    rc = main(["generate", "x", "--clip", TINY, "--steps", "1", "-q", "-o", str(tmp_path / "o.png"), *gen, *args])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and needle in err, err


def test_api_generate_config():
    """generator has no default (as before); None, a non-spec or a bad combination is refused up front."""
    import inspect

    from vecgen import gallery

    assert inspect.signature(generate).parameters["generator"].default is inspect.Parameter.empty
    with pytest.raises(TypeError):
        generate("x")
    with pytest.raises(VecgenError, match="--generator is required"):
        generate("x", generator=None)
    with pytest.raises(VecgenError, match="--generator must be a spec"):
        generate("x", generator=3)
    with pytest.raises(VecgenError, match="--space"):
        generate("x", generator="taef2", space="u")
    # a gallery job is checked by the same config, naming its key
    with pytest.raises(VecgenError, match="generate needs option 'generator'"):
        gallery.parse_spec('[[entry]]\nfunction = "generate"\nprompt = "a"\n', "g.toml")
    with pytest.raises(VecgenError, match="top must be between 1 and samples"):
        gallery.parse_spec(
            '[[entry]]\nfunction = "generate"\nprompt = "a"\ngenerator = "taef2"\n'
            'init = "fusedream"\nsamples = 2\ntop = 3\n',
            "g.toml",
        )
