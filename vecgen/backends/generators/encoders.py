"""Image encoders: frozen networks mapping a photo back to a generator's latent (for ``vecgen edit``).

``load_encoder(spec)`` builds one from a short spec string::

    taef2                         the TAEF2 encoder shipped with vecgen
    taef2:/path/taef2_encoder.pth TAEF2 encoder file (32-channel latent at 1/8 resolution)
    script:/path/enc.pt           a TorchScript module image (B, 3, H, W) in [0, 1] -> latent (B, C, ...)

An encoder has ``latent_channels`` (``C`` of the latent it makes), ``scale``
(image side / latent side, 1 for a vector latent) and ``encode(image)``.
:func:`check_pair` refuses an encoder whose latent does not fit a generator.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import Tensor, nn

from vecgen.errors import VecgenError

from .taef2 import LATENT_CHANNELS, SCALE, TAEF2Encoder, default_taef2_dir, load_taef2_encoder

__all__ = ["ImageEncoder", "load_encoder", "check_pair"]


class ImageEncoder(nn.Module):
    """A frozen ``(B, 3, H, W)`` in ``[0, 1]`` -> ``(B, C, ...)`` network, with what it makes declared.

    ``kind``: "taef2" or "script"; ``latent_channels``: ``C``; ``scale``: the
    spatial down-sampling (the image side must be a multiple of it).
    """

    def __init__(self, module: nn.Module, kind: str, latent_channels: int, scale: int) -> None:
        super().__init__()
        self.module, self.kind = module, kind
        self.latent_channels, self.scale = int(latent_channels), int(scale)

    def encode(self, image: Tensor) -> Tensor:
        """``(B, 3, H, W)`` in ``[0, 1]`` (H, W multiples of ``scale``) -> ``(B, C, ...)``."""
        if image.dim() != 4 or image.shape[1] != 3 or image.shape[-1] % self.scale or image.shape[-2] % self.scale:
            raise VecgenError(
                f"{self.kind} encoder expects (B, 3, H, W) with H, W multiples of {self.scale}, "
                f"got {tuple(image.shape)}"
            )
        out = self.module(image)
        if not isinstance(out, Tensor) or out.dim() < 2 or out.shape[1] != self.latent_channels:
            got = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
            raise VecgenError(f"{self.kind} encoder returned {got}, expected (B, {self.latent_channels}, ...)")
        return out

    forward = encode


def _script_encoder(path: Path, device) -> ImageEncoder:
    try:
        with warnings.catch_warnings():  # torch>=2.9 flags jit.load as deprecated
            warnings.simplefilter("ignore", FutureWarning)
            module = torch.jit.load(str(path), map_location="cpu")
    except Exception as exc:
        reason = " ".join(str(exc).split())[:200]
        raise VecgenError(f"cannot load TorchScript encoder {path}: {type(exc).__name__}: {reason}") from None
    channels = getattr(module, "latent_channels", None)
    scale = getattr(module, "scale", 1)
    if not isinstance(channels, int) or not isinstance(scale, int) or channels <= 0 or scale <= 0:
        raise VecgenError(f"TorchScript encoder {path.name}: needs int attributes latent_channels and scale")
    enc = ImageEncoder(module, "script", channels, scale)
    return enc.requires_grad_(False).eval().to(device)


def load_encoder(spec: str | None, device: torch.device | str = "cpu") -> ImageEncoder:
    """Build an encoder from ``spec`` (see the module docstring); every failure is a one-line VecgenError."""
    text = str(spec or "").strip()
    kind, _, path = text.partition(":")
    kind = kind.strip().lower()
    if kind == "taef2":
        p = Path(path).expanduser() if path else default_taef2_dir() / "taef2_encoder.pth"
        if not p.is_file():
            raise VecgenError(f"TAEF2 encoder not found: {p}")
        module: TAEF2Encoder = load_taef2_encoder(p)
        enc = ImageEncoder(module, "taef2", LATENT_CHANNELS, SCALE)
        return enc.requires_grad_(False).eval().to(device)
    if kind == "script":
        if not path:
            raise VecgenError("encoder 'script' needs a file: use script:/path/to/encoder.pt")
        p = Path(path).expanduser()
        if not p.is_file():
            raise VecgenError(f"TorchScript encoder not found: {p}")
        return _script_encoder(p, device)
    raise VecgenError(f"unknown encoder kind {kind!r} in {text!r} (known: script, taef2; use KIND:PATH)")


def check_pair(encoder: ImageEncoder, generator) -> None:
    """Refuse an encoder whose latent channels differ from the generator's (one line)."""
    shape = tuple(generator.latent_shape)
    if getattr(generator, "has_mapping", False):
        raise VecgenError(
            f"--encoder gives latents for a decoder, but the {generator.kind} generator has a "
            f"mapping network; leave --encoder out (its photos are inverted by optimization)"
        )
    if not shape or shape[0] != encoder.latent_channels:
        want = shape[0] if shape else "?"
        raise VecgenError(
            f"generator/encoder mismatch: the {encoder.kind} encoder makes {encoder.latent_channels}"
            f"-channel latents, the {generator.kind} generator takes {want} channels"
        )
