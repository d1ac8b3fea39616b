"""classify3d (PointCLIP): depth maps of known shapes, point-cloud I/O, the adapter, accuracy, bad inputs."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import SHARED
from vecgen.api import classify3d_adapter as fitting
from vecgen.backends.mesh.points import check_points, depth_maps, load_points, view_angles
from vecgen.cli import main
from vecgen.errors import VecgenError

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import pointclip  # noqa: E402  (the benchmark's independent test sampler)

LABELS = pointclip.LABELS


def cube_surface(n: int = 30000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    p = rng.uniform(-1, 1, (n, 3))
    axis = rng.integers(0, 3, n)
    p[np.arange(n), axis] = np.sign(rng.uniform(-1, 1, n))
    return p


@pytest.fixture
def sampler():
    """The benchmark's independent primitive sampler (trimesh meshes)."""
    pytest.importorskip("trimesh")
    return pointclip


@pytest.fixture(scope="module")
def mini():
    from vecgen import load_perceptor

    return [(load_perceptor("mini-vit-3d"), 1.0)]


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


# ----------------------------------------------------------------------------- depth maps
def test_cube_side_views_are_squares_of_constant_depth():
    maps = depth_maps(cube_surface(), 6, 64)
    assert maps.shape == (6, 3, 64, 64)
    assert torch.equal(maps[:, 0], maps[:, 1]) and torch.equal(maps[:, 0], maps[:, 2])  # grey in 3 channels
    for v in range(6):  # four sides, top, bottom: each sees one face, square on, at one depth
        m = maps[v, 0]
        ys, xs = torch.nonzero(m > 0, as_tuple=True)
        h, w = int(ys.max() - ys.min() + 1), int(xs.max() - xs.min() + 1)
        assert abs(h - w) <= 1 and 30 <= h <= 46, (v, h, w)
        assert len(ys) >= 0.98 * h * w  # the box is filled: a square, not a ring or a blob
        lit = m[m > 0]
        assert float(lit.std()) < 0.005 and 0.7 < float(lit.mean()) < 1.0  # one face, one depth
        assert abs(float(ys.float().mean()) - 31.5) < 1 and abs(float(xs.float().mean()) - 31.5) < 1


def test_near_is_bright_and_background_is_black():
    rng = np.random.default_rng(1)
    sphere = rng.normal(size=(20000, 3))
    sphere /= np.linalg.norm(sphere, axis=1, keepdims=True)
    m = depth_maps(sphere, 1, 64)[0, 0]
    assert float(m[0, 0]) == 0.0 and float(m[31:33, 31:33].mean()) > 0.95  # nearest point: the centre
    ys, xs = torch.nonzero(m > 0, as_tuple=True)
    r = ((ys.float() - 31.5) ** 2 + (xs.float() - 31.5) ** 2).sqrt()
    rim = m[ys[r > r.max() - 2], xs[r > r.max() - 2]]
    assert float(rim.mean()) < float(m[31:33, 31:33].mean()) - 0.15  # the silhouette's edge lies farther


def test_stray_points_are_dropped_before_projection():
    from vecgen.backends.mesh.points import drop_outliers

    rng = np.random.default_rng(3)
    sphere = rng.normal(size=(2000, 3))
    sphere /= np.linalg.norm(sphere, axis=1, keepdims=True)
    stray = rng.uniform(-3, 3, (20, 3))
    stray *= (2.0 / np.linalg.norm(stray, axis=1, keepdims=True)).clip(1.0)  # all well off the surface
    cloud = torch.as_tensor(np.concatenate([sphere, stray]), dtype=torch.float32)
    kept = drop_outliers(cloud)
    assert len(kept) >= 1990 and (kept.norm(dim=1) < 1.05).all()  # every stray point gone, the sphere kept
    assert torch.equal(drop_outliers(cloud[:2000]), cloud[:2000])  # a clean cloud loses nothing
    clean = depth_maps(sphere, 1, 64)[0, 0]
    # far strays rescale the cloud: the sphere shrinks and dims; dropping them restores the clean picture
    assert float((depth_maps(cloud, 1, 64)[0, 0] > 0).float().mean()) < 0.8 * float((clean > 0).float().mean())
    assert float((depth_maps(cloud, 1, 64, clean=True)[0, 0] - clean).abs().mean()) < 0.01


def test_view_sets_and_custom_views():
    for count in (1, 4, 6, 8, 10):
        az, el = view_angles(count)
        assert len(az) == count and len(set(zip(az.tolist(), el.tolist()))) == count
    az, el = view_angles("0:0, 90:30")
    assert az.tolist() == [0.0, 90.0] and el.tolist() == [0.0, 30.0]
    assert depth_maps(cube_surface(2000), "0:0,45:30,0:90", 32).shape == (3, 3, 32, 32)
    for bad in (7.5, "0:x", "11", []):
        with pytest.raises(VecgenError):
            view_angles(bad)


def test_point_files_round_trip(tmp_path):
    trimesh = pytest.importorskip("trimesh")
    pts = np.random.default_rng(2).normal(size=(300, 3)).astype(np.float32)
    np.save(tmp_path / "a.npy", pts)
    np.savetxt(tmp_path / "a.xyz", pts)
    (tmp_path / "a.txt").write_text("x,y,z\n" + "\n".join(",".join(f"{v:.7g}" for v in p) + ",0.5" for p in pts))
    trimesh.PointCloud(pts).export(tmp_path / "a.ply")
    for name in ("a.npy", "a.xyz", "a.txt", "a.ply"):
        got = load_points(tmp_path / name)
        assert got.shape == (300, 3) and np.allclose(got, pts, atol=1e-5), name
    trimesh.creation.box().export(tmp_path / "box.obj")  # a mesh is sampled on its surface
    box = load_points(tmp_path / "box.obj", mesh_points=500)
    assert box.shape == (500, 3) and np.allclose(np.abs(box).max(1), 0.5, atol=1e-5)


def test_real_meshes_from_shared_classify(mini):
    files = [SHARED / "meshes" / n for n in ("airplane.ply", "bunny.obj")]
    if not all(f.is_file() for f in files):
        pytest.skip("../shared/meshes is absent")
    from vecgen.api.classify3d import classify3d

    res = classify3d(files, labels="airplane,bunny,teapot", perceptors=mini, mesh_points=512)
    assert res.scores.shape == (2, 3) and torch.allclose(res.scores.sum(1), torch.ones(2), atol=1e-5)
    assert res.image.size == (6 * 66 - 2, 64)  # six depth maps in a strip
    assert [r[0][1] for r in res.ranked] == [float(res.scores[b].max()) for b in range(2)]


# ----------------------------------------------------------------------------- classification
def test_zero_shot_beats_chance_on_primitives_from_the_independent_sampler(mini, sampler):
    from vecgen.api.classify3d import classify3d

    clouds, target = sampler.test_set(5, seed=99)  # 30 clouds mini-vit-3d never saw the like of
    res = classify3d(clouds, labels=LABELS, perceptors=mini)
    acc = float((res.scores.argmax(1).numpy() == target).mean())
    assert acc >= 0.8, acc  # chance is 1/6; the benchmark's 240 clouds: see README
    kept = classify3d(clouds, labels=LABELS, perceptors=mini, keep_outliers=True)  # the 1% stray points hurt
    assert float((kept.scores.argmax(1).numpy() == target).mean()) < acc


def test_fit_and_eval_through_the_cli(tmp_path, capsys, mini, monkeypatch, sampler):
    pytest.importorskip("h5py")
    import vecgen.api._run as run_mod

    monkeypatch.setattr(run_mod, "load_perceptors", lambda *a, **k: mini)  # load mini-vit-3d once for all calls
    train = pointclip.write_h5(tmp_path / "train.h5", *pointclip.test_set(8, seed=5), points=512)
    test = pointclip.write_h5(tmp_path / "test.h5", *pointclip.test_set(3, seed=6), points=512)
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(LABELS) + "\n")
    ad = tmp_path / "ad.safetensors"
    code, out, err = run_cli(
        capsys, "classify3d", "--fit", train, "--labels-file", labels, "--shots", "8", "--clip", "mini-vit-3d", "-o", ad
    )
    assert code == 0, err
    assert ad.is_file() and "accuracy" in out
    # the classify3d-fit verb is the same run as the old spelling: the same adapter weights and settings
    ad2 = tmp_path / "ad2.safetensors"
    code, out, err = run_cli(
        capsys, "classify3d-fit", train, "--labels-file", labels, "--shots", "8", "--clip", "mini-vit-3d", "-o", ad2
    )
    assert code == 0, err
    (a, sa), (b, sb) = fitting.load_adapter(ad), fitting.load_adapter(ad2)
    assert sa == sb and all(torch.equal(a.state_dict()[k], v) for k, v in b.state_dict().items())
    assert out.strip() == str(ad2)
    code, out, err = run_cli(
        capsys,
        "classify3d",
        "--eval",
        test,
        "--labels-file",
        labels,
        "--adapter",
        ad,
        "--json",
        "--clip",
        "mini-vit-3d",
    )
    assert code == 0, err
    rep = json.loads(out)
    # 8 shots per solid, 18 held-out clouds (chance: 1/6)
    assert rep["n"] == 18 and rep["accuracy"] >= 0.35, rep["accuracy"]
    assert np.asarray(rep["confusion"]).sum() == 18 and set(rep["per_class"]) == set(LABELS)
    code, out, err = run_cli(capsys, "classify3d", "--eval", test, "--labels-file", labels, "--clip", "mini-vit-3d")
    assert code == 0 and out.startswith("accuracy ") and "confusion" in out


def test_adapter_shapes_and_round_trip(tmp_path):
    torch.manual_seed(0)
    feats = torch.nn.functional.normalize(torch.randn(10, 6, 32), dim=-1)
    text = torch.nn.functional.normalize(torch.randn(3, 32), dim=-1)
    ad = fitting.InterViewAdapter(6, 32, hidden=16, ratio=0.6).eval()
    assert ad(feats).shape == (10, 6, 32)
    assert torch.allclose(fitting.InterViewAdapter(6, 32, ratio=0.0).eval()(feats), feats)  # ratio 0: zero-shot
    target = torch.arange(10) % 3
    trained = fitting.train_adapter(feats, target, text, torch.ones(6), 100.0, hidden=16, epochs=80)
    logits = fitting.combine(fitting.adapter_logits(trained, feats, text, 100.0), torch.ones(6))
    assert float((logits.argmax(1) == target).float().mean()) == 1.0  # it learns its shots
    path = fitting.save_adapter(trained, tmp_path / "a.safetensors", {"labels": ["a", "b", "c"], "views": "6"})
    back, settings = fitting.load_adapter(path)
    assert settings["labels"] == ["a", "b", "c"] and back.ratio == 0.6 and back.hidden == 16
    assert torch.equal(back(feats), trained(feats))


def test_view_weight_search_down_weights_a_misleading_view():
    torch.manual_seed(0)
    target = torch.arange(60) % 3
    good = torch.nn.functional.one_hot(target, 3).float()[:, None] + 0.8 * torch.rand(60, 5, 3)
    bad = 6 * torch.nn.functional.one_hot((target + 1) % 3, 3).float()[:, None]  # one view always wrong and loud
    logits = torch.cat([good, bad], 1)
    equal = float((fitting.combine(logits, torch.ones(6)).argmax(1) == target).float().mean())
    w, acc = fitting.search_view_weights(logits, target)
    assert acc > equal and w[5] == w.min() and float(w.max()) == 1.0


# ----------------------------------------------------------------------------- bad input
def _h5(path: Path, **arrays) -> Path:
    h5py = pytest.importorskip("h5py")
    with h5py.File(path, "w") as f:
        for k, v in arrays.items():
            f[k] = v
    return path


def test_bad_inputs_are_one_line_and_exit_2(tmp_path, capsys, mini, monkeypatch):
    import vecgen.api._run as run_mod

    monkeypatch.setattr(run_mod, "load_perceptors", lambda *a, **k: mini)
    (tmp_path / "empty.xyz").write_text("")
    (tmp_path / "nan.xyz").write_text("0 0 0\n1 nan 0\n0 1 1\n")
    (tmp_path / "inf.npy").write_bytes(b"")
    np.save(tmp_path / "inf.npy", np.array([[0, 0, 0], [np.inf, 0, 0], [1, 1, 1]], float))
    (tmp_path / "one.xyz").write_text("1 2 3\n")
    ok = tmp_path / "ok.npy"
    np.save(ok, cube_surface(200))
    blank = tmp_path / "blank.txt"
    blank.write_text("cube\n\nsphere\n")
    no_label = _h5(tmp_path / "nolabel.h5", data=np.zeros((2, 10, 3), np.float32))
    data = np.random.default_rng(0).normal(size=(3, 20, 3)).astype(np.float32)
    out_of_range = _h5(tmp_path / "range.h5", data=data, label=np.array([[0], [1], [7]]))
    other = fitting.save_adapter(
        fitting.InterViewAdapter(6, 8), tmp_path / "other.safetensors", {"labels": ["chair", "table"], "views": "6"}
    )
    cases = [
        (["empty.xyz", "--labels", "a,b"], "empty"),
        (["nan.xyz", "--labels", "a,b"], "NaN"),
        (["inf.npy", "--labels", "a,b"], "infinite"),
        (["one.xyz", "--labels", "a,b"], "single point"),
        (["ok.npy", "--labels", "cube,sphere,cube"], "twice"),
        (["ok.npy", "--labels-file", blank], "blank"),
        (["ok.npy", "--labels", "cube"], "two labels"),
        (["--eval", no_label, "--labels", "a,b"], "'label'"),
        (["--eval", out_of_range, "--labels", "a,b,c"], "out of range"),
        (["ok.npy", "--labels", "cube,sphere", "--adapter", other], "other labels"),
        (["ok.npy", "--labels", "cube,sphere", "--views", "11"], "preset"),
        (["missing.ply", "--labels", "a,b"], "no such file"),
        (["--labels", "a,b"], "nothing to classify"),
        (["--fit", out_of_range, "--labels", "a,b,c,d,e,f,g,h"], "-o FILE.safetensors"),
        (["ok.npy", "--labels", "a,b", "--splat", "0"], "--splat must be > 0"),
        (["ok.npy", "--labels", "a,b", "--size", "5000"], "--size 5000 is above the limit of 1,024"),
        (["ok.npy", "--labels", "a,b", "--batch", "1000"], "--batch 1000 is above the limit of 64"),
        (["ok.npy", "--labels", "a,b", "--mesh-points", "1"], "--mesh-points must be >= 2"),
        (["ok.npy", "--labels", "a,b", "--search-weights"], "--search-weights needs a labelled set"),
        (["ok.npy", "--labels", "a,b", "--shots", "4"], "--shots applies to --fit only"),
        (["--eval", out_of_range, "--labels", "a,b,c", "--epochs", "5"], "--epochs applies to --fit only"),
        (
            ["--fit", out_of_range, "--labels", "a,b,c", "--epochs", "10000000", "-o", "a.safetensors"],
            "--epochs 10000000 is above the limit of 100,000",
        ),
        (["--fit", out_of_range, "--labels", "a,b,c", "--shots", "0", "-o", "a.safetensors"], "--shots must be >= 1"),
        (
            ["--fit", out_of_range, "--labels", "a,b,c", "--adapter", "x.safetensors", "-o", "a.safetensors"],
            "--adapter does not apply to --fit",
        ),
        (["ok.npy", "--eval", out_of_range, "--labels", "a,b,c"], "give one of point-cloud files, --eval or --fit"),
    ]
    monkeypatch.chdir(tmp_path)
    for argv, words in cases:
        code, out, err = run_cli(capsys, "classify3d", *argv)
        assert code == 2, (argv, err)
        assert err.count("\n") == 1 and "Traceback" not in err and words in err, (argv, err)
    for argv, words in [
        ([out_of_range, "--labels", "a,b,c", "--ratio", "2"], "--ratio 2.0 is above the limit"),
        ([out_of_range, "--labels", "a,b,c", "--splat", "nan"], "--splat must be finite"),
    ]:
        code, out, err = run_cli(capsys, "classify3d-fit", *argv)
        assert code == 2 and err.count("\n") == 1 and words in err, (argv, err)
    assert not list(tmp_path.glob("*.safetensors")) or {p.name for p in tmp_path.glob("*.safetensors")} == {
        "other.safetensors"
    }
    with pytest.raises(VecgenError):
        check_points(np.zeros((0, 3)))
    # size x views x batch against the free memory, before the first depth map
    c3d = importlib.import_module("vecgen.api.classify3d")
    monkeypatch.setattr(c3d, "available_memory", lambda device=None: 2**20)
    code, out, err = run_cli(capsys, "classify3d", ok, "--labels", "a,b", "--size", "1024", "--views", "12")
    assert code == 2 and "need about" in err and err.count("\n") == 1, err


# ----------------------------------------------------------------------------- the 3-D scene kit
def test_shapes3d_scenes_are_deterministic_and_captioned():
    import random

    from vecgen.minis import captions, shapes3d

    a = shapes3d.sample_scene3d(random.Random(4), kind="shaded", solid="cone")
    b = shapes3d.sample_scene3d(random.Random(4), kind="shaded", solid="cone")
    assert a == b and torch.equal(shapes3d.render_scene3d(a), shapes3d.render_scene3d(b))
    img = shapes3d.render_scene3d(a)
    assert img.shape == (3, 64, 64) and (img != torch.tensor(a["bg_rgb"]).view(3, 1, 1)).any(0).float().mean() > 0.05
    d = shapes3d.sample_scene3d(random.Random(5), kind="depth", solid="torus")
    text, plan = captions.caption_scene(d, random.Random(0))
    assert "torus" in text and ("depth" in text or "point cloud" in text)
    negs = captions.negatives(d, plan, random.Random(1), k=4)
    assert negs and all("torus" not in n for n in negs)
    part = captions.partial_captions(d, "solid", random.Random(2))
    assert part[0] == "point cloud depth map of a torus." and len(part) == len(shapes3d.SOLIDS)
    text, _ = captions.caption_scene(a, random.Random(3))
    assert "cone" in text and any(w in text for w in shapes3d.COLOURS[a["colour"]][1])


def test_the_3d_mix_off_leaves_the_2d_training_set_alone():
    from vecgen.minis import shapes3d, train

    images, attrs = torch.zeros(4, 3, 8, 8, dtype=torch.uint8), [{"kind": "single"}] * 4
    same = shapes3d.mix_in(images, attrs, 0, 0, 8, None)
    assert same[0] is images and same[1] is attrs
    args = train.parse_args(["--arch", "vit", "--out", "x"])
    assert args.scenes3d == 0
    more_img, more = shapes3d.mix_in(images, attrs, 0, 3, 8, None)
    assert more_img.shape[0] == 7 and [a["kind"] in shapes3d.KINDS for a in more] == [False] * 4 + [True] * 3
    labels = train.attribute_labels([a for a in more[4:]])
    assert (labels["solid"] >= 0).all() and (labels["shape"] == -100).all()


def test_finetune3d_moves_only_the_image_tower(tmp_path):
    pytest.importorskip("open_clip")
    from safetensors.torch import load_file

    from vecgen.backends.perceptors.clip import WEIGHTS_DIR
    from vecgen.minis import finetune3d

    init = WEIGHTS_DIR / "mini-vit.safetensors"
    m = finetune3d.finetune(
        finetune3d.parse_args(
            [
                "--init",
                str(init),
                "--steps",
                "3",
                "--scenes",
                "128",
                "--scenes3d",
                "48",
                "--batch2",
                "8",
                "--batch3",
                "8",
                "--cache-dir",
                "none",
                "--probe-n",
                "0",
                "--lr",
                "1e-3",
                "--warmup",
                "1",
                "--out",
                str(tmp_path),
            ]
        )
    )
    before, after = load_file(str(init)), load_file(str(tmp_path / "mini-vit.safetensors"))
    assert before.keys() == after.keys()
    moved = {k for k in before if not torch.equal(before[k], after[k])}
    assert moved and all(k.startswith("visual.") for k in moved)  # the text tower (every caption) is untouched
    assert m["steps"] == 3 and 0.0 <= m["final_3d_acc"] <= 1.0 and m["final_2d_drift"] >= 0.0
    assert "finetune3d" in json.loads((tmp_path / "metrics.json").read_text())["mini-vit"]


def test_finetune3d_drawings_are_blob_pictures_held_to_the_teacher(tmp_path):
    """--drawings: random blob pictures (not blank, not alike) distilled to --teacher; the record says so."""
    pytest.importorskip("open_clip")
    from vecgen.backends.perceptors.clip import WEIGHTS_DIR
    from vecgen.minis import finetune3d

    bank = finetune3d.drawing_bank(6, 32, seed=1)
    assert bank.shape == (6, 3, 32, 32) and bank.dtype == torch.uint8
    ink = (bank.float() < 250).float().mean(dim=(1, 2, 3))
    assert (ink > 0.05).all() and len({bytes(b.numpy()) for b in bank}) == 6  # drawn on, and all different
    init = str(WEIGHTS_DIR / "mini-vit.safetensors")
    m = finetune3d.finetune(
        finetune3d.parse_args(
            [
                "--init",
                init,
                "--teacher",
                init,
                "--drawings",
                "4",
                "--bank",
                "8",
                "--steps",
                "2",
                "--scenes",
                "64",
                "--scenes3d",
                "24",
                "--batch2",
                "4",
                "--batch3",
                "4",
                "--cache-dir",
                "none",
                "--probe-n",
                "0",
                "--warmup",
                "1",
                "--out",
                str(tmp_path),
            ]
        )
    )
    assert m["drawings"] == 4 and m["teacher"] == init and m["bank"] == 8
