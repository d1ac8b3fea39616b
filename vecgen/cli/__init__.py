"""``vecgen`` command line, built from the verb registry (:data:`vecgen.api.VERBS`).

Each verb's flags live in ``vecgen/cli/NAME.py`` (``add_arguments`` and
``run``); the tools that are not verbs (render, models, gallery, search) each
``register`` their own subcommand. Every error is one line on stderr and exit
code 2; Ctrl-C saves what exists and exits 130.
"""

from __future__ import annotations

import importlib
import importlib.util
import signal
import sys

from vecgen import interrupts
from vecgen.cli._common import Parser
from vecgen.errors import VecgenError

#: Subcommands that are not verbs of the registry, in the order `vecgen --help` lists them (after the verbs).
TOOLS = ("render", "models", "gallery", "search", "studio")
#: What Ctrl-C means before a run's first step (also before the flags are parsed: imports take time).
NOTHING_RAN = "before the first step; nothing was written"


def _add_verb(sub, verb) -> None:
    """A verb's subcommand: flags made from its config (:func:`add_options`), or from ``vecgen/cli/NAME.py``
    where a verb keeps one (old spellings of its modes)."""
    from vecgen.cli._common import add_options, run_verb

    name = verb.name.replace("-", "_")
    mod = importlib.import_module(f"vecgen.cli.{name}") if importlib.util.find_spec(f"vecgen.cli.{name}") else None
    description = verb.description or getattr(mod, "DESCRIPTION", None)
    p = sub.add_parser(verb.name, help=verb.summary, description=description)
    add = getattr(mod, "add_arguments", add_options)
    run = getattr(mod, "run", run_verb)
    add(p, verb)
    # a verb's run catches Ctrl-C once steps run (and saves): one reaching main() came before
    # flag_actions: merge_options checks config values against these flags' types
    p.set_defaults(func=lambda args: run(args, verb), interrupted=NOTHING_RAN, flag_actions=p._actions)


def build_parser() -> Parser:
    from vecgen import __version__
    from vecgen.api import VERBS

    parser = Parser(prog="vecgen", description="Text to pictures by optimization against CLIP.")
    parser.add_argument("--version", action="version", version=f"vecgen {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for verb in VERBS.values():
        _add_verb(sub, verb)
    for name in TOOLS:
        importlib.import_module(f"vecgen.cli.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = None
    previous = interrupts.install()  # Ctrl-C is held while a package imports (see vecgen.interrupts)
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        return int(args.func(args) or 0)
    except VecgenError as e:
        print(f"vecgen: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        note = getattr(args, "interrupted", None) if args is not None else NOTHING_RAN
        print("vecgen: interrupted" + (f" {note}" if note else ""), file=sys.stderr)
        return 130
    except Exception as e:  # a bug: still one line unless asked for the traceback
        import os

        if os.environ.get("VECGEN_DEBUG"):
            raise
        msg = str(e).splitlines()[0] if str(e) else ""
        print(
            f"vecgen: internal error: {type(e).__name__}: {msg} (set VECGEN_DEBUG=1 for a traceback)", file=sys.stderr
        )
        return 1
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


if __name__ == "__main__":
    sys.exit(main())
