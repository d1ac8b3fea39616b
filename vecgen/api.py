"""The Python API. The CLI is a thin layer over these functions.

    >>> import vecgen
    >>> res = vecgen.draw("a red circle", steps=50, clip="mini-vit", quiet=True)
    >>> res.save("circle.svg"); res.image  # PIL image of what CLIP saw
"""
from __future__ import annotations

import io
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from PIL import Image

from vecgen import __version__
from vecgen.augment import VIEWS, make_views
from vecgen.engine import RunState, atomic_write, load_checkpoint, optimize
from vecgen.errors import VecgenError
from vecgen.objective import ClipTerm, ImageTarget, Objective
from vecgen.prompts import parse_prompts

MAX_SIDE = 4096
MAX_PIXELS = 4096 * 4096

_COLOURS = {"white": (1.0, 1.0, 1.0), "black": (0.0, 0.0, 0.0), "gray": (0.5, 0.5, 0.5), "grey": (0.5, 0.5, 0.5)}


# ----------------------------------------------------------------------------- option parsing
def parse_size(size: Any) -> tuple[int, int]:
    """``224``, ``"224"``, ``"320x192"``, ``(320, 192)`` -> ``(W, H)``; refuses <= 0 or > MAX_SIDE."""
    if isinstance(size, (tuple, list)) and len(size) == 2:
        w, h = size
    elif isinstance(size, int):
        w = h = size
    else:
        m = re.fullmatch(r"\s*(-?\d+)\s*(?:[xX]\s*(-?\d+))?\s*", str(size))
        if not m:
            raise VecgenError(f"bad size {size!r}: use W or WxH, e.g. 224 or 320x192")
        w = int(m.group(1))
        h = int(m.group(2)) if m.group(2) else w
    w, h = int(w), int(h)
    if w <= 0 or h <= 0:
        raise VecgenError(f"size must be positive, got {w}x{h}")
    if w > MAX_SIDE or h > MAX_SIDE or w * h > MAX_PIXELS:
        raise VecgenError(f"size {w}x{h} is above the limit of {MAX_SIDE} px per side")
    return w, h


def parse_width(width: Any) -> tuple[float, float]:
    if isinstance(width, (tuple, list)):
        vals = [float(x) for x in width]
    else:
        try:
            vals = [float(x) for x in str(width).split(",")]
        except ValueError:
            raise VecgenError(f"bad --width {width!r}: use MIN,MAX e.g. 1,8") from None
    if len(vals) == 1:
        vals = [vals[0], vals[0]]
    if len(vals) != 2 or vals[0] < 0 or vals[1] < vals[0]:
        raise VecgenError(f"bad --width {width!r}: use MIN,MAX with 0 <= MIN <= MAX")
    return vals[0], vals[1]


def parse_colour(value: Any) -> tuple[float, float, float]:
    if isinstance(value, (tuple, list)) and len(value) == 3:
        return tuple(float(v) for v in value)  # type: ignore[return-value]
    v = str(value).strip().lower()
    if v in _COLOURS:
        return _COLOURS[v]
    if re.fullmatch(r"#?[0-9a-f]{6}", v):
        v = v.lstrip("#")
        return tuple(int(v[i:i + 2], 16) / 255 for i in (0, 2, 4))  # type: ignore[return-value]
    raise VecgenError(f"bad colour {value!r}: use white, black, gray or #rrggbb")


def parse_clip(spec: str) -> list[tuple[str, float]]:
    """``"ViT-B-32:1,RN50@openai:0.5"`` -> ``[("ViT-B-32", 1.0), ("RN50@openai", 0.5)]``."""
    out = []
    for part in str(spec).split(","):
        part = part.strip()
        if not part:
            continue
        name, weight = part, 1.0
        m = re.fullmatch(r"(.+?):([-+]?(?:\d+\.?\d*|\.\d+))", part)
        if m:
            name, weight = m.group(1), float(m.group(2))
        out.append((name, weight))
    if not out:
        raise VecgenError("--clip needs at least one model, e.g. --clip ViT-B-32 or --clip auto")
    return out


def resolve_device(device: str | None) -> torch.device:
    d = (device or "auto").lower()
    if d == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(d)
    except RuntimeError:
        raise VecgenError(f"unknown device {device!r} (use auto, cpu, cuda, cuda:N or mps)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise VecgenError("--device cuda requested but no CUDA GPU is available")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise VecgenError("--device mps requested but MPS is not available")
    return dev


def check_writable(path: str | Path | None) -> None:
    """Fail before a long run if ``path`` cannot be written."""
    if path is None:
        return
    p = Path(path)
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise VecgenError(f"cannot write {p}: folder {parent} does not exist")
    if p.is_dir():
        raise VecgenError(f"cannot write {p}: it is a folder")
    import os

    if not os.access(parent, os.W_OK) or (p.exists() and not os.access(p, os.W_OK)):
        raise VecgenError(f"cannot write {p}: permission denied")


# ----------------------------------------------------------------------------- perceptors
def load_perceptors(clip: str, device: torch.device, warn: Callable[[str], None] | None = None):
    """Load every model of a ``--clip`` spec -> list of ``(perceptor, weight)``."""
    from vecgen.backends.perceptors import load_perceptor, resolve_auto

    out = []
    for name, weight in parse_clip(clip):
        if name == "auto":
            name = resolve_auto(warn)
        out.append((load_perceptor(name, device), weight))
    return out


def load_image(path: str | Path, size: tuple[int, int] | None = None) -> torch.Tensor:
    """Image file -> ``(1, 3, H, W)`` in ``[0, 1]``; one-line error if unreadable."""
    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            if size is not None:
                im = im.resize(size, Image.BICUBIC)
            return pil_to_tensor(im)
    except FileNotFoundError:
        raise VecgenError(f"{path}: no such file") from None
    except Exception as e:
        raise VecgenError(f"{path}: not a readable image ({type(e).__name__})") from None


def parse_image_prompts(specs) -> list[ImageTarget]:
    out = []
    for spec in specs or []:
        path, weight = str(spec), 1.0
        m = re.fullmatch(r"(.+?):([-+]?(?:\d+\.?\d*|\.\d+))", path)
        if m and not Path(path).exists():
            path, weight = m.group(1), float(m.group(2))
        out.append(ImageTarget(load_image(path), weight, label=Path(path).name))
    return out


# ----------------------------------------------------------------------------- result
def png_with_text(image: Image.Image, text: dict[str, str]) -> bytes:
    """PNG bytes of ``image`` carrying ``text`` as tEXt chunks (prompt, seed, settings, version)."""
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    for k, v in text.items():
        info.add_text(k, v)
    buf = io.BytesIO()
    image.save(buf, format="PNG", pnginfo=info)
    return buf.getvalue()


@dataclass
class Result:
    """The outcome of a run: the picture, its vector form, and the loss history."""

    image: Image.Image
    svg: str | None
    history: list[dict[str, float]]
    settings: dict[str, Any]
    interrupted: bool = False
    param: Any = field(default=None, repr=False)

    @property
    def metadata(self) -> dict[str, str]:
        return {"prompt": str(self.settings.get("prompt", "")), "seed": str(self.settings.get("seed", "")),
                "settings": json.dumps(self.settings, sort_keys=True, default=str), "software": f"vecgen {__version__}"}

    def png_bytes(self) -> bytes:
        return png_with_text(self.image, self.metadata)

    def save(self, path: str | Path) -> Path:
        """Write by suffix: ``.svg`` (vector runs) or ``.png``; atomic (temp + rename)."""
        p = Path(path)
        suffix = p.suffix.lower()
        if suffix == ".svg":
            if self.svg is None:
                raise VecgenError(f"{p}: this run is raster; save it as .png")
            atomic_write(p, self.svg.encode("utf-8"))
        elif suffix == ".png":
            atomic_write(p, self.png_bytes())
        else:
            raise VecgenError(f"{p}: unknown output type (use .svg or .png)")
        return p

    def _repr_svg_(self) -> str | None:
        return self.svg

    def _repr_png_(self) -> bytes:
        return self.png_bytes()


def pil_to_tensor(image: Image.Image) -> torch.Tensor:
    """PIL image -> ``(1, 3, H, W)`` float in ``[0, 1]``."""
    im = image.convert("RGB")
    data = torch.frombuffer(bytearray(im.tobytes()), dtype=torch.uint8).view(im.height, im.width, 3)
    return data.permute(2, 0, 1).float().div(255).unsqueeze(0)


def tensor_to_pil(image: torch.Tensor) -> Image.Image:
    """``(1, 3, H, W)`` or ``(3, H, W)`` in ``[0, 1]`` -> PIL RGB."""
    x = image.detach()
    if x.dim() == 4:
        x = x[0]
    arr = (x.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).cpu().contiguous()
    return Image.fromarray(arr.numpy())


# ----------------------------------------------------------------------------- the shared runner
def run(param, prompt: str | None, *, settings: dict[str, Any], clip: str = "auto", cutouts: int = 8,
        steps: int = 200, seed: int = 0, device: torch.device, image_prompt=None, perceptors=None,
        extra_terms=None, snapshots: str | Path | None = None, every: int = 10,
        checkpoint: str | Path | None = None, resume: str | Path | None = None, quiet: bool = False,
        warn: Callable[[str], None] | None = None, views: str = "auto") -> Result:
    """Optimize ``param`` against the CLIP objective built from ``prompt`` (+ extra terms).

    ``views``: the cutouts' settings, a name of :data:`vecgen.augment.VIEWS` or ``auto``
    (what the perceptors' ``draw_hint`` asks for, see :func:`view_style`).
    """
    if steps is None or int(steps) <= 0:
        raise VecgenError("--steps must be > 0")
    if cutouts is None or int(cutouts) < 0:
        raise VecgenError("--cutouts must be >= 0")
    prompts = parse_prompts(prompt) if prompt is not None else []
    images = parse_image_prompts(image_prompt)
    if perceptors is None and (prompts or images):
        perceptors = load_perceptors(clip, device, warn)
    terms: list = []
    for perceptor, weight in perceptors or []:
        terms.append(ClipTerm(perceptor, prompts, images, weight=weight))
    terms += list(extra_terms or [])
    if not terms:
        raise VecgenError("nothing to optimize: give a prompt, an image prompt or another loss term")
    size = max((p.input_size for p, _ in perceptors or []), default=224)
    views = view_style(perceptors, views)
    settings["views"] = views
    objective = Objective(terms, make_views(views, int(cutouts), size))
    callbacks = []
    if snapshots is not None:
        snap = Path(snapshots)
        snap.mkdir(parents=True, exist_ok=True)
        every = max(1, int(every))

        def snapshot(step: int, p, values) -> None:
            if step % every == 0:
                with torch.no_grad():
                    img = tensor_to_pil(p.render())
                buf = io.BytesIO()
                img.save(buf, format="PNG")
                atomic_write(snap / f"{step:05d}.png", buf.getvalue())
                if getattr(p, "kind", "") == "vector":
                    atomic_write(snap / f"{step:05d}.svg", p.svg().encode("utf-8"))

        callbacks.append(snapshot)
    ck = load_checkpoint(resume) if resume else None
    torch.manual_seed(seed)
    state: RunState = optimize(param, objective, int(steps), seed=seed, callbacks=callbacks, checkpoint=checkpoint,
                               resume=ck, meta={"settings": json.dumps(settings, default=str)}, progress=not quiet)
    with torch.no_grad():
        final = param.render()
    result = Result(image=tensor_to_pil(final), svg=None, history=state.history, settings=settings,
                    interrupted=state.interrupted, param=param)
    if getattr(param, "kind", "") == "vector":
        result.svg = param.svg(result.metadata)
    return result


def view_style(perceptors, views: str | None = "auto") -> str:
    """Resolve ``views="auto"``: the perceptors' ``draw_hint["views"]`` when they all agree, else ``crops``."""
    if views in (None, "auto"):
        views = _shared_hint(perceptors).get("views", "crops")
    if views not in VIEWS:
        raise VecgenError(f"unknown --views {views!r} (choose auto, {', '.join(VIEWS)})")
    return str(views)


# ----------------------------------------------------------------------------- draw
DRAW_STYLE = {"shapes": "strokes", "strokes": 256, "steps": 200}  # CLIPDraw's look, for real CLIP models


def _shared_hint(perceptors) -> dict:
    """The perceptors' ``draw_hint`` when they all give the same one, else ``{}``."""
    hints = [getattr(p, "draw_hint", {}) or {} for p, _ in perceptors or []]
    return hints[0] if hints and all(h == hints[0] for h in hints) else {}


def draw_style(perceptors, shapes: str | None = "auto", strokes: int | None = None) -> tuple[str, int]:
    """Resolve ``shapes="auto"`` / ``strokes=None`` from the perceptors' ``draw_hint``.

    The hint applies, as a bundle, only when shapes is auto and every perceptor
    gives the same one (e.g. all built-in mini models); otherwise CLIPDraw's 256
    open strokes. Values the user gave always win.
    """
    auto = shapes in (None, "auto")
    style = {**DRAW_STYLE, **(_shared_hint(perceptors) if auto else {})}
    return (style["shapes"] if auto else str(shapes), int(style["strokes"] if strokes is None else strokes))


def draw_steps(perceptors, steps: int | None = None) -> int:
    """Resolve ``steps=None``: the perceptors' shared ``draw_hint["steps"]``, else 200."""
    if steps is not None:
        return int(steps)
    return int({**DRAW_STYLE, **_shared_hint(perceptors)}["steps"])


def draw(prompt: str, *, strokes: int | None = None, segments: int = 3, width: Any = (1.0, 8.0),
         shapes: str = "auto", steps: int | None = None, size: Any = 224, clip: str = "auto", cutouts: int = 8,
         seed: int = 0, device: str | None = "auto", init: str | Path | None = None, background: Any = "white",
         rasterizer: str = "native", image_prompt=None, snapshots: str | Path | None = None, every: int = 10,
         checkpoint: str | Path | None = None, resume: str | Path | None = None, quiet: bool = False,
         perceptors=None, warn: Callable[[str], None] | None = None, views: str = "auto") -> Result:
    """Optimize coloured Bézier paths so CLIP sees ``prompt``; returns a :class:`Result`.

    ``prompt`` uses ``"text:weight | other:-0.5"``. ``clip`` is ``auto`` or
    ``MODEL[@PRETRAINED][:WEIGHT],...``. ``init`` starts from an SVG's paths.
    ``shapes="auto"`` and ``strokes=None`` follow the models: 256 open strokes for
    real CLIP, 32 filled blobs for the built-in mini models (see :func:`draw_style`);
    ``steps=None`` is 200, or 300 for the mini models (:func:`draw_steps`), and
    ``views="auto"`` picks the cutouts likewise (:func:`view_style`).
    """
    parse_prompts(prompt)
    dev = resolve_device(device)
    wh = parse_size(size)
    wrange = parse_width(width)
    from vecgen.params.strokes import SHAPES, Strokes

    if shapes != "auto" and shapes not in SHAPES:
        raise VecgenError(f"unknown --shapes {shapes!r} (choose auto, {', '.join(SHAPES)})")
    if strokes is not None and (int(strokes) < 0 or (int(strokes) == 0 and init is None)):
        raise VecgenError("--strokes must be > 0")  # checked before any model loads
    view_style([], views)
    if steps is not None and int(steps) <= 0:
        raise VecgenError("--steps must be > 0")
    if perceptors is None:
        perceptors = load_perceptors(clip, dev, warn)
    shapes, strokes = draw_style(perceptors, shapes, strokes)
    steps = draw_steps(perceptors, steps)
    settings = {"function": "draw", "prompt": prompt, "strokes": strokes, "segments": segments,
                "width": list(wrange), "shapes": shapes, "steps": steps, "size": list(wh), "clip": clip,
                "cutouts": cutouts, "seed": seed, "init": str(init) if init else None,
                "background": background, "rasterizer": rasterizer}
    param = Strokes(wh, strokes=int(strokes), segments=int(segments), width=wrange, shapes=shapes,
                    background=parse_colour(background), init=init, seed=int(seed), device=dev,
                    rasterizer=rasterizer)
    return run(param, prompt, settings=settings, clip=clip, cutouts=cutouts, steps=steps, seed=int(seed), device=dev,
               image_prompt=image_prompt, perceptors=perceptors, snapshots=snapshots, every=every,
               checkpoint=checkpoint, resume=resume, quiet=quiet, warn=warn, views=views)


def render_svg(path: str | Path, size: Any = None, rasterizer: str = "native") -> Image.Image:
    """Rasterize an SVG file with vecgen's own rasterizer -> PIL RGB (on its background, or white)."""
    from vecgen.backends.raster import composite, get_rasterizer
    from vecgen.svg import read_svg

    scene = read_svg(path)
    wh = parse_size(size) if size is not None else parse_size((scene.width, scene.height))
    with torch.no_grad():
        rgba = get_rasterizer(rasterizer).render(scene, wh)
        bg = scene.background if scene.background is not None else torch.ones(3)
        return tensor_to_pil(composite(rgba, bg))
from vecgen.api_raster import paint  # noqa: E402,F401
from vecgen.api_generate import generate, adapt  # noqa: E402,F401
