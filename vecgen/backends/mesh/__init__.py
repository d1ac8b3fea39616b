"""3-D backends: cameras (``camera``), a differentiable triangle renderer (``render``), mesh I/O (``io``,
needs trimesh, imported only there)."""

from __future__ import annotations

from vecgen.backends.mesh.camera import (
    DEFAULT_DISTANCE,
    DEFAULT_FOV,
    denormalize_vertices,
    look_at,
    normalize_vertices,
    orbit,
    perspective,
    project,
)
from vecgen.backends.mesh.render import Fragments, MeshRenderer, rasterize

__all__ = [
    "DEFAULT_DISTANCE",
    "DEFAULT_FOV",
    "Fragments",
    "MeshRenderer",
    "denormalize_vertices",
    "look_at",
    "normalize_vertices",
    "orbit",
    "perspective",
    "project",
    "rasterize",
]
