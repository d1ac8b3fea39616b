"""Time per optimization step of a CLIPDraw-equivalent run vs the bare CLIP cost.

    python benchmarks/draw_step.py [--json] [--steps 6] [--device cpu]

Run: 256 strokes, 4 cutouts, CLIP ViT-B-32 with random weights, 224x224.
ratio = seconds per engine step / CLIP forward+backward on the 4 cutouts
(target <= 1.3; the reference CLIPDraw loop measures about 2.0 here).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._common import clip_fwd_bwd, time_ms  # noqa: E402
from vecgen.api import run  # noqa: E402
from vecgen.backends.perceptors import load_perceptor  # noqa: E402
from vecgen.params.strokes import Strokes  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    clip = load_perceptor("ViT-B-32@random", dev)
    clip_ms = time_ms(clip_fwd_bwd(clip, 4), repeat=args.steps, warmup=1)
    param = Strokes((224, 224), strokes=256, segments=3, seed=0, device=dev)
    stamps: list[float] = []

    def timer(step, p, values):  # the public per-step callback: one timestamp per finished step
        stamps.append(time.perf_counter())

    stamps.append(time.perf_counter())
    run(
        param,
        prompt="a watercolor lighthouse at dusk",
        cutouts=4,
        steps=args.steps + 1,
        seed=0,
        device=dev,
        perceptors=[(clip, 1.0)],
        quiet=True,
        callbacks=[timer],
    )
    per_step = sorted(b - a for a, b in zip(stamps[1:], stamps[2:]))  # skip the first (warm-up) step
    step_ms = per_step[len(per_step) // 2] * 1000
    result = {
        "step_ms": step_ms,
        "clip_fwd_bwd_ms": clip_ms,
        "ratio": step_ms / clip_ms,
        "device": args.device,
        "threads": torch.get_num_threads(),
    }
    if args.json:
        print(json.dumps(result, indent=1))
        return
    print(f"CLIPDraw-equivalent step (256 strokes, 4 cutouts, ViT-B-32 random, 224) on {args.device}")
    print(f"{'engine step ms':>16s} {'CLIP fwd+bwd ms':>16s} {'ratio':>7s}")
    print(f"{step_ms:16.1f} {clip_ms:16.1f} {step_ms / clip_ms:7.2f}   (target <= 1.3)")


if __name__ == "__main__":
    main()
