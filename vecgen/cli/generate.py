"""``vecgen generate``: flags over :func:`vecgen.api.generate`."""
from __future__ import annotations

import argparse

from vecgen.api import Verb
from vecgen.cli._common import add_common, call, check_output, default_text, finish, merge_options, set_help
from vecgen.errors import VecgenError
from vecgen.options import INITS, SPACES

DESCRIPTION = ("StyleCLIP-style latent optimization: the picture is what a frozen generator makes of an "
               "optimized latent in z, w or W+ space. --init fusedream ranks --samples random latents by "
               "the objective and optimizes a mix of the --top best.")


def need_generator(opts: dict) -> None:
    if not opts.get("generator"):
        raise VecgenError("--generator is required (e.g. --generator taef2 or --generator stylegan2:ckpt.pt)")


def add_arguments(p: argparse.ArgumentParser, verb: Verb) -> None:
    d = lambda name: default_text(verb, name)  # noqa: E731
    p.add_argument("prompt", help='e.g. "a red apple:1 | blurry:-0.5"')
    p.add_argument("--generator", metavar="SPEC",
                   help="taef2[:FILE[:WxH]], stylegan2:FILE or script:FILE[:C,H,W] (required)")
    p.add_argument("--space", choices=SPACES, help=f"latent space to optimize (default {d('space')})")
    p.add_argument("--l2", type=float, help="weight of the L2 distance to the starting latent (StyleCLIP: 0.008)")
    p.add_argument("--init", choices=INITS,
                   help="starting latent: a seeded random draw (default), the mean latent, or FuseDream's ranking")
    p.add_argument("--samples", type=int, help=f"fusedream: random latents to rank (default {d('samples')})")
    p.add_argument("--top", type=int, help=f"fusedream: best latents kept and mixed (default {d('top')})")
    p.add_argument("--truncation", type=float, metavar="PSI",
                   help="pull latents toward the mean latent, 0..1 (default: the generator's, usually 1)")
    p.add_argument("--lr", type=float, help=f"peak learning rate of the warm-up/cosine ramp (default {d('lr')})")
    p.add_argument("--save-latent", dest="save_latent", metavar="FILE.pt", help="also write the final latent")
    add_common(p, verb)
    set_help(p, {"output": f"output PNG (default {verb.default_output})"})


def run(args: argparse.Namespace, verb: Verb) -> int:
    opts = merge_options(args, verb, {"prompt"})
    out = str(opts.pop("output"))
    check_output(out, verb)
    need_generator(opts)
    return finish(call(verb, args.prompt, opts), out)
