"""pixray-style prompt syntax: ``"a lighthouse:1 | blurry:-0.5"``.

Each ``|``-separated part is ``text[:weight[:stop]]``. A negative weight pushes
the image away from the text. ``stop`` ends that prompt's pull once its cosine
distance falls below it (useful to keep a secondary prompt from dominating).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from vecgen.errors import VecgenError

_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"


@dataclass(frozen=True)
class Prompt:
    text: str
    weight: float = 1.0
    stop: float | None = None


def parse_prompts(spec: str) -> list[Prompt]:
    """Parse a prompt string; raises :class:`VecgenError` on empty prompts."""
    if spec is None or not str(spec).strip():
        raise VecgenError('empty prompt: say what to draw, e.g. vecgen draw "a red circle"')
    out = []
    for part in str(spec).split("|"):
        part = part.strip()
        if not part:
            continue
        text, weight, stop = part, 1.0, None
        m = re.fullmatch(rf"(.*?):({_NUM}):({_NUM})", part, flags=re.S)
        if m:
            text, weight, stop = m.group(1), float(m.group(2)), float(m.group(3))
        else:
            m = re.fullmatch(rf"(.*?):({_NUM})", part, flags=re.S)
            if m:
                text, weight = m.group(1), float(m.group(2))
        text = text.strip()
        if not text:
            raise VecgenError(f"empty prompt text in {part!r}")
        out.append(Prompt(text, weight, stop))
    if not out:
        raise VecgenError('empty prompt: say what to draw, e.g. vecgen draw "a red circle"')
    if all(p.weight <= 0 for p in out):
        raise VecgenError("every prompt has weight <= 0: give at least one a positive weight")
    return out
