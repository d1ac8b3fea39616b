"""The verb record: what the CLI, the gallery, the studio and the docs need to know about a verb."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable


def main_output(output: str | Path, options: dict[str, Any]) -> list[str]:
    """The files a run writes for ``-o output``: just it (verbs that write more give their own function)."""
    return [str(output)]


@dataclass(frozen=True)
class Verb:
    """One user-facing verb: one config plus one function.

    ``function``: the Python API function (made from ``config`` by
    :func:`vecgen.config.verb_function`). ``config``: the frozen dataclass
    declaring every option once (:mod:`vecgen.config`); the CLI's flags, TOML
    and gallery checks, the studio's widgets and the docs' tables come from it.
    ``summary``: one line of help. ``outputs``: file suffixes its result saves.
    ``default_output``: the CLI's ``-o`` default. ``gallery``: a gallery job can
    run it (it takes a prompt and a seed and makes one picture). ``files``:
    ``files(output, options)``, every file a run writes for ``output`` (checked
    writable before the run; :meth:`Result.save_all` writes them).
    ``description``: the longer help. ``modes``: old CLI spellings that select
    another verb (``{"train": "style-train"}``: ``vecgen style --train``).
    """

    name: str
    function: Callable[..., Any]
    summary: str
    outputs: tuple[str, ...]
    default_output: str
    gallery: bool = True
    uploads: tuple[tuple[str, str], ...] = ()
    config: Any = None
    files: Callable[[str | Path, dict[str, Any]], list[str]] = main_output
    description: str | None = None

    def defaults(self) -> dict[str, Any]:
        """Keyword options and their API defaults."""
        return {
            n: p.default
            for n, p in inspect.signature(self.function).parameters.items()
            if p.default is not inspect.Parameter.empty
        }

    def required(self) -> list[str]:
        """Options without a default (the prompt, a generator...)."""
        return [
            n
            for n, p in inspect.signature(self.function).parameters.items()
            if p.default is inspect.Parameter.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]
