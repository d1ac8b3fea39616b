"""Rasterizers: ``render(scene, size) -> (4, H, W)`` premultiplied RGBA, differentiable."""

from __future__ import annotations

from typing import Protocol

from torch import Tensor

from vecgen.backends.raster.native import NativeRasterizer, composite
from vecgen.errors import VecgenError
from vecgen.scene import Scene


class Rasterizer(Protocol):
    name: str

    def render(self, scene: Scene, size: tuple[int, int] | None = None) -> Tensor:
        """``scene`` -> premultiplied RGBA ``(4, H, W)``, at ``size`` ``(W, H)`` (default: the scene's own)."""
        ...


def get_rasterizer(name: str = "native") -> Rasterizer:
    """``native`` (pure torch, default) or ``diffvg`` (needs ``pydiffvg`` importable)."""
    if name == "native":
        return NativeRasterizer()
    if name == "diffvg":
        from vecgen.backends.raster.diffvg import DiffvgRasterizer

        return DiffvgRasterizer()
    raise VecgenError(f"unknown rasterizer {name!r} (choose native or diffvg)")


__all__ = ["Rasterizer", "NativeRasterizer", "get_rasterizer", "composite"]
