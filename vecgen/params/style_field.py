"""Neural style field over a mesh (Text2Mesh): vertex colours and displacements from an MLP.

Each vertex position (the mesh normalised to the unit sphere) goes through random
Fourier features ``[p, sin(2 pi p B), cos(2 pi p B)]`` (``B ~ N(0, sigma^2)``), a
ReLU trunk, and two heads: RGB (``tanh / 2 + 0.5``) and a displacement along the
vertex normal, ``tanh * bound`` with ``bound = max_displacement *`` the longest side
of the bounding box. The last layers start at zero: the first render is the input
shape in flat grey. The mesh is rendered from a front camera plus cameras around
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

    def forward(self, p: Tensor) -> tuple[Tensor, Tensor]:
        """p: ``(N, 3)`` normalised positions -> RGB ``(N, 3)`` in [0, 1], raw displacement ``(N,)`` in [-1, 1]."""
        proj = 2.0 * math.pi * p @ self.B
        h = self.trunk(torch.cat([p, torch.sin(proj), torch.cos(proj)], -1))
        return torch.tanh(self.color(h)) / 2.0 + 0.5, torch.tanh(self.displace(h)).squeeze(-1)


class StyleField:
    """The Text2Mesh parameterization: ``render() -> (V, 3, H, W)``, one image per camera.

    vertices: ``(N, 3)``, faces: ``(F, 3)`` (array or tensor, the input's own frame).
    size: ``(W, H)`` of each view. views: cameras per step (the front plus ``views - 1``
    around). elevation: of the front camera (degrees); front_azimuth: where the front is.
    sigma: Fourier feature scale. max_displacement: bound on the displacement along the
    normal, as a fraction of the bounding box's longest side (0 = colour only).
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
        self.step = 0

    # ------------------------------------------------------------------ the mesh
    def field(self) -> tuple[Tensor, Tensor]:
        """Vertex colours ``(N, 3)`` and displaced normalised vertices ``(N, 3)``."""
        color, raw = self.mlp(self.v0)
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
            _, raw = self.mlp(self.v0)
        return (raw * self.bound * self.scale).cpu()

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
        return self.renderer.render(v, self.faces, color, self.cameras())

    def param_groups(self) -> list[dict[str, Any]]:
        return [{"params": list(self.mlp.parameters()), "lr": self.lr, "name": "style_field"}]

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
