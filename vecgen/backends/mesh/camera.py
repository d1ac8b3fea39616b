"""Cameras for the mesh renderer and point projection: look-at, perspective, orbits.

Conventions (OpenGL-like, stable API: the point-cloud backend imports these):

- World is right-handed, +y up. A camera at azimuth 0, elevation 0 sits on +z and
  looks toward the origin (down -z). Azimuth turns counter-clockwise seen from
  above (toward +x), elevation raises the camera toward +y.
- ``look_at`` returns world->camera matrices; in camera space the camera looks
  down -z, +x is right and +y is up. *Depth* is the distance along the view axis,
  ``-z_cam`` (positive in front of the camera).
- Pixel coordinates: x to the right in ``[0, W)``, y downward in ``[0, H)``; pixel
  ``(i, j)`` covers ``[j, j+1) x [i, i+1)`` so its centre is ``(j + .5, i + .5)``.
- The field of view is vertical; the horizontal one follows from ``aspect = W / H``.

Meshes are normalised (``normalize_vertices``) to the unit sphere around the box
centre, so ``orbit(..., distance=DEFAULT_DISTANCE)`` with ``DEFAULT_FOV`` always
frames the whole object.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import Tensor

DEFAULT_FOV = 60.0  # vertical field of view, degrees
DEFAULT_DISTANCE = 2.4  # > 1 / sin(30 deg) = 2: a unit sphere fits with a margin
NEAR = 0.05
FAR = 100.0


def _as_tensor(x, like: Tensor | None = None, dtype=None) -> Tensor:
    if isinstance(x, Tensor):
        t = x
    else:
        t = torch.as_tensor(x, dtype=dtype or torch.float32)
    if like is not None:
        t = t.to(device=like.device, dtype=like.dtype)
    elif dtype is not None:
        t = t.to(dtype)
    return t


def orbit(azimuth_deg, elevation_deg, distance: float | Tensor = DEFAULT_DISTANCE, target=(0.0, 0.0, 0.0)) -> Tensor:
    """Camera positions on a sphere around ``target``.

    azimuth_deg, elevation_deg: ``(V,)`` (or scalars, broadcast together); distance:
    scalar or ``(V,)``. Returns eye positions ``(V, 3)`` (float32 unless inputs are
    tensors of another float dtype). Azimuth 0, elevation 0 is the +z "front" camera.
    """
    az = _as_tensor(azimuth_deg, dtype=torch.float32)
    el = _as_tensor(elevation_deg, like=az)
    az, el = torch.broadcast_tensors(az.reshape(-1), el.reshape(-1))
    d = _as_tensor(distance, like=az).reshape(-1)
    a, e = torch.deg2rad(az), torch.deg2rad(el)
    eye = torch.stack([torch.cos(e) * torch.sin(a), torch.sin(e), torch.cos(e) * torch.cos(a)], -1)
    return eye * d.unsqueeze(-1) + _as_tensor(target, like=az).reshape(-1, 3)


def look_at(eye, target=(0.0, 0.0, 0.0), up: Sequence[float] | Tensor = (0.0, 1.0, 0.0)) -> Tensor:
    """World->camera matrices ``(V, 4, 4)`` for eyes ``(V, 3)`` looking at ``target``.

    target: ``(3,)`` or ``(V, 3)``. up: ``(3,)`` or ``(V, 3)``; when the view direction
    is (anti)parallel to ``up`` (a camera straight above), another up is chosen so
    the matrix stays a rotation. Differentiable in ``eye`` and ``target``.
    """
    eye = _as_tensor(eye, dtype=torch.float32)
    eye = eye.reshape(-1, 3)
    tgt = _as_tensor(target, like=eye).reshape(-1, 3).expand_as(eye)
    upv = _as_tensor(up, like=eye).reshape(-1, 3).expand_as(eye)
    back = eye - tgt  # camera +z points away from what it looks at
    back = back / back.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    right = torch.cross(upv, back, dim=-1)
    degenerate = right.norm(dim=-1, keepdim=True) < 1e-6
    alt = torch.tensor([0.0, 0.0, -1.0], device=eye.device, dtype=eye.dtype).expand_as(eye)
    right = torch.where(degenerate, torch.cross(alt, back, dim=-1), right)
    right = right / right.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    true_up = torch.cross(back, right, dim=-1)
    rot = torch.stack([right, true_up, back], dim=-2)  # (V, 3, 3): rows are camera axes
    trans = -(rot @ eye.unsqueeze(-1)).squeeze(-1)
    out = torch.zeros(eye.shape[0], 4, 4, device=eye.device, dtype=eye.dtype)
    out[:, :3, :3] = rot
    out[:, :3, 3] = trans
    out[:, 3, 3] = 1.0
    return out


def perspective(fov_deg: float = DEFAULT_FOV, aspect: float = 1.0, near: float = NEAR, far: float = FAR) -> Tensor:
    """OpenGL projection matrix ``(4, 4)`` (camera space -> clip space).

    fov_deg: vertical field of view. aspect: width / height. After the divide by
    ``w``, visible points have ``x, y, z`` in ``[-1, 1]`` (z = -1 at ``near``).
    """
    f = 1.0 / math.tan(math.radians(fov_deg) / 2.0)
    m = torch.zeros(4, 4)
    m[0, 0] = f / aspect
    m[1, 1] = f
    m[2, 2] = (far + near) / (near - far)
    m[2, 3] = 2.0 * far * near / (near - far)
    m[3, 2] = -1.0
    return m


def to_camera(points: Tensor, view: Tensor) -> Tensor:
    """World points ``(N, 3)`` or ``(V, N, 3)`` -> camera-space points ``(V, N, 3)``.

    view: world->camera ``(V, 4, 4)`` (from ``look_at``).
    """
    if points.dim() == 2:
        points = points.unsqueeze(0)
    rot = view[:, :3, :3].to(points)
    trans = view[:, :3, 3].to(points)
    return points @ rot.transpose(-1, -2) + trans.unsqueeze(-2)


def camera_to_pixels(
    cam: Tensor, size: tuple[int, int], fov_deg: float = DEFAULT_FOV, near: float = NEAR
) -> tuple[Tensor, Tensor]:
    """Camera-space points ``(..., 3)`` -> pixel coords ``(..., 2)`` and depth ``(...)``.

    size: ``(H, W)``. Depth is ``-z_cam``; points closer than ``near`` get their
    depth clamped for the divide (their pixels are meaningless; callers cull them).
    """
    h, w = size
    f = 1.0 / math.tan(math.radians(fov_deg) / 2.0)
    depth = -cam[..., 2]
    inv = 1.0 / depth.clamp_min(near)
    # The vertical fov spans H pixels: one NDC unit is H/2 pixels on both axes,
    # so pixels stay square whatever the aspect.
    px = (w / 2.0) + cam[..., 0] * inv * (f * h / 2.0)
    py = (h / 2.0) - cam[..., 1] * inv * (f * h / 2.0)
    return torch.stack([px, py], -1), depth


def project(
    points: Tensor, view: Tensor, size: tuple[int, int], fov_deg: float = DEFAULT_FOV, near: float = NEAR
) -> tuple[Tensor, Tensor]:
    """World points to the image: ``(pixels (V, N, 2), depth (V, N))``.

    points: ``(N, 3)`` (shared by all views) or ``(V, N, 3)``; view: ``(V, 4, 4)``
    world->camera; size: ``(H, W)``. Pixel convention in the module docstring;
    depth is the camera-space distance along the view axis (``-z_cam``), so points
    behind the camera have depth <= 0. Differentiable in points and view.
    """
    return camera_to_pixels(to_camera(points, view), size, fov_deg, near)


def normalize_vertices(v) -> tuple[Tensor, Tensor, Tensor]:
    """Centre on the bounding-box centre and scale into the unit sphere.

    v: ``(N, 3)`` tensor or array. Returns ``(v_norm (N, 3), centre (3,), scale ())``
    with ``v_norm = (v - centre) / scale`` and ``max |v_norm| == 1``. A single point
    (or all-equal points) gets scale 1. ``v_norm`` is float32 (float64 stays float64);
    a float64 input (what mesh files load as) is normalised in float64 and its
    ``centre``/``scale`` stay float64, so huge coordinates (``1e38``, beyond float32's
    squares) and far-off small meshes keep their shape, and go back exactly.
    """
    if isinstance(v, Tensor):
        work = v if v.dtype in (torch.float32, torch.float64) else v.float()
    else:
        work = torch.as_tensor(v)
        work = work if work.dtype == torch.float64 else work.to(torch.float32)
    centre = (work.amin(0) + work.amax(0)) / 2.0
    scale = (work - centre).norm(dim=-1).amax()
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    out = (work - centre) / scale
    return (out if isinstance(v, Tensor) and v.dtype == torch.float64 else out.to(torch.float32)), centre, scale


def denormalize_vertices(v_norm: Tensor, centre: Tensor, scale: Tensor) -> Tensor:
    """Inverse of ``normalize_vertices``: ``(N, 3)`` back in the input's frame."""
    return v_norm * scale.to(v_norm) + centre.to(v_norm)


def default_views(
    count: int = 5,
    jitter: float = 0.0,
    elevation: float = 15.0,
    front_azimuth: float = 0.0,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """``count`` views around the object: ``(azimuth_deg (V,), elevation_deg (V,))``.

    The first is the front (``front_azimuth``, ``elevation``); the rest are spread
    evenly in azimuth. ``jitter`` (degrees) adds uniform noise to all but the front.
    """
    az = front_azimuth + torch.arange(count, dtype=torch.float32) * (360.0 / max(count, 1))
    el = torch.full((count,), float(elevation))
    if jitter > 0 and count > 1:
        noise = (torch.rand(2, count - 1, generator=generator) * 2.0 - 1.0) * jitter
        az[1:] += noise[0]
        el[1:] = (el[1:] + noise[1] * 0.5).clamp(-80.0, 80.0)
    return az, el


__all__ = [
    "DEFAULT_FOV",
    "DEFAULT_DISTANCE",
    "NEAR",
    "FAR",
    "orbit",
    "look_at",
    "perspective",
    "to_camera",
    "camera_to_pixels",
    "project",
    "normalize_vertices",
    "denormalize_vertices",
    "default_views",
]
