"""Quality benchmark: optimize with one perceptor, judge with another.

    python benchmarks/quality.py [--param strokes|fft|dwt|pixels] [--clip mini-vit] [--judge mini-rn]
                                 [--prompts benchmarks/prompts.txt] [--steps N] [--cutouts N] [--views V] [--json]
                                 [--compare-no-aug] [--limit K] [--only 1,4] [--save DIR]

For each prompt, draw it with ``--clip`` and ask ``--judge`` to rank the true
prompt among every prompt of the file plus distractors that differ in one
attribute (colour or shape). Reports judge top-1 and top-3, mean judge cosine to
the true prompt, and seconds per prompt. Drawing uses ``draw``'s defaults (for
the mini models: 32 filled blobs) unless --strokes/--shapes/--segments/--width
say otherwise. ``--compare-no-aug`` repeats with ``--cutouts 0`` to test whether
augmentation prevents images that fool only the optimizer.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from vecgen import api  # noqa: E402
from vecgen.backends.perceptors import load_perceptor  # noqa: E402

COLOURS = ["red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "black", "gray", "cyan"]
SHAPES = ["circle", "square", "triangle", "star", "ring", "cross", "heart"]


def read_prompts(path: str | Path) -> list[str]:
    lines = [ln.split("#", 1)[0].strip() for ln in Path(path).read_text().splitlines()]
    return [ln for ln in lines if ln]


def distractors(prompt: str) -> list[str]:
    """Variants of ``prompt`` that differ in exactly one colour or one shape word."""
    out = []
    for vocab in (COLOURS, SHAPES):
        for word in vocab:
            m = re.search(rf"\b{word}(e?s)?\b", prompt)
            if not m:
                continue
            for alt in vocab:
                if alt != word and not re.search(rf"\b{alt}", prompt):
                    plural = m.group(1) or ""
                    if plural and alt.endswith(("s", "x")):
                        plural = "es"
                    elif plural:
                        plural = "s"
                    head = re.sub(
                        r"\b(an?) $",
                        lambda a, alt=alt, plural=plural: (
                            ("an " if alt[0] in "aeiou" else "a ") if not plural else a.group(0)
                        ),
                        prompt[: m.start()],
                    )  # "an orange circle" -> "a red circle"
                    out.append(head + alt + plural + prompt[m.end() :])
                    break
            break
    return out


def options(args, names: tuple[str, ...]) -> dict:
    """The draw/paint options the user set (the rest keep the API's defaults)."""
    return {k: getattr(args, k) for k in names if getattr(args, k)}


def run(args, cutouts: int) -> dict:
    prompts = read_prompts(args.prompts)[: args.limit or None]
    todo = [int(k) - 1 for k in args.only.split(",")] if args.only else range(len(prompts))
    dev = api.resolve_device(args.device)
    opt = [(load_perceptor(args.clip, dev), 1.0)]
    judge = load_perceptor(args.judge, dev)
    rows = []
    for i in todo:
        prompt = prompts[i]
        t = time.perf_counter()
        common = dict(
            steps=args.steps,
            cutouts=cutouts,
            seed=args.seed,
            device=str(dev),
            perceptors=opt,
            quiet=True,
            views=args.views,
        )
        if args.param == "strokes":
            res = api.draw(prompt, **common, **options(args, ("size", "strokes", "shapes", "width", "segments")))
        else:
            common["steps"] = args.steps or 200
            res = api.paint(prompt, param=args.param, **common, **options(args, ("size",)))
        sec = time.perf_counter() - t
        cands = [prompt] + [p for p in prompts if p != prompt] + distractors(prompt)
        with torch.no_grad():
            img = api.pil_to_tensor(res.image).to(dev)
            emb = judge.encode_image(img)
            sims = (emb @ judge.encode_text(cands).t())[0]
        rank = int((sims > sims[0]).sum()) + 1
        rival = cands[int(sims[1:].argmax()) + 1]  # the judge's favourite wrong caption
        rows.append(
            {
                "prompt": prompt,
                "rank": rank,
                "judge_cos": float(sims[0]),
                "sec": sec,
                "n_candidates": len(cands),
                "rival": rival,
            }
        )
        if args.save:
            out = Path(args.save)
            out.mkdir(parents=True, exist_ok=True)
            res.image.save(out / f"{i + 1:02d}_c{cutouts}.png")
        if not args.json:
            print(
                f"{i + 1:3d}/{len(prompts)} rank {rank:3d}/{len(cands)} cos {float(sims[0]):.3f} {sec:5.1f}s  {prompt}"
                + ("" if rank == 1 else f"  (judge prefers: {rival})"),
                file=sys.stderr,
            )
    n = len(rows)
    return {
        "param": args.param,
        "clip": args.clip,
        "judge": args.judge,
        "steps": res.settings["steps"],
        "cutouts": cutouts,
        "views": res.settings.get("views"),
        **({"draw": {k: res.settings[k] for k in ("shapes", "strokes")}} if args.param == "strokes" else {}),
        "top3": sum(r["rank"] <= 3 for r in rows) / n,
        "top1": sum(r["rank"] == 1 for r in rows) / n,
        "mean_judge_cos": sum(r["judge_cos"] for r in rows) / n,
        "sec_per_prompt": sum(r["sec"] for r in rows) / n,
        "prompts": rows,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--param", default="strokes", choices=["strokes", "fft", "dwt", "pixels"])
    ap.add_argument("--clip", default="mini-vit")
    ap.add_argument("--judge", default="mini-rn")
    ap.add_argument("--prompts", default=str(Path(__file__).with_name("prompts.txt")))
    ap.add_argument("--steps", type=int, default=None, help="default: draw's (300 for the mini models), paint's 200")
    ap.add_argument("--cutouts", type=int, default=8)
    ap.add_argument("--views", default="auto", choices=["auto", "crops", "zoom"], help="draw's --views")
    ap.add_argument("--size", default=None)
    ap.add_argument("--strokes", type=int, default=None, help="strokes param: number of paths (draw's default)")
    ap.add_argument("--shapes", default=None, help="strokes param: strokes, blobs or mixed (draw's default)")
    ap.add_argument("--segments", type=int, default=None, help="strokes param: cubic segments per path")
    ap.add_argument("--width", default=None, help="strokes param: MIN,MAX stroke width (draw's default)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--limit", type=int, default=0, help="only the first K prompts")
    ap.add_argument("--only", default="", help="draw only these 1-based prompt numbers (candidates stay all prompts)")
    ap.add_argument("--compare-no-aug", action="store_true", help="also run with --cutouts 0")
    ap.add_argument("--save", default=None, help="folder to write each drawing as NN_cC.png")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    results = [run(args, args.cutouts)]
    if args.compare_no_aug and args.cutouts != 0:
        results.append(run(args, 0))
    if args.json:
        print(json.dumps(results[0] if len(results) == 1 else {**results[0], "no_aug": results[1]}, indent=1))
        return
    print(
        f"{'param':8s} {'clip':10s} {'judge':10s} {'cutouts':>7s} {'top1':>6s} {'top3':>6s} {'judge cos':>9s} "
        f"{'s/prompt':>9s}"
    )
    for r in results:
        print(
            f"{r['param']:8s} {r['clip']:10s} {r['judge']:10s} {r['cutouts']:7d} {r['top1']:6.2f} {r['top3']:6.2f} "
            f"{r['mean_judge_cos']:9.3f} {r['sec_per_prompt']:9.1f}"
        )


if __name__ == "__main__":
    main()
