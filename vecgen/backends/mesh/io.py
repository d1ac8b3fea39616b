"""Mesh files through trimesh: OBJ, PLY, OFF, STL, GLB/GLTF in; PLY, OBJ, GLB with vertex colours out.

Meshes load as users have them (unnormalised, open, inconsistently wound, with
duplicated vertices or quads): vertices keep their file order (``process=False``),
polygons are triangulated by trimesh, and nothing is merged. Anything that cannot
be rendered (no file, not a mesh, a point cloud, NaN coordinates, no face with
area) is refused with one :class:`~vecgen.errors.VecgenError` line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vecgen.backends.mesh.camera import denormalize_vertices, normalize_vertices
from vecgen.errors import VecgenError
from vecgen.io import atomic_write

MESH_IN = (".obj", ".ply", ".off", ".stl", ".glb", ".gltf")
MESH_OUT = (".ply", ".obj", ".glb")


def _trimesh():
    try:
        import trimesh
    except ImportError:
        raise VecgenError("meshes need trimesh: pip install 'vecgen[mesh]'") from None
    return trimesh


@dataclass
class MeshData:
    """A triangle mesh in its file's own frame.

    vertices: ``(N, 3)`` float64; faces: ``(F, 3)`` int64; colors: ``(N, 3)`` float in
    ``[0, 1]`` or None; simplified_from: the face count before ``max_faces`` applied.
    """

    vertices: np.ndarray
    faces: np.ndarray
    colors: np.ndarray | None = None
    simplified_from: int | None = None


def is_mesh_path(path) -> bool:
    return Path(str(path)).suffix.lower() in MESH_IN


#: Most vertices, faces or points a mesh file may declare (about 1 GB of float64 vertices);
#: a header that claims more is refused before anything is allocated.
MAX_ELEMENTS = 40_000_000
_PLY_SIZES = {
    "char": 1,
    "int8": 1,
    "uchar": 1,
    "uint8": 1,
    "short": 2,
    "int16": 2,
    "ushort": 2,
    "uint16": 2,
    "int": 4,
    "int32": 4,
    "uint": 4,
    "uint32": 4,
    "float": 4,
    "float32": 4,
    "double": 8,
    "float64": 8,
}


def _refuse_claim(p: Path, claims: str, need: int, size: int) -> VecgenError:
    return VecgenError(
        f"{p}: its header claims {claims}, which needs at least {need:,} bytes, but the file "
        f"holds {size:,} (truncated or damaged)"
    )


def _check_ply(p: Path, head: bytes, size: int) -> None:
    end = head.find(b"end_header")
    if not head.startswith(b"ply") or end < 0:
        return  # not a PLY header we can read: the reader says what is wrong
    lines = head[:end].decode("latin-1").splitlines()
    fmt = next((ln.split()[1] for ln in lines if ln.startswith("format") and len(ln.split()) > 1), "ascii")
    binary = fmt != "ascii"
    elements: list[list] = []  # [name, count, min bytes per element]
    for ln in lines:
        parts = ln.split()
        if not parts:
            continue
        if parts[0] == "element" and len(parts) >= 3:
            try:
                count = int(parts[2])
            except ValueError:
                raise VecgenError(f"{p}: PLY element {parts[1]!r} has no count ({parts[2]!r})") from None
            if count < 0 or count > MAX_ELEMENTS:
                raise VecgenError(
                    f"{p}: its header claims {count:,} {parts[1]} elements (the limit is {MAX_ELEMENTS:,})"
                )
            elements.append([parts[1], count, 0])
        elif parts[0] == "property" and elements:
            if len(parts) >= 5 and parts[1] == "list":  # list <count type> <item type> name: at least the count
                elements[-1][2] += _PLY_SIZES.get(parts[2], 1) if binary else 2
            else:
                elements[-1][2] += _PLY_SIZES.get(parts[1], 1) if binary else 2  # ascii: a digit and a space
    need = end + len(b"end_header") + sum(count * per for _, count, per in elements)
    if need > size:
        plural = {"vertex": "vertices", "face": "faces"}
        claims = " and ".join(
            f"{count:,} {plural.get(name, name + ' elements') if count != 1 else name}" for name, count, _ in elements
        )
        raise _refuse_claim(p, claims, need, size)


def _check_off(p: Path, head: bytes, size: int) -> None:
    tokens: list[str] = []
    for ln in head.decode("latin-1").splitlines():
        ln = ln.split("#", 1)[0].strip()
        if ln:
            tokens += ln.split()
        if len(tokens) >= 3 and not tokens[0].upper().endswith("OFF") or len(tokens) >= 4:
            break
    if tokens and tokens[0].upper().endswith("OFF"):
        tokens = tokens[1:]
    try:
        nv, nf = int(tokens[0]), int(tokens[1])
    except (IndexError, ValueError):
        return  # the reader says what is wrong
    if max(nv, nf) > MAX_ELEMENTS or min(nv, nf) < 0:
        raise VecgenError(f"{p}: its header claims {nv:,} vertices and {nf:,} faces; the limit is {MAX_ELEMENTS:,}")
    need = nv * 6 + nf * 8  # "0 0 0\n" per vertex, "3 0 1 2\n" per face at the least
    if need > size:
        raise _refuse_claim(p, f"{nv:,} vertices and {nf:,} faces", need, size)


def _check_stl(p: Path, head: bytes, size: int) -> None:
    if len(head) < 84:
        return
    count = int(np.frombuffer(head[80:84], dtype="<u4")[0])
    if 84 + 50 * count == size or head.lstrip().startswith(b"solid"):
        return  # binary and whole, or ASCII (read as text)
    if count > MAX_ELEMENTS:
        raise VecgenError(f"{p}: its header claims {count:,} triangles; the limit is {MAX_ELEMENTS:,}")
    raise _refuse_claim(p, f"{count:,} triangles", 84 + 50 * count, size)


def check_header(path) -> None:
    """Refuse (one line) a PLY, OFF or binary STL whose header claims more vertices, faces or
    triangles than :data:`MAX_ELEMENTS`, or more than the file can hold: read before the
    reader allocates anything from the header's counts."""
    p = Path(str(path))
    suffix = p.suffix.lower()
    if suffix not in (".ply", ".off", ".stl"):
        return
    try:
        size = p.stat().st_size
        with open(p, "rb") as f:
            head = f.read(65536)
    except OSError as e:
        raise VecgenError(f"{p}: cannot read it ({e.strerror or e})") from None
    {".ply": _check_ply, ".off": _check_off, ".stl": _check_stl}[suffix](p, head, size)


def load_mesh(path, max_faces: int | None = None) -> MeshData:
    """Read a mesh file; with more than ``max_faces`` faces it is simplified by vertex clustering
    (:func:`simplify`, vertex order then changes). ``None``: no limit."""
    p = Path(str(path))
    suffix = p.suffix.lower()
    if suffix not in MESH_IN:
        raise VecgenError(f"{p}: unknown mesh type {suffix or '(no suffix)'!r} (use {', '.join(MESH_IN)})")
    if not p.is_file():
        raise VecgenError(f"{p}: no such file")
    if p.stat().st_size == 0:
        raise VecgenError(f"{p}: empty file")
    check_header(p)
    trimesh = _trimesh()
    kw = {"maintain_order": True, "skip_materials": True} if suffix == ".obj" else {}
    try:
        loaded = trimesh.load(str(p), process=False, **kw)
    except Exception as e:  # trimesh raises many kinds on a bad file
        raise VecgenError(
            f"{p}: not a readable {suffix[1:].upper()} mesh ({type(e).__name__}: "
            f"{str(e).splitlines()[0][:120] if str(e) else 'no detail'})"
        ) from None
    if isinstance(loaded, trimesh.PointCloud):
        raise VecgenError(f"{p}: a point cloud ({len(loaded.vertices)} points, no faces); meshes need faces")
    if isinstance(loaded, trimesh.Scene):
        if not any(isinstance(g, trimesh.Trimesh) for g in loaded.geometry.values()):
            if any(isinstance(g, trimesh.PointCloud) for g in loaded.geometry.values()):
                raise VecgenError(f"{p}: a point cloud (no faces); meshes need faces")
            raise VecgenError(f"{p}: no mesh found in the file (empty, or not a mesh)")
        loaded = loaded.to_mesh() if hasattr(loaded, "to_mesh") else loaded.dump(concatenate=True)
    if not isinstance(loaded, trimesh.Trimesh):
        raise VecgenError(f"{p}: not a triangle mesh ({type(loaded).__name__})")
    v = np.asarray(loaded.vertices, dtype=np.float64).reshape(-1, 3)
    f = np.asarray(loaded.faces, dtype=np.int64).reshape(-1, 3)
    colors = None
    vc = getattr(loaded.visual, "vertex_colors", None) if getattr(loaded.visual, "kind", None) == "vertex" else None
    if vc is not None and len(vc) == len(v):
        colors = np.asarray(vc, dtype=np.float64)[:, :3] / 255.0
    return check_mesh(MeshData(v, f, colors), str(p), max_faces)


def check_mesh(mesh: MeshData, name: str = "mesh", max_faces: int | None = None) -> MeshData:
    """Refuse what cannot be rendered; apply ``max_faces``. Returns the (maybe simplified) mesh."""
    v, f = mesh.vertices, mesh.faces
    if len(v) == 0:
        raise VecgenError(f"{name}: empty mesh (no vertices)")
    if len(f) == 0:
        raise VecgenError(f"{name}: no faces ({len(v)} vertices: a point cloud?); meshes need faces")
    if not np.isfinite(v).all():
        bad = int((~np.isfinite(v)).any(1).sum())
        raise VecgenError(f"{name}: {bad} vertices have NaN or infinite coordinates")
    if max(len(v), len(f)) > MAX_ELEMENTS:
        raise VecgenError(f"{name}: {len(v):,} vertices and {len(f):,} faces; the limit is {MAX_ELEMENTS:,}")
    if f.min() < 0 or f.max() >= len(v):
        raise VecgenError(f"{name}: faces refer to vertices that do not exist")
    lo, hi = v.min(0), v.max(0)
    with np.errstate(over="ignore"):
        extent = float((hi - lo).max())
    if not np.isfinite(extent):  # e.g. -1e308 and 1e308: the size itself overflows
        raise VecgenError(
            f"{name}: coordinates span more than a float64 can hold ({float(np.abs(v).max()):.3g}); rescale the mesh"
        )
    # Huge or tiny coordinates are fine (they are normalised in float64 before rendering);
    # the area test runs on the normalised mesh so it cannot overflow.
    tri = ((v - (lo + hi) / 2.0) / max(extent, 1e-300))[f]
    area = np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    if extent == 0.0 or not (area > 1e-12).any():
        raise VecgenError(f"{name}: all {len(f)} faces have zero area; nothing to render")
    if max_faces is not None and len(f) > max_faces:
        sv, sf = simplify(v, f, max_faces)
        mesh = MeshData(sv, sf, None, simplified_from=len(f))
    return mesh


def simplify(vertices: np.ndarray, faces: np.ndarray, max_faces: int) -> tuple[np.ndarray, np.ndarray]:
    """Vertex clustering: snap vertices to a grid, merge each cell's vertices (their mean),
    drop faces that collapse. The grid is refined by bisection to the finest one giving at
    most ``max_faces`` faces. Cheap and memory-light for million-face meshes; it changes
    the vertex order (the output is a new mesh)."""
    if max_faces < 1:
        raise VecgenError("--max-faces must be >= 1")
    lo_v, span = vertices.min(0), max(float(np.ptp(vertices, axis=0).max()), 1e-300)

    def cluster(cells: int):
        q = np.floor((vertices - lo_v) / span * cells).clip(0, cells - 1).astype(np.int64)
        key = (q[:, 0] * (cells + 1) + q[:, 1]) * (cells + 1) + q[:, 2]
        uniq, inv = np.unique(key, return_inverse=True)
        nf = inv[faces]
        nf = nf[(nf[:, 0] != nf[:, 1]) & (nf[:, 1] != nf[:, 2]) & (nf[:, 0] != nf[:, 2])]
        first = np.unique(np.sort(nf, 1), axis=0, return_index=True)[1]  # faces merged onto one
        return inv, len(uniq), nf[np.sort(first)]

    lo, hi, best = 1, 4096, None
    while lo <= hi:
        mid = (lo + hi) // 2
        inv, n, tri = cluster(mid)
        if len(tri) <= max_faces:
            best, lo = (inv, n, tri), mid + 1
        else:
            hi = mid - 1
    if best is None or len(best[2]) == 0:
        raise VecgenError(f"cannot simplify the mesh to {max_faces} faces; raise --max-faces")
    inv, n, tri = best
    counts = np.bincount(inv, minlength=n).astype(np.float64)
    out_v = np.stack([np.bincount(inv, weights=vertices[:, k], minlength=n) for k in range(3)], 1) / counts[:, None]
    return out_v, tri.astype(np.int64)


def save_mesh(path, vertices, faces, colors=None, metadata: dict | None = None) -> Path:
    """Write ``(N, 3)`` vertices, ``(F, 3)`` faces and ``(N, 3)`` colours in ``[0, 1]`` by suffix
    (PLY binary, OBJ with ``v x y z r g b``, GLB with a COLOR_0 attribute), atomically."""
    p = Path(str(path))
    suffix = p.suffix.lower()
    if suffix not in MESH_OUT:
        raise VecgenError(f"{p}: meshes are written as {', '.join(MESH_OUT)}")
    trimesh = _trimesh()
    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces, dtype=np.int64)
    kw = {}
    if colors is not None:
        c = np.clip(np.asarray(colors, dtype=np.float64), 0.0, 1.0)
        rgba = np.concatenate([np.round(c * 255.0), np.full((len(c), 1), 255.0)], 1).astype(np.uint8)
        kw["vertex_colors"] = rgba
    mesh = trimesh.Trimesh(v, f, process=False, **kw)
    if metadata:
        mesh.metadata.update({k: str(val) for k, val in metadata.items()})
    if suffix == ".obj":
        data = mesh.export(
            file_type="obj", include_color=colors is not None, include_normals=False, include_texture=False
        )
        header = "".join(f"# {k}: {' '.join(str(val).split())}\n" for k, val in (metadata or {}).items())
        data = header + data
    elif suffix == ".ply":
        data = mesh.export(file_type="ply", encoding="binary")
    else:
        data = mesh.export(file_type="glb")
    atomic_write(p, data.encode("utf-8") if isinstance(data, str) else bytes(data))
    return p


__all__ = [
    "MAX_ELEMENTS",
    "MESH_IN",
    "MESH_OUT",
    "MeshData",
    "check_header",
    "check_mesh",
    "denormalize_vertices",
    "is_mesh_path",
    "load_mesh",
    "normalize_vertices",
    "save_mesh",
    "simplify",
]
