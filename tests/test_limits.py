"""Resource bounds: options that size a run are refused in one line before any allocation."""

from __future__ import annotations

import time

import pytest

from conftest import TINY
from vecgen.cli import main
from vecgen.errors import VecgenError
from vecgen.options import LIMITS


def run_cli(capsys, *argv):
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.err


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["draw", "a red circle", "--steps", "1", "--cutouts", "100000"], "--cutouts 100000 is above the limit of 256"),
        (["draw", "a red circle", "--steps", "1", "--strokes", "10000000"], "--strokes 10000000 is above the limit"),
        (["draw", "a red circle", "--steps", "1", "--segments", "5000"], "--segments 5000 is above the limit of 64"),
        (["draw", "a red circle", "--steps", "100000000"], "--steps 100000000 is above the limit"),
        (["draw", "a red circle", "--steps", "1", "--size", "5000x10"], "above the limit of 4096 px"),
        (
            ["draw", "a red circle", "--steps", "1", "--seed", "100000000000000000000000"],
            "--seed must be between 0 and",
        ),
        (["draw", "a red circle", "--steps", "1", "--seed", "-1"], "--seed must be between 0 and"),
        (["paint", "a red circle", "--steps", "1", "--cutouts", "1000"], "--cutouts 1000 is above the limit"),
        (
            [
                "generate",
                "a red circle",
                "--generator",
                "taef2",
                "--init",
                "fusedream",
                "--samples",
                "100000",
                "--steps",
                "1",
            ],
            "--samples 100000 is above the limit of 4,096",
        ),
    ],
)
def test_limits_refused_in_one_line_before_work(capsys, tmp_path, argv, needle):
    t0 = time.perf_counter()
    code, err = run_cli(
        capsys, *argv, "--clip", TINY, "-o", str(tmp_path / ("x.png" if argv[0] != "draw" else "x.svg"))
    )
    assert code == 2, err
    assert needle in err and len(err.strip().splitlines()) == 1 and "internal error" not in err
    assert time.perf_counter() - t0 < 30  # refused up front, not after building 10 million strokes
    assert not list(tmp_path.iterdir())


def test_limits_table_is_generated_from_the_configs():
    """The docs' limits table is made from the verbs' configs: every bound in LIMITS appears there once."""
    from vecgen.api import VERBS
    from vecgen.config import limits_table

    table = limits_table({n: v.config for n, v in VERBS.items() if v.config is not None})
    for name, value in LIMITS.items():
        assert f"`--{name.replace('_', '-')}`" in table and f"<= {value:,}" in table, name


def test_memory_estimate_refuses_what_cannot_fit(monkeypatch):
    """Views x perceptor pixels x measured bytes per pixel against the free memory."""
    import vecgen
    from vecgen.api import _run

    monkeypatch.setattr(_run, "available_memory", lambda device=None: 50 * 2**20)  # a 50 MiB machine
    with pytest.raises(VecgenError, match=r"256 views for 1 perceptor\(s\) need about .* GiB, but 0.0 GiB is free"):
        vecgen.draw("a red circle", clip="ViT-B-32@random", cutouts=256, steps=1, quiet=True, device="cpu", strokes=4)
    # the same machine runs a small job
    res = vecgen.draw("a red circle", clip=TINY, cutouts=2, steps=1, quiet=True, device="cpu", strokes=4, size=64)
    assert len(res.history) == 1


@pytest.mark.parametrize(
    "clip, needle",
    [
        ("mini-vit:abc", "bad weight 'abc' in --clip 'mini-vit:abc'"),
        ("mini-vit:0", "weight 0 would make that model do nothing"),
    ],
)
def test_bad_clip_weights_are_named_as_weights(capsys, tmp_path, clip, needle):
    code, err = run_cli(capsys, "draw", "a red circle", "--steps", "1", "--clip", clip, "-o", str(tmp_path / "x.svg"))
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1


def test_adapt_batch_and_grid_limits(capsys, tmp_path):
    for flag, value, needle in (
        ("--batch", "1000", "--batch 1000 is above the limit of 64"),
        ("--grid-samples", "500", "--grid-samples 500 is above the limit of 64"),
        ("--batch", "0", "--batch must be >= 1"),
    ):
        code, err = run_cli(
            capsys,
            "adapt",
            "--generator",
            "taef2",
            "--source",
            "photo",
            "--target",
            "sketch",
            "--clip",
            TINY,
            flag,
            value,
            "-o",
            str(tmp_path / "a.pt"),
        )
        assert code == 2 and needle in err and len(err.strip().splitlines()) == 1, err


def test_image_prompts_and_clip_spec_checked_before_models_load(tmp_path):
    """A missing image prompt or a bad --clip is refused before any perceptor or generator loads."""
    import vecgen
    from vecgen.api import _run

    loads = []
    real = _run.load_perceptors

    def counting(*a, **k):
        loads.append(a)
        return real(*a, **k)

    _run.load_perceptors = counting
    try:
        with pytest.raises(VecgenError, match="not found"):
            vecgen.draw("a red circle", image_prompt=str(tmp_path / "missing.png"), clip=TINY, steps=1, quiet=True)
        with pytest.raises(VecgenError, match="bad weight"):
            vecgen.generate("a red apple", generator="taef2:/nonexistent.pth", clip="mini-vit:x", steps=1, quiet=True)
        with pytest.raises(VecgenError, match="prompt must be text"):
            vecgen.draw(42, clip=TINY, steps=1, quiet=True)
    finally:
        _run.load_perceptors = real
    assert loads == []


def test_models_lists_shipped_models_once_and_truthfully(capsys):
    """`vecgen models` (over vecgen.list_models): shipped mini models are not called "random weights only"."""
    import vecgen

    code, _ = run_cli(capsys, "models")
    assert code == 0
    models = {m["name"]: m for m in vecgen.list_models()}
    assert models["mini-vit"]["shipped"] and models["mini-rn"]["shipped"]
    code = main(["models"])
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if ln.startswith("mini-vit:"))
    assert "shipped weights" in line and "random weights only" not in line
    assert out.splitlines()[0].startswith("built in (shipped weights): ") and "mini-vit" in out.splitlines()[0]
