"""Attribute probes: does a perceptor tell captions apart that differ in one attribute?

For each attribute, held-out procedural scenes (seeds >= 10**9, disjoint from
training) are captioned with one fixed canonical template ("a small red circle on
the left", "three blue stars", "a red circle above a blue square"), and the
perceptor must rank the true caption above every caption that changes only that
attribute:

- colour: 12 colours, shape: 8 shapes, position: 9 places, size: small / large
  (single-object scenes);
- count: one / two / three (1-3 identical objects);
- relation: "A above B" vs "A below B" (and left / right);
- binding: "a red circle above a blue square" vs "a blue circle above a red square".

    python -m vecgen.minis.probes --model mini-vit --n 1000
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from typing import Any

import torch

from vecgen.minis.captions import canonical_plan, render_caption, with_attribute
from vecgen.minis.scenes import COLOURS, POSITIONS, SHAPES, SIZES, render_batch, sample_scene

PROBE_SEED0 = 1_000_000_000
ATTRIBUTES = ("colour", "shape", "position", "size", "count", "relation", "binding")
_KIND = {
    "colour": "single",
    "shape": "single",
    "position": "single",
    "size": "single",
    "count": "count",
    "relation": "relation",
    "binding": "relation",
}
_VALUES: dict[str, list[Any]] = {
    "colour": list(COLOURS),
    "shape": list(SHAPES),
    "position": list(POSITIONS.values()),
    "size": list(SIZES),
    "count": [1, 2, 3],
}


def probe_items(attribute: str, n: int, seed0: int = PROBE_SEED0) -> list[tuple[dict, list[str]]]:
    """``n`` held-out scenes for ``attribute`` -> [(attrs, [true caption, *alternatives])]."""
    if attribute not in ATTRIBUTES:
        raise ValueError(f"unknown probe {attribute!r} (known: {', '.join(ATTRIBUTES)})")
    base = seed0 + 10_000_000 * ATTRIBUTES.index(attribute)
    items: list[tuple[dict, list[str]]] = []
    i = 0
    while len(items) < n:
        attrs = sample_scene(random.Random(base + i), _KIND[attribute])
        i += 1
        plan = canonical_plan(attrs["kind"])
        true = render_caption(attrs, plan)
        if attribute == "relation":
            alts = [
                render_caption(
                    with_attribute(
                        attrs,
                        "relation",
                        {"above": "below", "below": "above", "left of": "right of", "right of": "left of"}[
                            attrs["relation"]
                        ],
                    ),
                    plan,
                )
            ]
        elif attribute == "binding":
            if attrs["objects"][0]["colour"] == attrs["objects"][1]["colour"]:
                continue
            alts = [render_caption(with_attribute(attrs, "swap_colour", None), plan)]
        else:
            cur = attrs["count"] if attribute == "count" else attrs["objects"][0][attribute]
            alts = [render_caption(with_attribute(attrs, attribute, v), plan) for v in _VALUES[attribute] if v != cur]
        alts = [a for a in dict.fromkeys(alts) if a != true]
        items.append((attrs, [true] + alts))
    return items


@torch.no_grad()
def probe(perceptor, attribute: str, n: int = 1000, seed0: int = PROBE_SEED0, batch: int = 250) -> dict:
    """Accuracy of ``perceptor`` (``encode_image`` / ``encode_text``) on one attribute probe."""
    items = probe_items(attribute, n, seed0)
    size = int(getattr(perceptor, "input_size", 64))
    correct = 0
    chance = 0.0
    for start in range(0, len(items), batch):
        chunk = items[start : start + batch]
        imgs = render_batch([a for a, _ in chunk], size, per_row=16).to(perceptor.device)
        fi = perceptor.encode_image(imgs)
        texts = list(dict.fromkeys(c for _, caps in chunk for c in caps))
        ft = dict(zip(texts, perceptor.encode_text(texts)))  # one batched text pass per chunk
        for k, (_, caps) in enumerate(chunk):
            sims = torch.stack([ft[c] for c in caps]) @ fi[k]
            correct += int(sims.argmax().item() == 0)
            chance += 1.0 / len(caps)
    return {"accuracy": round(correct / len(items), 4), "chance": round(chance / len(items), 4), "n": len(items)}


def run_probes(perceptor, n: int = 1000, attributes=ATTRIBUTES, seed0: int = PROBE_SEED0) -> dict:
    return {a: probe(perceptor, a, n, seed0) for a in attributes}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m vecgen.minis.probes", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", action="append", help="perceptor spec (repeatable), default: mini-vit and mini-rn")
    p.add_argument("--n", type=int, default=1000, help="held-out scenes per attribute")
    p.add_argument("--attributes", default=",".join(ATTRIBUTES))
    p.add_argument("--seed0", type=int, default=PROBE_SEED0)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = leave as is)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from vecgen.backends.perceptors import load_perceptor

    attributes = [a.strip() for a in args.attributes.split(",") if a.strip()]
    out = {}
    for spec in args.model or ["mini-vit", "mini-rn"]:
        res = run_probes(load_perceptor(spec), args.n, attributes, args.seed0)
        out[spec] = res
        print(
            f"{spec}: " + ", ".join(f"{a} {r['accuracy']:.3f} (chance {r['chance']:.2f})" for a, r in res.items()),
            file=sys.stderr,
        )
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
