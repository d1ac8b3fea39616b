"""``vecgen render``: an SVG through vecgen's own rasterizer, to PNG."""
from __future__ import annotations

import argparse
from pathlib import Path

from vecgen.options import RASTERIZERS
from vecgen.errors import VecgenError


def register(sub) -> None:
    r = sub.add_parser("render", help="rasterize an SVG with vecgen's own rasterizer")
    r.add_argument("input", help="SVG file")
    r.add_argument("-o", "--output", help="PNG file (default: input with .png)")
    r.add_argument("--size", help="WxH (default: the SVG's own size)")
    r.add_argument("--rasterizer", choices=RASTERIZERS, default="native")
    r.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from vecgen.api import render_svg
    from vecgen.io import save_png
    from vecgen.options import check_writable

    out = args.output or str(Path(args.input).with_suffix(".png"))
    if Path(out).suffix.lower() != ".png":
        raise VecgenError(f"{out}: render writes .png files")
    check_writable(out)
    save_png(render_svg(args.input, args.size, rasterizer=args.rasterizer), out)
    print(out)
    return 0
