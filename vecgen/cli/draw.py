"""``vecgen draw``: flags over :func:`vecgen.api.draw`."""
from __future__ import annotations

import argparse

from vecgen.api import Verb
from vecgen.api.draw import SHAPE_CHOICES
from vecgen.options import RASTERIZERS
from vecgen.cli._common import add_common, call, check_output, default_text, finish, merge_options


def add_arguments(p: argparse.ArgumentParser, verb: Verb) -> None:
    p.add_argument("prompt", help='e.g. "a lighthouse:1 | blurry:-0.5"')
    p.add_argument("--strokes", type=int, help="number of paths (default: 256 for real CLIP, 32 for the mini models)")
    p.add_argument("--segments", type=int, help=f"cubic segments per path (default {default_text(verb, 'segments')})")
    p.add_argument("--width", help=f"stroke width range MIN,MAX in pixels (default {default_text(verb, 'width')})")
    p.add_argument("--shapes", choices=SHAPE_CHOICES,
                   help="open strokes, closed filled blobs, or both (auto: strokes for real CLIP, blobs for mini models)")
    p.add_argument("--init", help="start from the paths of this SVG")
    p.add_argument("--background", help="white, black, gray or #rrggbb")
    p.add_argument("--rasterizer", choices=RASTERIZERS, help="native (default) or diffvg (if installed)")
    p.add_argument("--keep-all", action="store_true", default=None,
                   help="keep paths whose removal changes no pixel (by default the SVG drops them)")
    add_common(p, verb)


def run(args: argparse.Namespace, verb: Verb) -> int:
    opts = merge_options(args, verb, {"prompt"})
    out = str(opts.pop("output"))
    check_output(out, verb)
    return finish(call(verb, args.prompt, opts), out)
