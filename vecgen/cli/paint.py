"""``vecgen paint``: flags over :func:`vecgen.api.paint`; pixel art writes its PNG and SVG twins."""
from __future__ import annotations

import argparse
from pathlib import Path

from vecgen.api import Verb
from vecgen.api.paint import DEFAULT_LR, PALETTE_MODE_CHOICES, PARAMS, SQUASH_CHOICES
from vecgen.cli._common import add_common, call, default_text, finish, merge_options
from vecgen.errors import VecgenError
from vecgen.options import check_writable

DESCRIPTION = ("Optimize an image so CLIP sees the prompt. --param fft|dwt write PNG; --param pixels "
               "writes both the -o file and its .png/.svg twin (same name, other suffix).")


def outputs(out: str, param: str) -> list[str]:
    """The files a run writes: the requested one, plus its PNG/SVG twin for pixels."""
    suffix = Path(out).suffix.lower()
    if suffix not in (".png", ".svg"):
        raise VecgenError(f"{out}: output must end in .png (or .svg for --param pixels)")
    if param != "pixels":
        if suffix == ".svg":
            raise VecgenError(f"{out}: --param {param} makes raster images; use a .png output")
        return [out]
    twin = ".svg" if suffix == ".png" else ".png"
    return [out, str(Path(out).with_suffix(twin))]


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
    p.add_argument("--squash", choices=SQUASH_CHOICES, help=f"fft/dwt: map to [0, 1] (default {d('squash')})")
    p.add_argument("--grid", help=f"pixels: COLSxROWS cells (default {d('grid')}), or COLS for square cells")
    p.add_argument("--palette", type=int, metavar="K", help="pixels: limit to K colours")
    p.add_argument("--palette-mode", dest="palette_mode", choices=PALETTE_MODE_CHOICES,
                   help="pixels: snap to K colours at the end (k-means; default) or learn K colours throughout")
    lrs = ", ".join(f"{v:g} {k}" for k, v in DEFAULT_LR.items())
    p.add_argument("--lr", type=float, help=f"learning rate (default {lrs})")
    p.add_argument("--init", metavar="IMG", help="start from this image")
    add_common(p, verb)


def run(args: argparse.Namespace, verb: Verb) -> int:
    opts = merge_options(args, verb, {"prompt"})
    out = str(opts.pop("output"))
    param = opts.get("param")
    files = outputs(out, param if isinstance(param, str) else "")
    for path in files:
        check_writable(path)
    result = call(verb, args.prompt, opts)
    for extra in files[1:]:
        print(str(result.save(extra)))
    return finish(result, out)
