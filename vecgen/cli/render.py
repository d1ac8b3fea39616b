"""``vecgen render``: an SVG through vecgen's own rasterizer, or a mesh through its triangle renderer, to PNG."""

from __future__ import annotations

import argparse
from pathlib import Path

from vecgen.errors import VecgenError
from vecgen.options import RASTERIZERS


def register(sub) -> None:
    r = sub.add_parser("render", help="rasterize an SVG, or draw a mesh, with vecgen's own renderers")
    r.add_argument("input", help="SVG file, or a mesh (.obj .ply .off .stl .glb .gltf)")
    r.add_argument("-o", "--output", help="PNG file (default: input with .png); for a mesh also .gif (a turntable)")
    r.add_argument("--size", help="WxH (default: the SVG's own size; 512 for a mesh)")
    r.add_argument("--rasterizer", choices=RASTERIZERS, default="native")
    r.add_argument("--azimuth", type=float, default=0.0, help="mesh: camera azimuth, degrees (0 looks from +z)")
    r.add_argument("--elevation", type=float, default=15.0, help="mesh: camera elevation, degrees (default 15)")
    r.add_argument("--background", default="white", help="mesh: white, black, gray or #rrggbb")
    r.add_argument(
        "--frames",
        type=int,
        help="mesh: frames of a .gif turntable, or of a .png strip (default 24 "
        "for .gif; a .png is one view unless given)",
    )
    r.add_argument("--max-faces", dest="max_faces", type=int, help="mesh: simplify larger meshes first")
    r.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from vecgen.options import check_writable

    if Path(args.input).suffix.lower() != ".svg":
        return _run_mesh(args)
    from vecgen.api import render_svg
    from vecgen.io import save_png

    out = args.output or str(Path(args.input).with_suffix(".png"))
    if Path(out).suffix.lower() != ".png":
        raise VecgenError(f"{out}: render writes .png files")
    check_writable(out)
    save_png(render_svg(args.input, args.size, rasterizer=args.rasterizer), out)
    print(out)
    return 0


def _run_mesh(args: argparse.Namespace) -> int:
    from vecgen.api.mesh import save_turntable
    from vecgen.api.render import render_mesh
    from vecgen.backends.mesh.io import MESH_IN
    from vecgen.io import save_png
    from vecgen.options import check_writable

    if Path(args.input).suffix.lower() not in MESH_IN:
        raise VecgenError(f"{args.input}: render draws .svg files and meshes ({', '.join(MESH_IN)})")
    out = args.output or str(Path(args.input).with_suffix(".png"))
    suffix = Path(out).suffix.lower()
    if suffix not in (".png", ".gif"):
        raise VecgenError(f"{out}: a mesh renders to .png (or .gif, a turntable)")
    check_writable(out)
    frames = args.frames if args.frames is not None else (24 if suffix == ".gif" else None)
    pic = render_mesh(
        args.input, args.size or 512, args.azimuth, args.elevation, args.background, args.max_faces, frames=frames
    )
    if isinstance(pic, list):
        save_turntable(pic, out)
    else:
        save_png(pic, out)
    print(out)
    return 0
