"""``mesh``: vertex colours and displacements of a mesh optimized so CLIP sees the prompt (Text2Mesh).

>>> import vecgen
>>> res = vecgen.mesh("horse.obj", "a wooden horse", steps=300, quiet=True)
>>> res.save("horse.ply"); res.save("turntable.gif"); res.image  # the front view
>>> res.turntable("strip.png", frames=8)                        # a PNG strip of views
>>> vecgen.mesh("horse.obj", "a wooden horse", turntable="spin.gif").save_all("horse.ply")  # both files
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from vecgen.api._run import Common, common, run, view_style
from vecgen.api.result import Result
from vecgen.api.run_options import VIEW_CHOICES, RunConfig
from vecgen.api.verb import Verb
from vecgen.config import TURNTABLE_FRAMES, OptionError, like, option, verb_function
from vecgen.errors import VecgenError
from vecgen.io import atomic_write
from vecgen.options import as_int, parse_colour, parse_size

#: What a mesh run's result saves: the mesh (with vertex colours), its front view, a turntable.
MESH_OUTPUTS = (".ply", ".obj", ".glb")
TURNTABLE_OUTPUTS = (".gif", ".png")
DEFAULT_MAX_FACES = 200_000
#: Limits (README, Limits): far above any useful value, low enough that a typo cannot ask for terabytes.
MAX_CAMERAS = 64
MAX_WIDTH = 4096
MAX_DEPTH = 32
MAX_FRAMES = 720
MAX_FACES = 5_000_000
#: The style field's MLP, as :class:`vecgen.params.style_field.StyleMLP` builds it: Fourier features, head layers.
FEATURES = 256
HEAD_DEPTH = 2
#: Memory, forward + backward, with about 2x margin over what was measured (CPU, float32): per vertex per MLP
#: unit per layer (4.3 B at 41k vertices x 512), per rendered pixel of a camera (~350 B at 512 and 1024 px),
#: per (camera, face) row of the visibility pass (~100 B; it sets up at most 2**21 rows at once).
MLP_BYTES_PER_UNIT = 8
RENDER_BYTES_PER_PIXEL = 700
RENDER_BYTES_PER_FACE = 200


def turntable_frames(param, frames: int = TURNTABLE_FRAMES, elevation: float | None = None, batch: int = 8) -> list:
    """``frames`` PIL views of a style field (or anything with ``render_views``) turning once around."""
    import torch

    from vecgen.io import tensor_to_pil

    frames = as_int("--frames", frames, minimum=1)
    if frames > MAX_FRAMES:
        raise OptionError("frames", f"--frames {frames} is above the limit of {MAX_FRAMES} (README, Limits)")
    el = param.elevation if elevation is None else float(elevation)
    az = torch.arange(frames, dtype=torch.float32) * (360.0 / frames) + getattr(param, "front_azimuth", 0.0)
    out = []
    with torch.no_grad():
        for s in range(0, frames, batch):
            a = az[s : s + batch]
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
        images[0].save(
            buf,
            format="GIF",
            save_all=True,
            append_images=images[1:],
            loop=0,
            duration=int(round(1000 / fps)),
            disposal=2,
        )
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
        warn(
            f"{path}: {data.simplified_from} faces simplified to {len(data.faces)} (--max-faces {max_faces}); "
            "the output is a new mesh, not the input's vertices"
        )
    return data


def _snapshot_views(folder: str | Path, every: int) -> Callable:
    """Every ``every`` steps, the fixed views side by side as ``NNNNN.png`` in ``folder``."""
    snap = Path(folder)

    def snapshot(step: int, p, values) -> None:
        if step % every == 0:
            import torch

            from vecgen.io import save_png

            with torch.no_grad():
                views = p.render()
            save_png(torch.cat(list(views), -1).unsqueeze(0), snap / f"{step:05d}.png", mkdir=True)

    return snapshot


def _turntable_output(values: dict[str, Any]) -> None:
    turntable = values.get("turntable")
    if turntable is not None and Path(str(turntable)).suffix.lower() not in TURNTABLE_OUTPUTS:
        raise OptionError("turntable", f"{turntable}: a turntable is written as .gif (animated) or .png (a strip)")


def same_file(a: str | Path, b: str | Path) -> bool:
    """Whether two paths name one file (an existing file by identity, else by resolved path)."""
    pa, pb = Path(a), Path(b)
    try:
        if pa.exists() and pb.exists():
            return pa.samefile(pb)
    except OSError:
        pass
    return pa.resolve() == pb.resolve()


def mesh_files(output: str | Path, options: dict[str, Any]) -> list[str]:
    """Every file a mesh run writes for ``output``: the turntable (``turntable=``), then the output.

    Two outputs on one path are refused, and so is ``frames`` where no turntable is written.
    """
    turntable = options.get("turntable")
    frames = options.get("frames")
    if turntable is None:
        if frames is not None and frames != TURNTABLE_FRAMES and Path(str(output)).suffix.lower() != ".gif":
            raise OptionError("frames", "{label} applies only with --turntable (or a .gif output)")
        return [str(output)]
    _turntable_output(options)
    if same_file(turntable, output):
        raise OptionError(
            "turntable",
            f"--turntable {turntable} is also the output (-o): two outputs of one run "
            "on one path; give each its own file",
        )
    return [str(turntable), str(output)]


def check_mesh_memory(
    opts: Common,
    vertices: int,
    faces: int,
    size: tuple[int, int],
    cameras: int,
    width: int,
    depth: int,
    frames: int | None = None,
    silhouette: bool = False,
) -> None:
    """Refuse, before the style field is built, a run that cannot fit in the free memory.

    Estimate: the MLP's weights with their gradients and Adam's two moments;
    its activations over every vertex (forward + backward, trunk and heads);
    the renders of ``cameras`` views (:data:`RENDER_BYTES_PER_PIXEL` per pixel
    with gradients); each camera's ``cutouts`` views through every perceptor
    (:data:`~vecgen.options.BYTES_PER_VIEW_PIXEL` per input pixel); a turntable's
    ``frames`` pictures; ``silhouette``: the silhouette term's second render of every camera.
    Perceptors not loaded yet do not count (checked again once they are).
    """
    from vecgen.options import BYTES_PER_VIEW_PIXEL, available_memory

    layers = depth + 2 * HEAD_DEPTH
    weights = (FEATURES + 3) * width + (layers - 1) * width * width
    mlp = 4 * 4 * weights + MLP_BYTES_PER_UNIT * vertices * width * layers
    pixels = size[0] * size[1]
    rows = max(faces, min(cameras * faces, 2**21))
    render = (2 if silhouette else 1) * RENDER_BYTES_PER_PIXEL * cameras * pixels + RENDER_BYTES_PER_FACE * rows
    inputs = [p.input_size for p, _ in opts.perceptors] if opts.perceptors else []
    views = cameras * max(1, opts.cutouts) * BYTES_PER_VIEW_PIXEL * sum(s * s for s in inputs)
    turntable = 6 * pixels * frames if frames else 0
    need = mlp + render + views + turntable
    free = available_memory(opts.device)
    if free is not None and need > free:
        raise VecgenError(
            f"this mesh run needs about {need / 2**30:.1f} GiB ({vertices:,} vertices, MLP "
            f"{width}x{depth}, {cameras} camera(s) of {size[0]}x{size[1]} px with {opts.cutouts} "
            f"cutouts each), but {free / 2**30:.1f} GiB is free on {opts.device}; lower --size, "
            "--views, --cutouts or --width (README, Limits)"
        )


@dataclass(frozen=True)
class MeshConfig(RunConfig):
    """Every option of :func:`mesh` (see :mod:`vecgen.config`)."""

    cross_checks = (_turntable_output,)

    path: str | Path = option(
        None,
        "input mesh: .obj .ply .off .stl .glb .gltf",
        "mesh",
        positional=True,
        required=True,
        metavar="MESH",
        section="main",
    )
    prompt: str | None = option(None, 'e.g. "a horse made of wood"', positional=True, required=True, section="main")
    views: Any = like(  # an int here: the number of cameras (RunConfig's views kind is --augment)
        RunConfig,
        "views",
        5,
        kind="int",
        choices=(),
        minimum=1,
        maximum=MAX_CAMERAS,
        metavar="N",
        help="cameras per step: the front plus random ones around",
    )
    steps: int = like(RunConfig, "steps", 500)  # leopard: ranks 8, 74, 3 at 300; 1, 181, 1 at 500 (docs/mesh.md)
    size: Any = like(RunConfig, "size", 224, help="W or WxH of each camera's image (max 4096 per side)")
    cutouts: int = like(RunConfig, "cutouts", 2, help="augmented views of each camera's image")
    augment: str = option(
        "auto",
        "kind of augmented views of each camera image (auto: zoom for the mini models, lowres for classifiers)",
        "choice",
        choices=VIEW_CHOICES,
        section="advanced",
    )
    background: Any = option("white", "white, black, gray or #rrggbb", "colour")
    max_displacement: float = option(
        0.1,
        "displacement bound along the normals, as a fraction of the bounding box (0 = colours only)",
        "float",
        minimum=0.0,
        maximum=1.0,
    )
    detail_radius: float = option(
        0.1,
        "displacement is detail: minus its own smoothing over this radius (unit-sphere units; 0 = off), "
        "so no part swells into a lump",
        "float",
        minimum=0.0,
        maximum=2.0,
    )
    keep_silhouette: float = option(
        5.0,
        "weight of the silhouette-keeping term: each camera's outline against the input's (0 = off)",
        "float",
        minimum=0.0,
        maximum=1000.0,
    )
    sigma: float = option(5.0, "Fourier feature scale, higher = finer detail", "float", above=0.0, maximum=1000.0)
    lr: float = option(5e-4, "learning rate", "float", above=0.0)
    displacement_lr: float | None = option(
        None, "learning rate of the displacement head (default: --lr)", "float", above=0.0, section="advanced"
    )
    class_loss: str = option(
        "logprob",
        "loss of an ImageNet classifier perceptor: embedding (the cosine of its --clip embedding) or "
        "logprob (-log p of the class: strong where p is still near 0)",
        "choice",
        choices=("embedding", "logprob"),
    )
    train_background: str = option(
        "plain",
        "background while training: plain (--background) or random (a random plain colour each step)",
        "choice",
        choices=("plain", "random"),
        section="advanced",
    )
    width: int = option(256, "MLP width", "int", minimum=1, maximum=MAX_WIDTH)
    depth: int = option(4, "MLP trunk layers", "int", minimum=1, maximum=MAX_DEPTH)
    elevation: float = option(15.0, "front camera elevation, degrees", "float", minimum=-90.0, maximum=90.0)
    front_azimuth: float = option(
        0.0, "azimuth of the front camera, degrees (0: looking from +z)", "float", minimum=-360.0, maximum=360.0
    )
    max_faces: int | None = option(
        DEFAULT_MAX_FACES,
        "simplify larger meshes to this many faces by vertex clustering first; the output is then a new mesh",
        "int",
        minimum=1,
        maximum=MAX_FACES,
    )
    turntable: str | Path | None = option(
        None, "also write a turntable: .gif (animated) or .png (a strip)", "output", metavar="FILE"
    )
    frames: int = option(
        TURNTABLE_FRAMES, "turntable frames (--turntable, or a .gif output)", "int", minimum=1, maximum=MAX_FRAMES
    )


def _terms(opts: Common, class_loss: str) -> list:
    """The CLIP terms, a classifier's swapped for its :class:`~vecgen.losses.classes.ClassTerm` with
    ``class_loss="logprob"`` (text prompts only: image prompts keep the cosine)."""
    from vecgen.api._run import clip_terms
    from vecgen.backends.perceptors.classifier import ClassifierPerceptor
    from vecgen.losses import ClipTerm
    from vecgen.losses.classes import ClassTerm

    terms = clip_terms(opts)
    if class_loss != "logprob":
        return terms
    out: list = []
    for term in terms:
        if isinstance(term, ClipTerm) and isinstance(term.perceptor, ClassifierPerceptor) and term.prompts:
            out.append(ClassTerm(term.perceptor, term.prompts, weight=term.weight))
            if term.images:
                out.append(ClipTerm(term.perceptor, [], term.images, weight=term.weight))
        else:
            out.append(term)
    return out


@verb_function(MeshConfig, perceptors=None, warn=None, callbacks=None)
def mesh(cfg: MeshConfig, *, perceptors=None, warn: Callable[[str], None] | None = None, callbacks=None) -> Result:
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
    front view) and ``.gif`` (a turntable of ``frames`` views); ``turntable``: a ``.gif``
    or ``.png`` strip written beside the output by ``res.save_all(path)``;
    ``res.turntable(path, frames)`` writes one any time. Every option: :class:`MeshConfig`.
    """
    from vecgen.backends.perceptors.clip import FALLBACK_3D
    from vecgen.params.style_field import SilhouetteTerm, StyleField

    n_views, augment, clip, background = int(cfg.views), cfg.augment, cfg.clip, cfg.background
    max_displacement, sigma, lr, width, depth = cfg.max_displacement, cfg.sigma, cfg.lr, cfg.width, cfg.depth
    elevation, front_azimuth, frames = cfg.elevation, cfg.front_azimuth, int(cfg.frames)
    opts: Common = common({**cfg.run_values(perceptors=perceptors, warn=warn, callbacks=callbacks), "views": augment})
    wh = parse_size(cfg.size)
    bg = parse_colour(background)
    limit = None if cfg.max_faces is None else int(cfg.max_faces)
    data = load_for_mesh(cfg.path, limit, warn)
    shown = (
        len(data.vertices),
        len(data.faces),
        wh,
        n_views,
        int(width),
        int(depth),
        frames if cfg.turntable is not None else None,
    )
    check_mesh_memory(
        opts, *shown, silhouette=cfg.keep_silhouette > 0
    )  # before the models load (~8 s for real CLIP), without their views
    settings: dict[str, Any] = {
        "function": "mesh",
        "mesh": str(cfg.path),
        "prompt": opts.prompt,
        "cameras": n_views,
        "steps": opts.steps,
        "size": list(wh),
        "clip": clip,
        "cutouts": opts.cutouts,
        "augment": augment,
        "seed": opts.seed,
        "background": background,
        "max_displacement": max_displacement,
        "sigma": sigma,
        "lr": lr,
        "detail_radius": cfg.detail_radius,
        "displacement_lr": cfg.displacement_lr,
        "train_background": cfg.train_background,
        "class_loss": cfg.class_loss,
        "keep_silhouette": cfg.keep_silhouette,
        "width": width,
        "depth": depth,
        "elevation": elevation,
        "front_azimuth": front_azimuth,
        "max_faces": limit,
        "vertices": len(data.vertices),
        "faces": len(data.faces),
    }
    if opts.snapshots is not None:  # the shared snapshots write one image; a mesh renders several views
        opts.callbacks.insert(0, _snapshot_views(opts.snapshots, opts.every))
        opts.snapshots = None
    loaded = opts.load_perceptors(FALLBACK_3D)  # offline, auto is mini-vit-3d: it knows shaded 3-D solids
    opts.views = view_style(loaded, opts.views, thumbnails=True)  # the whole object read at a glance, as draw
    check_mesh_memory(opts, *shown, silhouette=cfg.keep_silhouette > 0)
    param = StyleField(
        data.vertices,
        data.faces,
        size=wh,
        views=n_views,
        background=bg,
        sigma=sigma,
        width=int(width),
        depth=int(depth),
        max_displacement=max_displacement,
        lr=lr,
        seed=opts.seed,
        device=opts.device,
        elevation=float(elevation),
        front_azimuth=float(front_azimuth),
        detail_radius=float(cfg.detail_radius),
        displacement_lr=None if cfg.displacement_lr is None else float(cfg.displacement_lr),
        background_augment=cfg.train_background == "random",
        keep_silhouette=float(cfg.keep_silhouette),
    )
    terms = _terms(opts, cfg.class_loss) + ([SilhouetteTerm(param)] if param.keep_silhouette > 0 else [])
    result = run(param, opts, settings, terms=terms)  # records the cutouts' kind, as resolved, as "views"
    iou, ink = param.silhouette_iou()  # what the run did to the shape, from the front
    settings.update(front_silhouette_iou=round(iou, 4), front_pixels_change=round(ink, 4))

    def write_mesh(p: Path) -> None:
        param.export(p, result.metadata)

    def turntable(p: str | Path, frames: int = frames) -> Path:
        return save_turntable(turntable_frames(param, frames), p, result.metadata)

    for suffix in MESH_OUTPUTS:
        result.writers[suffix] = write_mesh
    result.writers[".gif"] = turntable
    if cfg.turntable is not None:
        table = Path(cfg.turntable)

        def front_or_strip(p: Path) -> None:  # a .png is the front view, unless it is the turntable's strip
            if Path(p) == table:
                turntable(p)
            else:
                atomic_write(p, result.png_bytes())

        def companions(out: Path) -> list[Path]:
            mesh_files(out, {"turntable": table})  # refuses the turntable's own path as the output
            return [table]

        result.writers[".png"] = front_or_strip
        result.companions = companions
    result.extras.update(turntable=turntable, mesh_data=param.mesh)
    return result


VERB = Verb(
    "mesh",
    mesh,
    "colour and displace a mesh to a prompt (Text2Mesh); writes PLY/OBJ/GLB",
    outputs=(*MESH_OUTPUTS, ".png", ".gif"),
    default_output="vecgen.ply",
    gallery=False,
    config=MeshConfig,
    files=mesh_files,
    description="Colour and displace a mesh (OBJ, PLY, OFF, STL, GLB) so CLIP sees the prompt from every "
    "side (Text2Mesh: a neural style field, rendered by vecgen's own triangle renderer). Writes "
    "the mesh in its own frame and vertex order with vertex colours (.ply, .obj, .glb), or its "
    "front view (.png); --turntable also writes a turntable (.gif, or a .png strip).",
)
