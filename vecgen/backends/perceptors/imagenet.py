"""ImageNet-1k class names: prompts for classifier perceptors.

A class is named by any of its WordNet lemmas ("lighthouse" = "beacon"),
case-, article- and punctuation-insensitive ("An Espresso" = "espresso"), by its
synset id (``n07920052``) or by ``#index`` (``#967``). A name shared by two
classes ("crane": the bird and the machine) is refused with both glosses, so the
user picks a more specific lemma or the synset id.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from vecgen.errors import VecgenError

CLASSES_FILE = Path(__file__).with_name("imagenet_classes.tsv")
_ARTICLES = ("a ", "an ", "the ")


@dataclass(frozen=True)
class ImageNetClass:
    index: int
    synset: str
    names: tuple[str, ...]  # WordNet lemmas, the usual name first
    gloss: str

    @property
    def name(self) -> str:
        return self.names[0]


def normalise(text: str) -> str:
    """``"  An Espresso-Maker "`` -> ``"espresso maker"``: lower case, no article, single spaces."""
    t = re.sub(r"[\s_\-]+", " ", text.strip().lower().replace("\u2019", "'"))
    t = t.strip(" .!?")
    for art in _ARTICLES:
        if t.startswith(art) and len(t) > len(art):
            t = t[len(art) :]
            break
    return t.strip()


@lru_cache(maxsize=1)
def classes() -> tuple[ImageNetClass, ...]:
    """The 1,000 classes in training-index order (package data, no download)."""
    out = []
    for line in CLASSES_FILE.read_text(encoding="utf-8").splitlines():
        if not line or line.startswith("#"):
            continue
        idx, synset, names, gloss = line.split("\t")
        out.append(ImageNetClass(int(idx), synset, tuple(n.strip() for n in names.split(",")), gloss))
    if len(out) != 1000 or [c.index for c in out] != list(range(1000)):
        raise VecgenError(f"{CLASSES_FILE} is damaged: expected the 1,000 ImageNet classes in order")
    return tuple(out)


@lru_cache(maxsize=1)
def _index() -> dict[str, tuple[int, ...]]:
    table: dict[str, list[int]] = {}
    for c in classes():
        for n in c.names:
            key = normalise(n)
            if c.index not in table.setdefault(key, []):
                table[key].append(c.index)
    return {k: tuple(v) for k, v in table.items()}


def resolve(text: str) -> int:
    """A class name, synset id or ``#index`` -> the class index (0..999); one-line error otherwise."""
    raw = text.strip()
    if re.fullmatch(r"#\d+", raw):
        i = int(raw[1:])
        if i < 1000:
            return i
        raise VecgenError(f"ImageNet class {raw} out of range (#0..#999)")
    if re.fullmatch(r"n\d{8}", raw):
        for c in classes():
            if c.synset == raw:
                return c.index
        raise VecgenError(f"{raw} is not one of the 1,000 ImageNet-1k synsets")
    key = normalise(raw)
    hits = _index().get(key, ())
    if len(hits) == 1:
        return hits[0]
    if len(hits) > 1:
        options = "; ".join(f"{classes()[i].synset} ({_short(classes()[i])})" for i in hits)
        raise VecgenError(
            f"{raw!r} names {len(hits)} ImageNet classes: {options}; use the synset id or a more specific name"
        )
    near = closest(raw, 3)
    raise VecgenError(
        f"{raw!r} is not an ImageNet class name (classifier perceptors take class names); closest: {', '.join(near)}"
    )


def closest(text: str, n: int = 3) -> list[str]:
    """The ``n`` class names closest to ``text`` (for error messages)."""
    key = normalise(text)
    table = _index()
    found = difflib.get_close_matches(key, table.keys(), n=n * 3, cutoff=0.0)
    out: list[str] = []
    for k in found:
        name = classes()[table[k][0]].name
        if name not in out:
            out.append(name)
        if len(out) == n:
            break
    return out


def _short(c: ImageNetClass) -> str:
    others = [n for n in c.names[1:] if normalise(n) != normalise(c.name)][:2]
    gloss = c.gloss.split(";")[0]
    return ", ".join([c.name, *others]) + (f": {gloss}" if gloss else "")


def class_name(index: int) -> str:
    """The usual name of class ``index``."""
    return classes()[int(index)].name
