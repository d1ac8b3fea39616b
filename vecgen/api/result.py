"""One Result type for every verb: the picture, its other artifacts, the loss history, the settings."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from vecgen import __version__
from vecgen.errors import VecgenError
from vecgen.io import atomic_write, png_bytes


@dataclass
class Result:
    """The outcome of a run.

    ``image``: PIL image of the result (what the perceptors saw, or a grid);
    ``svg``: its vector form for vector runs; ``history``: each step's term
    values; ``settings``: every option that shaped the run (also written into
    each saved file); ``interrupted``: Ctrl-C or a callback's ``StopRun`` ended
    it early; ``param``: the parameterization. ``writers`` maps further file
    suffixes to functions writing those artifacts (``.pt`` for an adapted
    generator...), and ``extras`` holds named objects readable as attributes
    (``res.generator``). ``headline``: the settings shown first in the
    metadata (``prompt``, or ``source`` and ``target``). ``companions``: the
    files that go with a main output (``companions(path) -> [paths]``, e.g. pixel
    art's ``.png`` beside its ``.svg``), written by :meth:`save_all`.
    """

    image: Any
    svg: str | None = None
    history: list[dict[str, float]] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    interrupted: bool = False
    param: Any = field(default=None, repr=False)
    headline: tuple[str, ...] = ("prompt",)
    writers: dict[str, Callable[[Path], Any]] = field(default_factory=dict, repr=False)
    extras: dict[str, Any] = field(default_factory=dict, repr=False)
    companions: Callable[[Path], list[Path]] | None = field(default=None, repr=False)

    def __getattr__(self, name: str) -> Any:
        extras = self.__dict__.get("extras") or {}
        if name in extras:
            return extras[name]
        raise AttributeError(f"{type(self).__name__!s} has no attribute {name!r}")

    @property
    def metadata(self) -> dict[str, str]:
        """Text saved with every file: the headline settings, seed, all settings (JSON), software."""
        out = {k: str(self.settings.get(k, "")) for k in self.headline}
        out.update(
            seed=str(self.settings.get("seed", "")),
            settings=json.dumps(self.settings, sort_keys=True, default=str),
            software=f"vecgen {__version__}",
        )
        return out

    @property
    def suffixes(self) -> tuple[str, ...]:
        """File types :meth:`save` can write for this result."""
        return tuple(dict.fromkeys(((".svg",) if self.svg is not None else ()) + tuple(self.writers) + (".png",)))

    def png_bytes(self) -> bytes:
        return png_bytes(self.image, self.metadata)

    def save(self, path: str | Path) -> Path:
        """Write by suffix (``.svg``, ``.png``, or one of ``writers``), atomically (temp + rename)."""
        p = Path(path)
        suffix = p.suffix.lower()
        if suffix in self.writers:
            self.writers[suffix](p)
        elif suffix == ".svg" and self.svg is not None:
            atomic_write(p, self.svg.encode("utf-8"))
        elif suffix == ".png":
            atomic_write(p, self.png_bytes())
        elif suffix == ".svg":
            raise VecgenError(f"{p}: this run is raster; save it as .png")
        else:
            raise VecgenError(f"{p}: unknown output type (use {' or '.join(self.suffixes)})")
        return p

    def save_all(self, path: str | Path) -> list[Path]:
        """Write ``path`` and its companions (:attr:`companions`); returns them, the main file last."""
        p = Path(path)
        extra = [Path(c) for c in (self.companions(p) if self.companions is not None else [])]
        return [*(self.save(c) for c in extra if c != p), self.save(p)]

    def _repr_svg_(self) -> str | None:
        return self.svg

    def _repr_png_(self) -> bytes:
        return self.png_bytes()
