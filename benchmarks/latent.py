"""Seconds per optimization step of a TAEF2 latent (``vecgen generate --generator taef2``) on this machine.

Each row times ``vecgen.engine.optimize`` on a :class:`vecgen.params.latent.Latent`
(w space, StyleCLIP lr ramp) against one CLIP term over ``--cutouts`` views,
plus the generator alone (decode + backward of the latent, no CLIP) so the
split is visible. Perceptors use random weights (``@random``): the cost of a
network does not depend on its weights, and nothing is downloaded.

    python benchmarks/latent.py                      # 256 and 512 px, tiny + ViT-B-32
    python benchmarks/latent.py --sizes 256 --perceptors tiny --threads 1 --json

Uses the real TAEF2 decoder from ../shared/weights/taef2 when present, else a
randomly initialised decoder of the same architecture (same cost).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

PERCEPTORS = {"tiny": "vecgen-tiny-vit@random", "vit": "ViT-B-32@random"}


def _generator(size: int):
    from vecgen.backends.generators import TAEF2Decoder, TAEF2Generator, default_taef2_dir, load_taef2

    path = default_taef2_dir() / "taef2_decoder.pth"
    if path.is_file():
        return load_taef2(path, image_size=size), "taef2 (pretrained)"
    gen = TAEF2Generator(TAEF2Decoder(), image_size=size).requires_grad_(False).eval()
    return gen, "taef2 (random init, same architecture)"


def _time_generator(gen, steps: int) -> float:
    z = gen.sample_latent(1, 0).requires_grad_(True)
    gen(z).mean().backward()  # warm-up
    t = time.perf_counter()
    for _ in range(steps):
        z.grad = None
        gen(z).mean().backward()
    return (time.perf_counter() - t) / steps


def _time_optimize(gen, perceptor, steps: int, cutouts: int) -> float:
    from vecgen.augment import Cutouts
    from vecgen.engine import optimize
    from vecgen.losses import ClipTerm
    from vecgen.objective import Objective
    from vecgen.params.latent import Latent
    from vecgen.prompts import parse_prompts

    objective = Objective(
        [ClipTerm(perceptor, parse_prompts("a red apple on a table"))], Cutouts(cutouts, size=perceptor.input_size)
    )
    optimize(Latent(gen, space="w", steps=1), objective, 1, progress=False)  # warm-up (text encoding too)
    param = Latent(gen, space="w", steps=steps)
    t = time.perf_counter()
    optimize(param, objective, steps, progress=False)
    return (time.perf_counter() - t) / steps


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="256,512", help="image sides in px, comma-separated (multiples of 8)")
    ap.add_argument("--perceptors", default="tiny,vit", help="tiny (vecgen-tiny-vit) and/or vit (ViT-B-32)")
    ap.add_argument("--steps", type=int, default=3, help="timed steps per row (after one warm-up step)")
    ap.add_argument("--cutouts", type=int, default=8, help="augmented views per step (default 8, as generate)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    ap.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from vecgen.backends.perceptors import load_perceptor

    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    names = [p.strip() for p in args.perceptors.split(",") if p.strip()]
    unknown = [p for p in names if p not in PERCEPTORS]
    if unknown:
        ap.error(f"unknown perceptor {unknown[0]!r} (use tiny, vit)")
    perceptors = {n: load_perceptor(PERCEPTORS[n], "cpu") for n in names}
    rows, gen_label = [], ""
    for size in sizes:
        gen, gen_label = _generator(size)
        gen_s = _time_generator(gen, args.steps)
        for n, perceptor in perceptors.items():
            step_s = _time_optimize(gen, perceptor, args.steps, args.cutouts)
            rows.append(
                {
                    "size": size,
                    "perceptor": PERCEPTORS[n],
                    "cutouts": args.cutouts,
                    "s_per_step": round(step_s, 4),
                    "generator_only_s": round(gen_s, 4),
                }
            )
    info = {
        "generator": gen_label,
        "space": "w",
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "cpu": platform.processor() or platform.machine(),
        "timed_steps": args.steps,
        "rows": rows,
    }
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"# latent optimization, {gen_label}, w space, {info['threads']} torch threads, torch {torch.__version__}")
    print(f"{'size':>6}  {'perceptor':<24} {'cutouts':>7}  {'s/step':>8}  {'generator only':>14}")
    for r in rows:
        print(
            f"{r['size']:>6}  {r['perceptor']:<24} {r['cutouts']:>7}  {r['s_per_step']:>8.3f}  "
            f"{r['generator_only_s']:>14.3f}"
        )
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    sys.exit(main())
