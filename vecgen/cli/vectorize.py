"""``vecgen vectorize``: flags over :func:`vecgen.api.vectorize`."""
from __future__ import annotations

import argparse

from vecgen.api import Verb
from vecgen.cli._common import call, check_output, default_text, finish, merge_options

DESCRIPTION = ("Trace a picture (PNG, JPEG, WebP; alpha kept) into an SVG of filled paths, grown layer by layer "
               "and fitted to the picture (LIVE), then pruned and rounded.")


def add_arguments(p: argparse.ArgumentParser, verb: Verb) -> None:
    d = lambda name: default_text(verb, name)  # noqa: E731
    p.add_argument("image", help="the picture to trace (PNG, JPEG, WebP...)")
    p.add_argument("-o", "--output", help=f"output file ({' or '.join(verb.outputs)}; default {verb.default_output})")
    p.add_argument("--paths", type=int, help=f"filled paths at most (default {d('paths')}; unused ones are pruned)")
    p.add_argument("--segments", type=int, help=f"cubic segments per new path (default {d('segments')})")
    p.add_argument("--stages", type=int, help="growth stages: 1, 2, 4, ... paths (default log2(paths) + 1)")
    p.add_argument("--steps", type=int, help="optimization steps in all (default 40 per stage + 200)")
    p.add_argument("--palette", metavar="#HEX,...", help="fills only from these colours")
    p.add_argument("--colors", type=int, metavar="N", help="fills only from N colours of the picture (k-means)")
    p.add_argument("--init", metavar="SVG", help="refine the filled paths of this SVG first")
    p.add_argument("--decimals", type=int, help=f"decimals of the written coordinates (default {d('decimals')})")
    p.add_argument("--work-size", dest="work_size", type=int,
                   help=f"longest side optimized at, in pixels (default {d('work_size')}; the SVG keeps the input's size)")
    p.add_argument("--no-metadata", dest="metadata", action="store_false", default=None,
                   help="leave out the <metadata> block (settings, software): the smallest file")
    p.add_argument("--seed", type=int, help="random seed (same seed + machine + options = same bytes)")
    p.add_argument("--device", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--snapshots", metavar="DIR", help="write numbered frames to DIR")
    p.add_argument("--every", type=int, help=f"snapshot every K steps (default {d('every')})")
    p.add_argument("--checkpoint", metavar="FILE", help="save resumable state here while running")
    p.add_argument("--resume", metavar="FILE", help="resume from a checkpoint")
    p.add_argument("--config", metavar="FILE", help="TOML file with any of these options; flags override")
    p.add_argument("-q", "--quiet", action="store_true", default=None, help="no progress bar")


def run(args: argparse.Namespace, verb: Verb) -> int:
    opts = merge_options(args, verb, {"image"})
    out = str(opts.pop("output"))
    check_output(out, verb)
    result = call(verb, args.image, opts)
    if not opts.get("quiet"):
        s = result.settings
        print(f"vecgen: {s['paths_written']} paths, {s['bytes']} bytes, PSNR {s['psnr']} dB")
    return finish(result, out)
