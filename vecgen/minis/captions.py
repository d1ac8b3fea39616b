"""Captions of procedural scenes: templates with synonyms, hard negatives, partial captions, datasets.

Captions are written from a scene's attributes (:mod:`vecgen.minis.scenes`), so
a training loop can draw a fresh caption (and "hard negative" captions that
change exactly one attribute) for a cached image every epoch.

    >>> img, caption, attrs = make_scene(7, size=64)
    >>> img.shape, caption
    (torch.Size([3, 64, 64]), 'a small red striped star at the top left')
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from vecgen.minis import shapes3d
from vecgen.minis.scenes import (
    _CELL,
    _INVERSE,
    BACKGROUNDS,
    COLOURS,
    COUNT_WORDS,
    POSITION_WORDS,
    RELATIONS,
    SHAPES,
    SIZES,
    STYLES,
    TEMPLATE_SETS,
    _rng,
    render_batch,
    render_scene,
    sample_scene,
)


# ----------------------------------------------------------------------------- captions
@dataclass
class CaptionPlan:
    """Every random choice of a caption except the attribute values themselves.

    Rendering the same plan with attributes that differ in one value gives a caption
    that differs only in the words for that value (a hard negative).
    """

    template_set: str
    template: int
    flags: dict[str, bool]
    u: list[float] = field(default_factory=list)


class _Words:
    """Sequential synonym picker over a plan's uniform numbers (value-independent draws)."""

    def __init__(self, u: list[float]) -> None:
        self.u, self.i = u, 0

    def index(self, n: int) -> int:
        """0 (the canonical word) with probability 0.6, else one of the others uniformly."""
        v = self.u[self.i % len(self.u)]
        self.i += 1
        if n == 1 or v < 0.6:
            return 0
        return 1 + min(n - 2, int((v - 0.6) / 0.4 * (n - 1)))

    def pick(self, options: Sequence[str]) -> str:
        return options[self.index(len(options))]


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def _noun_phrase(o: dict, w: _Words, flags: dict, count: int | None = None, with_size: bool = True) -> str:
    """'a small striped red star' / 'two blue triangles' (count given)."""
    words = []
    if with_size and flags.get("size"):
        words.append(w.pick(SIZES[o["size"]]))
    else:
        w.pick(("",))
    style = w.pick(STYLES[o["style"]])
    if flags.get("style") and o["shape"] != "line":
        words.append(style)
    words.append(w.pick(COLOURS[o["colour"]][1]))
    forms = SHAPES[o["shape"]][w.index(len(SHAPES[o["shape"]]))]
    plural = count is not None and count > 1
    words.append(forms[1] if plural else forms[0])
    body = " ".join(words)
    if count is None:
        return f"{_article(body)} {body}"
    det = w.pick(COUNT_WORDS[count])
    if count == 1 and det == "one" and flags.get("article"):
        det = _article(body)
    return f"{det} {body}"


def _bg_phrase(attrs: dict, w: _Words, flags: dict) -> str:
    name = w.pick(BACKGROUNDS[attrs["background"]][1])
    form = w.pick(("on a {} background", "against a {} background", "on {}"))
    return (" " + form.format(name)) if flags.get("bg") else ""


# templates: (kind, set) -> list of format strings. Fields: {np} noun phrase(s) with article,
# {pos} position phrase, {bg} background phrase (leading space or empty), {rel} relation words.
_TEMPLATES: dict[tuple[str, str], list[str]] = {
    ("single", "common"): ["{np} {pos}{bg}", "{np}{bg}, {pos}"],
    ("single", "a"): ["a drawing of {np} {pos}{bg}", "an image of {np} {pos}{bg}", "{pos}: {np}{bg}"],
    ("single", "b"): ["there is {np} {pos}{bg}", "a picture showing {np} {pos}{bg}", "{Pos}, {np}{bg}"],
    ("count", "common"): ["{np}{bg}"],
    ("count", "a"): ["a drawing of {np}{bg}", "{np} drawn{bg}"],
    ("count", "b"): ["there {be} {np}{bg}", "a picture with {np}{bg}"],
    ("relation", "common"): ["{np} {rel} {np2}{bg}", "{np2} {irel} {np}{bg}"],
    ("relation", "a"): ["a drawing of {np} {rel} {np2}{bg}"],
    ("relation", "b"): ["there is {np} {rel} {np2}{bg}"],
    ("list", "common"): ["{nps}{bg}"],
    ("list", "a"): ["a drawing of {nps}{bg}"],
    ("list", "b"): ["there is {nps}{bg}"],
}
_FLAG_P = {"size": 0.75, "style": 0.5, "pos": 0.85, "bg": 0.2, "article": 0.5}


def template_sets_for(name: str) -> tuple[str, ...]:
    """'a' -> ('common', 'a'); 'b' -> ('common', 'b'); 'all' -> all sets; 'common' -> just it."""
    if name == "all":
        return TEMPLATE_SETS
    if name == "common":
        return ("common",)
    if name not in TEMPLATE_SETS:
        raise ValueError(f"unknown template set {name!r}")
    return ("common", name)


def plan_caption(kind: str, rng: random.Random, templates: str = "all") -> CaptionPlan:
    sets = template_sets_for(templates)
    tset = sets[0] if len(sets) == 1 or rng.random() < 0.5 else rng.choice(sets[1:])
    tpl = rng.randrange(len(_TEMPLATES[(kind, tset)]))
    flags = {k: rng.random() < p for k, p in _FLAG_P.items()}
    return CaptionPlan(tset, tpl, flags, [rng.random() for _ in range(24)])


def canonical_plan(kind: str) -> CaptionPlan:
    """Fixed plan used by probes: first common template, canonical words, all attributes named."""
    return CaptionPlan(
        "common", 0, {"size": True, "style": False, "pos": True, "bg": False, "article": True}, [0.0] * 24
    )


def render_caption(attrs: dict, plan: CaptionPlan) -> str:
    kind, f = attrs["kind"], plan.flags
    w = _Words(plan.u)
    objs = attrs["objects"]
    fmt = _TEMPLATES[(kind, plan.template_set)][plan.template]
    fields: dict[str, str] = {}
    if kind == "single":
        o = objs[0]
        fields["np"] = _noun_phrase(o, w, f)
        pos = w.pick(POSITION_WORDS[o["position"]])
        fields["pos"] = pos if f["pos"] else ""
        fields["Pos"] = pos[:1].upper() + pos[1:] if f["pos"] else ""
    elif kind == "count":
        n = attrs["count"]
        fields["np"] = _noun_phrase(objs[0], w, f, count=n, with_size=False)
        fields["be"] = "is" if n == 1 else "are"
    elif kind == "relation":
        fields["np"] = _noun_phrase(objs[0], w, f, with_size=False)
        fields["np2"] = _noun_phrase(objs[1], w, f, with_size=False)
        fields["rel"] = w.pick(RELATIONS[attrs["relation"]])
        fields["irel"] = w.pick(RELATIONS[_INVERSE[attrs["relation"]]])
    else:
        nps = [_noun_phrase(o, w, f, with_size=False) for o in objs]
        fields["nps"] = nps[0] + " and " + nps[1] if len(nps) == 2 else ", ".join(nps[:-1]) + " and " + nps[-1]
    fields["bg"] = _bg_phrase(attrs, w, f)
    text = fmt.format(**fields)
    text = " ".join(text.replace(" ,", ",").split()).strip(" ,:")
    return text


def caption_scene(attrs: dict, rng_or_seed, templates: str = "all") -> tuple[str, CaptionPlan | dict[str, Any]]:
    """A random caption for a scene -> (text, plan); the plan makes hard negatives (a dict for 3-D primitives)."""
    rng = _rng(rng_or_seed)
    if attrs["kind"] in shapes3d.KINDS:  # 3-D primitives (depth maps, shaded views) caption themselves
        return shapes3d.caption3d(attrs, rng)
    plan = plan_caption(attrs["kind"], rng, templates)
    return render_caption(attrs, plan), plan


# ----------------------------------------------------------------------------- hard negatives
def mutable_slots(attrs: dict, plan: CaptionPlan) -> list[tuple[str, int]]:
    """(attribute, object index) pairs a caption written with ``plan`` names."""
    kind, f = attrs["kind"], plan.flags
    objs = attrs["objects"]
    slots: list[tuple[str, int]] = []
    if kind == "single":
        slots += [("colour", 0), ("shape", 0)]
        if f["size"]:
            slots.append(("size", 0))
        if f["pos"]:
            slots.append(("position", 0))
        if f["style"] and objs[0]["shape"] != "line":
            slots.append(("style", 0))
    elif kind == "count":
        slots += [("count", 0), ("colour", 0), ("shape", 0)]
    elif kind == "relation":
        slots += [("relation", 0), ("colour", 0), ("colour", 1), ("shape", 0), ("shape", 1)]
        if objs[0]["colour"] != objs[1]["colour"]:
            slots.append(("swap_colour", 0))
        if objs[0]["shape"] != objs[1]["shape"]:
            slots.append(("swap_shape", 0))
    else:
        for i in range(len(objs)):
            slots += [("colour", i), ("shape", i)]
        if len({o["colour"] for o in objs}) > 1:
            slots.append(("swap_colour", 0))
    if f["bg"]:
        slots.append(("background", 0))
    return slots


_VALUES: dict[str, list[Any]] = {
    "colour": list(COLOURS),
    "shape": list(SHAPES),
    "size": list(SIZES),
    "position": list(_CELL),
    "style": [s for s in STYLES],
    "count": [1, 2, 3],
    "relation": list(RELATIONS),
    "background": list(BACKGROUNDS),
}


def with_attribute(attrs: dict, attribute: str, value, index: int = 0) -> dict:
    """Copy of ``attrs`` whose caption would name ``value`` for ``attribute`` (of object ``index``)."""
    new = dict(attrs)
    objs = [dict(o) for o in attrs["objects"]]
    new["objects"] = objs
    if attribute in ("colour", "shape", "size", "position", "style"):
        if attribute == "shape" and value == "line":
            objs[index]["style"] = "filled"
        objs[index][attribute] = value
    elif attribute == "count":
        new["count"] = value
    elif attribute == "relation":
        new["relation"] = value
    elif attribute == "background":
        new["background"] = value
    elif attribute == "swap_colour":
        cols = [o["colour"] for o in objs]
        for o, c in zip(objs, cols[1:] + cols[:1]):
            o["colour"] = c
    elif attribute == "swap_shape":
        a, b = objs[0]["shape"], objs[1]["shape"]
        objs[0]["shape"], objs[1]["shape"] = b, a
    else:
        raise ValueError(f"unknown attribute {attribute!r}")
    return new


# how often each kind of change is drawn for a hard negative (relative)
NEGATIVE_WEIGHTS = {
    "shape": 3.0,
    "position": 2.0,
    "colour": 1.0,
    "size": 1.0,
    "count": 2.0,
    "relation": 2.0,
    "swap_colour": 2.0,
    "swap_shape": 1.0,
    "style": 0.5,
    "background": 0.3,
}


def negatives(
    attrs: dict, plan: CaptionPlan | dict[str, Any], rng_or_seed, k: int = 3, weights: dict[str, float] | None = None
) -> list[str]:
    """Up to ``k`` distinct captions that each change exactly one named attribute (all false).

    The attribute to change is drawn per negative with ``weights`` (default
    :data:`NEGATIVE_WEIGHTS`), so one attribute may appear with several wrong values.
    """
    rng = _rng(rng_or_seed)
    if isinstance(plan, dict):  # 3-D primitives: caption3d's plan
        return shapes3d.negatives3d(attrs, plan, rng, k)
    weights = NEGATIVE_WEIGHTS if weights is None else weights
    slots = mutable_slots(attrs, plan)
    w = [weights.get(a, 1.0) for a, _ in slots]
    true = render_caption(attrs, plan)
    out: list[str] = []
    tries = 0
    while len(out) < k and tries < 4 * k + 8:
        tries += 1
        attr, idx = rng.choices(slots, weights=w, k=1)[0]
        value: Any
        if attr in ("swap_colour", "swap_shape"):
            value = None
        elif attr == "relation":
            value = _INVERSE[attrs["relation"]]
        elif attr == "count":
            value = rng.choice([c for c in (1, 2, 3) if c != attrs["count"]])
        elif attr == "background":
            value = rng.choice([b for b in BACKGROUNDS if b != attrs["background"]])
        else:
            value = rng.choice([v for v in _VALUES[attr] if v != attrs["objects"][idx][attr]])
        text = render_caption(with_attribute(attrs, attr, value, idx), plan)
        if text != true and text not in out:
            out.append(text)
    return out


# ----------------------------------------------------------------------------- attribute captions
# Short true captions naming one attribute only ("a disc", "something red", "three shapes").
# With every other value of that attribute as candidates they make a focused contrastive
# task: the text side differs in exactly one word from the first step of training.
_PARTIAL_FORMS = {
    "shape": ("{article} {shape}", "{shape}", "a drawing of {article} {shape}"),
    "colour": ("something {colour}", "{colour}", "{article} {colour} shape"),
    "position": ("something {pos}", "{pos}", "an object {pos}"),
    "size": ("{article} {size} shape", "{size}", "something {size}"),
    "count": ("{count} shapes", "{count} objects", "{count} things"),
}
PARTIAL_ATTRIBUTES = {
    "single": ("shape", "colour", "position", "size"),
    "count": ("count", "shape", "colour"),
    **{k: ("solid",) for k in shapes3d.KINDS},
}


def partial_captions(attrs: dict, attribute: str, rng_or_seed) -> list[str]:
    """Short captions naming only ``attribute``: the true one first, then one per other value.

    Words (synonyms, form) are drawn once and shared by all candidates, so they differ
    only in the attribute's words. Only for ``single`` and ``count`` scenes.
    """
    rng = _rng(rng_or_seed)
    if attribute == "solid":
        return shapes3d.partial3d(attrs, rng)
    u = [rng.random() for _ in range(3)]
    form = _PARTIAL_FORMS[attribute][int(u[0] * len(_PARTIAL_FORMS[attribute]))]
    o = attrs["objects"][0]
    true = attrs["count"] if attribute == "count" else o[attribute]
    values = [true] + [v for v in ([1, 2, 3] if attribute == "count" else _VALUES[attribute]) if v != true]
    out = []
    for v in values:
        w = _Words([u[1]])
        if attribute == "shape":
            word = SHAPES[v][w.index(len(SHAPES[v]))][0]
        elif attribute == "colour":
            word = w.pick(COLOURS[v][1])
        elif attribute == "position":
            word = w.pick(POSITION_WORDS[v])
        elif attribute == "size":
            word = w.pick(SIZES[v])
        else:
            word = {1: ("one", "a single"), 2: ("two", "2"), 3: ("three", "3")}[v][int(u[1] * 2)]
        text = form.format(article=_article(word), shape=word, colour=word, pos=word, size=word, count=word)
        if attribute == "count" and v == 1:
            text = text.replace("shapes", "shape").replace("objects", "object").replace("things", "thing")
        out.append(text)
    return out


# ----------------------------------------------------------------------------- convenience
def make_scene(rng_or_seed, size: int = 64, templates: str = "all", kind: str | None = None):
    """-> (image ``(3, size, size)`` in [0, 1], caption, attributes), deterministic per seed."""
    rng = _rng(rng_or_seed)
    attrs = sample_scene(rng, kind)
    caption, _ = caption_scene(attrs, rng, templates)
    return render_scene(attrs, size), caption, attrs


class SceneDataset(torch.utils.data.Dataset):
    """Scenes ``seed0 .. seed0 + count - 1``: item i -> (image, caption), deterministic.

    For fast loading use :meth:`render_range`, which rasterizes in tiled batches.
    """

    def __init__(self, seed0: int = 0, count: int = 10_000, size: int = 64, templates: str = "all") -> None:
        self.seed0, self.count, self.size, self.templates = int(seed0), int(count), int(size), templates

    def __len__(self) -> int:
        return self.count

    def attrs(self, i: int) -> dict:
        return sample_scene(random.Random(self.seed0 + i))

    def __getitem__(self, i: int):
        if not 0 <= i < self.count:
            raise IndexError(i)
        img, caption, _ = make_scene(self.seed0 + i, self.size, self.templates)
        return img, caption

    def batches(self, batch_size: int = 64):
        """Yield (images ``(B, 3, S, S)``, captions, attributes) in order, rendered in tiles."""
        for start in range(0, self.count, batch_size):
            rngs = [random.Random(self.seed0 + i) for i in range(start, min(self.count, start + batch_size))]
            attrs = [sample_scene(r) for r in rngs]
            caps = [caption_scene(a, r, self.templates)[0] for a, r in zip(attrs, rngs)]
            yield render_batch(attrs, self.size), caps, attrs
