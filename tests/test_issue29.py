"""The cases of issue 29 that no other test runs: each ends in one line and exit 2 before any model loads,
and writes nothing; ``--checkpoint`` and ``--save-latent`` never replace a file of another kind.

The other cases of the issue are tested beside their verbs: mesh ``--width 20000``/``100000``,
``--depth 1000000``, ``--lr -1``, ``--snapshots DIR --every 0``, ``-o o.png --turntable o.png``
(test_mesh); ``--global-samples 100000000``, ``--hidden 10000000``, ``--perceptual nan``, ``--mapper``
with a prompt or ``--steps`` (test_edit); ``--crop-size 100000``, ``--every 0`` (test_style);
``--splat 0``, ``--search-weights`` alone (test_classify3d); ``v 1e38 0 0``,
the PLY claiming 100,000,000 faces, ``--global-cache`` over a foreign file (test_harden).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch
from PIL import Image

from conftest import TINY, small_stylegan2
from vecgen.cli import main

TET = "v 0 0 0\nv 1 0 0\nv 0 1 0\nv 0 0 1\nf 1 3 2\nf 1 2 4\nf 2 3 4\nf 1 4 3\n"


@pytest.fixture
def loads(monkeypatch) -> list:
    """Every perceptor load (none may happen before a refusal)."""
    import vecgen.api._run as run_mod

    calls: list = []
    real = run_mod.load_perceptors

    def spy(*a, **k):
        calls.append(a)
        return real(*a, **k)

    monkeypatch.setattr(run_mod, "load_perceptors", spy)
    return calls


def refused(capsys, tmp_path: Path, argv: list, needle: str) -> None:
    """Exit 2, one line naming ``needle``, within seconds, nothing written anywhere under ``tmp_path``."""
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")}
    t0 = time.perf_counter()
    code = main([str(a) for a in argv])
    took = time.perf_counter() - t0
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and err.startswith("vecgen: error: ") and needle in err, err
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")} == before
    assert took < 30, took  # refused up front, not after the work


def _photo(tmp_path: Path, w: int, h: int) -> Path:
    p = tmp_path / f"photo{w}x{h}.png"
    Image.new("RGB", (w, h), (120, 60, 30)).save(p)
    return p


SMALL = ["--clip", TINY, "--steps", "1", "-q"]


@pytest.mark.parametrize(
    "argv, needle",
    [
        (
            ["render", "{mesh}", "--frames", "1000000", "-o", "{tmp}/o.gif"],
            "--frames 1000000 is above the limit of 720",
        ),
        (
            ["render", "{mesh}", "--size", "4096x4096", "--frames", "200", "-o", "{tmp}/o.gif"],
            "200 frame(s) of 4096x4096 px is 3,355 megapixels to draw, above the limit",
        ),
        (["render", "{mesh}", "--max-faces", "100000000", "-o", "{tmp}/o.png"], "--max-faces 100000000 is above"),
        (["render", "{mesh}", "--azimuth", "1e30", "-o", "{tmp}/o.png"], "--azimuth must be between -360 and 360"),
        (["render", "{mesh}", "--elevation", "100", "-o", "{tmp}/o.png"], "--elevation must be between -90 and 90"),
        (
            ["mesh", "{mesh}", "a red circle", "--size", "4096x4096", "--views", "12", *SMALL, "-o", "{tmp}/o.ply"],
            "this mesh run needs about",
        ),
        (["mesh", "{mesh}", "a red circle", "--front-azimuth", "1e30", *SMALL, "-o", "{tmp}/o.ply"], "--front-azimuth"),
        (["mesh", "{mesh}", "a red circle", "--sigma", "1e30", *SMALL, "-o", "{tmp}/o.ply"], "--sigma 1e+30 is above"),
        (["style", "{p1x1}", "chain mail", *SMALL, "-o", "{tmp}/o.png"], "is 1x1 px: it needs at least 8 px"),
        (["style", "{p20000x1}", "chain mail", *SMALL, "-o", "{tmp}/o.png"], "is 20000x1 px: it needs at least 8"),
        (["style", "{p20000x8}", "chain mail", *SMALL, "-o", "{tmp}/o.png"], "at the working size 2048x1 px"),
        (["sketch", "{p1x1}", *SMALL, "-o", "{tmp}/o.svg"], "photo is 1x1 px: it needs at least 8 px"),
        (["sketch", "{p20000x1}", *SMALL, "-o", "{tmp}/o.svg"], "photo is 20000x1 px"),
        (["draw", "a red circle", "--width", "inf", *SMALL, "-o", "{tmp}/o.svg"], "stroke widths are finite"),
        (["draw", "a red circle", "--width", "1,1e30", *SMALL, "-o", "{tmp}/o.svg"], "at most 512 px"),
        (
            ["draw", "a red circle", "--width", "0", "--shapes", "strokes", *SMALL, "-o", "{tmp}/o.svg"],
            "--width 0 draws nothing with strokes",
        ),
        (["paint", "a red circle", "--decay", "1e30", *SMALL, "-o", "{tmp}/o.png"], "--decay 1e+30 is above the limit"),
        (["paint", "a red circle", "--contrast", "1e30", *SMALL, "-o", "{tmp}/o.png"], "--contrast 1e+30 is above"),
        (
            ["classify3d", "{cloud}", "--labels", "a,b", "--views", "1e30", "--clip", TINY],
            "views: each AZ:EL has -360 <= AZ <= 360",
        ),
        (
            ["edit", "{p32x32}", "a red circle", "--generator", "{sg2}", "--global-samples", "5", *SMALL[:2]],
            "--global-samples applies to --method global only (this edit is optimize)",
        ),
        (
            ["edit", "{p32x32}", "a red circle", "--generator", "{sg2}", "--global-cache", "{tmp}/c", *SMALL[:2]],
            "--global-cache applies to --method global only",
        ),
        (
            ["edit", "{p32x32}", "a red circle", "--generator", "{sg2}", "--alpha", "1e30", "--clip", TINY],
            "--alpha 1e+30 is above the limit of 100",
        ),
    ],
)
def test_issue29_cases_refused_before_any_work(tmp_path, capsys, loads, monkeypatch, argv, needle):
    import vecgen.options

    monkeypatch.setattr(vecgen.options, "available_memory", lambda device=None: 8 * 2**30)  # an 8 GiB machine
    (tmp_path / "tet.obj").write_text(TET)
    (tmp_path / "cloud.xyz").write_text("0 0 0\n1 0 0\n0 1 0\n0 0 1\n1 1 1\n")
    small_stylegan2().save(tmp_path / "g.pt")
    names = {"tmp": tmp_path, "mesh": tmp_path / "tet.obj", "cloud": tmp_path / "cloud.xyz"}
    names["sg2"] = f"stylegan2:{tmp_path / 'g.pt'}"
    for w, h in ((1, 1), (20000, 1), (20000, 8), (32, 32)):
        names[f"p{w}x{h}"] = _photo(tmp_path, w, h)
    out = [] if argv[0] in ("render", "classify3d") or "-o" in argv else ["-o", str(tmp_path / "o.png")]
    refused(capsys, tmp_path, [a.format(**names) for a in argv] + out, needle)
    assert loads == []


def test_classify3d_counts_the_splat_in_its_estimate(tmp_path, capsys, monkeypatch):
    """``--size 1024 --views 12``: the z-buffered splat of one cloud takes ~5 GiB; the estimate counts it."""
    import importlib

    import numpy as np

    c3d = importlib.import_module("vecgen.api.classify3d")  # vecgen.api.classify3d is also the function

    monkeypatch.setattr(c3d, "available_memory", lambda device=None: 4 * 2**30)  # a 4 GiB machine
    cloud = tmp_path / "cloud.npy"
    np.save(cloud, np.random.default_rng(0).uniform(-1, 1, (256, 3)).astype("float32"))
    argv = ["classify3d", cloud, "--labels", "a,b", "--clip", TINY, "--size", "1024", "--views", "12"]
    refused(capsys, tmp_path, argv, "12 views of 1024 px need about 5.6 GiB, but 4.0 GiB is free")
    small = ["classify3d", str(cloud), "--labels", "a,b", "--clip", TINY, "--size", "64", "--views", "12"]
    assert main(small) == 0, capsys.readouterr().err  # the same machine classifies at 64 px


def test_a_mapper_for_another_resolution_is_refused(tmp_path, capsys):
    """An edit mapper trained for one generator (32 px) applied to another (64 px): one line, nothing written."""
    import vecgen
    from vecgen.backends.generators import StyleGAN2Generator

    small_stylegan2().save(tmp_path / "g32.pt")
    torch.manual_seed(0)
    g64 = StyleGAN2Generator(64, style_dim=32, n_mlp=2, channels={4: 16, 8: 16, 16: 8, 32: 8, 64: 8})
    g64.eval().save(tmp_path / "g64.pt")
    photos = tmp_path / "photos"
    photos.mkdir()
    _photo(photos, 32, 32)
    mapper = tmp_path / "m.safetensors"
    vecgen.edit_mapper(
        "a red circle",
        images=str(photos),
        generator=f"stylegan2:{tmp_path / 'g32.pt'}",
        clip=TINY,
        steps=1,
        cutouts=1,
        invert_steps=1,
        batch=1,
        hidden=8,
        quiet=True,
    ).save_all(mapper)
    photo = _photo(tmp_path, 48, 48)
    argv = ["edit", photo, "--mapper", mapper, "--generator", f"stylegan2:{tmp_path / 'g64.pt'}", "-q"]
    refused(capsys, tmp_path, [*argv, "-o", tmp_path / "o.png"], "mapper trained for another generator")


def test_memory_estimates_heed_the_address_space_limit():
    """Under ``ulimit -v`` the free RAM is not what a run may take: the estimates see the limit too."""
    import resource

    from vecgen.options import available_memory

    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    vm = int(next(ln.split()[1] for ln in open("/proc/self/status") if ln.startswith("VmSize:"))) * 1024
    try:
        resource.setrlimit(resource.RLIMIT_AS, (vm + 2**30, hard))
        free = available_memory()
        assert free is not None and free <= 2**30
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    assert soft != resource.RLIM_INFINITY or available_memory() != free


# ----------------------------------------------------------------------------- never over a file of another kind
def test_checkpoint_never_overwrites_a_file_that_is_not_a_checkpoint(tmp_path, capsys):
    from vecgen.io import is_checkpoint, is_latent_file

    picture = tmp_path / "holiday.png"
    Image.new("RGB", (8, 8), (1, 2, 3)).save(picture)
    model = tmp_path / "model.pt"
    torch.save({"weight": torch.ones(3), "step": 5}, model)  # someone's model: a torch zip, not ours
    notes = tmp_path / "notes.pt"
    notes.write_text("my notes\n")
    kept = {p: p.read_bytes() for p in (picture, model, notes)}
    base = ["draw", "a red circle", "--size", "32", "--strokes", "2", "--cutouts", "1", *SMALL]
    for path in kept:
        refused(
            capsys,
            tmp_path,
            [*base, "--checkpoint", path, "-o", tmp_path / "o.svg"],
            f"--checkpoint {path}: the file is not a vecgen checkpoint file, and it is left untouched",
        )
    assert {p: p.read_bytes() for p in kept} == kept
    assert not any(map(is_checkpoint, kept))
    # a checkpoint of ours is refreshed, and resumed from while it is written again
    ck = tmp_path / "run.pt"
    assert main([*base, "--checkpoint", str(ck), "-o", str(tmp_path / "a.svg")]) == 0
    assert is_checkpoint(ck) and not is_latent_file(ck)
    assert main([*base, "--checkpoint", str(ck), "-o", str(tmp_path / "b.svg")]) == 0
    more = [a if a != "1" or i != base.index("--steps") + 1 else "2" for i, a in enumerate(base)]
    assert main([*more, "--resume", str(ck), "--checkpoint", str(ck), "-o", str(tmp_path / "c.svg")]) == 0
    capsys.readouterr()
    # the API refuses the same
    import vecgen
    from vecgen.errors import VecgenError

    with pytest.raises(VecgenError, match="not a vecgen checkpoint file"):
        vecgen.paint("a red circle", checkpoint=model, clip=TINY, steps=1, size=32, cutouts=1, quiet=True)
    assert model.read_bytes() == kept[model]


def test_save_latent_never_overwrites_a_file_of_another_kind(tmp_path, capsys):
    from vecgen.io import is_checkpoint, is_latent_file

    small_stylegan2().save(tmp_path / "g.pt")
    base = ["generate", "a red circle", "--generator", f"stylegan2:{tmp_path / 'g.pt'}", "--cutouts", "1", *SMALL]
    model = tmp_path / "model.pt"
    torch.save({"weight": torch.ones(3)}, model)
    kept = model.read_bytes()
    refused(
        capsys,
        tmp_path,
        [*base, "--save-latent", model, "-o", tmp_path / "o.png"],
        "--save-latent",
    )
    assert model.read_bytes() == kept
    latent = tmp_path / "z.pt"
    for _ in range(2):  # written, then replaced: it is ours
        assert main([*base, "--save-latent", str(latent), "-o", str(tmp_path / "o.png")]) == 0
    assert is_latent_file(latent) and not is_checkpoint(latent)
