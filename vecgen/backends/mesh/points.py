"""Point clouds: reading (PLY, XYZ/TXT, NPY, meshes sampled to points), checks, and depth maps.

A cloud is a float32 array / tensor ``(N, 3)``. :func:`depth_maps` normalises it
into the unit sphere and projects it with the perspective cameras of
:mod:`vecgen.backends.mesh.camera` into ``V`` views, splatting each point as a
small disc and keeping the nearest point per pixel (a z-buffer), shaded so that
near is bright and the empty background is black; the grey map is repeated to 3
channels, which is what a CLIP image tower takes (PointCLIP's projection).
:func:`splat` is the same z-buffered splatting for any per-point colours (the
mini-model kit uses it for shaded, coloured views).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from vecgen.backends.mesh.camera import DEFAULT_DISTANCE, DEFAULT_FOV, look_at, normalize_vertices, orbit, project
from vecgen.errors import VecgenError

POINT_SUFFIXES = (".ply", ".xyz", ".txt", ".pts", ".csv", ".npy")
MESH_SUFFIXES = (".obj", ".off", ".stl", ".glb", ".gltf")
MAX_POINTS = 2_000_000  # a bigger cloud is refused rather than filling memory
#: Largest coordinate a cloud may have: clouds are float32, whose squares (distances) overflow
#: near 1.8e19, and no real scan comes near it; larger ones are refused (one line), not normalised.
MAX_COORDINATE = 1e15
NEAR_SHADE, FAR_SHADE = 1.0, 0.2  # brightness at the unit sphere's near side / half a radius behind its centre

# name -> (azimuth, elevation) in degrees. The first four are the sides, then top and bottom
# (PointCLIP's six); 8 and 10 add views from above and below between the sides.
_SIDES = [(0.0, 0.0), (90.0, 0.0), (180.0, 0.0), (270.0, 0.0)]
_TOP_BOTTOM = [(0.0, 90.0), (0.0, -90.0)]
_UPPER = [(45.0, 35.0), (225.0, 35.0), (135.0, 35.0), (315.0, 35.0)]
_LOWER = [(135.0, -35.0), (315.0, -35.0)]
VIEW_SETS: dict[int, list[tuple[float, float]]] = {
    1: _SIDES[:1],
    2: _SIDES[:2],
    3: _SIDES[:2] + _TOP_BOTTOM[:1],
    4: _SIDES,
    5: _SIDES + _TOP_BOTTOM[:1],
    6: _SIDES + _TOP_BOTTOM,
    7: _SIDES + _TOP_BOTTOM + _UPPER[:1],
    8: _SIDES + _TOP_BOTTOM + _UPPER[:2],
    9: _SIDES + _TOP_BOTTOM + _UPPER[:3],
    10: _SIDES + _TOP_BOTTOM + _UPPER[:2] + _LOWER,
    12: _SIDES + _TOP_BOTTOM + _UPPER + _LOWER,
}


# ----------------------------------------------------------------------------- views
def view_angles(views: int | str | list = 6) -> tuple[Tensor, Tensor]:
    """``views``: a count in :data:`VIEW_SETS`, or ``"AZ:EL,AZ:EL,..."`` / ``[(az, el), ...]`` in degrees.

    Returns ``(azimuth (V,), elevation (V,))``.
    """
    if isinstance(views, str) and views.strip().lstrip("-").isdigit():
        views = int(views)
    if isinstance(views, bool):
        raise VecgenError(f"views must be a count or AZ:EL pairs, got {views!r}")
    pairs: list[tuple[float, ...]]
    if isinstance(views, int):
        if views not in VIEW_SETS:
            raise VecgenError(
                f"views: {views} views is not a preset (choose {', '.join(map(str, VIEW_SETS))}, "
                "or give AZ:EL,AZ:EL,... in degrees)"
            )
        pairs = list(VIEW_SETS[views])
    elif isinstance(views, str):
        pairs = []
        for part in views.split(","):
            az, sep, el = part.strip().partition(":")
            try:
                pairs.append((float(az), float(el) if sep else 0.0))
            except ValueError:
                raise VecgenError(f"views: cannot read {part.strip()!r} (want AZ:EL in degrees)") from None
    else:
        try:
            pairs = [tuple(float(v) for v in p) for p in views]
        except (TypeError, ValueError):
            raise VecgenError(f"views must be a count or (azimuth, elevation) pairs, got {views!r}") from None
    if not pairs or any(len(p) != 2 or not all(math.isfinite(v) for v in p) for p in pairs):
        raise VecgenError("views: give at least one finite AZ:EL pair")
    if len(pairs) > 64:
        raise VecgenError(f"views: at most 64 views, got {len(pairs)}")
    if any(not (-360 <= az <= 360 and -90 <= el <= 90) for az, el in pairs):
        raise VecgenError("views: each AZ:EL has -360 <= AZ <= 360 and -90 <= EL <= 90 degrees")
    t = torch.tensor(pairs, dtype=torch.float32)
    return t[:, 0], t[:, 1]


def cameras(azimuth: Tensor, elevation: Tensor, distance: float = DEFAULT_DISTANCE) -> Tensor:
    """World->camera matrices ``(V, 4, 4)`` on an orbit around the origin."""
    return look_at(orbit(azimuth, elevation, distance))


# ----------------------------------------------------------------------------- checks and I/O
def check_points(points, name: str = "point cloud") -> np.ndarray:
    """A cloud as float32 ``(N, 3)``; refuses empty, non-finite, 1-point and degenerate clouds (one line)."""
    try:
        arr = np.asarray(points.detach().cpu() if isinstance(points, Tensor) else points, dtype=np.float64)
    except (TypeError, ValueError):
        raise VecgenError(f"{name}: not a numeric array of points") from None
    if arr.ndim != 2 or arr.shape[1] < 3:
        raise VecgenError(f"{name}: want an (N, 3) array of x, y, z, got shape {tuple(arr.shape)}")
    arr = arr[:, :3]
    if arr.shape[0] == 0:
        raise VecgenError(f"{name}: the point cloud is empty")
    bad = ~np.isfinite(arr).all(1)
    if bad.any():
        raise VecgenError(f"{name}: {int(bad.sum())} point(s) are NaN or infinite (first at row {int(bad.argmax())})")
    if arr.shape[0] == 1:
        raise VecgenError(f"{name}: a single point has no shape to classify")
    if arr.shape[0] > MAX_POINTS:
        raise VecgenError(f"{name}: {arr.shape[0]} points is more than the limit of {MAX_POINTS}")
    big = float(np.abs(arr).max())
    if big > MAX_COORDINATE:
        raise VecgenError(
            f"{name}: coordinates up to {big:.3g}, beyond the limit of {MAX_COORDINATE:.0e} "
            "(points are kept as float32); rescale the cloud"
        )
    if np.ptp(arr, axis=0).max() <= 1e-12 * max(1.0, float(np.abs(arr).max())):
        raise VecgenError(f"{name}: all {arr.shape[0]} points are the same point")
    return arr.astype(np.float32)


def _read_text(p: Path) -> np.ndarray:
    rows = []
    with open(p, encoding="utf-8", errors="replace") as f:
        for k, line in enumerate(f, 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            parts = line.replace(",", " ").replace(";", " ").split()
            if len(parts) < 3:
                raise VecgenError(f"{p}: line {k} has {len(parts)} number(s), want at least x y z")
            try:
                rows.append([float(v) for v in parts[:3]])
            except ValueError:
                if not rows:  # a header line (e.g. "x,y,z") before the numbers
                    continue
                raise VecgenError(f"{p}: line {k}: not numbers: {line[:60]!r}") from None
            if len(rows) > MAX_POINTS:
                raise VecgenError(f"{p}: more than {MAX_POINTS} points")
    return np.asarray(rows, dtype=np.float64).reshape(-1, 3)


def sample_mesh(vertices, faces, count: int, seed: int = 0) -> np.ndarray:
    """``count`` points uniformly on a triangle mesh's surface (area-weighted), ``(count, 3)`` float64."""
    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces, dtype=np.int64)
    bad = ~np.isfinite(v).all(1)
    if bad.any():
        raise VecgenError(f"the mesh: {int(bad.sum())} vertices have NaN or infinite coordinates")
    tri = v[f]
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    if not np.isfinite(area).all() or area.sum() <= 0:
        raise VecgenError("the mesh has no surface area to sample points from")
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(f), size=count, p=area / area.sum())
    u, w = rng.random((2, count))
    flip = u + w > 1
    u[flip], w[flip] = 1 - u[flip], 1 - w[flip]
    t = tri[pick]
    return t[:, 0] + u[:, None] * (t[:, 1] - t[:, 0]) + w[:, None] * (t[:, 2] - t[:, 0])  # float64: checked later


def _read_trimesh(p: Path, count: int, seed: int) -> np.ndarray:
    try:
        import trimesh
    except ImportError:  # pragma: no cover - trimesh is a core dependency
        raise VecgenError(f"{p}: reading meshes needs trimesh (pip install trimesh)") from None
    from vecgen.backends.mesh.io import check_header

    check_header(p)  # a header claiming more than the file holds is refused before the reader allocates
    try:
        obj = trimesh.load(str(p), process=False)
    except Exception as e:
        raise VecgenError(
            f"{p}: cannot read it as a mesh or point cloud ({type(e).__name__}: "
            f"{str(e).splitlines()[0][:120] if str(e) else 'unreadable'})"
        ) from None
    if isinstance(obj, trimesh.Scene):
        geoms = list(obj.geometry.values())
        meshes = [g for g in geoms if isinstance(g, trimesh.Trimesh) and len(g.faces)]
        if meshes:
            obj = trimesh.util.concatenate(meshes)
        elif geoms:
            obj = geoms[0]
        else:
            raise VecgenError(f"{p}: the file holds no geometry")
    faces = getattr(obj, "faces", None)
    verts = getattr(obj, "vertices", None)
    if verts is None:
        raise VecgenError(f"{p}: the file holds no points")
    if faces is not None and len(faces):
        return sample_mesh(verts, faces, count, seed)
    return np.asarray(verts, dtype=np.float64)


def load_points(path: str | Path, *, mesh_points: int = 2048, seed: int = 0) -> np.ndarray:
    """Read a cloud from PLY (points or a mesh), XYZ/TXT/PTS/CSV, NPY or a mesh file -> float32 ``(N, 3)``.

    Meshes (faces present) are sampled to ``mesh_points`` surface points with ``seed``.
    """
    p = Path(path)
    if not p.is_file():
        raise VecgenError(f"{p}: no such file")
    suffix = p.suffix.lower()
    if suffix not in POINT_SUFFIXES + MESH_SUFFIXES:
        raise VecgenError(
            f"{p}: unknown point-cloud type {suffix or '(none)'} (use {', '.join(POINT_SUFFIXES + MESH_SUFFIXES)})"
        )
    if suffix == ".npy":
        try:
            arr = np.load(p, allow_pickle=False)
        except Exception as e:
            raise VecgenError(f"{p}: not a readable .npy array ({type(e).__name__})") from None
    elif suffix in (".xyz", ".txt", ".pts", ".csv"):
        arr = _read_text(p)
    else:
        arr = _read_trimesh(p, mesh_points, seed)
    return check_points(arr, str(p))


# ----------------------------------------------------------------------------- projection
def normalize(points: Tensor) -> Tensor:
    """Centre a cloud ``(N, 3)`` on its bounding-box centre and scale it into the unit sphere."""
    return normalize_vertices(points)[0]


def splat_radius(n_points: int, size: int, splat: float = 1.0) -> int:
    """Disc radius in pixels so that a cloud of ``n_points`` covers a surface without holes at ``size``.

    A visible surface holds about half the points over ~a third of the picture, so the
    spacing is ~size / sqrt(n); ``splat`` scales it (0 = one pixel per point).
    """
    if splat <= 0:
        return 0
    return int(max(1, min(size // 8, round(splat * size / math.sqrt(max(1, n_points))))))


def _offsets(radius: int, device) -> Tensor:
    r = torch.arange(-radius, radius + 1, device=device)
    dy, dx = torch.meshgrid(r, r, indexing="ij")
    keep = dx * dx + dy * dy <= radius * radius + radius  # a disc, a bit fuller than the circle
    return torch.stack([dy[keep], dx[keep]], -1)  # (K, 2)


def splat(pixels: Tensor, depth: Tensor, size: int, radius: int) -> Tensor:
    """Z-buffered point splatting: which point is nearest at each pixel.

    pixels: ``(V, N, 2)`` (x, y); depth: ``(V, N)`` (> 0 in front). Each point
    covers a disc of ``radius`` pixels. Returns ``(V, size, size)`` long: the index
    of the nearest point at each pixel, -1 where no point lands.
    """
    v, n = depth.shape
    dev = depth.device
    off = _offsets(radius, dev)  # (K, 2)
    col = pixels[..., 0].floor().long().unsqueeze(-1) + off[:, 1]  # (V, N, K)
    row = pixels[..., 1].floor().long().unsqueeze(-1) + off[:, 0]
    ok = (col >= 0) & (col < size) & (row >= 0) & (row < size) & (depth > 0).unsqueeze(-1)
    # One int64 key per (pixel, point): quantised depth first, the point's index last, so
    # the minimum per pixel names the nearest point exactly (ties: the lower index).
    dq = (depth.clamp(0, 1e3) * 1e5).long().unsqueeze(-1).expand_as(col)
    idx = torch.arange(n, device=dev).view(1, n, 1).expand_as(col)
    key = dq * n + idx
    flat = (torch.arange(v, device=dev).view(v, 1, 1) * size + row) * size + col
    big = torch.iinfo(torch.long).max
    buf = torch.full((v * size * size,), big, dtype=torch.long, device=dev)
    buf.scatter_reduce_(0, flat[ok], key[ok], reduce="amin")
    return torch.where(buf == big, torch.full_like(buf, -1), buf % n).view(v, size, size)


def drop_outliers(points: Tensor, k: int = 8, spread: float = 5.0, reference: int = 2048) -> Tensor:
    """A cloud ``(N, 3)`` without its isolated points (scanner spray, stray returns): ``(M, 3)``, ``M <= N``.

    A point goes when its mean distance to its ``k`` nearest neighbours is more than
    ``spread`` robust deviations (1.4826 MAD) above the median; one far outlier would
    otherwise shrink the whole shape when the cloud is scaled into the unit sphere.
    Neighbours are looked up among at most ``reference`` points (a fixed subsample),
    which keeps big clouds cheap. Clouds of fewer than ``4 k`` points are kept whole.
    """
    n = points.shape[0]
    if n < 4 * k:
        return points
    ref = points
    if n > reference:
        ref = points[torch.randperm(n, generator=torch.Generator().manual_seed(0))[:reference]]
    d = torch.cat([torch.cdist(points[s : s + 4096], ref) for s in range(0, n, 4096)])
    d = d.masked_fill(d <= 1e-12, float("inf"))  # a point is not its own neighbour (nor its duplicates)
    near = d.topk(k, dim=1, largest=False).values
    near = torch.where(torch.isfinite(near), near, torch.zeros(())).mean(1)
    med = near.median()
    keep = near <= med + spread * 1.4826 * (near - med).abs().median()
    return points[keep] if int(keep.sum()) >= 2 else points


def depth_maps(
    points,
    views: int | str | list = 6,
    size: int = 64,
    *,
    splat_scale: float = 1.5,
    distance: float = DEFAULT_DISTANCE,
    fov: float = DEFAULT_FOV,
    normalise: bool = True,
    clean: bool = False,
) -> Tensor:
    """Project a cloud ``(N, 3)`` to depth maps ``(V, 3, size, size)`` in [0, 1] (near = bright, empty = 0).

    views: see :func:`view_angles`. The cloud is normalised into the unit sphere first
    (``normalise``), so every cloud fills the frame the same way; depth is shaded
    linearly from :data:`NEAR_SHADE` at the sphere's near side to :data:`FAR_SHADE` half a radius behind
    its centre (clamped at 0.1 beyond), so a point is never as dark as the background.
    ``clean``: first :func:`drop_outliers` (what ``vecgen classify3d`` does unless ``--keep-outliers``).
    """
    pts = torch.as_tensor(check_points(points) if not isinstance(points, Tensor) else points, dtype=torch.float32)
    if clean:
        pts = drop_outliers(pts)
    if normalise:
        pts = normalize(pts)
    az, el = view_angles(views)
    pix, depth = project(pts, cameras(az, el, distance), (size, size), fov)
    winner = splat(pix, depth, size, splat_radius(pts.shape[0], size, splat_scale))
    near, far = distance - 1.0, distance + 0.5  # what a view sees of a closed surface lies in this range
    shade = (NEAR_SHADE + (depth - near) / (far - near) * (FAR_SHADE - NEAR_SHADE)).clamp(0.1, 1.0)  # (V, N)
    grey = torch.where(
        winner >= 0, torch.gather(shade, 1, winner.clamp_min(0).view(len(az), -1)).view_as(winner), torch.zeros(())
    )
    return grey.unsqueeze(1).expand(-1, 3, -1, -1).contiguous()


def batch_depth_maps(clouds: list, views: int | str | list = 6, size: int = 64, **kw) -> Tensor:
    """Depth maps of several clouds (any point counts): ``(B, V, 3, size, size)``."""
    return torch.stack([depth_maps(c, views, size, **kw) for c in clouds])


__all__ = [
    "VIEW_SETS",
    "MAX_COORDINATE",
    "MAX_POINTS",
    "POINT_SUFFIXES",
    "MESH_SUFFIXES",
    "view_angles",
    "cameras",
    "check_points",
    "load_points",
    "sample_mesh",
    "drop_outliers",
    "normalize",
    "splat_radius",
    "splat",
    "depth_maps",
    "batch_depth_maps",
]
