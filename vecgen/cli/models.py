"""``vecgen models``: the perceptors a ``--clip`` spec may name (over :func:`vecgen.api.list_models`)."""
from __future__ import annotations

import argparse


def register(sub) -> None:
    m = sub.add_parser("models", help="list CLIP models and built-in weights")
    m.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from vecgen.api import list_models

    models = list_models()
    print("built in (shipped weights): " + (", ".join(m["name"] for m in models if m["shipped"]) or "none"))
    for m in models:
        if m["shipped"]:
            kinds = "shipped weights (a bare name loads them; @random for random ones)"
        elif m["tags"]:
            kinds = ", ".join(m["tags"])
        else:
            kinds = "random weights only (@random)"
        print(f"{m['name']}: {kinds}")
    return 0
