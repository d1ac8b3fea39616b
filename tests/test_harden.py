"""Hardening (issue 29): mesh/point files against their headers, huge coordinates, TAEF2 shipped,
caches never written over a file of another kind, deterministic safetensors bytes, exact resume
(interrupts anywhere in a step, and --steps changed only where the lr schedule allows it), the
studio's default folder."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import vecgen
from conftest import TINY
from vecgen.cli import main
from vecgen.errors import VecgenError

trimesh = pytest.importorskip("trimesh")
ROOT = Path(__file__).resolve().parents[1]


def refused(capsys, tmp_path: Path, argv: list, needle: str, out: Path) -> None:
    """The CLI ends with exit 2 and one line naming ``needle``, and writes nothing."""
    before = set(tmp_path.rglob("*"))
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and needle in err, err
    assert not out.exists() and set(tmp_path.rglob("*")) == before


# ----------------------------------------------------------------------------- mesh and point files
PLY_ASCII = (
    "ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\nproperty float z\n"
    "element face {faces}\nproperty list uchar int vertex_indices\nend_header\n0 0 0\n1 0 0\n0 1 0\n3 0 1 2\n"
)


def _bad_files(tmp_path: Path) -> list[tuple[Path, str]]:
    cases = []
    for name, text, needle in [
        ("claims100m.ply", PLY_ASCII.format(faces=100_000_000), "claims 100,000,000 face elements"),
        ("claims1m.ply", PLY_ASCII.format(faces=1_000_000), "claims 3 vertices and 1,000,000 faces"),
        ("claims.off", "OFF\n3 1000000 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 2\n", "claims 3 vertices and 1,000,000 faces"),
        ("nan.obj", "v nan 0 0\nv 0 1 0\nv 0 0 1\nf 1 2 3\n", "NaN or infinite"),
        ("inf.obj", "v inf 0 0\nv 0 1 0\nv 0 0 1\nf 1 2 3\n", "NaN or infinite"),
        ("overflow.obj", "v -1e308 0 0\nv 1e308 1 0\nv 0 0 1\nf 1 2 3\n", "more than a float64 can hold"),
    ]:
        (tmp_path / name).write_text(text)
        cases.append((tmp_path / name, needle))
    binary = PLY_ASCII.format(faces=1).replace("ascii", "binary_little_endian").replace("vertex 3", "vertex 1000000")
    (tmp_path / "claims.ply").write_bytes(binary.split("end_header\n")[0].encode() + b"end_header\n" + bytes(60))
    cases.append((tmp_path / "claims.ply", "claims 1,000,000 vertices and 1 face"))
    stl = b"\0" * 80 + np.uint32(5_000_000).tobytes() + bytes(50)
    (tmp_path / "claims.stl").write_bytes(stl)
    cases.append((tmp_path / "claims.stl", "claims 5,000,000 triangles"))
    return cases


def test_mesh_files_checked_against_their_headers(tmp_path, capsys):
    for path, needle in _bad_files(tmp_path):
        out = tmp_path / "o.png"
        refused(capsys, tmp_path, ["render", path, "-o", out, "--size", "32"], needle, out)


def test_mesh_verb_refuses_a_lying_header_before_the_models_load(tmp_path, capsys):
    path = tmp_path / "claims1m.ply"
    path.write_text(PLY_ASCII.format(faces=1_000_000))
    out = tmp_path / "o.ply"
    argv = ["mesh", path, "a red circle", "--clip", "no-such-model", "--steps", "1", "-o", out, "-q"]
    refused(capsys, tmp_path, argv, "claims 3 vertices and 1,000,000 faces", out)


def test_point_clouds_checked_against_headers_and_coordinates(tmp_path):
    from vecgen.backends.mesh.points import load_points

    for path, needle in _bad_files(tmp_path):
        if path.suffix == ".obj" and "float64" in needle:
            continue  # an .obj is not a point file
        with pytest.raises(VecgenError, match=needle.split(" (")[0][:20]):
            load_points(path)
    big = tmp_path / "big.xyz"
    big.write_text("1e38 0 0\n0 1 0\n0 0 1\n")
    with pytest.raises(VecgenError, match="beyond the limit of 1e"):
        load_points(big)


def test_huge_coordinates_are_normalised_in_float64(tmp_path, capsys):
    """``v 1e38 0 0`` used to give a blank PNG (render) and an internal error (mesh)."""
    src = tmp_path / "huge.obj"
    src.write_text("v 1e38 0 0\nv 0 1e38 0\nv 0 0 1e38\nv 1e38 1e38 1e38\nf 1 2 3\nf 1 2 4\nf 2 3 4\nf 1 3 4\n")
    out = tmp_path / "huge.png"
    assert main(["render", str(src), "-o", str(out), "--size", "48"]) == 0, capsys.readouterr().err
    px = np.asarray(Image.open(out).convert("L"), dtype=np.float64)
    assert (px < 200).mean() > 0.05  # the tetrahedron is drawn, not a blank picture
    mesh_out = tmp_path / "huge.ply"
    code = main(
        [
            "mesh",
            str(src),
            "a red circle",
            "--clip",
            TINY,
            "--steps",
            "1",
            "--size",
            "32",
            "--views",
            "2",
            "--cutouts",
            "1",
            "--width",
            "16",
            "-q",
            "-o",
            str(mesh_out),
        ]
    )
    assert code == 0, capsys.readouterr().err
    v = trimesh.load(mesh_out, process=False).vertices
    assert np.isfinite(v).all() and np.allclose(np.abs(v).max(), 1e38, rtol=0.05)  # back in the input's frame


# ----------------------------------------------------------------------------- TAEF2 shipped
def test_taef2_resolves_to_the_packaged_weights():
    from vecgen.backends.generators import load_generator
    from vecgen.backends.generators.encoders import load_encoder
    from vecgen.backends.generators.taef2 import default_taef2_dir

    folder = default_taef2_dir()
    assert folder.resolve().is_relative_to((ROOT / "vecgen").resolve())  # inside the package, not ../shared
    for name in ("taef2_decoder.pth", "taef2_encoder.pth", "LICENSE"):
        assert (folder / name).is_file(), name
    assert "MIT License" in (folder / "LICENSE").read_text()
    gen = load_generator("taef2", image_size=(64, 64))
    enc = load_encoder("taef2")
    with torch.no_grad():
        img = gen(torch.zeros(1, *gen.latent_shape))
    assert img.shape == (1, 3, 64, 64) and enc is not None
    setup = (ROOT / "setup.py").read_text()
    assert "backends/generators/weights/taef2/*" in setup  # shipped in wheels too


# ----------------------------------------------------------------------------- caches over foreign files
@pytest.fixture(scope="module")
def sg2_file(tmp_path_factory) -> Path:
    from vecgen.backends.generators.stylegan2 import StyleGAN2Generator

    torch.manual_seed(0)
    g = StyleGAN2Generator(32, style_dim=32, n_mlp=2, channels={4: 16, 8: 16, 16: 8, 32: 8}).eval()
    p = tmp_path_factory.mktemp("sg2") / "g.pt"
    g.save(p)
    return p


def test_global_cache_never_overwrites_a_file_of_another_kind(tmp_path, capsys, sg2_file, monkeypatch):
    from vecgen.params.stylenet import StyleNet, save_model

    photo = tmp_path / "photo.png"
    Image.new("RGB", (32, 32), (120, 60, 30)).save(photo)
    precious = tmp_path / "precious.safetensors"
    save_model(StyleNet(), precious, {"prompt": "my style"})
    picture = tmp_path / "picture.png"
    Image.new("RGB", (8, 8)).save(picture)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    import vecgen.api.edit_global as eg

    def no_precompute(*a, **k):
        raise AssertionError("the precompute ran")

    monkeypatch.setattr(eg, "channel_responses", no_precompute)
    kept = {p: p.read_bytes() for p in (precious, picture, blocker)}
    base = [
        "edit",
        photo,
        "a red circle",
        "--method",
        "global",
        "--generator",
        f"stylegan2:{sg2_file}",
        "--clip",
        TINY,
        "--invert-steps",
        "1",
        "--global-samples",
        "1",
        "-q",
    ]
    out = tmp_path / "o.png"
    for cache, needle in [
        (precious, "not a vecgen global-direction cache file"),
        (picture, "a file that is not a .safetensors cache"),
        (blocker / "sub" / "c.safetensors", "cannot write there"),
        (blocker / "sub", "cannot write there"),
    ]:
        refused(capsys, tmp_path, [*base, "--global-cache", cache, "-o", out], needle, out)
    assert {p: p.read_bytes() for p in kept} == kept


def test_search_cache_never_overwrites_a_file_of_another_kind(tmp_path):
    from vecgen.search import _write_cache, cache_path

    folder = tmp_path / "pics"
    folder.mkdir()
    cfile = cache_path(folder, "x")
    cfile.write_bytes(b"someone's file")
    warnings = []
    _write_cache(cfile, "x", [("a.png", 1, 2, torch.zeros(4))], warnings.append)
    assert cfile.read_bytes() == b"someone's file" and "left untouched" in warnings[0]
    cfile.unlink()
    _write_cache(cfile, "x", [("a.png", 1, 2, torch.zeros(4))], warnings.append)
    _write_cache(cfile, "x", [("a.png", 1, 3, torch.ones(4))], warnings.append)  # our own: refreshed
    assert len(warnings) == 1


# ----------------------------------------------------------------------------- deterministic bytes
_WRITE = """
import sys, torch
sys.path.insert(0, {root!r})
from vecgen.params.stylenet import StyleNet, save_model
torch.manual_seed(0)
save_model(StyleNet(), sys.argv[1], {{"prompt": "chain mail", "settings": "{{}}", "seed": "0", "clip": "x",
                                     "steps": "3", "images": "2"}})
"""


def test_safetensors_bytes_are_the_same_in_every_process(tmp_path):
    """safetensors writes its metadata in a per-process hash order; ours is sorted."""
    from vecgen.io import safetensors_bytes, safetensors_metadata
    from vecgen.params.stylenet import load_model

    files = []
    for k in range(2):
        p = tmp_path / f"m{k}.safetensors"
        env = {**os.environ, "PYTHONHASHSEED": str(k)}
        subprocess.run([sys.executable, "-c", _WRITE.format(root=str(ROOT)), str(p)], check=True, env=env, timeout=120)
        files.append(p.read_bytes())
    assert files[0] == files[1]
    net, meta = load_model(tmp_path / "m0.safetensors")
    assert meta["prompt"] == "chain mail" and meta == safetensors_metadata(tmp_path / "m0.safetensors")
    data = safetensors_bytes({"b": torch.arange(3.0), "a": torch.ones(2, dtype=torch.float16)}, {"z": "1", "a": "2"})
    from safetensors.torch import load

    back = load(data)
    assert torch.equal(back["b"], torch.arange(3.0)) and back["a"].dtype == torch.float16
    header = data[8 : 8 + int.from_bytes(data[:8], "little")]
    assert header.index(b'"a":"2"') < header.index(b'"z":"1"') and len(header) % 8 == 0


# ----------------------------------------------------------------------------- exact resume
MESH = dict(clip=TINY, size=32, views=3, cutouts=2, width=16, lr=0.02, quiet=True, device="cpu", steps=5)


def _ball(tmp_path: Path) -> Path:
    m = trimesh.creation.icosphere(subdivisions=1)
    m.vertices = m.vertices * [3.0, 1.5, 2.0] + [10.0, -4.0, 7.0]
    p = tmp_path / "ball.obj"
    m.export(p)
    return p


def _sigint_inside(cls, name: str, call: int, before: bool = False):
    """Send a real SIGINT to this process inside the ``call``-th call of ``cls.name`` (after it, or before)."""
    orig = getattr(cls, name)
    count = [0]

    def wrapped(self, *a, **kw):
        count[0] += 1
        if count[0] == call and before:
            os.kill(os.getpid(), signal.SIGINT)
        out = orig(self, *a, **kw)
        if count[0] == call and not before:
            os.kill(os.getpid(), signal.SIGINT)
        return out

    return wrapped


@pytest.mark.skipif(not hasattr(os, "kill") or sys.platform == "win32", reason="POSIX signals")
def test_mesh_interrupted_anywhere_resumes_byte_exact(tmp_path, monkeypatch):
    """Ctrl-C inside the objective (after the step drew its views), inside the optimizer step and inside
    the camera counter's advance used to leave a checkpoint one step off (6 of 8 points differed)."""
    import vecgen.objective as objective
    import vecgen.params.style_field as sf
    from vecgen.engine import StopRun

    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    src = _ball(tmp_path)
    vecgen.mesh(src, "a red circle", **MESH).save(tmp_path / "full.ply")
    full = (tmp_path / "full.ply").read_bytes()
    points = [
        (objective.Objective, "__call__", 2),
        (torch.optim.Adam, "step", 3),
        (sf.StyleField, "project_", 2),
        (sf.StyleField, "render", 4),
    ]
    for k, (cls, name, call) in enumerate(points):
        ck = tmp_path / f"ck{k}.pt"
        with monkeypatch.context() as m:
            m.setattr(cls, name, _sigint_inside(cls, name, call, before=name == "render"))
            part = vecgen.mesh(src, "a red circle", checkpoint=ck, **MESH)
        assert part.interrupted
        vecgen.mesh(src, "a red circle", resume=ck, **MESH).save(tmp_path / f"r{k}.ply")
        assert (tmp_path / f"r{k}.ply").read_bytes() == full, (name, call)

    def stop_at(k):
        def cb(step, p, values):
            if step == k:
                raise StopRun

        return cb

    for k in (1, 3):
        ck = tmp_path / f"stop{k}.pt"
        vecgen.mesh(src, "a red circle", checkpoint=ck, callbacks=[stop_at(k)], **MESH)
        vecgen.mesh(src, "a red circle", resume=ck, **MESH).save(tmp_path / f"s{k}.ply")
        assert (tmp_path / f"s{k}.ply").read_bytes() == full, k


def test_style_resumed_to_other_steps_is_exact_or_refused(tmp_path):
    """Style halves its lr at half the run: a checkpoint before both halves may change --steps (and then
    equals a plain run of the new length); one past it is refused, naming the --steps to use."""
    from vecgen.engine import StopRun, check_schedule

    pic = tmp_path / "in.png"
    Image.fromarray((np.random.default_rng(0).random((24, 32, 3)) * 255).astype(np.uint8)).save(pic)
    fast = dict(clip=TINY, content_model=TINY, work_size=32, crops=2, quiet=True, device="cpu")
    plain = vecgen.style(pic, "chain mail", steps=6, **fast)

    def stop_at(k):
        def cb(step, p, values):
            if step == k:
                raise StopRun

        return cb

    early = tmp_path / "early.pt"
    vecgen.style(pic, "chain mail", steps=4, checkpoint=early, callbacks=[stop_at(2)], **fast)
    grown = vecgen.style(pic, "chain mail", steps=6, resume=early, **fast)
    assert grown.png_bytes() == plain.png_bytes()
    late = tmp_path / "late.pt"
    vecgen.style(pic, "chain mail", steps=4, checkpoint=late, **fast)
    with pytest.raises(VecgenError, match="resume it with --steps 4"):
        vecgen.style(pic, "chain mail", steps=6, resume=late, **fast)
    check_schedule([True], lambda i, n: 0.1 if i > n // 2 else 1.0, 10, 12, 40)  # unmarked: --steps may grow


# ----------------------------------------------------------------------------- studio folder
def test_studio_defaults_to_a_user_cache_folder(tmp_path, monkeypatch):
    from vecgen.cli import build_parser
    from vecgen.studio import default_folder

    monkeypatch.delenv("VECGEN_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_folder() == tmp_path / "xdg" / "vecgen" / "studio"
    monkeypatch.setenv("VECGEN_CACHE", str(tmp_path / "vc"))
    assert default_folder() == tmp_path / "vc" / "studio"
    args = build_parser().parse_args(["studio"])
    assert args.share_dir is None  # not ./vecgen-studio of whatever folder it starts in
