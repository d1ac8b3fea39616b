"""Generator backends: frozen networks mapping a latent to an image.

``load_generator(spec)`` builds one from a short spec string::

    taef2                         the TAEF2 decoder shipped with vecgen
    taef2:/path/taef2_decoder.pth TAEF2 decoder file (taef2_encoder.pth beside it
                                  is picked up for encode())
    taef2:/path/dec.pth:512       ... with output size 512x512, or :WxH as --size writes it
                                  (:384x512 is 384 wide, 512 tall); sets
                                  latent_shape = (32, H/8, W/8); default 256; --size wins
    stylegan2:/path/ckpt.pt       StyleGAN2, rosinality layout: a state dict or a
                                  dict with "g_ema" (and optionally "latent_avg")
    script:/path/gen.pt           a TorchScript module with a latent_shape attribute
    script:/path/gen.pt:C,H,W     ... latent shape given explicitly (any rank: "64" or "4,8,8")

The kind is everything before the first ``:``; the optional suffix is taken
off only when it has the kind's option form, so paths may contain ``:``.
Every failure (unknown kind, missing or corrupt file, mismatched weights)
raises ``VecgenError`` with a one-line message.

Returned generators are in eval mode with frozen weights (``requires_grad``
off), on ``device``. See ``base.Generator`` for the interface.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from vecgen.errors import VecgenError

from .base import Generator, check_state_dict, load_weights, read_checkpoint
from .script import ScriptGenerator, load_script
from .stylegan2 import StyleGAN2Generator, default_channels, load_stylegan2
from .taef2 import (
    TAEF2Decoder,
    TAEF2Encoder,
    TAEF2Generator,
    default_taef2_dir,
    load_taef2,
)

__all__ = [
    "Generator",
    "TAEF2Decoder",
    "TAEF2Encoder",
    "TAEF2Generator",
    "StyleGAN2Generator",
    "ScriptGenerator",
    "load_generator",
    "load_taef2",
    "load_stylegan2",
    "load_script",
    "register_generator",
    "available_generators",
    "parse_spec",
    "default_channels",
    "default_taef2_dir",
    "check_state_dict",
    "load_weights",
    "read_checkpoint",
]

#: A loader: ``(path or None, option suffix or None, device, **options) -> Generator``.
Loader = Callable[..., Generator]


@dataclass(frozen=True)
class _Entry:
    loader: Loader
    option_pattern: str | None  # regex a trailing ":SUFFIX" must fully match
    needs_path: bool
    help: str


_REGISTRY: dict[str, _Entry] = {}


def register_generator(
    kind: str,
    loader: Loader,
    option_pattern: str | None = None,
    needs_path: bool = True,
    help: str = "",
) -> None:
    """Add (or replace) a generator kind for ``load_generator``.

    ``loader(path, suffix, device, **options)`` gets the path (None when the
    spec is just the kind and ``needs_path`` is False), the option suffix
    (None if absent) and the device.
    """
    name = kind.strip().lower()
    if not re.fullmatch(r"[a-z][a-z0-9_\-]*", name):
        raise VecgenError(f"invalid generator kind name '{kind}'")
    _REGISTRY[name] = _Entry(loader, option_pattern, needs_path, help)


def available_generators() -> dict[str, str]:
    """``{kind: one-line help}`` for every registered kind."""
    return {k: e.help for k, e in sorted(_REGISTRY.items())}


def parse_spec(spec: str) -> tuple[str, str | None, str | None]:
    """Split ``KIND[:PATH[:OPTIONS]]`` into ``(kind, path, options)``.

    Raises ``VecgenError`` for an unknown kind or a kind that needs a path.
    """
    text = str(spec).strip()
    kind, sep, rest = text.partition(":")
    kind = kind.strip().lower()
    if kind not in _REGISTRY:
        known = ", ".join(sorted(_REGISTRY))
        raise VecgenError(f"unknown generator kind '{kind}' in '{text}' (known: {known}; use KIND:PATH)")
    entry = _REGISTRY[kind]
    path: str | None = rest if sep and rest else None
    options: str | None = None
    if path and entry.option_pattern:
        head, colon, tail = path.rpartition(":")
        if colon and head and re.fullmatch(entry.option_pattern, tail.strip()):
            path, options = head, tail.strip()
    if path is None and entry.needs_path:
        raise VecgenError(f"generator '{kind}' needs a file: use {kind}:/path/to/file")
    return kind, path, options


def load_generator(spec: str, device: torch.device | str = "cpu", **options: Any) -> Generator:
    """Build a generator from ``spec`` (see the module docstring for the syntax).

    ``options`` go to the kind's loader: ``image_size`` for taef2;
    ``truncation``, ``noise_mode``, ``lr_mlp`` for stylegan2.
    """
    kind, path, suffix = parse_spec(spec)
    if path is not None:
        p = Path(path).expanduser()
        if not p.exists():
            raise VecgenError(f"{kind} generator file not found: {p}")
    try:
        return _REGISTRY[kind].loader(path, suffix, device, **options)
    except TypeError as exc:
        if "unexpected keyword" in str(exc):
            raise VecgenError(f"generator '{kind}': {exc}") from None
        raise


# ------------------------------------------------------------------ built-ins
def _parse_wh(text: str) -> tuple[int, int]:
    """A size suffix ``"512"``, ``"384x512"`` or ``"384,512"`` -> ``(W, H)``: width first, as ``--size``.

    The same limits as ``--size`` (:func:`vecgen.options.parse_size`: positive, at most 4096 per side).
    """
    from vecgen.options import parse_size

    return parse_size(text.replace(",", "x"))


def _taef2_loader(path: str | None, suffix: str | None, device: Any, **options: Any) -> Generator:
    if suffix is not None:
        try:
            w, h = _parse_wh(suffix)
        except VecgenError as exc:
            raise VecgenError(f"generator taef2: size :{suffix}: {exc}") from None
        options.setdefault("image_size", (h, w))  # the Python API's image_size is (H, W)
    return load_taef2(path, device=device, **options)


def _stylegan2_loader(path: str | None, suffix: str | None, device: Any, **options: Any) -> Generator:
    assert path is not None
    return load_stylegan2(path, device=device, **options)


def _script_loader(path: str | None, suffix: str | None, device: Any, **options: Any) -> Generator:
    assert path is not None
    shape = [int(v) for v in suffix.split(",")] if suffix else options.pop("latent_shape", None)
    return load_script(path, latent_shape=shape, device=device, **options)


register_generator(
    "taef2",
    _taef2_loader,
    option_pattern=r"\d+([xX,]\d+)?",
    needs_path=False,
    help="TAEF2 latent decoder: taef2[:/path/taef2_decoder.pth[:SIZE|WxH]] (WxH as --size: width first)",
)
register_generator(
    "stylegan2",
    _stylegan2_loader,
    help="StyleGAN2 (rosinality layout): stylegan2:/path/ckpt.pt",
)
register_generator(
    "script",
    _script_loader,
    option_pattern=r"\d+(,\d+)*",
    help="TorchScript latent->image module: script:/path/gen.pt[:C,H,W]",
)
