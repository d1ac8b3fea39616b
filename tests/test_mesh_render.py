"""The triangle renderer: conformance with trimesh ray casting, gradients, visibility, memory bound."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from vecgen.backends.mesh.camera import DEFAULT_DISTANCE, look_at, normalize_vertices, orbit, project
from vecgen.backends.mesh.render import MeshRenderer, rasterize

MESHES = Path(__file__).resolve().parents[2] / "shared" / "meshes"
NAMES = ["bunny.obj", "teapot.obj", "airplane.ply", "ant.ply", "nut.ply", "vase.obj"]


def _ray_cast(mesh, eye: np.ndarray, view: np.ndarray, size: int, fov: float):
    """Depth image of ``mesh`` (inf where no hit) by trimesh's own ray-triangle intersector."""
    from trimesh.ray.ray_triangle import RayMeshIntersector

    f = 1.0 / math.tan(math.radians(fov) / 2)
    j, i = np.meshgrid(np.arange(size) + 0.5, np.arange(size) + 0.5)
    d_cam = np.stack([(j - size / 2) / (f * size / 2), -(i - size / 2) / (f * size / 2), -np.ones_like(j)], -1)
    rot = view[:3, :3]
    d_world = d_cam.reshape(-1, 3) @ rot  # rows of rot are the camera axes: R^T d
    d_world /= np.linalg.norm(d_world, axis=1, keepdims=True)
    origins = np.tile(eye, (d_world.shape[0], 1))
    loc, ray, _ = RayMeshIntersector(mesh).intersects_location(origins, d_world, multiple_hits=False)
    depth = np.full(size * size, np.inf)
    depth[ray] = (loc - eye) @ (-rot[2])  # along the view axis
    return depth.reshape(size, size)


def _rotation(az: float, el: float) -> torch.Tensor:
    """Rotation ``(3, 3)`` turning the mesh by ``az`` about y, then ``el`` about x."""
    a, e = math.radians(az), math.radians(el)
    ry = torch.tensor([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]])
    rx = torch.tensor([[1, 0, 0], [0, math.cos(e), -math.sin(e)], [0, math.sin(e), math.cos(e)]])
    return rx @ ry


def _check_conformance(name: str, az: float, el: float, size: int = 64) -> None:
    trimesh = pytest.importorskip("trimesh")
    pytest.importorskip("rtree")  # trimesh's intersector bins triangles with it
    path = MESHES / name
    if not path.exists():
        pytest.skip("../shared/meshes not present")
    mesh = trimesh.load(path, force="mesh", process=False)
    v, _, _ = normalize_vertices(mesh.vertices)
    v = v @ _rotation(az, el).T
    faces = torch.as_tensor(np.asarray(mesh.faces), dtype=torch.int64)
    # A narrow field of view from +z: the reference's rays are then nearly axis-aligned, and
    # trimesh's box tree hands each ray only a few candidate triangles (wide views are slow there).
    fov, dist = 24.0, 5.5
    eye = orbit([0.0], [0.0], dist)
    view = look_at(eye)
    pix, depth = project(v, view, (size, size), fov)
    frag = rasterize(pix, depth, faces, (size, size))
    ref = _ray_cast(
        trimesh.Trimesh(v.double().numpy(), mesh.faces, process=False),
        eye[0].double().numpy(),
        view[0].double().numpy(),
        size,
        fov,
    )
    ours = frag.depth[0].double().numpy()
    a, b = np.isfinite(ours), np.isfinite(ref)
    iou = (a & b).sum() / (a | b).sum()
    both = a & b
    rng = ref[b].max() - ref[b].min()
    with np.errstate(invalid="ignore"):
        err = np.abs(ours - ref) / rng
    # Interior: all 4 neighbours covered too. On the rim a pixel centre can sit within float
    # error of an edge where a front and a back face meet, and either answer is right there.
    pad = np.pad(both, 1)
    interior = both & pad[:-2, 1:-1] & pad[2:, 1:-1] & pad[1:-1, :-2] & pad[1:-1, 2:]
    assert a.sum() > 200, "the mesh should cover part of the view"
    assert iou >= 0.99, (name, az, el, iou)
    assert err[interior].max() <= 0.005, (name, az, el, err[interior].max())
    assert np.quantile(err[both], 0.995) <= 0.005, (name, az, el, np.quantile(err[both], 0.995))


@pytest.mark.parametrize("name", NAMES)
def test_matches_trimesh_ray_casting(name):
    _check_conformance(name, 30.0, 20.0)


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_matches_trimesh_ray_casting_more_views(name):
    for az, el in ((200.0, -35.0), (95.0, 60.0)):
        _check_conformance(name, az, el, size=128)


# ----------------------------------------------------------------------------- gradients
def _tetra(dtype=torch.float64):
    v = torch.tensor([[0.0, 0.9, 0.1], [-0.8, -0.5, 0.4], [0.85, -0.45, 0.3], [0.05, -0.2, -0.8]], dtype=dtype)
    f = torch.tensor([[0, 1, 2], [0, 3, 1], [0, 2, 3], [1, 3, 2]])
    return v, f


def _loss_fn(faces, size=24, az=20.0, el=15.0):
    r = MeshRenderer((size, size), background=(0.2, 0.3, 0.9))
    view = look_at(orbit([az], [el], DEFAULT_DISTANCE)).double()
    g = torch.Generator().manual_seed(3)
    weight = torch.rand(1, 3, size, size, generator=g, dtype=torch.float64)

    def loss(v, c):
        return (r.render(v, faces, c, view) * weight).sum()

    return loss


def test_gradients_match_finite_differences():
    v, f = _tetra()
    c = torch.tensor([[0.9, 0.1, 0.1], [0.1, 0.8, 0.2], [0.2, 0.3, 0.9], [0.9, 0.9, 0.2]], dtype=torch.float64)
    loss = _loss_fn(f)
    v1, c1 = v.clone().requires_grad_(True), c.clone().requires_grad_(True)
    loss(v1, c1).backward()
    eps = 1e-5
    num_v = torch.zeros_like(v)
    for i in range(v.numel()):
        d = torch.zeros_like(v).view(-1)
        d[i] = eps
        num_v.view(-1)[i] = (loss(v + d.view_as(v), c) - loss(v - d.view_as(v), c)) / (2 * eps)
    num_c = torch.zeros_like(c)
    for i in range(c.numel()):
        d = torch.zeros_like(c).view(-1)
        d[i] = eps
        num_c.view(-1)[i] = (loss(v, c + d.view_as(c)) - loss(v, c - d.view_as(c))) / (2 * eps)
    assert v1.grad.abs().max() > 1.0  # the outline and shading really move the picture
    torch.testing.assert_close(c1.grad, num_c, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(v1.grad, num_v, rtol=0.02, atol=0.02 * float(num_v.abs().max()))


def test_silhouette_gradient_moves_the_outline():
    """Growing a triangle on a white ground darkens the loss on its edge pixels: a gradient exists
    even where the colour is flat, and it points the way finite differences do."""
    v = torch.tensor([[-0.5, -0.4, 0.0], [0.5, -0.4, 0.0], [0.0, 0.5, 0.0]], dtype=torch.float64)
    f = torch.tensor([[0, 1, 2]])
    c = torch.zeros(3, 3, dtype=torch.float64)  # black, flat: only coverage changes the image
    r = MeshRenderer((32, 32), ambient=1.0, diffuse=0.0)
    view = look_at(orbit([0.0], [0.0], DEFAULT_DISTANCE)).double()
    scale = torch.ones((), dtype=torch.float64, requires_grad=True)
    darkness = lambda s: (1.0 - r.render(v * s, f, c, view)).sum()  # noqa: E731
    darkness(scale).backward()
    eps = 1e-4
    num = (
        darkness(torch.tensor(1.0 + eps, dtype=torch.float64)) - darkness(torch.tensor(1.0 - eps, dtype=torch.float64))
    ) / (2 * eps)
    assert float(scale.grad) > 0 and float(num) > 0
    assert abs(float(scale.grad) - float(num)) <= 0.05 * abs(float(num))
    # Coverage is close to the triangle's true area in pixels (box-filtered edges).
    with torch.no_grad():
        pix, _ = project(v, view, (32, 32))
    p = pix[0]
    area = 0.5 * abs(float((p[1, 0] - p[0, 0]) * (p[2, 1] - p[0, 1]) - (p[1, 1] - p[0, 1]) * (p[2, 0] - p[0, 0])))
    assert abs(float(darkness(torch.tensor(1.0, dtype=torch.float64))) / 3 - area) <= 0.03 * area


# ----------------------------------------------------------------------------- visibility and memory
def test_nearer_face_wins_whatever_the_order():
    near = [[-0.6, -0.6, 0.3], [0.6, -0.6, 0.3], [0.0, 0.6, 0.3]]
    far = [[-0.3, -0.9, -0.4], [0.9, 0.2, -0.4], [-0.5, 0.7, -0.4]]
    v = torch.tensor(near + far)
    c = torch.tensor([[1.0, 0, 0]] * 3 + [[0, 0, 1.0]] * 3)
    r = MeshRenderer((48, 48), ambient=1.0, diffuse=0.0, antialias=False)
    view = look_at(orbit([0.0], [0.0], DEFAULT_DISTANCE))
    one = r.render(v, torch.tensor([[0, 1, 2], [3, 4, 5]]), c, view)
    two = r.render(v, torch.tensor([[3, 4, 5], [0, 1, 2]]), c, view)
    assert torch.equal(one, two)
    centre = one[0, :, 24, 24]
    assert centre[0] > 0.99 and centre[2] < 0.01  # red (near) covers blue (far) in the overlap
    assert (one[0, 2] > 0.99).sum() > 20  # and blue shows where red is not
    # From behind, the far face is the near one.
    back = r.render(v, torch.tensor([[0, 1, 2], [3, 4, 5]]), c, look_at(orbit([180.0], [0.0], DEFAULT_DISTANCE)))
    assert back[0, 2, 24, 24] > 0.99


def test_backface_culling_and_two_sided_default():
    v = torch.tensor([[-0.5, -0.5, 0.0], [0.5, -0.5, 0.0], [0.0, 0.5, 0.0]])
    ccw, cw = torch.tensor([[0, 1, 2]]), torch.tensor([[0, 2, 1]])
    view = look_at(orbit([0.0], [0.0], DEFAULT_DISTANCE))
    pix, depth = project(v, view, (32, 32))
    assert rasterize(pix, depth, cw, (32, 32)).mask.sum() == rasterize(pix, depth, ccw, (32, 32)).mask.sum() > 50
    assert rasterize(pix, depth, ccw, (32, 32), cull_backfaces=True).mask.sum() > 50
    assert rasterize(pix, depth, cw, (32, 32), cull_backfaces=True).mask.sum() == 0


def _sphere(subdivisions: int):
    trimesh = pytest.importorskip("trimesh")
    m = trimesh.creation.icosphere(subdivisions=subdivisions)
    return torch.tensor(m.vertices, dtype=torch.float32), torch.tensor(m.faces, dtype=torch.int64)


def test_chunked_visibility_is_bounded_and_exact():
    v, f = _sphere(3)
    view = look_at(orbit([0.0, 120.0], [10.0, -20.0], DEFAULT_DISTANCE))
    pix, depth = project(v, view, (96, 96))
    whole = rasterize(pix, depth, f, (96, 96))
    small = rasterize(pix, depth, f, (96, 96), max_pairs=997)
    assert small.max_chunk <= 997 < whole.max_chunk
    assert torch.equal(whole.face, small.face) and torch.equal(whole.depth, small.depth)


def test_100k_faces_at_512px_stays_in_bounds():
    v, f = _sphere(7)  # 327,680 faces
    f = f[:100_000]
    view = look_at(orbit([0.0, 90.0], [0.0, 30.0], DEFAULT_DISTANCE))
    r = MeshRenderer((512, 512), max_pairs=1 << 18)
    img = r.render(v, f, torch.full_like(v, 0.5), view)
    assert r.last.max_chunk <= 1 << 18 and r.last.pairs > 1 << 18
    assert img.shape == (2, 3, 512, 512) and r.last.mask.float().mean() > 0.1


def test_views_rasterized_in_groups_give_the_same_answer(monkeypatch):
    import vecgen.backends.mesh.render as R

    v, f = _sphere(2)
    view = look_at(orbit([0.0, 50.0, 100.0, 150.0, 200.0], [0.0, 10.0, 20.0, -10.0, 40.0], DEFAULT_DISTANCE))
    pix, depth = project(v, view, (40, 40))
    whole = rasterize(pix, depth, f, (40, 40))
    monkeypatch.setattr(R, "MAX_FACE_ROWS", 2 * f.shape[0])  # two views at a time
    grouped = R.rasterize(pix, depth, f, (40, 40))
    assert torch.equal(whole.face, grouped.face) and torch.equal(whole.depth, grouped.depth)
    assert whole.pairs == grouped.pairs
