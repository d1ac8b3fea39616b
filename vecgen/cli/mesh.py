"""``vecgen mesh``: flags over :func:`vecgen.api.mesh`; ``--turntable`` writes a GIF or a PNG strip too."""
from __future__ import annotations

import argparse

from vecgen.api import Verb
from vecgen.api._run import VIEW_CHOICES
from vecgen.api.mesh import TURNTABLE_OUTPUTS
from vecgen.cli._common import add_common, check_output, default_text, finish, merge_options, set_help, warn
from vecgen.options import check_suffix, check_writable

DESCRIPTION = ("Colour and displace a mesh (OBJ, PLY, OFF, STL, GLB) so CLIP sees the prompt from every side "
               "(Text2Mesh: a neural style field, rendered by vecgen's own triangle renderer). Writes the mesh "
               "in its own frame and vertex order with vertex colours (.ply, .obj, .glb), or its front view (.png).")


def add_arguments(p: argparse.ArgumentParser, verb: Verb) -> None:
    d = lambda name: default_text(verb, name)  # noqa: E731
    p.add_argument("mesh", help="input mesh: .obj .ply .off .stl .glb .gltf")
    p.add_argument("prompt", help='e.g. "a horse made of wood"')
    p.add_argument("--turntable", metavar="FILE", help="also write a turntable: .gif (animated) or .png (a strip)")
    p.add_argument("--frames", type=int, help="turntable frames (default 24)")
    p.add_argument("--augment", choices=VIEW_CHOICES,
                   help="kind of augmented views of each camera image (auto: zoom for the mini models, crops else)")
    p.add_argument("--background", help=f"white, black, gray or #rrggbb (default {d('background')})")
    p.add_argument("--max-displacement", dest="max_displacement", type=float,
                   help=f"displacement bound along the normals, as a fraction of the bounding box (default "
                        f"{d('max_displacement')}; 0 = colours only)")
    p.add_argument("--sigma", type=float, help=f"Fourier feature scale, higher = finer detail (default {d('sigma')})")
    p.add_argument("--lr", type=float, help=f"learning rate (default {d('lr')})")
    p.add_argument("--width", type=int, help=f"MLP width (default {d('width')})")
    p.add_argument("--depth", type=int, help=f"MLP trunk layers (default {d('depth')})")
    p.add_argument("--elevation", type=float, help=f"front camera elevation, degrees (default {d('elevation')})")
    p.add_argument("--front-azimuth", dest="front_azimuth", type=float,
                   help="azimuth of the front camera, degrees (default 0: looking from +z)")
    p.add_argument("--max-faces", dest="max_faces", type=int,
                   help=f"simplify larger meshes to this many faces by vertex clustering first (default "
                        f"{d('max_faces')}); the output is then a new mesh")
    add_common(p, verb)
    for a in p._actions:  # --views is the number of cameras here (the 2-D verbs' --views is --augment)
        if a.dest == "views":
            a.choices, a.type, a.metavar = None, int, "N"
    set_help(p, {"views": f"cameras per step: the front plus random ones around (default {d('views')})",
                 "size": "W or WxH of each camera's image (default 224)",
                 "cutouts": f"augmented views of each camera's image (default {d('cutouts')})"})


def run(args: argparse.Namespace, verb: Verb) -> int:
    opts = merge_options(args, verb, {"mesh", "prompt"})
    out = str(opts.pop("output"))
    turntable = opts.pop("turntable", None)
    frames = opts.pop("frames", None)
    check_output(out, verb)
    if turntable is not None:
        check_suffix(turntable, TURNTABLE_OUTPUTS, "the turntable")
        check_writable(turntable)
    result = verb.function(args.mesh, args.prompt, warn=warn, **opts)
    if turntable is not None:
        print(str(result.turntable(turntable, frames=24 if frames is None else frames)))
    return finish(result, out)
