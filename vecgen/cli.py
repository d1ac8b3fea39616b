"""``vecgen`` command line: a thin layer over :mod:`vecgen.api`.

Every error is one line on stderr and exit code 2; Ctrl-C saves what exists
and exits 130.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Callable

from vecgen.errors import VecgenError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, no usage dump
        raise VecgenError(f"{self.prog}: {message}")


def _warn(msg: str) -> None:
    print(f"vecgen: warning: {msg}", file=sys.stderr)


# ----------------------------------------------------------------------------- config files
def load_config(path: str | Path, allowed: set[str]) -> dict[str, Any]:
    """TOML file of options (dash or underscore names); unknown keys are errors."""
    import tomllib

    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise VecgenError(f"config {path}: no such file") from None
    except tomllib.TOMLDecodeError as e:
        raise VecgenError(f"config {path}: {e}") from None
    except OSError as e:
        raise VecgenError(f"config {path}: cannot read ({e.strerror})") from None
    out = {}
    for key, value in data.items():
        k = key.replace("-", "_")
        if k not in allowed:
            raise VecgenError(f"config {path}: unknown option {key!r}")
        out[k] = value
    return out


def merge_options(args: argparse.Namespace, defaults: dict[str, Any], skip: set[str]) -> dict[str, Any]:
    """defaults < config file < command-line flags (flags default to None)."""
    opts = dict(defaults)
    cli = {k: v for k, v in vars(args).items() if k not in skip}
    if getattr(args, "config", None):
        opts.update(load_config(args.config, set(defaults) | {k for k in cli if k != "config"}))
    opts.update({k: v for k, v in cli.items() if v is not None and k != "config"})
    return opts


# ----------------------------------------------------------------------------- shared flags
def add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", help="output file (.svg or .png)")
    p.add_argument("--steps", type=int, help="optimization steps")
    p.add_argument("--size", help="W or WxH in pixels (max 4096 per side)")
    p.add_argument("--clip", help="auto, or MODEL[@PRETRAINED|@PATH][:WEIGHT],... e.g. ViT-B-32:1,RN50@openai:0.5")
    p.add_argument("--cutouts", type=int, help="augmented views per step (0 = the plain image)")
    p.add_argument("--views", choices=["auto", "crops", "zoom"],
                   help="kind of views: crops inside the picture, or crops mixed with zoomed-out whole-picture "
                        "views on its background (auto: zoom for the built-in mini models, crops otherwise)")
    p.add_argument("--seed", type=int, help="random seed (same seed + machine + options = same bytes)")
    p.add_argument("--device", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--image-prompt", action="append", dest="image_prompt", metavar="IMG[:W]",
                   help="image whose CLIP embedding is a target (repeatable)")
    p.add_argument("--snapshots", metavar="DIR", help="write numbered frames to DIR")
    p.add_argument("--every", type=int, help="snapshot every K steps (default 10)")
    p.add_argument("--checkpoint", metavar="FILE", help="save resumable state here while running")
    p.add_argument("--resume", metavar="FILE", help="resume from a checkpoint")
    p.add_argument("--config", metavar="FILE", help="TOML file with any of these options; flags override")
    p.add_argument("-q", "--quiet", action="store_true", default=None, help="no progress bar")


DRAW_DEFAULTS: dict[str, Any] = {
    "output": "vecgen.svg", "strokes": None, "segments": 3, "width": "1,8", "shapes": "auto", "steps": None,
    "size": "224", "clip": "auto", "cutouts": 8, "views": "auto", "seed": 0, "device": "auto", "init": None,
    "background": "white", "rasterizer": "native", "image_prompt": None, "snapshots": None, "every": 10,
    "checkpoint": None, "resume": None, "quiet": False,
}


def _finish(result, output: str) -> int:
    from vecgen.engine import atomic_write  # noqa: F401  (save is atomic)

    path = result.save(output)
    if result.interrupted:
        print(f"vecgen: interrupted after {len(result.history)} steps; saved {path}", file=sys.stderr)
        return 130
    print(str(path))
    return 0


def cmd_draw(args: argparse.Namespace) -> int:
    from vecgen import api

    opts = merge_options(args, DRAW_DEFAULTS, {"func", "prompt", "command"})
    out = opts.pop("output")
    if Path(out).suffix.lower() not in (".svg", ".png"):
        raise VecgenError(f"{out}: output must end in .svg or .png")
    api.check_writable(out)
    result = api.draw(args.prompt, warn=_warn, **opts)
    return _finish(result, out)


def cmd_render(args: argparse.Namespace) -> int:
    from vecgen import api
    from vecgen.engine import atomic_write
    import io

    out = args.output or str(Path(args.input).with_suffix(".png"))
    if Path(out).suffix.lower() != ".png":
        raise VecgenError(f"{out}: render writes .png files")
    api.check_writable(out)
    img = api.render_svg(args.input, args.size, rasterizer=args.rasterizer)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    atomic_write(out, buf.getvalue())
    print(out)
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    import open_clip

    from vecgen.backends.perceptors.clip import WEIGHTS_DIR, _register_configs

    _register_configs()
    shipped = sorted(p.stem for p in WEIGHTS_DIR.glob("*.safetensors")) if WEIGHTS_DIR.exists() else []
    print("built in (shipped weights): " + (", ".join(shipped) or "none"))
    for name in open_clip.list_models():
        tags = open_clip.list_pretrained_tags_by_model(name)
        if tags or name.startswith(("vecgen-", "mini-")):
            print(f"{name}: {', '.join(tags) if tags else 'random weights only (@random)'}")
    return 0


# ----------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    from vecgen import __version__

    parser = _Parser(prog="vecgen", description="Text to pictures by optimization against CLIP.")
    parser.add_argument("--version", action="version", version=f"vecgen {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    d = sub.add_parser("draw", help="optimize Bézier strokes to a prompt; writes SVG")
    d.add_argument("prompt", help='e.g. "a lighthouse:1 | blurry:-0.5"')
    d.add_argument("--strokes", type=int, help="number of paths (default: 256 for real CLIP, 32 for the mini models)")
    d.add_argument("--segments", type=int, help="cubic segments per path (default 3)")
    d.add_argument("--width", help="stroke width range MIN,MAX in pixels (default 1,8)")
    d.add_argument("--shapes", choices=["auto", "strokes", "blobs", "mixed"],
                   help="open strokes, closed filled blobs, or both (auto: strokes for real CLIP, blobs for mini models)")
    d.add_argument("--init", help="start from the paths of this SVG")
    d.add_argument("--background", help="white, black, gray or #rrggbb")
    d.add_argument("--rasterizer", choices=["native", "diffvg"], help="native (default) or diffvg (if installed)")
    add_common(d)
    d.set_defaults(func=cmd_draw)

    r = sub.add_parser("render", help="rasterize an SVG with vecgen's own rasterizer")
    r.add_argument("input", help="SVG file")
    r.add_argument("-o", "--output", help="PNG file (default: input with .png)")
    r.add_argument("--size", help="WxH (default: the SVG's own size)")
    r.add_argument("--rasterizer", choices=["native", "diffvg"], default="native")
    r.set_defaults(func=cmd_render)

    m = sub.add_parser("models", help="list CLIP models and built-in weights")
    m.set_defaults(func=cmd_models)

    for register in _extra_commands():
        register(sub)
    return parser


def _extra_commands() -> list[Callable]:
    """Subcommands contributed by other modules (paint, generate, gallery...)."""
    out = []
    import importlib

    for mod in ("vecgen.cli_raster", "vecgen.cli_generate", "vecgen.cli_gallery"):
        try:
            m = importlib.import_module(mod)
        except ModuleNotFoundError as e:
            if e.name == mod:
                continue
            raise
        out.append(m.register)
    return out


def main(argv: list[str] | None = None) -> int:
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        return int(args.func(args) or 0)
    except VecgenError as e:
        print(f"vecgen: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("vecgen: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # a bug: still one line unless asked for the traceback
        import os

        if os.environ.get("VECGEN_DEBUG"):
            raise
        msg = str(e).splitlines()[0] if str(e) else ""
        print(f"vecgen: internal error: {type(e).__name__}: {msg} (set VECGEN_DEBUG=1 for a traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
