"""PointCLIP benchmark: zero-shot and few-shot classification of six primitives, and speed.

    python benchmarks/pointclip.py [--clip mini-vit-3d] [--n 40] [--threads 1] [--json]

The test clouds come from a sampler *independent of the mini models' training
generator* (:mod:`vecgen.minis.shapes3d` samples its solids analytically): trimesh's
own primitive meshes (box, icosphere, cylinder, cone, torus, and a pyramid built
from 5 vertices), stretched per axis, posed (half upright with a random turn, half
any rotation), sampled with ``trimesh.sample``, with other point counts
(384-5000), anisotropic Gaussian noise and 1% outliers inside the box.

Reports: zero-shot accuracy per view count (1, 4, 6, 8, 10; default template),
few-shot accuracy with the inter-view adapter for 1, 2, 4, 8, 16 shots per class
(trained on clouds from the same sampler with another seed: held-out variants),
ms per cloud (1,024 points, 6 views, one at a time) and clouds/s in --eval batches, and
shape prompts on shaded meshes (``--shaded``): the same posed primitive meshes drawn by
vecgen's own triangle renderer in one colour, 4 side views, the solid picked among
"a COLOUR shaded SOLID" -- what ``vecgen mesh`` shape prompts need the model to see.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

LABELS = ["cube", "sphere", "cylinder", "cone", "torus", "pyramid"]
POINT_COUNTS = (384, 768, 1024, 2048, 5000)


def _pyramid(base: float, height: float):
    import trimesh

    v = np.array([[-base, 0, -base], [base, 0, -base], [base, 0, base], [-base, 0, base], [0, height, 0]], float)
    f = np.array([[0, 1, 2], [0, 2, 3], [0, 4, 1], [1, 4, 2], [2, 4, 3], [3, 4, 0]])
    return trimesh.Trimesh(v, f, process=False)


def primitive_mesh(label: str, rng: np.random.Generator):
    """One of the six solids as a trimesh mesh, with its own random proportions (z is trimesh's axis)."""
    import trimesh

    if label == "cube":
        return trimesh.creation.box(extents=rng.uniform(0.75, 1.3, 3))
    if label == "sphere":
        return trimesh.creation.icosphere(subdivisions=3, radius=1.0)
    if label == "cylinder":
        return trimesh.creation.cylinder(radius=rng.uniform(0.25, 0.65), height=rng.uniform(1.0, 2.4), sections=48)
    if label == "cone":
        return trimesh.creation.cone(radius=rng.uniform(0.3, 0.85), height=rng.uniform(0.8, 2.2), sections=48)
    if label == "torus":
        return trimesh.creation.torus(major_radius=1.0, minor_radius=rng.uniform(0.12, 0.45))
    return _pyramid(rng.uniform(0.45, 0.95), rng.uniform(0.7, 1.9))


def posed_mesh(label: str, rng: np.random.Generator):
    """A primitive mesh, stretched per axis and posed: half any rotation, half upright with a turn."""
    import trimesh

    mesh = primitive_mesh(label, rng)
    mesh.apply_scale(rng.uniform(0.85, 1.2, 3) if label != "cube" else rng.uniform(0.9, 1.1, 3))
    if rng.random() < 0.5:
        rot = trimesh.transformations.random_rotation_matrix(rng.random(3))
    else:  # upright (trimesh's +z to our +y), a turn about the vertical
        rot = trimesh.transformations.rotation_matrix(
            rng.uniform(0, 2 * math.pi), [0, 1, 0]
        ) @ trimesh.transformations.rotation_matrix(-math.pi / 2, [1, 0, 0])
    mesh.apply_transform(rot)
    return mesh


def test_cloud(label: str, rng: np.random.Generator, points: int | None = None) -> np.ndarray:
    """A noisy, posed, stretched cloud ``(P, 3)`` of ``label``."""
    import trimesh

    mesh = posed_mesh(label, rng)
    n = int(points or rng.choice(POINT_COUNTS))
    pts, _ = trimesh.sample.sample_surface(mesh, n, seed=int(rng.integers(2**31)))
    pts = pts + rng.normal(size=pts.shape) * rng.uniform(0, 0.012, 3)
    out = max(1, n // 100)
    lo, hi = pts.min(0), pts.max(0)
    pts[rng.choice(n, out, replace=False)] = rng.uniform(lo, hi, (out, 3))
    return pts.astype(np.float32)


def test_set(per_class: int, seed: int, points: int | None = None) -> tuple[list, np.ndarray]:
    rng = np.random.default_rng(seed)
    clouds, labels = [], []
    for _ in range(per_class):
        for c, lab in enumerate(LABELS):
            clouds.append(test_cloud(lab, rng, points))
            labels.append(c)
    return clouds, np.asarray(labels)


def write_h5(path: Path, clouds: list, labels: np.ndarray, points: int = 1024) -> Path:
    """Clouds resampled to ``points`` each, in ModelNet40's HDF5 layout."""
    import h5py

    rng = np.random.default_rng(0)
    data = np.stack([c[rng.choice(len(c), points, replace=len(c) < points)] for c in clouds])
    with h5py.File(path, "w") as f:
        f["data"] = data.astype(np.float32)
        f["label"] = labels.reshape(-1, 1).astype(np.int64)
    return path


@torch.no_grad()
def shaded_accuracy(perceptor, per_class: int, seed: int, views: int = 4) -> float:
    """Shape prompts on real renders: meshes drawn by vecgen's triangle renderer in one colour on white,
    ``views`` side views; the solid is picked among "a {colour} shaded {solid}" (the colour is given)."""
    from vecgen.backends.mesh.camera import normalize_vertices
    from vecgen.backends.mesh.render import MeshRenderer
    from vecgen.minis.scenes import COLOURS

    rng = np.random.default_rng(seed)
    size = int(perceptor.input_size)
    renderer = MeshRenderer((size, size))
    az = torch.arange(views) * (360.0 / views) + 20.0
    el = torch.full((views,), 20.0)
    names = [c for c in COLOURS if c not in ("white",)]
    correct = total = 0
    texts: dict = {}  # colour -> the six captions' embeddings
    for _ in range(per_class):
        for c, lab in enumerate(LABELS):
            mesh = posed_mesh(lab, rng)
            colour = names[int(rng.integers(len(names)))]
            v = normalize_vertices(torch.as_tensor(mesh.vertices, dtype=torch.float32))[0]
            f = torch.as_tensor(mesh.faces, dtype=torch.int64)
            col = torch.tensor(COLOURS[colour][0]).expand(len(v), 3)
            img = renderer.render_orbit(v, f, col, az, el)
            if colour not in texts:
                texts[colour] = perceptor.encode_text([f"a {colour} shaded {s}" for s in LABELS])
            txt = texts[colour]
            pred = int((perceptor.encode_image(img) @ txt.T).sum(0).argmax())
            correct += int(pred == c)
            total += 1
    return correct / total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clip", default="mini-vit-3d")
    ap.add_argument("--n", type=int, default=40, help="test clouds per class")
    ap.add_argument("--views", default="1,4,6,8,10")
    ap.add_argument("--shots", default="1,2,4,8,16")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=12345, help="test sampler seed (training shots use seed + 1)")
    ap.add_argument("--shaded", type=int, default=10, help="shaded meshes per class for the shape-prompt row (0 = off)")
    ap.add_argument("--keep-outliers", action="store_true", help="project every point (classify3d --keep-outliers)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from vecgen import load_perceptor
    from vecgen.api import classify3d_adapter as fitting
    from vecgen.api.classify3d import DEFAULT_TEMPLATE, texts_for
    from vecgen.api.classify3d_adapter import LOGIT_SCALE, Encoder, view_logits

    perceptors = [(load_perceptor(args.clip), 1.0)]
    clouds, target = test_set(args.n, args.seed)
    target = torch.as_tensor(target)
    out: dict = {
        "clip": args.clip,
        "n": len(clouds),
        "template": DEFAULT_TEMPLATE,
        "keep_outliers": args.keep_outliers,
        "zero_shot": {},
        "few_shot": {},
    }
    feats6 = None
    for v in [int(x) for x in args.views.split(",")]:
        enc = Encoder(perceptors, v, None, 1.5, clean=not args.keep_outliers)
        text = enc.text(texts_for(LABELS, DEFAULT_TEMPLATE))
        t = time.perf_counter()
        feats = enc.features(clouds, 32)
        sec = time.perf_counter() - t
        per_view = view_logits(feats, text)
        acc = float((per_view.sum(1).argmax(-1) == target).float().mean())
        _, best = fitting.search_view_weights(per_view, target)
        out["zero_shot"][v] = {"accuracy": acc, "searched_weights_accuracy": best, "clouds_per_s": len(clouds) / sec}
        if v == 6:
            feats6, text6, enc6 = feats, text, enc
        if not args.json:
            print(
                f"views {v:2d}: zero-shot {acc:.3f} (searched weights {best:.3f}), {len(clouds) / sec:.1f} clouds/s",
                file=sys.stderr,
            )
    if feats6 is not None:
        train, train_y = test_set(16, args.seed + 1)
        tr_feats = enc6.features(train, 32)
        tr_y = torch.as_tensor(train_y)
        for k in [int(x) for x in args.shots.split(",")]:
            pick, _ = fitting.pick_shots(train_y, k, len(LABELS), seed=0)
            ad = fitting.train_adapter(tr_feats[pick], tr_y[pick], text6, torch.ones(6), LOGIT_SCALE, seed=0)
            acc = float((view_logits(feats6, text6, ad).sum(1).argmax(-1) == target).float().mean())
            out["few_shot"][k] = {"accuracy": acc, "train_clouds": int(len(pick))}
            if not args.json:
                print(f"{k:2d} shots: {acc:.3f}", file=sys.stderr)
        one = test_cloud("cone", np.random.default_rng(7), points=1024)
        for _ in range(2):
            enc6.features([one], 1)
        times = []
        for _ in range(7):
            t = time.perf_counter()
            enc6.features([one], 1) @ text6.T
            times.append(time.perf_counter() - t)
        out["ms_per_cloud"] = 1000 * sorted(times)[3]
    if args.shaded > 0:
        out["shaded_meshes"] = {
            "accuracy": shaded_accuracy(perceptors[0][0], args.shaded, args.seed + 2),
            "n": args.shaded * len(LABELS),
        }
        if not args.json:
            print(f"shaded meshes: {out['shaded_meshes']['accuracy']:.3f}", file=sys.stderr)
        out["eval_clouds_per_s"] = out["zero_shot"][6]["clouds_per_s"]
    if args.json:
        print(json.dumps(out, indent=1))
        return
    print(
        f"PointCLIP on six primitives (independent sampler), {args.clip}, {len(clouds)} test clouds, "
        f"{args.threads} thread(s), stray points {'kept' if args.keep_outliers else 'dropped'}"
    )
    print("| views | zero-shot | with searched view weights | clouds/s |\n| --- | --- | --- | --- |")
    for v, r in out["zero_shot"].items():
        print(f"| {v} | {r['accuracy']:.3f} | {r['searched_weights_accuracy']:.3f} | {r['clouds_per_s']:.1f} |")
    if out["few_shot"]:
        print("\n| shots per class | adapter accuracy (6 views) |\n| --- | --- |")
        for k, r in out["few_shot"].items():
            print(f"| {k} | {r['accuracy']:.3f} |")
        print(
            f"\nms per cloud (1,024 points, 6 views): {out['ms_per_cloud']:.1f}; "
            f"--eval batches: {out['eval_clouds_per_s']:.1f} clouds/s"
        )
    if "shaded_meshes" in out:
        print(
            f"shape prompts on {out['shaded_meshes']['n']} shaded meshes (vecgen's renderer, 4 views, "
            f'"a COLOUR shaded SOLID"): {out["shaded_meshes"]["accuracy"]:.3f}'
        )


if __name__ == "__main__":
    main()
