"""Neural style field over a mesh (Text2Mesh): vertex colours and displacements from an MLP.

Each vertex position (the mesh normalised to the unit sphere) goes through random
Fourier features ``[p, sin(2 pi p B), cos(2 pi p B)]`` (``B ~ N(0, sigma^2)``), a
ReLU trunk, and two heads: RGB (``tanh / 2 + 0.5``) and a displacement along the
vertex normal, ``tanh * bound`` with ``bound = max_displacement *`` the longest side
of the bounding box. ``detail_radius``: the head's output minus its own Gaussian
smoothing over that radius goes through the tanh, so displacement is detail (bumps and
dents), never a region swelling as a whole. ``keep_silhouette``: the weight of
:class:`SilhouetteTerm`, each training camera's anti-aliased outline against the
input's. The last layers start at zero: the first render is the input shape in flat grey. The mesh is rendered from a front camera plus cameras around
it (a new random set every step, drawn from the step number, so snapshots and
resumes do not disturb it); under ``torch.no_grad`` (the final picture, snapshots)
the cameras are fixed: the front first, then evenly around. Exported meshes are in
the input's own frame and scale, with its vertices and faces in the same order.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from vecgen.backends.mesh.camera import DEFAULT_DISTANCE, DEFAULT_FOV, default_views, look_at, normalize_vertices, orbit
from vecgen.backends.mesh.render import MeshRenderer, vertex_normals
from vecgen.errors import VecgenError
from vecgen.options import check_number, make_generator
from vecgen.params.base import StepContext


def welded_normals(vertices: Tensor, faces: Tensor) -> Tensor:
    """Vertex normals ``(N, 3)`` shared by vertices at the same position (so displacing along
    them does not tear seams of duplicated vertices); where the faces around a vertex cancel
    out (inconsistent winding), the direction from the centre is used."""
    raw = vertex_normals(vertices, faces)
    tri = vertices.index_select(0, faces.reshape(-1)).view(-1, 3, 3)
    area_n = torch.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0], dim=-1)
    summed = torch.zeros_like(vertices).index_add_(0, faces.reshape(-1), area_n.repeat_interleave(3, dim=0))
    key = torch.round(vertices.double() * 1e6).cpu().numpy()
    _, inv = np.unique(key, axis=0, return_inverse=True)
    inv_t = torch.as_tensor(inv.reshape(-1), device=vertices.device)
    group = torch.zeros(int(inv_t.max()) + 1, 3, dtype=vertices.dtype, device=vertices.device).index_add_(
        0, inv_t, summed
    )
    n = group.index_select(0, inv_t)
    length = n.norm(dim=-1, keepdim=True)
    radial = vertices / vertices.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    n = torch.where(
        length > 1e-9, n / length.clamp_min(1e-20), torch.where(raw.norm(dim=-1, keepdim=True) > 0, raw, radial)
    )
    return n


def smoothing_matrix(vertices: Tensor, radius: float) -> Tensor:
    """Row-normalised Gaussian weights ``(N, N)`` (sparse) over the vertices within ``radius``
    (Euclidean, normalised units; ``sigma = radius / 2``): the low-pass whose residual is "detail"."""
    from scipy.spatial import cKDTree

    pts = vertices.detach().double().cpu().numpy()
    pairs = cKDTree(pts).query_pairs(radius, output_type="ndarray")
    n = len(pts)
    rows = np.concatenate([pairs[:, 0], pairs[:, 1], np.arange(n)])
    cols = np.concatenate([pairs[:, 1], pairs[:, 0], np.arange(n)])
    d2 = ((pts[rows] - pts[cols]) ** 2).sum(1)
    w = np.exp(-d2 / (2.0 * (radius / 2.0) ** 2))
    w /= np.bincount(rows, weights=w, minlength=n)[rows]
    idx = torch.as_tensor(np.stack([rows, cols]), dtype=torch.int64)
    return torch.sparse_coo_tensor(
        idx, torch.as_tensor(w, dtype=torch.float32), (n, n), check_invariants=True
    ).coalesce()


class StyleMLP(nn.Module):
    """Fourier features -> ``depth`` x ``width`` ReLU trunk -> colour ``(N, 3)`` and displacement ``(N,)`` heads."""

    B: Tensor  # (3, features // 2) random Fourier frequencies

    def __init__(
        self,
        sigma: float = 5.0,
        features: int = 256,
        width: int = 256,
        depth: int = 4,
        head_depth: int = 2,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.register_buffer("B", torch.randn(3, features // 2, generator=generator) * sigma)
        layers: list[nn.Module] = [nn.Linear(3 + 2 * (features // 2), width), nn.ReLU()]
        for _ in range(depth - 1):
            layers += [nn.Linear(width, width), nn.ReLU()]
        self.trunk = nn.Sequential(*layers)

        def head(out: int) -> nn.Sequential:
            mods: list[nn.Module] = []
            for _ in range(head_depth - 1):
                mods += [nn.Linear(width, width), nn.ReLU()]
            last = nn.Linear(width, out)
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)
            return nn.Sequential(*mods, last)

        self.color = head(3)
        self.displace = head(1)
        with torch.no_grad():  # the default init reseeds from the global RNG: redo it from ours
            for m in self.modules():
                if isinstance(m, nn.Linear) and m.weight.abs().sum() > 0:
                    bound = 1.0 / math.sqrt(m.in_features)
                    m.weight.copy_(torch.rand(m.weight.shape, generator=generator) * 2 * bound - bound)
                    m.bias.copy_(torch.rand(m.bias.shape, generator=generator) * 2 * bound - bound)

    def forward(self, p: Tensor, detail: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """p: ``(N, 3)`` normalised positions -> RGB ``(N, 3)`` in [0, 1], raw displacement ``(N,)`` in [-1, 1].

        detail: an ``(N, N)`` (sparse) smoothing matrix; the displacement head's output minus its
        smoothed self goes through the tanh, so only detail finer than the smoothing survives.
        """
        proj = 2.0 * math.pi * p @ self.B
        h = self.trunk(torch.cat([p, torch.sin(proj), torch.cos(proj)], -1))
        d = self.displace(h)
        if detail is not None:
            d = d - torch.sparse.mm(detail, d) if detail.is_sparse else d - detail @ d
        return torch.tanh(self.color(h)) / 2.0 + 0.5, torch.tanh(d).squeeze(-1)


class StyleField:
    """The Text2Mesh parameterization: ``render() -> (V, 3, H, W)``, one image per camera.

    vertices: ``(N, 3)``, faces: ``(F, 3)`` (array or tensor, the input's own frame).
    size: ``(W, H)`` of each view. views: cameras per step (the front plus ``views - 1``
    around). elevation: of the front camera (degrees); front_azimuth: where the front is.
    sigma: Fourier feature scale. max_displacement: bound on the displacement along the
    normal, as a fraction of the bounding box's longest side (0 = colour only).
    detail_radius: high-pass radius of the displacement (0 = off). displacement_lr: the
    displacement head's learning rate (default ``lr``). background_augment: a random plain
    background per training step. keep_silhouette: weight of :class:`SilhouetteTerm`.
    """

    kind = "mesh"
    name = "style_field"

    def __init__(
        self,
        vertices,
        faces,
        *,
        size: tuple[int, int] = (224, 224),
        views: int = 5,
        background=(1.0, 1.0, 1.0),
        sigma: float = 5.0,
        width: int = 256,
        depth: int = 4,
        max_displacement: float = 0.1,
        lr: float = 5e-4,
        seed: int = 0,
        device: Any = "cpu",
        elevation: float = 15.0,
        front_azimuth: float = 0.0,
        fov: float = DEFAULT_FOV,
        distance: float = DEFAULT_DISTANCE,
        detail_radius: float = 0.0,
        displacement_lr: float | None = None,
        background_augment: bool = False,
        keep_silhouette: float = 0.0,
    ) -> None:
        self.device = torch.device(device)
        if int(views) < 1:
            raise VecgenError("--views must be >= 1")
        self.views = int(views)
        self.max_displacement = check_number("max_displacement", max_displacement, nonnegative=True)
        self.lr = check_number("lr", lr)
        self.sigma = check_number("sigma", sigma, nonnegative=True)
        self.seed, self.elevation, self.front_azimuth = int(seed), float(elevation), float(front_azimuth)
        self.distance = float(distance)
        self.width_px, self.height_px = int(size[0]), int(size[1])
        v = np.asarray(vertices.detach().cpu() if isinstance(vertices, Tensor) else vertices, dtype=np.float64)
        self.faces = torch.as_tensor(np.asarray(faces, dtype=np.int64)).to(self.device)
        v_norm, self.centre, self.scale = normalize_vertices(v)  # in float64: any finite coordinates
        self.v0 = v_norm.to(self.device)
        self.normals = welded_normals(self.v0, self.faces)
        self.bound = self.max_displacement * float((v_norm.amax(0) - v_norm.amin(0)).max())
        gen = make_generator(seed)
        self.mlp = StyleMLP(sigma=self.sigma, width=int(width), depth=int(depth), generator=gen).to(self.device)
        self.renderer = MeshRenderer((self.height_px, self.width_px), fov=fov, background=background)
        self.background = self.renderer.background
        self.detail_radius = check_number("detail_radius", detail_radius, nonnegative=True)
        # Detail only: the displacement minus its own smoothing over ``detail_radius``, so no region can
        # swell or shrink as a whole (a lump), only carry bumps finer than the radius.
        self.detail = smoothing_matrix(self.v0, self.detail_radius).to(self.device) if self.detail_radius > 0 else None
        self.displacement_lr = self.lr if displacement_lr is None else check_number("displacement_lr", displacement_lr)
        self.background_augment = bool(background_augment)
        # The silhouette-keeping term (:class:`SilhouetteTerm`): white on black, unlit, so the render is the alpha.
        self.keep_silhouette = check_number("keep_silhouette", keep_silhouette, nonnegative=True)
        self.alpha_renderer = MeshRenderer(
            (self.height_px, self.width_px), fov=fov, background=(0.0, 0.0, 0.0), ambient=1.0, diffuse=0.0
        )
        self.silhouette_loss: Tensor | None = None
        self.step = 0

    # ------------------------------------------------------------------ the mesh
    def field(self) -> tuple[Tensor, Tensor]:
        """Vertex colours ``(N, 3)`` and displaced normalised vertices ``(N, 3)``."""
        color, raw = self.mlp(self.v0, self.detail)
        return color, self.v0 + (raw * self.bound).unsqueeze(-1) * self.normals

    def mesh(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(vertices (N, 3) float64 in the input's frame, faces (F, 3), colours (N, 3))``."""
        with torch.no_grad():
            color, v = self.field()
        v = v.double().cpu() * self.scale.double() + self.centre.double()
        return v.numpy(), self.faces.cpu().numpy(), color.double().cpu().numpy()

    def displacement(self) -> Tensor:
        """Signed displacement per vertex ``(N,)``, in the input's units."""
        with torch.no_grad():
            _, raw = self.mlp(self.v0, self.detail)
        return (raw * self.bound * self.scale).cpu()

    @torch.no_grad()
    def silhouettes(self, azimuth: float | None = None, elevation: float | None = None) -> tuple[Tensor, Tensor]:
        """Coverage masks ``(H, W)`` bool of the input and of the displaced mesh from one camera
        (default: the front one), for the shape-keeping figures."""
        az = torch.tensor([self.front_azimuth if azimuth is None else float(azimuth)])
        el = torch.tensor([self.elevation if elevation is None else float(elevation)])
        view = look_at(orbit(az, el, self.distance)).to(self.device)
        color, v = self.field()
        masks = []
        for verts in (self.v0, v):
            self.renderer.render(verts, self.faces, color, view)
            assert self.renderer.last is not None
            masks.append(self.renderer.last.mask[0])
        return masks[0], masks[1]

    def silhouette_iou(self, azimuth: float | None = None, elevation: float | None = None) -> tuple[float, float]:
        """(IoU of the displaced mesh's silhouette with the input's, relative change of its pixel count),
        from the front camera unless told."""
        before, after = self.silhouettes(azimuth, elevation)
        union = int((before | after).sum())
        iou = int((before & after).sum()) / union if union else 1.0
        n0 = int(before.sum())
        return iou, (int(after.sum()) - n0) / max(n0, 1)

    # ------------------------------------------------------------------ cameras
    def cameras(self, training: bool | None = None) -> Tensor:
        """World->camera ``(V, 4, 4)``: random around the front while training, else fixed."""
        training = torch.is_grad_enabled() if training is None else training
        if training:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.step)
            az, el = default_views(self.views, elevation=self.elevation, front_azimuth=self.front_azimuth)
            if self.views > 1:
                u = torch.rand(2 * self.views, generator=g)
                az[1:] = self.front_azimuth + u[0] * 360.0 + torch.arange(self.views - 1) * (360.0 / (self.views - 1))
                el[1:] = -15.0 + 60.0 * u[1 : self.views]
                az[0] += (u[self.views] - 0.5) * 10.0  # the front, a little jittered
        else:
            az, el = default_views(self.views, elevation=self.elevation, front_azimuth=self.front_azimuth)
        return look_at(orbit(az, el, self.distance)).to(self.device)

    def render_views(self, azimuth, elevation) -> Tensor:
        """Shaded views ``(V, 3, H, W)`` from the given angles (degrees, ``(V,)``)."""
        color, v = self.field()
        return self.renderer.render(
            v, self.faces, color, look_at(orbit(azimuth, elevation, self.distance)).to(self.device)
        )

    # ------------------------------------------------------------------ the protocol
    def render(self, ctx: StepContext | None = None) -> Tensor:
        """The stylised mesh from every camera, ``(V, 3, H, W)`` (differentiable)."""
        color, v = self.field()
        training = torch.is_grad_enabled()
        cams = self.cameras(training)
        self.renderer.background = self.background
        if training and self.background_augment:  # a random plain background each step: the object, not the white
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.step + 7)
            self.renderer.background = torch.rand(3, generator=g)
        try:
            image = self.renderer.render(v, self.faces, color, cams)
        finally:
            self.renderer.background = self.background
        if training and self.keep_silhouette > 0:
            self.silhouette_loss = self.silhouette_change(v, cams)
        return image

    def silhouette_change(self, vertices: Tensor, cams: Tensor) -> Tensor:
        """How far the silhouettes of ``vertices`` ``(N, 3)`` from cameras ``cams`` ``(V, 4, 4)`` differ from
        the input's: ``sum |alpha - mask_input| / sum mask_input`` (about ``1 - IoU``; the input's hard
        coverage mask, so its own anti-aliased rim scores a little above 0), differentiable through the
        anti-aliased outline."""
        ones = torch.ones_like(vertices)
        alpha = self.alpha_renderer.render(vertices, self.faces, ones, cams)[:, 0]
        with torch.no_grad():
            self.alpha_renderer.render(self.v0, self.faces, ones, cams)
            assert self.alpha_renderer.last is not None
            ref = self.alpha_renderer.last.mask.to(alpha)
        return (alpha - ref).abs().sum() / ref.sum().clamp_min(1.0)

    def param_groups(self) -> list[dict[str, Any]]:
        disp = list(self.mlp.displace.parameters())
        ids = {id(t) for t in disp}
        rest = [t for t in self.mlp.parameters() if id(t) not in ids]
        if self.displacement_lr == self.lr:
            return [{"params": list(self.mlp.parameters()), "lr": self.lr, "name": "style_field"}]
        return [
            {"params": rest, "lr": self.lr, "name": "style_field"},
            {"params": disp, "lr": self.displacement_lr, "name": "displacement"},
        ]

    def project_(self) -> None:
        """Nothing to repair."""

    def end_step(self, ctx: StepContext) -> None:
        self.step = ctx.step + 1  # the next step's cameras

    def export(self, path: str | Path, metadata: dict | None = None) -> None:
        from vecgen.backends.mesh.io import save_mesh

        v, f, c = self.mesh()
        save_mesh(path, v, f, c, metadata)

    def state_dict(self) -> dict[str, Any]:
        return {
            "mlp": {k: t.detach().cpu().clone() for k, t in self.mlp.state_dict().items()},
            "step": self.step,
            "vertices": int(self.v0.shape[0]),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not isinstance(state, dict) or "mlp" not in state:
            raise VecgenError("not a style-field state")
        if int(state.get("vertices", -1)) != self.v0.shape[0]:
            raise VecgenError("checkpoint was made for a mesh with another vertex count")
        try:
            self.mlp.load_state_dict(state["mlp"])
        except (RuntimeError, KeyError) as e:
            raise VecgenError(f"checkpoint does not match this style field ({str(e).splitlines()[0]})") from None
        self.step = int(state.get("step", 0))

    def __repr__(self) -> str:
        return (
            f"StyleField(vertices={self.v0.shape[0]}, faces={self.faces.shape[0]}, views={self.views}, "
            f"size={(self.width_px, self.height_px)}, max_displacement={self.max_displacement})"
        )


class SilhouetteTerm:
    """The named, weighted shape-keeping term of a :class:`StyleField`: its training render's
    :meth:`StyleField.silhouette_change` (computed with the render, the same cameras)."""

    needs_views = False

    def __init__(self, field: StyleField, weight: float | None = None, name: str = "silhouette") -> None:
        self.field, self.name = field, name
        self.weight = field.keep_silhouette if weight is None else float(weight)

    def __call__(self, ctx) -> Tensor:
        """The silhouette change of this step's render (0 when the render made none).

        Shape:

        - ``ctx.image``: ``(V, 3, H, W)``, the step's views (only its dtype and device are used)
        - returns: ``()``
        """
        loss = self.field.silhouette_loss
        self.field.silhouette_loss = None  # one step's value, used once
        return loss if loss is not None else ctx.image.new_zeros(())
