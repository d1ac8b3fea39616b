"""``vectorize``: a picture as an SVG of filled paths, grown layer by layer (LIVE) on the native rasterizer.

    >>> import vecgen
    >>> res = vecgen.vectorize("icon.png", paths=16, quiet=True)
    >>> res.save("icon.svg"); res.settings["psnr"]

Paths are added in stages (1, 2, 4, ... up to ``paths``), each placed on the
largest region the render still misses and coloured from it, then all are
optimized together against the pixel loss through the one engine loop; at
the end colours snap to 8 bits (or the palette), points to the written grid,
and paths that change nothing are pruned.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from vecgen.api._run import Common, common, run
from vecgen.api.result import Result
from vecgen.api.run_options import RunConfig
from vecgen.api.verb import Verb
from vecgen.config import OptionError, VerbConfig, like, option, verb_function
from vecgen.errors import VecgenError
from vecgen.options import LIMITS

#: Longest side the paths are optimized at (the SVG keeps the input's size).
WORK_SIDE = 512
#: Most colours ``--colors`` may ask for.
MAX_COLORS = 256
#: Default ``segments`` and ``decimals``: (flat picture, photo). A photo's regions have long, ragged
#: outlines: on astronaut at 128 paths 4 segments reach 22.7 dB, 8: 23.4, 16: 24.3, 24: 24.7 (resvg
#: render), and whole-pixel points lose 0.3 dB of it (0.1 at one decimal). Icons keep 4 and whole
#: pixels: their shapes are smooth and their files small.
SEGMENTS = (4, 24)
DECIMALS = (0, 1)


def parse_palette(spec: Any) -> list[tuple[float, float, float]]:
    """``"#ff0000,#00f"`` (or a list of such) -> RGB triples in ``[0, 1]``; one-line error otherwise."""
    items = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else [str(v) for v in spec])]
    out = []
    for s in items:
        m = re.fullmatch(r"#?([0-9a-fA-F]{6}|[0-9a-fA-F]{3})", s)
        if not m:
            raise VecgenError(f"bad --palette colour {s!r}: give #rrggbb or #rgb, separated by commas")
        h = m.group(1)
        if len(h) == 3:
            h = "".join(c * 2 for c in h)
        out.append(tuple(int(h[i : i + 2], 16) / 255 for i in (0, 2, 4)))
    if not out:
        raise VecgenError("--palette is empty: give #rrggbb colours separated by commas")
    return out  # type: ignore[return-value]


def _load_rgba(image: Any, side: int):
    """A picture (path, PIL image) -> (straight RGBA ``(1, 4, h, w)`` at the working size, input ``(W, H)``)."""
    import torch
    from PIL import Image

    from vecgen.io import open_image

    im = image if isinstance(image, Image.Image) else open_image(image, "image")
    size = im.size
    im = im.convert("RGBA")
    scale = min(1.0, side / max(size))
    if scale < 1.0:
        im = im.resize((max(1, round(size[0] * scale)), max(1, round(size[1] * scale))), Image.Resampling.LANCZOS)
    data = torch.frombuffer(bytearray(im.tobytes()), dtype=torch.uint8).view(im.height, im.width, 4)
    return data.permute(2, 0, 1).float().div(255).unsqueeze(0), size


def _init_paths(init: str | Path, work: tuple[int, int]) -> list:
    """The filled paths of an SVG, closed and scaled onto the working canvas."""
    import torch

    from vecgen.scene import Path as ScenePath
    from vecgen.svg import read_svg

    scene = read_svg(init)
    sx, sy = work[0] / scene.width, work[1] / scene.height
    out = []
    for p in scene.paths:
        if p.fill is None:
            continue
        pts = p.points.float() * torch.tensor([sx, sy])
        if not p.closed:  # close it: drop a repeated end point, or add a straight segment home
            if (pts[-1] - pts[0]).abs().max() < 1e-6 and len(pts) > 1:
                pts = pts[:-1]
            else:
                d = pts[0] - pts[-1]
                pts = torch.cat([pts, (pts[-1] + d / 3)[None], (pts[-1] + 2 * d / 3)[None]])
        out.append(ScenePath(pts, closed=True, fill=p.fill))
    if not out:
        raise VecgenError(f"{init}: SVG has no filled paths to start from")
    return out


def _one_palette(values: dict[str, Any]) -> None:
    if values.get("palette") is not None and values.get("colors") is not None:
        raise OptionError("colors", "give --palette or --colors, not both")
    if values.get("palette") is not None:
        try:
            parse_palette(values["palette"])
        except VecgenError as e:
            raise OptionError("palette", str(e)) from None


@dataclass(frozen=True)
class VectorizeConfig(VerbConfig):
    """Every option of :func:`vectorize` (see :mod:`vecgen.config`)."""

    cross_checks = (_one_palette,)

    image: Any = option(
        None,
        "the picture to trace (PNG, JPEG, WebP...; alpha kept)",
        "image",
        positional=True,
        required=True,
        section="main",
    )
    paths: int = option(
        16, "filled paths at most (unused ones are pruned)", "int", minimum=1, maximum=LIMITS["strokes"], section="main"
    )
    segments: int | None = option(
        None,
        "cubic segments per new path",
        "int",
        minimum=1,
        maximum=LIMITS["segments"],
        default_text=f"{SEGMENTS[0]}; {SEGMENTS[1]} for a photo",
    )
    stages: int | None = option(
        None,
        "growth stages: 1, 2, 4, ... paths",
        "int",
        minimum=1,
        maximum=LIMITS["strokes"],
        default_text="log2(paths) + 1",
    )
    steps: int | None = like(RunConfig, "steps", None, default_text="40 per stage + 200")
    palette: str | None = option(None, "fills only from these colours", "text", metavar="#HEX,...")
    colors: int | None = option(
        None, "fills only from N colours of the picture (k-means)", "int", minimum=1, maximum=MAX_COLORS, metavar="N"
    )
    init: str | Path | None = option(None, "refine the filled paths of this SVG first", "svg")
    decimals: int | None = option(
        None,
        "decimals of the written coordinates",
        "int",
        minimum=0,
        maximum=4,
        section="advanced",
        default_text=f"{DECIMALS[0]}; {DECIMALS[1]} for a photo",
    )
    work_size: int = option(
        WORK_SIDE,
        "longest side optimized at, in pixels (the SVG keeps the input's size)",
        "int",
        minimum=16,
        maximum=4096,
        section="advanced",
    )
    no_metadata: bool = option(
        False, "leave out the <metadata> block (settings, software): the smallest file", section="advanced"
    )
    seed: int = like(RunConfig, "seed")
    device: str | None = like(RunConfig, "device")
    snapshots: str | Path | None = like(RunConfig, "snapshots")
    every: int = like(RunConfig, "every")
    checkpoint: str | Path | None = like(RunConfig, "checkpoint")
    resume: str | Path | None = like(RunConfig, "resume")
    quiet: bool = like(RunConfig, "quiet")


@verb_function(VectorizeConfig, warn=None, callbacks=None)
def vectorize(cfg: VectorizeConfig, *, warn: Callable[[str], None] | None = None, callbacks=None) -> Result:
    """Trace ``image`` (a PNG/JPEG/WebP path or a PIL image) into ``paths`` filled paths; returns a :class:`Result`.

    ``segments``: cubics per new path (default 4, 24 for a continuous-tone
    picture, a photo); ``stages``: growth stages (default
    ``ceil(log2(paths)) + 1``: 1, 2, 4, ... paths); ``steps``: optimizer steps
    in all (default 40 per stage + 200); ``palette`` (``"#hex,..."``) or
    ``colors`` (k-means on the picture) fixes the fills to a palette;
    ``init``: an SVG whose filled paths are refined first; ``decimals``:
    coordinate decimals written (default 0, 1 for a photo); ``work_size``: longest side optimized at.
    The result's settings carry ``psnr`` (dB, at the working size, on white),
    ``paths_written`` (after pruning) and ``bytes`` (of the SVG). A picture with
    alpha keeps its transparent background (no background rectangle; ``image``
    is RGBA). ``no_metadata`` leaves the ``<metadata>`` block out of the SVG.
    Every option: :class:`VectorizeConfig`.
    """
    import torch

    from vecgen.losses.pixel import PixelTerm
    from vecgen.params.vector_fit import FilledPaths, growth_schedule

    image, paths, init, colors, work_size = cfg.image, int(cfg.paths), cfg.init, cfg.colors, int(cfg.work_size)
    pal = parse_palette(cfg.palette) if cfg.palette is not None else None
    stages = int(cfg.stages) if cfg.stages is not None else math.ceil(math.log2(paths)) + 1
    steps = int(cfg.steps) if cfg.steps is not None else 40 * stages + 200
    opts: Common = common({**cfg.asdict(), "steps": steps, "warn": warn, "callbacks": callbacks}, uses_prompt=False)
    if init is not None and not Path(init).exists():
        raise VecgenError(f"--init SVG not found: {init}")
    target, in_size = _load_rgba(image, work_size)
    photo = 0  # defaults for flat art unless the picture is continuous-tone
    if cfg.segments is None or cfg.decimals is None:
        from vecgen.params.vector_regions import continuous_tone

        photo = int(continuous_tone(target, seed=opts.seed))
    segments = int(cfg.segments) if cfg.segments is not None else SEGMENTS[photo]
    decimals = int(cfg.decimals) if cfg.decimals is not None else DECIMALS[photo]
    work = (target.shape[3], target.shape[2])
    init_paths = _init_paths(init, work) if init is not None else []
    if colors is not None:
        from vecgen.params.vector_regions import kmeans_colours

        a = target[0, 3].flatten() > 0.5
        px = target[0, :3].flatten(1).t()[a if bool(a.any()) else slice(None)]
        centres, _ = kmeans_colours(px, int(colors), seed=opts.seed)
        pal = [(float(r), float(g), float(b)) for r, g, b in ((centres * 255).round() / 255).tolist()]
    total = max(paths, len(init_paths))
    schedule = growth_schedule(total, stages, steps, start=len(init_paths))
    settings = {
        "function": "vectorize",
        "image": str(image) if not hasattr(image, "size") else "<image>",
        "paths": paths,
        "segments": segments,
        "stages": stages,
        "steps": opts.steps,
        "palette": ",".join("#" + "".join(f"{round(v * 255):02x}" for v in c) for c in pal) if pal else None,
        "colors": colors,
        "init": str(init) if init else None,
        "decimals": decimals,
        "work_size": work_size,
        "seed": opts.seed,
        "metadata": not cfg.no_metadata,
    }
    param = FilledPaths(
        target,
        paths=total,
        segments=segments,
        schedule=schedule,
        out_size=in_size,
        palette=torch.tensor(pal) if pal else None,
        decimals=decimals,
        init_paths=init_paths,
        seed=opts.seed,
        device=opts.device,
    )
    opts.callbacks.insert(0, lambda step, p, values: p.grow(step))  # the growth stages, after every step
    result = run(param, opts, settings, terms=[PixelTerm(param.reference)], headline=("image",))
    _finish(result, param, not cfg.no_metadata)
    return result


def _finish(result: Result, param, metadata: bool = True) -> None:
    """PSNR, paths and bytes into the settings (and the SVG's metadata); an RGBA image for a transparent input."""
    import torch

    from vecgen.params.raster_base import psnr

    with torch.no_grad():
        rgba = param.render_rgba()[0]
    t = param.target[0]
    over_white = rgba[:3] + (1 - rgba[3:4])
    ref_white = t[:3] * t[3:4] + (1 - t[3:4])
    result.settings["psnr"] = round(psnr(over_white, ref_white), 2)
    result.settings["paths_written"] = param.active
    for _ in range(4):  # the byte count is part of the file it counts: settle it
        result.svg = param.svg(result.metadata if metadata else None)
        n = len(result.svg.encode("utf-8"))
        if result.settings.get("bytes") == n:
            break
        result.settings["bytes"] = n
    if param.transparent:
        from PIL import Image

        straight = torch.where(rgba[3:4] > 0, rgba[:3] / rgba[3:4].clamp(min=1e-6), rgba[:3]).clamp(0, 1)
        arr = (torch.cat([straight, rgba[3:4]]) * 255).round().byte().permute(1, 2, 0).contiguous().numpy()
        result.image = Image.fromarray(arr, "RGBA")


VERB = Verb(
    "vectorize",
    vectorize,
    "trace a picture into filled SVG paths, layer by layer (LIVE)",
    outputs=(".svg", ".png"),
    default_output="vectorized.svg",
    gallery=False,
    config=VectorizeConfig,
    description=(
        "Trace a picture (PNG, JPEG, WebP; alpha kept) into an SVG of filled paths, grown layer "
        "by layer and fitted to the picture (LIVE), then pruned and rounded."
    ),
)
