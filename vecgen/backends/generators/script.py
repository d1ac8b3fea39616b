"""Any TorchScript module ``latent -> image`` as a generator.

The module (saved with ``torch.jit.save``) must map ``(B, *latent_shape)`` to
``(B, 3, H, W)``; its output is clamped to ``[0, 1]``. The latent shape comes
from the spec (``script:/path.pt:C,H,W``) or, failing that, from a
``latent_shape`` attribute on the module (a list/tuple of ints, e.g. set in
``__init__`` as ``self.latent_shape: List[int] = [32, 8, 8]``).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Sequence

import torch
from torch import Tensor

from vecgen.errors import VecgenError

from .base import Generator

__all__ = ["ScriptGenerator", "load_script"]

#: Most entries in one latent (a 64 MB float32 tensor): a typo such as ``:4,8,88888888`` is refused, not allocated.
MAX_LATENT_NUMEL = 2**24


def _as_shape(value: object, what: str) -> tuple[int, ...]:
    try:
        if not isinstance(value, Iterable):
            raise TypeError(type(value).__name__)
        shape = tuple(int(v) for v in value)
    except (TypeError, ValueError):
        raise VecgenError(f"{what}: latent shape must be a list of ints, got {value!r}") from None
    if not shape or any(s <= 0 for s in shape):
        raise VecgenError(f"{what}: latent shape must be positive ints, got {shape}")
    if math.prod(shape) > MAX_LATENT_NUMEL:
        raise VecgenError(f"{what}: latent shape {shape} has more than {MAX_LATENT_NUMEL:,} entries (vecgen's limit)")
    return shape


class ScriptGenerator(Generator):
    """Wraps a ``torch.jit.ScriptModule``: ``(B, *latent_shape) -> (B, 3, H, W)`` in ``[0, 1]``.

    No mapping network (``n_latent == 1``); the prior is the standard normal.
    """

    kind = "script"

    def __init__(self, module: torch.nn.Module, latent_shape: Sequence[int]) -> None:
        super().__init__()
        self.module = module
        self.latent_shape = _as_shape(latent_shape, "script generator")

    def forward(self, latent: Tensor) -> Tensor:
        """``(B, *latent_shape)`` -> ``(B, 3, H, W)`` clamped to ``[0, 1]``."""
        out = self.module(latent)
        if not isinstance(out, Tensor) or out.dim() != 4 or out.shape[1] != 3:
            got = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
            raise VecgenError(f"script generator: module must return (B, 3, H, W), got {got}")
        return out.clamp(0.0, 1.0)


def _check_archive(p: Path) -> None:
    """Refuse, in words, a file torch.jit.load would call corrupt: not a zip, damaged, or a torch.save checkpoint."""
    import zipfile

    from vecgen.io import file_format

    try:
        kind = file_format(p)
        names = zipfile.ZipFile(p).namelist() if kind == "zip" else []
    except zipfile.BadZipFile:
        raise VecgenError(f"cannot load TorchScript generator {p}: the file is damaged or truncated") from None
    except OSError as exc:
        raise VecgenError(f"cannot read TorchScript generator {p}: {exc.strerror or type(exc).__name__}") from None
    if kind != "zip":
        raise VecgenError(f"{p} is not a TorchScript generator: not a file written by torch.jit.save")
    if not any(n.endswith("constants.pkl") for n in names):
        raise VecgenError(
            f"{p} is a torch.save checkpoint, not a TorchScript module: load checkpoints with "
            f"stylegan2:PATH or taef2:PATH, or save the module with torch.jit.save"
        )


def load_script(
    path: str | Path,
    latent_shape: Sequence[int] | None = None,
    device: torch.device | str = "cpu",
) -> ScriptGenerator:
    """``torch.jit.load`` a module and wrap it; ``latent_shape`` overrides the module's attribute."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise VecgenError(f"TorchScript generator not found: {p}")
    _check_archive(p)
    try:
        with warnings.catch_warnings():  # torch>=2.9 flags jit.load as deprecated
            warnings.simplefilter("ignore", FutureWarning)
            module = torch.jit.load(str(p), map_location="cpu")
    except Exception as exc:
        reason = " ".join(str(exc).split())[:200]
        raise VecgenError(f"cannot load TorchScript generator {p}: {type(exc).__name__}: {reason}") from None
    if latent_shape is None:
        attr = getattr(module, "latent_shape", None)
        if attr is None:
            raise VecgenError(
                f"TorchScript generator {p.name}: no latent shape; give it as script:{p}:C,H,W"
                " or set a latent_shape attribute on the module"
            )
        latent_shape = attr
    gen = ScriptGenerator(module, _as_shape(latent_shape, f"TorchScript generator {p.name}"))
    gen.requires_grad_(False).eval()
    return gen.to(device)
