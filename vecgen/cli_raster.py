"""``vecgen paint``: raster parameterizations on the command line (over :func:`vecgen.api.paint`)."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from vecgen.errors import VecgenError

PAINT_DEFAULTS: dict[str, Any] = {
    "output": "vecgen.png", "param": "fft", "steps": 200, "size": "224", "clip": "auto", "cutouts": 8, "views": "auto",
    "seed": 0, "device": "auto", "init": None, "decay": 1.5, "wavelet": "db2", "levels": 4, "contrast": 1.0,
    "colors": 1.0, "squash": "sigmoid", "grid": "32x32", "palette": None, "palette_mode": "end", "lr": None,
    "image_prompt": None, "snapshots": None, "every": 10, "checkpoint": None, "resume": None, "quiet": False,
}

_SUFFIXES = (".png", ".svg")


def _outputs(out: str, param: str) -> list[str]:
    """The files a run writes: the requested one, plus its PNG/SVG twin for pixels."""
    suffix = Path(out).suffix.lower()
    if suffix not in _SUFFIXES:
        raise VecgenError(f"{out}: output must end in .png (or .svg for --param pixels)")
    if param != "pixels":
        if suffix == ".svg":
            raise VecgenError(f"{out}: --param {param} makes raster images; use a .png output")
        return [out]
    twin = ".svg" if suffix == ".png" else ".png"
    return [out, str(Path(out).with_suffix(twin))]


def cmd_paint(args: argparse.Namespace) -> int:
    from vecgen import api
    from vecgen.cli import _finish, _warn, merge_options

    opts = merge_options(args, PAINT_DEFAULTS, {"func", "prompt", "command"})
    out = str(opts.pop("output"))
    param = opts.get("param")
    outputs = _outputs(out, param if isinstance(param, str) else "")
    for path in outputs:
        api.check_writable(path)
    result = api.paint(args.prompt, warn=_warn, **opts)
    for extra in outputs[1:]:
        print(str(result.save(extra)))
    return _finish(result, out)


def register(sub: Any) -> None:
    """Add the ``paint`` subcommand to the ``vecgen`` parser."""
    from vecgen.cli import add_common

    p = sub.add_parser(
        "paint", help="optimize a raster image (Fourier, wavelet or pixel art) to a prompt; writes PNG",
        description="Optimize an image so CLIP sees the prompt. --param fft|dwt write PNG; --param pixels "
                    "writes both the -o file and its .png/.svg twin (same name, other suffix).")
    p.add_argument("prompt", help='e.g. "a misty forest:1 | blurry:-0.5"')
    p.add_argument("--param", choices=["fft", "dwt", "pixels"],
                   help="fft (default): Fourier spectrum; dwt: wavelet pyramid; pixels: grid of flat cells")
    p.add_argument("--decay", type=float, help="fft/dwt: 1/f spectrum decay, higher = smoother (default 1.5)")
    p.add_argument("--wavelet", help="dwt: wavelet name, e.g. haar, db2 (default), sym4, coif1, bior2.2")
    p.add_argument("--levels", type=int, help="dwt: decomposition levels (default 4, capped by the size)")
    p.add_argument("--contrast", type=float, help="fft/dwt: gain before the squash (default 1.0)")
    p.add_argument("--colors", type=float, help="fft/dwt: colour saturation, 0 = grey (default 1.0)")
    p.add_argument("--squash", choices=["sigmoid", "tanh"], help="fft/dwt: map to [0, 1] (default sigmoid)")
    p.add_argument("--grid", help="pixels: COLSxROWS cells (default 32x32), or COLS for square cells")
    p.add_argument("--palette", type=int, metavar="K", help="pixels: limit to K colours")
    p.add_argument("--palette-mode", dest="palette_mode", choices=["end", "throughout"],
                   help="pixels: snap to K colours at the end (k-means; default) or learn K colours throughout")
    p.add_argument("--lr", type=float, help="learning rate (default 0.05 fft/dwt, 0.03 pixels)")
    p.add_argument("--init", metavar="IMG", help="start from this image")
    add_common(p)
    p.set_defaults(func=cmd_paint)
