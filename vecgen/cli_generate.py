"""``vecgen generate`` and ``vecgen adapt``: generator latents and weights on the command line.

Thin layers over :func:`vecgen.api_generate.generate` / :func:`~vecgen.api_generate.adapt`.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from vecgen.errors import VecgenError

GENERATE_DEFAULTS: dict[str, Any] = {
    "output": "vecgen.png", "generator": None, "space": "w", "l2": 0.0, "init": "random", "samples": 64,
    "top": 4, "truncation": None, "lr": 0.1, "steps": 200, "size": None, "clip": "auto", "cutouts": 8,
    "views": "auto", "seed": 0, "device": "auto", "image_prompt": None, "snapshots": None, "every": 10,
    "checkpoint": None, "resume": None, "quiet": False, "save_latent": None,
}

ADAPT_DEFAULTS: dict[str, Any] = {
    "output": "adapted.pt", "generator": None, "source": None, "target": None, "grid": None, "grid_samples": 4,
    "layers_k": None, "batch": 2, "lr": 0.002, "truncation": 1.0, "probe_steps": 1, "steps": 200, "size": None,
    "clip": "auto", "seed": 0, "device": "auto", "snapshots": None, "every": 10, "checkpoint": None,
    "resume": None, "quiet": False,
}

_NOT_FOR_ADAPT = ("cutouts", "views", "image_prompt")


def _need_generator(opts: dict[str, Any]) -> None:
    if not opts.get("generator"):
        raise VecgenError("--generator is required (e.g. --generator taef2 or --generator stylegan2:ckpt.pt)")


def cmd_generate(args: argparse.Namespace) -> int:
    from vecgen import api
    from vecgen.cli import _finish, _warn, merge_options

    opts = merge_options(args, GENERATE_DEFAULTS, {"func", "prompt", "command"})
    out = str(opts.pop("output"))
    if Path(out).suffix.lower() != ".png":
        raise VecgenError(f"{out}: generate writes .png images")
    _need_generator(opts)
    api.check_writable(out)
    result = api.generate(args.prompt, warn=_warn, **opts)
    return _finish(result, out)


def cmd_adapt(args: argparse.Namespace) -> int:
    from vecgen import api
    from vecgen.cli import _warn, merge_options

    opts = merge_options(args, ADAPT_DEFAULTS, {"func", "command"})
    for key in _NOT_FOR_ADAPT:
        if opts.pop(key, None) is not None:
            raise VecgenError(f"--{key.replace('_', '-')} does not apply to adapt")
    out = str(opts.pop("output"))
    if Path(out).suffix.lower() not in (".pt", ".pth"):
        raise VecgenError(f"{out}: adapt writes the generator as .pt (the grid goes to --grid, default OUT.png)")
    grid = str(opts.pop("grid") or Path(out).with_suffix(".png"))
    _need_generator(opts)
    for key in ("source", "target"):
        if not opts.get(key):
            raise VecgenError(f"--{key} is required, e.g. --source \"photo\" --target \"pencil sketch\"")
    result = api.adapt(opts.pop("source"), opts.pop("target"), output=out, grid=grid, warn=_warn, **opts)
    print(out)
    print(grid)
    if result.interrupted:
        print(f"vecgen: interrupted after {len(result.history)} steps; saved {out}", file=sys.stderr)
        return 130
    return 0


def register(sub: Any) -> None:
    """Add the ``generate`` and ``adapt`` subcommands to the ``vecgen`` parser."""
    from vecgen.cli import add_common

    g = sub.add_parser(
        "generate", help="optimize a generator latent (TAEF2, StyleGAN2, TorchScript) to a prompt; writes PNG",
        description="StyleCLIP-style latent optimization: the picture is what a frozen generator makes of an "
                    "optimized latent in z, w or W+ space. --init fusedream ranks --samples random latents by "
                    "the objective and optimizes a mix of the --top best.")
    g.add_argument("prompt", help='e.g. "a red apple:1 | blurry:-0.5"')
    g.add_argument("--generator", metavar="SPEC",
                   help="taef2[:FILE[:SIZE]], stylegan2:FILE or script:FILE[:C,H,W] (required)")
    g.add_argument("--space", choices=["z", "w", "wplus"], help="latent space to optimize (default w)")
    g.add_argument("--l2", type=float, help="weight of the L2 distance to the starting latent (StyleCLIP: 0.008)")
    g.add_argument("--init", choices=["random", "mean", "fusedream"],
                   help="starting latent: a seeded random draw (default), the mean latent, or FuseDream's ranking")
    g.add_argument("--samples", type=int, help="fusedream: random latents to rank (default 64)")
    g.add_argument("--top", type=int, help="fusedream: best latents kept and mixed (default 4)")
    g.add_argument("--truncation", type=float, metavar="PSI",
                   help="pull latents toward the mean latent, 0..1 (default: the generator's, usually 1)")
    g.add_argument("--lr", type=float, help="peak learning rate of the warm-up/cosine ramp (default 0.1)")
    g.add_argument("--save-latent", dest="save_latent", metavar="FILE.pt", help="also write the final latent")
    add_common(g)
    _set_help(g, {"output": "output PNG (default vecgen.png)"})
    g.set_defaults(func=cmd_generate)

    a = sub.add_parser(
        "adapt", help="StyleGAN-NADA: shift a generator from --source to --target text; writes .pt + grid PNG",
        description="Fine-tune a copy of the generator so that its images move, in CLIP space, the way "
                    "--source moves to --target (directional CLIP loss, adaptive layer freezing). Writes the "
                    "adapted generator (-o, .pt) and a grid of frozen (top) vs adapted (bottom) samples.")
    a.add_argument("--generator", metavar="SPEC", help="stylegan2:FILE, taef2[:FILE] or script:FILE (required)")
    a.add_argument("--source", help='what the generator makes now, e.g. "photo"')
    a.add_argument("--target", help='what it should make, e.g. "pencil sketch"')
    a.add_argument("--layers-k", dest="layers_k", type=int, help="layers trained per step (default: half)")
    a.add_argument("--batch", type=int, help="latents per step (default 2)")
    a.add_argument("--lr", type=float, help="Adam learning rate of the weights (default 0.002)")
    a.add_argument("--truncation", type=float, metavar="PSI", help="truncation of the sampled latents (default 1)")
    a.add_argument("--probe-steps", dest="probe_steps", type=int,
                   help="W+ probe steps of the layer selection (default 1)")
    a.add_argument("--grid", metavar="FILE.png", help="frozen-vs-adapted grid (default: OUTPUT with .png)")
    a.add_argument("--grid-samples", dest="grid_samples", type=int, help="latents in the grid (default 4)")
    add_common(a)
    _set_help(a, {"output": "adapted generator, .pt (default adapted.pt)",
                  **{k: argparse.SUPPRESS for k in _NOT_FOR_ADAPT}})
    a.set_defaults(func=cmd_adapt)


def _set_help(parser: argparse.ArgumentParser, helps: dict[str, str]) -> None:
    """Reword (or hide) shared flags for one subcommand."""
    for action in parser._actions:
        if action.dest in helps:
            action.help = helps[action.dest]
