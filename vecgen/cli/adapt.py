"""``vecgen adapt``: flags over :func:`vecgen.api.adapt`; writes the generator (-o) and the grid PNG."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vecgen.api import Verb
from vecgen.api.adapt import GENERATOR_SUFFIXES, default_grid
from vecgen.cli._common import add_common, call, default_text, merge_options, set_help
from vecgen.cli.generate import need_generator
from vecgen.errors import VecgenError

DESCRIPTION = ("Fine-tune a copy of the generator so that its images move, in CLIP space, the way "
               "--source moves to --target (directional CLIP loss, adaptive layer freezing). Writes the "
               "adapted generator (-o, .pt) and a grid of frozen (top) vs adapted (bottom) samples.")
NOT_FOR_ADAPT = ("cutouts", "views", "image_prompt")  # shared flags that mean nothing here


def add_arguments(p: argparse.ArgumentParser, verb: Verb) -> None:
    d = lambda name: default_text(verb, name)  # noqa: E731
    p.add_argument("--generator", metavar="SPEC", help="stylegan2:FILE, taef2[:FILE] or script:FILE (required)")
    p.add_argument("--source", help='what the generator makes now, e.g. "photo"')
    p.add_argument("--target", help='what it should make, e.g. "pencil sketch"')
    p.add_argument("--layers-k", dest="layers_k", type=int, help="layers trained per step (default: half)")
    p.add_argument("--batch", type=int, help=f"latents per step (default {d('batch')})")
    p.add_argument("--lr", type=float, help="Adam learning rate of the weights (default: the generator's own; "
                   "stylegan2 0.002, taef2 0.0001)")
    p.add_argument("--truncation", type=float, metavar="PSI",
                   help=f"truncation of the sampled latents (default {d('truncation')})")
    p.add_argument("--probe-steps", dest="probe_steps", type=int,
                   help=f"W+ probe steps of the layer selection (default {d('probe_steps')})")
    p.add_argument("--grid", metavar="FILE.png", help="frozen-vs-adapted grid (default: OUTPUT with .png)")
    p.add_argument("--grid-samples", dest="grid_samples", type=int,
                   help=f"latents in the grid (default {d('grid_samples')})")
    add_common(p, verb)
    set_help(p, {"output": f"adapted generator, .pt (default {verb.default_output})",
                 **{k: argparse.SUPPRESS for k in NOT_FOR_ADAPT}})


def run(args: argparse.Namespace, verb: Verb) -> int:
    for key in NOT_FOR_ADAPT:
        if getattr(args, key, None) is not None:
            raise VecgenError(f"--{key.replace('_', '-')} does not apply to adapt")
    opts = merge_options(args, verb, set(NOT_FOR_ADAPT))
    out = str(opts.pop("output"))
    if Path(out).suffix.lower() not in GENERATOR_SUFFIXES:
        raise VecgenError(f"{out}: adapt writes the generator as .pt (the grid goes to --grid, default OUT.png)")
    opts["grid"] = default_grid(out, opts.get("grid"))
    need_generator(opts)
    for key in ("source", "target"):
        if not opts.get(key):
            raise VecgenError(f"--{key} is required, e.g. --source \"photo\" --target \"pencil sketch\"")
    result = call(verb, None, {**opts, "output": out})
    print(out)
    print(opts["grid"])
    if result.interrupted:
        print(f"vecgen: interrupted after {len(result.history)} steps; saved {out}", file=sys.stderr)
        return 130
    return 0
