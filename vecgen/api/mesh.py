"""``mesh``: vertex colours and displacements of a mesh optimized so CLIP sees the prompt (Text2Mesh).

    >>> import vecgen
    >>> res = vecgen.mesh("horse.obj", "a wooden horse", steps=300, quiet=True)
    >>> res.save("horse.ply"); res.save("turntable.gif"); res.image  # the front view
    >>> res.turntable("strip.png", frames=8)                        # a PNG strip of views
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from vecgen.api._run import Common, common, run
from vecgen.api.result import Result
from vecgen.api.verb import Verb
from vecgen.errors import VecgenError
from vecgen.options import as_int, check_number, parse_colour, parse_size

#: What a mesh run's result saves: the mesh (with vertex colours), its front view, a turntable.
MESH_OUTPUTS = (".ply", ".obj", ".glb")
TURNTABLE_OUTPUTS = (".gif", ".png")
DEFAULT_MAX_FACES = 200_000


def check_max_faces(max_faces: Any) -> int | None:
    if max_faces is None or (isinstance(max_faces, str) and max_faces.lower() == "none"):
        return None
    return as_int("--max-faces", max_faces, minimum=1)


def turntable_frames(param, frames: int = 24, elevation: float | None = None, batch: int = 8) -> list:
    """``frames`` PIL views of a style field (or anything with ``render_views``) turning once around."""
    import torch

    from vecgen.io import tensor_to_pil

    frames = as_int("--frames", frames, minimum=1)
    el = param.elevation if elevation is None else float(elevation)
    az = torch.arange(frames, dtype=torch.float32) * (360.0 / frames) + getattr(param, "front_azimuth", 0.0)
    out = []
    with torch.no_grad():
        for s in range(0, frames, batch):
            a = az[s:s + batch]
            imgs = param.render_views(a, torch.full_like(a, el))
            out += [tensor_to_pil(img.unsqueeze(0)) for img in imgs]
    return out


def save_turntable(images: list, path: str | Path, metadata: dict | None = None, fps: float = 12.0) -> Path:
    """Animated GIF (``.gif``) or a horizontal PNG strip (``.png``) of ``images``, atomically."""
    import io

    from PIL import Image

    from vecgen.io import atomic_write, png_bytes

    p = Path(path)
    suffix = p.suffix.lower()
    if suffix == ".gif":
        buf = io.BytesIO()
        images[0].save(buf, format="GIF", save_all=True, append_images=images[1:], loop=0,
                       duration=int(round(1000 / fps)), disposal=2)
        atomic_write(p, buf.getvalue())
    elif suffix == ".png":
        w, h = images[0].size
        strip = Image.new("RGB", (w * len(images), h))
        for i, im in enumerate(images):
            strip.paste(im, (i * w, 0))
        atomic_write(p, png_bytes(strip, metadata or {}))
    else:
        raise VecgenError(f"{p}: a turntable is written as .gif or .png (a strip)")
    return p


def load_for_mesh(path: Any, max_faces: int | None, warn: Callable[[str], None] | None = None):
    """The mesh of ``path`` (checked; simplified above ``max_faces`` with a warning)."""
    from vecgen.backends.mesh.io import load_mesh

    data = load_mesh(path, max_faces)
    if data.simplified_from is not None and warn is not None:
        warn(f"{path}: {data.simplified_from} faces simplified to {len(data.faces)} (--max-faces {max_faces}); "
             "the output is a new mesh, not the input's vertices")
    return data


def _snapshot_views(folder: str | Path, every: int) -> Callable:
    """Every ``every`` steps, the fixed views side by side as ``NNNNN.png`` in ``folder``."""
    snap = Path(folder)
    snap.mkdir(parents=True, exist_ok=True)

    def snapshot(step: int, p, values) -> None:
        if step % every == 0:
            import torch

            from vecgen.io import save_png

            with torch.no_grad():
                views = p.render()
            save_png(torch.cat(list(views), -1).unsqueeze(0), snap / f"{step:05d}.png")

    return snapshot


def mesh(path: str | Path, prompt: str | None, *, views: int = 5, steps: int = 300, size: Any = 224,
         clip: str = "auto", cutouts: int = 2, augment: str = "auto", seed: int = 0, device: str | None = "auto",
         background: Any = "white", max_displacement: float = 0.1, sigma: float = 5.0, lr: float = 5e-4,
         width: int = 256, depth: int = 4, elevation: float = 15.0, front_azimuth: float = 0.0,
         max_faces: int | None = DEFAULT_MAX_FACES, image_prompt=None, snapshots: str | Path | None = None,
         every: int = 10, checkpoint: str | Path | None = None, resume: str | Path | None = None,
         quiet: bool = False, perceptors=None, warn: Callable[[str], None] | None = None,
         callbacks=None) -> Result:
    """Optimize a neural style field (vertex colour + displacement along the normal) on the mesh
    at ``path`` so CLIP sees ``prompt`` from every side; returns a :class:`Result`.

    ``views``: cameras per step (a front one plus random ones around; the first render,
    ``res.image``, is the front). ``cutouts``: augmented views of each camera's image
    (``augment``: ``auto``, ``crops`` or ``zoom``, as ``views`` in the 2-D verbs). ``size``:
    each camera's image. ``max_displacement``: bound as a fraction of the bounding box's
    longest side (0 = colours only). ``sigma``: Fourier feature scale (higher = finer
    detail). ``width``/``depth``: the MLP's trunk. ``elevation``/``front_azimuth``: the front
    camera (degrees; azimuth 0 looks from +z). ``max_faces``: meshes with more faces are
    simplified by vertex clustering first (None: no limit). The result saves ``.ply``,
    ``.obj``, ``.glb`` (input frame, input vertex order, vertex colours), ``.png`` (the
    front view) and ``.gif`` (a turntable); ``res.turntable(path, frames)`` writes a GIF
    or PNG strip. Other options are those of :func:`vecgen.draw`.
    """
    from vecgen.backends.perceptors.clip import FALLBACK_3D
    from vecgen.params.style_field import StyleField

    n_views = as_int("--views", views, minimum=1)
    if n_views > 64:
        raise VecgenError("--views must be <= 64")
    opts: Common = common({**locals(), "views": augment})
    wh = parse_size(size)
    bg = parse_colour(background)
    limit = check_max_faces(max_faces)
    check_number("--max-displacement", max_displacement, nonnegative=True, maximum=1.0)
    data = load_for_mesh(path, limit, warn)
    settings: dict[str, Any] = {"function": "mesh", "mesh": str(path), "prompt": opts.prompt, "cameras": n_views,
                                "steps": opts.steps, "size": list(wh), "clip": clip, "cutouts": opts.cutouts,
                                "augment": augment, "seed": opts.seed, "background": background,
                                "max_displacement": max_displacement, "sigma": sigma, "lr": lr, "width": width,
                                "depth": depth, "elevation": elevation, "front_azimuth": front_azimuth,
                                "max_faces": limit, "vertices": len(data.vertices), "faces": len(data.faces)}
    if opts.snapshots is not None:  # the shared snapshots write one image; a mesh renders several views
        opts.callbacks.insert(0, _snapshot_views(opts.snapshots, opts.every))
        opts.snapshots = None
    opts.load_perceptors(FALLBACK_3D)  # offline, auto is mini-vit-3d: it knows shaded 3-D solids
    param = StyleField(data.vertices, data.faces, size=wh, views=n_views, background=bg, sigma=sigma,
                       width=as_int("--width", width, minimum=1), depth=as_int("--depth", depth, minimum=1),
                       max_displacement=max_displacement, lr=lr, seed=opts.seed, device=opts.device,
                       elevation=check_number("--elevation", elevation), front_azimuth=check_number(
                           "--front-azimuth", front_azimuth))
    result = run(param, opts, settings)  # records the cutouts' kind, as resolved, as "views"

    def write_mesh(p: Path) -> None:
        param.export(p, result.metadata)

    def turntable(p: str | Path, frames: int = 24) -> Path:
        return save_turntable(turntable_frames(param, frames), p, result.metadata)

    for suffix in MESH_OUTPUTS:
        result.writers[suffix] = write_mesh
    result.writers[".gif"] = turntable
    result.extras.update(turntable=turntable, mesh_data=param.mesh)
    return result


VERB = Verb("mesh", mesh, "colour and displace a mesh to a prompt (Text2Mesh); writes PLY/OBJ/GLB",
            outputs=(*MESH_OUTPUTS, ".png", ".gif"), default_output="vecgen.ply", gallery=False)
