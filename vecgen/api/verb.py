"""The verb record: what the CLI, the gallery and the studio need to know about a verb."""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable


@dataclass(frozen=True)
class Verb:
    """One user-facing verb.

    ``function``: the Python API function (its signature holds every option
    and default; the CLI and the gallery read them from it). ``summary``: one
    line of help. ``outputs``: file suffixes its result saves. ``default_output``:
    the CLI's ``-o`` default. ``gallery``: a gallery job can run it (it takes a
    prompt and a seed and makes one picture). ``uploads``: ``(option, kind)`` pairs
    naming the options that take an input file, for the studio's upload widgets
    (kind ``image``, ``svg``, ``mesh`` or ``file``); options not listed are
    inferred from the CLI flags' metavars and help (e.g. ``--init IMG``).
    """

    name: str
    function: Callable[..., Any]
    summary: str
    outputs: tuple[str, ...]
    default_output: str
    gallery: bool = True
    uploads: tuple[tuple[str, str], ...] = ()

    def defaults(self) -> dict[str, Any]:
        """Keyword options and their API defaults."""
        return {n: p.default for n, p in inspect.signature(self.function).parameters.items()
                if p.default is not inspect.Parameter.empty}

    def required(self) -> list[str]:
        """Options without a default (the prompt, a generator...)."""
        return [n for n, p in inspect.signature(self.function).parameters.items()
                if p.default is inspect.Parameter.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
