"""``render_svg``: an SVG file through vecgen's own rasterizer (what the optimizer saw); ``render_mesh``:
a mesh file through vecgen's own triangle renderer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vecgen.errors import VecgenError
from vecgen.options import parse_size

#: Most pixels one ``render`` of a mesh may draw, all frames together: a 720-frame turntable at 1024x1024
#: (minutes on one core); a typo such as ``--frames 1000000`` is refused before the mesh loads.
MAX_RENDER_PIXELS = 720 * 1024 * 1024


def render_svg(path: str | Path, size: Any = None, rasterizer: str = "native"):
    """Rasterize an SVG file with vecgen's own rasterizer -> PIL RGB (on its background, or white)."""
    import torch

    from vecgen.backends.raster import composite, get_rasterizer
    from vecgen.io import tensor_to_pil
    from vecgen.svg import read_svg

    scene = read_svg(path)
    wh = parse_size(size) if size is not None else parse_size((scene.width, scene.height))
    with torch.no_grad():
        rgba = get_rasterizer(rasterizer).render(scene, wh)
        bg = scene.background if scene.background is not None else torch.ones(3)
        return tensor_to_pil(composite(rgba, bg))


def check_render_size(w: int, h: int, frames: int) -> None:
    """Refuse, before the mesh loads, a render of ``frames`` pictures of ``w`` x ``h`` px that is above the
    frame limit, draws more than :data:`MAX_RENDER_PIXELS`, or cannot fit in the free memory (the pictures
    kept for the GIF, and a batch of 8 renders)."""
    from vecgen.api.mesh import MAX_FRAMES, RENDER_BYTES_PER_PIXEL
    from vecgen.options import available_memory

    if frames > MAX_FRAMES:
        raise VecgenError(f"--frames {frames} is above the limit of {MAX_FRAMES} (docs: Limits)")
    pixels = w * h
    if pixels * frames > MAX_RENDER_PIXELS:
        raise VecgenError(
            f"{frames} frame(s) of {w}x{h} px is {pixels * frames / 1e6:,.0f} megapixels to draw, above the limit "
            f"of {MAX_RENDER_PIXELS / 1e6:,.0f} (a 720-frame turntable at 1024x1024); lower --size or --frames"
        )
    need = 6 * pixels * frames + RENDER_BYTES_PER_PIXEL * min(frames, 8) * pixels
    free = available_memory()
    if free is not None and need > free:
        raise VecgenError(
            f"{frames} frame(s) of {w}x{h} px need about {need / 2**30:.1f} GiB, but {free / 2**30:.1f} GiB "
            "is free; lower --size or --frames"
        )


def render_mesh(
    path: str | Path,
    size: Any = 512,
    azimuth: float = 0.0,
    elevation: float = 15.0,
    background: Any = "white",
    max_faces: int | None = None,
    frames: int | None = None,
):
    """Draw a mesh file (OBJ, PLY, OFF, STL, GLB) with vecgen's own triangle renderer -> PIL RGB.

    The mesh is normalised into the unit sphere and seen from ``azimuth``/``elevation``
    (degrees; azimuth 0 looks from +z), lit from the camera; vertex colours are used
    when the file has them, else light gray. ``frames``: a turntable of that many views
    (a list of PIL images, starting at ``azimuth``) instead of one picture.
    """
    import torch

    from vecgen.api.mesh import MAX_FACES
    from vecgen.backends.mesh import look_at, normalize_vertices, orbit
    from vecgen.backends.mesh.io import load_mesh
    from vecgen.backends.mesh.render import MeshRenderer
    from vecgen.io import tensor_to_pil
    from vecgen.options import as_int, check_number, parse_colour

    az0, el = check_number("--azimuth", azimuth), check_number("--elevation", elevation)
    if not (-360 <= az0 <= 360 and -90 <= el <= 90):  # the bounds of mesh's --front-azimuth and --elevation
        which = (
            ("--azimuth", azimuth, "-360 and 360")
            if not -360 <= az0 <= 360
            else ("--elevation", elevation, "-90 and 90")
        )
        raise VecgenError(f"{which[0]} must be between {which[2]} degrees, got {which[1]!r}")
    w, h = parse_size(size)
    n = 1 if frames is None else as_int("--frames", frames, minimum=1)
    check_render_size(w, h, n)
    data = load_mesh(
        path, None if max_faces is None else as_int("--max-faces", max_faces, minimum=1, maximum=MAX_FACES)
    )
    v, _, _ = normalize_vertices(data.vertices)
    f = torch.as_tensor(data.faces)
    col = torch.full_like(v, 0.8) if data.colors is None else torch.as_tensor(data.colors, dtype=torch.float32)
    r = MeshRenderer((h, w), background=parse_colour(background))
    az = torch.arange(n, dtype=torch.float32) * (360.0 / n) + az0
    out = []
    with torch.no_grad():
        for s in range(0, n, 8):
            a = az[s : s + 8]
            out += [
                tensor_to_pil(img.unsqueeze(0))
                for img in r.render(v, f, col, look_at(orbit(a, torch.full_like(a, el))))
            ]
    return out[0] if frames is None else out
