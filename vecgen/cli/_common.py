"""What every subcommand shares: the one-line-error parser, shared flags, TOML configs, defaults from the API.

Flags default to None; :func:`merge_options` fills in the API function's own
signature defaults, so the CLI never restates a default the API holds.
"""
from __future__ import annotations

import argparse
import inspect
import sys
from pathlib import Path
from typing import Any

from vecgen.api import Verb
from vecgen.api._run import VIEW_CHOICES
from vecgen.errors import VecgenError
from vecgen.options import check_suffix, check_writable


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, no usage dump
        raise VecgenError(f"{self.prog}: {message}")


def warn(msg: str) -> None:
    print(f"vecgen: warning: {msg}", file=sys.stderr)


def default_text(verb: Verb, name: str) -> str:
    """The API default of option ``name`` as help text shows it."""
    value = verb.defaults().get(name)
    if isinstance(value, (tuple, list)):
        return ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
    return "auto" if value is None else str(value)


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


def merge_options(args: argparse.Namespace, verb: Verb, skip: set[str] = frozenset()) -> dict[str, Any]:
    """API defaults < config file < command-line flags, for the flags this subcommand has.

    ``output`` defaults to the verb's ``default_output``. Returns keyword
    options for the verb's function (positional arguments such as the prompt
    are in ``skip``).
    """
    skip = set(skip) | {"func", "command", "config", "interrupted"}
    flags = {k: v for k, v in vars(args).items() if k not in skip}
    api = verb.defaults()
    opts = {k: api[k] for k in flags if k in api}
    opts["output"] = verb.default_output
    if getattr(args, "config", None):
        opts.update(load_config(args.config, set(flags)))
    opts.update({k: v for k, v in flags.items() if v is not None})
    return opts


# ----------------------------------------------------------------------------- shared flags
def add_common(p: argparse.ArgumentParser, verb: Verb) -> None:
    """The flags every optimizing verb has (help reworded per verb with :func:`set_help`)."""
    d = lambda name: default_text(verb, name)  # noqa: E731
    p.add_argument("-o", "--output", help=f"output file ({' or '.join(verb.outputs)}; default {verb.default_output})")
    p.add_argument("--steps", type=int, help=f"optimization steps (default {d('steps')})")
    p.add_argument("--size", help="W or WxH in pixels (max 4096 per side)")
    p.add_argument("--clip", help="auto, or MODEL[@PRETRAINED|@PATH][:WEIGHT],... e.g. ViT-B-32:1,RN50@openai:0.5")
    p.add_argument("--cutouts", type=int, help=f"augmented views per step (0 = the plain image; default {d('cutouts')})")
    p.add_argument("--views", choices=VIEW_CHOICES,
                   help="kind of views: crops inside the picture, or crops mixed with zoomed-out whole-picture "
                        "views on its background (auto: zoom for the built-in mini models, crops otherwise)")
    p.add_argument("--seed", type=int, help="random seed (same seed + machine + options = same bytes)")
    p.add_argument("--device", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--image-prompt", action="append", dest="image_prompt", metavar="IMG[:W]",
                   help="image whose CLIP embedding is a target (repeatable)")
    p.add_argument("--snapshots", metavar="DIR", help="write numbered frames to DIR")
    p.add_argument("--every", type=int, help=f"snapshot every K steps (default {d('every')})")
    p.add_argument("--checkpoint", metavar="FILE", help="save resumable state here while running")
    p.add_argument("--resume", metavar="FILE", help="resume from a checkpoint")
    p.add_argument("--config", metavar="FILE", help="TOML file with any of these options; flags override")
    p.add_argument("-q", "--quiet", action="store_true", default=None, help="no progress bar")


def set_help(parser: argparse.ArgumentParser, helps: dict[str, str]) -> None:
    """Reword (or hide, with ``argparse.SUPPRESS``) shared flags for one subcommand."""
    for action in parser._actions:
        if action.dest in helps:
            action.help = helps[action.dest]


def check_output(out: str, verb: Verb) -> None:
    """Refuse an output the verb cannot write, before any work starts."""
    check_suffix(out, verb.outputs, f"{verb.name}'s output")
    check_writable(out)


def finish(result, output: str) -> int:
    """Save the result; say where; exit 130 if the run was interrupted (the file is still written)."""
    path = result.save(output)
    if result.interrupted:
        print(f"vecgen: interrupted after {len(result.history)} steps; saved {path}", file=sys.stderr)
        return 130
    print(str(path))
    return 0


def call(verb: Verb, prompt: Any, opts: dict[str, Any]):
    """Call the verb's function with the merged options it accepts (and the CLI's warning printer)."""
    params = inspect.signature(verb.function).parameters
    extra = {"warn": warn} if "warn" in params else {}
    return verb.function(prompt, **extra, **opts) if prompt is not None else verb.function(**extra, **opts)
