"""Differentiable triangle renderer, pure PyTorch (CPU, CUDA, MPS).

How it works, and why memory stays bounded:

1. Vertices are projected once per view (``camera.project``).
2. Visibility, without gradients: every face is binned to the pixel centres
   inside its own screen bounding box; (face, pixel) pairs are generated in
   chunks of at most ``max_pairs`` (so memory does not grow with the mesh or the
   image), tested with edge functions, and reduced into a z-buffer with one
   ``scatter_reduce(amin)`` over a 64-bit key ``(depth bits << 32) | face``: the
   nearest face wins, ties go to the lower face index.
3. Shading, with gradients: each covered pixel recomputes its own face's
   barycentrics from the projected vertices (perspective-correct), interpolates
   vertex colours and multiplies by Lambert + ambient with the *flat* face normal
   (two-sided: the normal is turned toward the camera, so inconsistent winding
   does not matter), so vertex displacements change the picture.
4. Anti-aliased silhouettes, with gradients w.r.t. vertex positions: for each pair
   of 4-neighbour pixels on different faces, when an edge of the nearer face
   separates them and the far pixel's surface lies clearly behind, both pixels get
   box-filter coverage from their distance to that edge (``0.5 + d`` inside,
   ``0.5 - d`` outside), blending with the colour across it. Interior edges of a
   continuous surface fail the depth-gap test and stay sharp (no seams).

Gathers use ``index_select``: its backward sums deterministically on CPU.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from vecgen.backends.mesh.camera import DEFAULT_FOV, NEAR, look_at, orbit, project

#: (face, pixel) pairs per visibility chunk: about 60 bytes each while a chunk is live.
MAX_PAIRS = 1 << 20
#: (view, face) rows set up at once; more views are rasterized a group at a time.
MAX_FACE_ROWS = 1 << 21
_KEY_NONE = torch.iinfo(torch.int64).max


@dataclass
class Fragments:
    """What the visibility pass found, per view and pixel (no gradients).

    face: ``(V, H, W)`` int64, the visible face or -1 (background).
    depth: ``(V, H, W)`` float32 camera depth of the visible surface, ``inf`` on background.
    pairs: (face, pixel) pairs tested; max_chunk: the largest chunk processed.
    """

    face: Tensor
    depth: Tensor
    pairs: int = 0
    max_chunk: int = 0

    @property
    def mask(self) -> Tensor:
        """``(V, H, W)`` bool coverage."""
        return self.face >= 0


def _edges(tri: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Edge-function planes of triangles ``(..., 3, 2)``.

    Returns ``(A, B, C)`` each ``(..., 3)`` with edge ``i`` (opposite vertex ``i``)
    evaluating ``A x + B y + C`` (equal to twice the signed area at vertex ``i``),
    and the signed doubled area ``(...)``.
    """
    a, b, c = tri.unbind(-2)
    p, q = torch.stack([b, c, a], -2), torch.stack([c, a, b], -2)  # edge i runs p_i -> q_i
    d = q - p
    A = -d[..., 1]
    B = d[..., 0]
    C = d[..., 1] * p[..., 0] - d[..., 0] * p[..., 1]
    area = (b[..., 0] - a[..., 0]) * (c[..., 1] - a[..., 1]) - (b[..., 1] - a[..., 1]) * (c[..., 0] - a[..., 0])
    return A, B, C, area


def _weights(tri: Tensor, pt: Tensor) -> tuple[Tensor, Tensor]:
    """Screen barycentric weights ``(M, 3)`` of points ``(M, 2)`` in triangles ``(M, 3, 2)``,
    and signed distances ``(M, 3)`` in pixels to each edge line (positive inside)."""
    A, B, C, area = _edges(tri)
    e = A * pt[:, :1] + B * pt[:, 1:] + C
    safe = torch.where(area.abs() > 1e-12, area, torch.full_like(area, 1e-12))
    w = e / safe.unsqueeze(-1)
    length = torch.sqrt(A * A + B * B).clamp_min(1e-12)
    return w, w * safe.abs().unsqueeze(-1) / length


@torch.no_grad()
def rasterize(
    pix: Tensor,
    depth: Tensor,
    faces: Tensor,
    size: tuple[int, int],
    *,
    near: float = NEAR,
    cull_backfaces: bool = False,
    max_pairs: int = MAX_PAIRS,
) -> Fragments:
    """Visible face and depth per pixel.

    pix: ``(V, N, 2)`` pixel coords; depth: ``(V, N)`` camera depth (``camera.project``);
    faces: ``(F, 3)`` int64; size: ``(H, W)``. Faces with a vertex nearer than ``near``
    are skipped; ``cull_backfaces`` drops faces wound clockwise as seen (counter-clockwise
    seen from outside is the front, as in OBJ/PLY). A pixel centre on an edge is inside.
    """
    h, w = size
    nv, nf = pix.shape[0], faces.shape[0]
    dev = pix.device
    if nv > 1 and nv * nf > MAX_FACE_ROWS:  # per-face rows are ~100 bytes: a few views at a time
        group = max(1, MAX_FACE_ROWS // max(nf, 1))
        parts = [
            rasterize(
                pix[s : s + group],
                depth[s : s + group],
                faces,
                size,
                near=near,
                cull_backfaces=cull_backfaces,
                max_pairs=max_pairs,
            )
            for s in range(0, nv, group)
        ]
        return Fragments(
            torch.cat([f.face for f in parts]),
            torch.cat([f.depth for f in parts]),
            sum(f.pairs for f in parts),
            max(f.max_chunk for f in parts),
        )
    keys = torch.full((nv * h * w,), _KEY_NONE, dtype=torch.int64, device=dev)
    total = biggest = 0
    # All views at once: row v * F + f is face f seen from view v.
    tri = pix.float().index_select(1, faces.reshape(-1)).view(nv * nf, 3, 2)
    z = depth.float().index_select(1, faces.reshape(-1)).view(nv * nf, 3)
    A, B, C, area = _edges(tri)
    ok = (z > near).all(1) & (area.abs() > 1e-9) & torch.isfinite(tri).all(2).all(1)
    if cull_backfaces:
        ok &= area < 0  # image y points down: a counter-clockwise front face has negative area here
    lo, hi = tri.amin(1), tri.amax(1)
    x0 = torch.ceil(lo[:, 0] - 0.5).clamp(0, w)
    x1 = torch.floor(hi[:, 0] - 0.5).clamp(-1, w - 1)
    y0 = torch.ceil(lo[:, 1] - 0.5).clamp(0, h)
    y1 = torch.floor(hi[:, 1] - 0.5).clamp(-1, h - 1)
    nx = (x1 - x0 + 1).clamp_min(0)
    ny = (y1 - y0 + 1).clamp_min(0)
    ok &= (nx > 0) & (ny > 0)
    keep = ok.nonzero().squeeze(1)
    if keep.numel():
        nx, ny = nx[keep].long(), ny[keep].long()
        x0 = x0[keep].long()
        y0 = y0[keep].long() + torch.div(keep, nf, rounding_mode="floor") * h  # rows of the stacked views
        # Everything a pair needs, in one row per face: 3 normalised edge planes, the 1/z plane.
        inv_area = 1.0 / area[keep]
        wa, wb, wc = (t[keep] * inv_area.unsqueeze(1) for t in (A, B, C))  # barycentric planes (K, 3)
        iz = 1.0 / z[keep]
        rows = torch.cat(
            [
                wa,
                wb,
                wc,
                (wa * iz).sum(1, keepdim=True),
                (wb * iz).sum(1, keepdim=True),
                (wc * iz).sum(1, keepdim=True),
            ],
            1,
        )  # (K, 12)
        count = nx * ny
        end = torch.cumsum(count, 0)
        start = end - count
        total = int(end[-1])
        face_id = keep % nf
        view_y = torch.div(keep, nf, rounding_mode="floor") * h
        for s in range(0, total, max_pairs):
            e = min(s + max_pairs, total)
            biggest = max(biggest, e - s)
            idx = torch.arange(s, e, device=dev)
            if e - s == total:  # one chunk (the usual case): the face of each pair without a search
                k = torch.repeat_interleave(torch.arange(count.numel(), device=dev), count)
            else:
                k = torch.searchsorted(end, idx, right=True)
            local = idx - start.index_select(0, k)
            cols = nx.index_select(0, k)
            row = torch.div(local, cols, rounding_mode="floor")
            py = y0.index_select(0, k) + row  # in the stacked image (view * H + y)
            px = x0.index_select(0, k) + (local - row * cols)
            r = rows.index_select(0, k)
            fx = px.to(r.dtype).unsqueeze(1) + 0.5
            fy = (py - view_y.index_select(0, k)).to(r.dtype).unsqueeze(1) + 0.5
            bary = r[:, 0:3] * fx + r[:, 3:6] * fy + r[:, 6:9]
            inv_z = (r[:, 9:10] * fx + r[:, 10:11] * fy + r[:, 11:12]).squeeze(1)
            inside = (bary >= 0).all(1) & (inv_z > 0)
            hit = inside.nonzero().squeeze(1)
            if hit.numel() == 0:
                continue
            d = (1.0 / inv_z.index_select(0, hit)).float()
            key = (d.view(torch.int32).to(torch.int64) << 32) | face_id.index_select(0, k.index_select(0, hit))
            pixel = py.index_select(0, hit) * w + px.index_select(0, hit)
            keys.scatter_reduce_(0, pixel, key, reduce="amin")
    hit = keys != _KEY_NONE
    face = torch.where(hit, keys & 0xFFFFFFFF, torch.full_like(keys, -1))
    dbits = (keys >> 32).to(torch.int32)
    dep = torch.where(hit, dbits.view(torch.float32), torch.full(keys.shape, math.inf, device=dev))
    return Fragments(face.view(nv, h, w), dep.view(nv, h, w), total, biggest)


def face_normals(vertices: Tensor, faces: Tensor) -> Tensor:
    """Unit face normals ``(F, 3)`` of world vertices ``(N, 3)`` (counter-clockwise = outward)."""
    tri = vertices.index_select(0, faces.reshape(-1)).view(-1, 3, 3)
    n = torch.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0], dim=-1)
    return n / n.norm(dim=-1, keepdim=True).clamp_min(1e-20)


def vertex_normals(vertices: Tensor, faces: Tensor) -> Tensor:
    """Area-weighted unit vertex normals ``(N, 3)`` (vertices in no face get zero)."""
    tri = vertices.index_select(0, faces.reshape(-1)).view(-1, 3, 3)
    n = torch.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0], dim=-1)  # length = 2 * area
    out = torch.zeros_like(vertices).index_add_(0, faces.reshape(-1), n.repeat_interleave(3, dim=0))
    return out / out.norm(dim=-1, keepdim=True).clamp_min(1e-20)


class MeshRenderer:
    """Render triangle meshes from a batch of cameras: ``(V, 3, H, W)`` in ``[0, 1]``.

    size: ``(H, W)``. fov: vertical field of view (degrees). background: RGB ``(3,)``.
    light: direction *toward* the light in camera space (default: from the camera,
    a little above), so every view is lit the same way. ambient + diffuse scale the
    Lambert term: ``albedo * (ambient + diffuse * max(0, n . l))``.
    antialias: soft silhouette edges (also what carries outline gradients).
    """

    def __init__(
        self,
        size: tuple[int, int] = (224, 224),
        *,
        fov: float = DEFAULT_FOV,
        background=(1.0, 1.0, 1.0),
        light=(0.3, 0.5, 1.0),
        ambient: float = 0.45,
        diffuse: float = 0.55,
        antialias: bool = True,
        cull_backfaces: bool = False,
        near: float = NEAR,
        max_pairs: int = MAX_PAIRS,
    ) -> None:
        self.size = (int(size[0]), int(size[1]))
        self.fov = float(fov)
        self.background = torch.as_tensor(background, dtype=torch.float32).reshape(3)
        lt = torch.as_tensor(light, dtype=torch.float32).reshape(3)
        self.light = lt / lt.norm().clamp_min(1e-12)
        self.ambient, self.diffuse = float(ambient), float(diffuse)
        self.antialias, self.cull_backfaces = bool(antialias), bool(cull_backfaces)
        self.near, self.max_pairs = float(near), int(max_pairs)
        self.last: Fragments | None = None  # the last render's fragments (coverage, depth)

    def render(self, vertices: Tensor, faces: Tensor, colors: Tensor, view: Tensor) -> Tensor:
        """Shade a mesh from every camera of ``view``.

        vertices: ``(N, 3)`` world positions; faces: ``(F, 3)`` int64; colors: ``(N, 3)``
        vertex albedo in ``[0, 1]``; view: ``(V, 4, 4)`` world->camera (``camera.look_at``).
        Returns ``(V, 3, H, W)``, differentiable w.r.t. vertices (silhouettes, shading,
        interpolation) and colours. ``self.last`` keeps the fragments.
        """
        h, w = self.size
        faces = faces.to(vertices.device, torch.int64)
        view = view.to(vertices)
        pix, depth = project(vertices, view, self.size, self.fov, self.near)
        frag = rasterize(
            pix.detach(),
            depth.detach(),
            faces,
            self.size,
            near=self.near,
            cull_backfaces=self.cull_backfaces,
            max_pairs=self.max_pairs,
        )
        self.last = frag
        nv, n = pix.shape[:2]
        ctx = _ShadeContext(
            self, vertices, faces, colors.to(vertices), view, pix.reshape(nv * n, 2), depth.reshape(nv * n), n
        )
        bg = self.background.to(vertices)
        flat_face = frag.face.reshape(-1)
        img = bg.expand(nv * h * w, 3)
        cov = (flat_face >= 0).nonzero().squeeze(1)
        if cov.numel():
            img = img.index_copy(0, cov, ctx.shade(cov, flat_face.index_select(0, cov), inside=True))
        if self.antialias and cov.numel():
            img = _antialias(ctx, img, frag)
        return img.view(nv, h, w, 3).permute(0, 3, 1, 2)

    def render_orbit(
        self, vertices: Tensor, faces: Tensor, colors: Tensor, azimuth, elevation, distance: float | None = None
    ) -> Tensor:
        """``render`` from cameras at ``azimuth``/``elevation`` (degrees, ``(V,)``) looking at the origin."""
        from vecgen.backends.mesh.camera import DEFAULT_DISTANCE

        eye = orbit(azimuth, elevation, DEFAULT_DISTANCE if distance is None else distance).to(vertices)
        return self.render(vertices, faces, colors, look_at(eye))


class _ShadeContext:
    """Per-render tensors the shading and anti-aliasing passes share."""

    def __init__(
        self,
        r: MeshRenderer,
        vertices: Tensor,
        faces: Tensor,
        colors: Tensor,
        view: Tensor,
        pix: Tensor,
        depth: Tensor,
        n: int,
    ) -> None:
        self.r, self.faces, self.colors, self.view, self.pix, self.depth, self.n = r, faces, colors, view, pix, depth, n
        self.hw = r.size[0] * r.size[1]
        self.normals = face_normals(vertices, faces)  # (F, 3) world
        self.centroid = vertices.index_select(0, faces.reshape(-1)).view(-1, 3, 3).mean(1)
        rot = view[:, :3, :3]
        self.eye = -(rot.transpose(1, 2) @ view[:, :3, 3:]).squeeze(-1)  # (V, 3) camera centres
        self.light = (rot.transpose(1, 2) @ r.light.to(vertices)).view(-1, 3)  # (V, 3) world light dirs

    def tri(self, vi: Tensor, face: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Projected triangles ``(M, 3, 2)``, their depths ``(M, 3)`` and vertex ids ``(M, 3)``."""
        vid = self.faces.index_select(0, face)
        gid = (vi.unsqueeze(1) * self.n + vid).reshape(-1)
        return self.pix.index_select(0, gid).view(-1, 3, 2), self.depth.index_select(0, gid).view(-1, 3), vid

    def light_factor(self, vi: Tensor, face: Tensor) -> Tensor:
        """Lambert + ambient of each (view, face) ``(M, 1)``, normal turned toward the camera."""
        nrm = self.normals.index_select(0, face)
        facing = ((self.eye.index_select(0, vi) - self.centroid.index_select(0, face)) * nrm).sum(1, keepdim=True)
        nrm = torch.where(facing < 0, -nrm, nrm)
        lam = (nrm * self.light.index_select(0, vi)).sum(1, keepdim=True).clamp_min(0.0)
        return self.r.ambient + self.r.diffuse * lam

    def albedo(self, tri: Tensor, z: Tensor, vid: Tensor, pt: Tensor, clamp: bool) -> tuple[Tensor, Tensor, Tensor]:
        """Interpolated colour ``(M, 3)``, depth ``(M,)`` and edge distances ``(M, 3)`` at points ``(M, 2)``."""
        wts, dist = _weights(tri, pt)
        if clamp:  # a point just outside its triangle (anti-aliasing): nearest point's attributes
            wts = wts.clamp_min(0.0)
            wts = wts / wts.sum(1, keepdim=True).clamp_min(1e-12)
        pc = wts / z.clamp_min(1e-6)  # perspective-correct weights
        inv = pc.sum(1, keepdim=True)
        bary = pc / inv.clamp_min(1e-12)
        cols = self.colors.index_select(0, vid.reshape(-1)).view(-1, 3, 3)
        return (bary.unsqueeze(-1) * cols).sum(1), 1.0 / inv.squeeze(1).clamp_min(1e-12), dist

    def shade(self, pixel: Tensor, face: Tensor, inside: bool) -> Tensor:
        """Shaded colour ``(M, 3)`` of ``face`` at flat pixel indices ``pixel`` (over all views)."""
        h, w = self.r.size
        vi = torch.div(pixel, self.hw, rounding_mode="floor")
        rem = pixel - vi * self.hw
        pt = (
            torch.stack([(rem % w).to(self.pix.dtype), torch.div(rem, w, rounding_mode="floor").to(self.pix.dtype)], 1)
            + 0.5
        )
        tri, z, vid = self.tri(vi, face)
        col, _, _ = self.albedo(tri, z, vid, pt, clamp=not inside)
        return col * self.light_factor(vi, face)


def _neighbour_pairs(face: Tensor) -> tuple[Tensor, Tensor]:
    """Flat indices ``(p, q)`` of 4-neighbour pixel pairs where ``p`` is covered and ``q`` shows another face."""
    nv, h, w = face.shape
    idx = torch.arange(nv * h * w, device=face.device).view(nv, h, w)
    ps, qs = [], []
    for dim, step in ((2, 1), (2, -1), (1, 1), (1, -1)):
        n = face.shape[dim]
        a = slice(0, n - 1) if step == 1 else slice(1, n)
        b = slice(1, n) if step == 1 else slice(0, n - 1)
        sl_a = [slice(None)] * 3
        sl_b = [slice(None)] * 3
        sl_a[dim], sl_b[dim] = a, b
        fa, fb = face[tuple(sl_a)], face[tuple(sl_b)]
        m = (fa >= 0) & (fa != fb)
        ps.append(idx[tuple(sl_a)][m])
        qs.append(idx[tuple(sl_b)][m])
    return torch.cat(ps), torch.cat(qs)


def _pick(pixel: Tensor, score: Tensor, size: int) -> Tensor:
    """Indices of the entries with the lowest ``score`` per ``pixel`` (one per pixel, lowest index on ties)."""
    best = torch.full((size,), math.inf, device=score.device, dtype=score.dtype).scatter_reduce(
        0, pixel, score, reduce="amin"
    )
    cand = (score == best.index_select(0, pixel)).nonzero().squeeze(1)
    first = torch.full((size,), _KEY_NONE, dtype=torch.int64, device=score.device)
    first.scatter_reduce_(0, pixel.index_select(0, cand), cand, reduce="amin")
    return first[first != _KEY_NONE]


def _antialias(ctx: _ShadeContext, img: Tensor, frag: Fragments) -> Tensor:
    """Box-filter coverage across silhouette edges (see the module docstring). img: ``(V*H*W, 3)``."""
    h, w = ctx.r.size
    flat_face = frag.face.reshape(-1)
    zbuf = frag.depth.reshape(-1)
    p, q = _neighbour_pairs(frag.face)
    # Only a clear depth step can be a silhouette (the exact test follows): drop the many pairs
    # inside a continuous surface before any work on them.
    step = zbuf.index_select(0, q) > zbuf.index_select(0, p) * 1.005
    p, q = p[step], q[step]
    if p.numel() == 0:
        return img
    fa = flat_face.index_select(0, p)
    vi = torch.div(p, ctx.hw, rounding_mode="floor")

    def centre(pixel: Tensor) -> Tensor:
        rem = pixel - vi * ctx.hw
        return torch.stack([(rem % w), torch.div(rem, w, rounding_mode="floor")], 1).to(ctx.pix.dtype) + 0.5

    tri, z, vid = ctx.tri(vi, fa)
    pp, pq = centre(p), centre(q)
    _, dist_p = _weights(tri, pp)
    wq, dist_q = _weights(tri, pq)
    with torch.no_grad():
        # The separating edge: the one q is farthest outside of.
        edge = dist_q.argmin(1, keepdim=True)
        outside = dist_q.gather(1, edge).squeeze(1) < 0
        # A's plane extrapolated to q, vs what q shows: only a clear gap makes a silhouette.
        inv_q = (wq / z.clamp_min(1e-6)).sum(1)
        z_q = torch.where(inv_q > 0, 1.0 / inv_q.clamp_min(1e-12), torch.full_like(inv_q, math.inf))
        z_p = frag.depth.reshape(-1).index_select(0, p)
        gap = zbuf.index_select(0, q) - z_q
        silhouette = outside & torch.isfinite(z_q) & (gap > 0.01 * z_q + 2.0 * (z_q - z_p).abs())
    d_in = dist_p.gather(1, edge).squeeze(1)  # >= 0: p is inside A
    d_out = -dist_q.gather(1, edge).squeeze(1)  # > 0: q is outside A
    out = img
    sel = (silhouette & (d_in.detach() < 0.5)).nonzero().squeeze(1)
    if sel.numel():
        win = sel.index_select(0, _pick(p.index_select(0, sel), d_in.detach().index_select(0, sel), img.shape[0]))
        a = (0.5 + d_in.index_select(0, win)).clamp(0.0, 1.0).unsqueeze(1)
        pw, qw = p.index_select(0, win), q.index_select(0, win)
        mixed = a * img.index_select(0, pw) + (1.0 - a) * img.index_select(0, qw)
        out = out.index_copy(0, pw, mixed)
    sel = (silhouette & (d_out.detach() < 0.5)).nonzero().squeeze(1)
    if sel.numel():
        win = sel.index_select(0, _pick(q.index_select(0, sel), d_out.detach().index_select(0, sel), img.shape[0]))
        a = (0.5 - d_out.index_select(0, win)).clamp(0.0, 1.0).unsqueeze(1)
        qw = q.index_select(0, win)
        front = ctx.shade(qw, fa.index_select(0, win), inside=False)
        mixed = (1.0 - a) * out.index_select(0, qw) + a * front
        out = out.index_copy(0, qw, mixed)
    return out


__all__ = ["Fragments", "MAX_PAIRS", "MeshRenderer", "face_normals", "rasterize", "vertex_normals"]
