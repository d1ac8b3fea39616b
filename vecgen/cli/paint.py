"""``vecgen paint``: flags over :func:`vecgen.api.paint`; pixel art writes its PNG and SVG twins."""
from __future__ import annotations

import argparse

from vecgen.api import Verb
from vecgen.api.paint import DEFAULT_LR, PARAMS, output_files
from vecgen.cli._common import add_common, call, default_text, finish, merge_options
from vecgen.options import PALETTE_MODES, SQUASHES, check_writable

DESCRIPTION = ("Optimize an image so CLIP sees the prompt. --param fft|dwt write PNG; --param pixels "
               "writes both the -o file and its .png/.svg twin (same name, other suffix).")


def add_arguments(p: argparse.ArgumentParser, verb: Verb) -> None:
    d = lambda name: default_text(verb, name)  # noqa: E731
    p.add_argument("prompt", help='e.g. "a misty forest:1 | blurry:-0.5"')
    p.add_argument("--param", choices=PARAMS,
                   help=f"fft: Fourier spectrum; dwt: wavelet pyramid; pixels: grid of flat cells (default {d('param')})")
    p.add_argument("--decay", type=float, help=f"fft/dwt: 1/f spectrum decay, higher = smoother (default {d('decay')})")
    p.add_argument("--wavelet", help=f"dwt: wavelet name, e.g. haar, db2, sym4, coif1, bior2.2 (default {d('wavelet')})")
    p.add_argument("--levels", type=int, help=f"dwt: decomposition levels (default {d('levels')}, capped by the size)")
    p.add_argument("--contrast", type=float, help=f"fft/dwt: gain before the squash (default {d('contrast')})")
    p.add_argument("--colors", type=float, help=f"fft/dwt: colour saturation, 0 = grey (default {d('colors')})")
    p.add_argument("--squash", choices=SQUASHES, help=f"fft/dwt: map to [0, 1] (default {d('squash')})")
    p.add_argument("--grid", help=f"pixels: COLSxROWS cells (default {d('grid')}), or COLS for square cells")
    p.add_argument("--palette", type=int, metavar="K", help="pixels: limit to K colours")
    p.add_argument("--palette-mode", dest="palette_mode", choices=PALETTE_MODES,
                   help="pixels: snap to K colours at the end (k-means; default) or learn K colours throughout")
    lrs = ", ".join(f"{v:g} {k}" for k, v in DEFAULT_LR.items())
    p.add_argument("--lr", type=float, help=f"learning rate (default {lrs})")
    p.add_argument("--init", metavar="IMG", help="start from this image")
    add_common(p, verb)


def run(args: argparse.Namespace, verb: Verb) -> int:
    opts = merge_options(args, verb, {"prompt"})
    out = str(opts.pop("output"))
    param = opts.get("param")
    files = output_files(out, param if isinstance(param, str) else "")
    for path in files:
        check_writable(path)
    result = call(verb, args.prompt, opts)
    for extra in files[1:]:
        print(str(result.save(extra)))
    return finish(result, out)
