"""``draw``: coloured Bézier paths optimized so the perceptors see the prompt (CLIPDraw).

>>> import vecgen
>>> res = vecgen.draw("a red circle", steps=50, clip="mini-vit", quiet=True)
>>> res.save("circle.svg"); res.image  # PIL image of what CLIP saw
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from vecgen.api._run import Common, clip_terms, common, run, shared_hint, view_style
from vecgen.api.result import Result
from vecgen.api.run_options import RunConfig
from vecgen.api.verb import Verb
from vecgen.config import OptionError, like, option, verb_function
from vecgen.errors import VecgenError
from vecgen.options import LIMITS, RASTERIZERS, SHAPES, parse_colour, parse_size, parse_width
from vecgen.options import parse_palette as parse_palette_text

#: CLIPDraw's look, for real CLIP models; perceptors may hint another (the mini models: 32 blobs, 300 steps).
DRAW_STYLE = {
    "shapes": "strokes",
    "strokes": 256,
    "steps": 200,
    "width": (1.0, 8.0),
    "ink": 0.0,
    "ensemble": "sum",
    "refresh": 0.0,
}
SHAPE_CHOICES = ("auto", *SHAPES)
ENSEMBLES = ("sum", "turns")


def _hint(perceptors) -> dict:
    """:data:`DRAW_STYLE` with the perceptors' shared ``draw_hint`` over it."""
    return {**DRAW_STYLE, **shared_hint(perceptors)}


def draw_style(perceptors, shapes: str | None = "auto", strokes: int | None = None) -> tuple[str, int]:
    """Resolve ``shapes="auto"`` / ``strokes=None`` from the perceptors' ``draw_hint``.

    The hint applies, as a bundle, only when shapes is auto and every perceptor
    gives the same one (e.g. all built-in mini models); otherwise CLIPDraw's 256
    open strokes. Values the user gave always win.
    """
    auto = shapes in (None, "auto")
    style: dict = _hint(perceptors) if auto else DRAW_STYLE
    return (style["shapes"] if auto else str(shapes), int(style["strokes"] if strokes is None else strokes))


def draw_strokes_look(perceptors, width: Any = None, ink: float | None = None) -> tuple[tuple[float, float], float]:
    """Resolve ``width=None`` / ``ink=None`` from the perceptors' shared ``draw_hint``, else ``(1, 8)`` and 0.

    Classifiers hint 32 paths (16 blobs, 16 strokes 4-16 px wide) and an ink term (drawings that survive a
    thumbnail: issue 25's benchmark); values the user gave always win.
    """
    hint = _hint(perceptors)
    wrange = parse_width(hint["width"] if width is None else width)
    return wrange, float(hint["ink"] if ink is None else ink)


def draw_steps(perceptors, steps: int | None = None) -> int:
    """Resolve ``steps=None``: the perceptors' shared ``draw_hint["steps"]``, else 200."""
    if steps is not None:
        return int(steps)
    return int(_hint(perceptors)["steps"])


def draw_ensemble(perceptors, ensemble: str | None = "auto") -> str:
    """Resolve ``ensemble="auto"``: the perceptors' shared ``draw_hint["ensemble"]``, else ``"sum"``.
    ImageNet classifiers take turns (issue 25: Lite0 + Lite1 a step each, about the time of Lite0 alone
    plus a third, and the held-out judge's ranks of the hard classes rose; docs/draw.md)."""
    if ensemble not in (None, "auto"):
        return str(ensemble)
    return str(_hint(perceptors)["ensemble"])


def draw_refresh(perceptors, refresh: float | None = None) -> float:
    """Resolve ``refresh=None``: the perceptors' shared ``draw_hint["refresh"]``, else 0 (no restart).
    No model hints one yet: 0.25 with Lite0 + Lite1 was measured (issue 25; docs/draw.md) and not made the default."""
    if refresh is not None:
        return float(refresh)
    return float(_hint(perceptors)["refresh"])


def _strokes_need_init(values: dict[str, Any]) -> None:
    if values.get("strokes") is not None and int(values["strokes"]) == 0 and values.get("init") is None:
        raise OptionError("strokes", "{label} must be > 0 (0 only with an init SVG)")


def _visible_strokes(values: dict[str, Any]) -> None:
    if values.get("width") is not None and values.get("shapes") == "strokes":
        try:
            wmax = parse_width(values["width"])[1]
        except VecgenError:
            return  # the width check itself says what is wrong
        if wmax <= 0:
            raise OptionError("width", "{label} 0 draws nothing with strokes: give a width > 0 (or --shapes blobs)")


def _one_palette(values: dict[str, Any]) -> None:
    if values.get("palette") is not None:
        try:
            parse_palette_text(values["palette"])
        except VecgenError as e:
            raise OptionError("palette", str(e).replace("--palette", "{label}")) from None
        if values.get("colors") is not None:
            raise OptionError("colors", "{label} and --palette exclude each other (a palette fixes the colours)")


@dataclass(frozen=True)
class DrawConfig(RunConfig):
    """Every option of :func:`draw` (see :mod:`vecgen.config`)."""

    cross_checks = (_strokes_need_init, _one_palette, _visible_strokes)

    prompt: str | None = option(
        None, 'e.g. "a lighthouse:1 | blurry:-0.5"', positional=True, required=True, section="main"
    )
    strokes: int | None = option(
        None,
        "number of paths (default: 256 for real CLIP, 32 for the mini models)",
        "int",
        minimum=0,
        maximum=LIMITS["strokes"],
        default_text="auto",
    )
    segments: int = option(3, "cubic segments per path", "int", minimum=1, maximum=LIMITS["segments"])
    width: Any = option(
        None,
        "stroke width range MIN,MAX in pixels (default: 4,16 for ImageNet classifiers, 1,8 otherwise)",
        "width",
        default_text="auto",
    )
    shapes: str = option(
        "auto",
        "open strokes, closed filled blobs, or both (auto: strokes for real CLIP, both (mixed) for ImageNet "
        "classifiers, blobs for mini models)",
        "choice",
        choices=SHAPE_CHOICES,
    )
    steps: int | None = like(
        RunConfig, "steps", None, default_text="200; 100 for ImageNet classifiers, 300 for the mini models"
    )
    init: str | Path | None = option(None, "start from the paths of this SVG", "svg")
    background: Any = option("white", "white, black, gray or #rrggbb", "colour")
    rasterizer: str = option("native", "native (default) or diffvg (if installed)", "choice", choices=RASTERIZERS)
    keep_all: bool = option(False, "keep the paths whose removal changes no pixel (by default the SVG drops them)")
    ensemble: str = option(
        "auto",
        "how several --clip models combine: sum (every model every step) or turns (one model a step, "
        "in turn: about one model's time); auto: turns for ImageNet classifiers, sum otherwise",
        "choice",
        choices=("auto", *ENSEMBLES),
    )
    palette: str | None = option(
        None,
        'every stroke and fill colour ends in these, e.g. "#000000,#e03020" (a '
        "palette term while drawing, then a snap)",
        "text",
        metavar="COLOURS",
    )
    colors: int | None = option(
        None,
        "every stroke and fill colour ends in N colours found from the drawing "
        "(k-means; a palette term while drawing, then a snap)",
        "int",
        minimum=1,
        maximum=LIMITS["colors"],
        metavar="N",
    )
    refresh: float | None = option(
        None,
        "share of the strokes, those whose removal changes the picture least, that restart from a fresh "
        "random layout once, after 0.4 of the steps (default 0: never; not with an init SVG)",
        "float",
        minimum=0.0,
        maximum=1.0,
        metavar="SHARE",
        default_text="auto",
    )
    ink: float | None = option(
        None,
        "weight of the ink term: the render's mean difference from the background (fewer, "
        "thinner, paler marks; 0 = off; default: 1 for ImageNet classifiers, 0 otherwise)",
        "float",
        minimum=0.0,
        maximum=1e6,
        metavar="W",
        default_text="auto",
    )


@verb_function(DrawConfig, perceptors=None, warn=None, callbacks=None)
def draw(cfg: DrawConfig, *, perceptors=None, warn: Callable[[str], None] | None = None, callbacks=None) -> Result:
    """Optimize coloured Bézier paths so CLIP sees ``prompt``; returns a :class:`Result`.

    ``prompt`` uses ``"text:weight | other:-0.5"``. ``clip`` is ``auto`` or
    ``MODEL[@PRETRAINED][:WEIGHT],...``. ``init`` starts from an SVG's paths.
    ``shapes="auto"`` and ``strokes=None`` follow the models: 256 open strokes for
    real CLIP, 16 filled blobs behind 16 strokes for ImageNet classifiers, 32 filled blobs for the built-in
    mini models (see :func:`draw_style`);
    ``steps=None`` is 200; 100 for classifiers, 300 for the mini models (:func:`draw_steps`), and
    ``views="auto"`` picks the cutouts likewise. ``callbacks``: functions
    ``f(step, param, values)`` called after every step. The SVG drops paths whose
    removal changes no pixel by more than 1/255 (``pruned`` in its metadata) unless
    ``keep_all``. ``palette`` (``"#rrggbb,..."``) or ``colors`` (N): every stroke and fill colour ends in the
    palette (a ``palette`` term while drawing, then a snap). ``ink``: weight of the ``ink`` term, the render's
    mean difference from the background. Every option: :class:`DrawConfig`.
    """
    from vecgen.api.draw_refresh import FRESH_SEED, refresh_callback, refresh_step
    from vecgen.losses.legible import InkTerm, PaletteTerm
    from vecgen.params.palette import parse_palette
    from vecgen.params.strokes import Strokes

    # None: the models' hint decides (draw_steps)
    opts: Common = common(cfg.run_values(perceptors=perceptors, warn=warn, callbacks=callbacks), steps_auto=True)
    wh = parse_size(cfg.size)
    strokes, init = cfg.strokes, cfg.init
    segments = int(cfg.segments)
    bg = parse_colour(cfg.background)
    perceptors = opts.load_perceptors()
    shapes, strokes = draw_style(perceptors, cfg.shapes, strokes)
    wrange, ink = draw_strokes_look(perceptors, cfg.width, cfg.ink)
    opts.steps = draw_steps(perceptors, opts.steps)
    opts.views = view_style(perceptors, opts.views, thumbnails=True)
    settings = {
        "function": "draw",
        "prompt": cfg.prompt,
        "strokes": strokes,
        "segments": segments,
        "width": list(wrange),
        "shapes": shapes,
        "steps": opts.steps,
        "size": list(wh),
        "clip": cfg.clip,
        "cutouts": cfg.cutouts,
        "seed": cfg.seed,
        "init": str(init) if init else None,
        "background": cfg.background,
        "rasterizer": cfg.rasterizer,
        **({"keep_all": True} if cfg.keep_all else {}),
        **({"palette": cfg.palette} if cfg.palette is not None else {}),
        **({"colors": int(cfg.colors)} if cfg.colors is not None else {}),
        **({"ink": ink} if ink else {}),
    }
    palette = parse_palette(cfg.palette) if cfg.palette is not None else None
    colors = int(cfg.colors) if cfg.colors is not None else None

    def make(seed: int) -> Strokes:
        return Strokes(
            wh,
            strokes=int(strokes),
            segments=segments,
            width=wrange,
            shapes=shapes,
            background=bg,
            init=init,
            seed=seed,
            device=opts.device,
            rasterizer=cfg.rasterizer,
            keep_all=bool(cfg.keep_all),
            palette=palette,
            colors=colors,
        )

    param = make(opts.seed)
    extra: list[PaletteTerm | InkTerm] = []
    if palette is not None or colors is not None:
        extra.append(PaletteTerm(param.colour_values, palette, colors))
    if ink:
        extra.append(InkTerm(bg, weight=ink))
    terms = clip_terms(opts)
    if len(terms) > 1 and draw_ensemble(perceptors, cfg.ensemble) == "turns":
        for k, term in enumerate(terms):
            term.turn = (k, len(terms))
        settings["ensemble"] = "turns"
    refresh, at = draw_refresh(perceptors, cfg.refresh), refresh_step(opts.steps)
    if refresh > 0 and at and init is None:  # an init SVG's paths are the drawing asked for: none restart
        opts.callbacks = [*opts.callbacks, refresh_callback(at, refresh, lambda: make(opts.seed + FRESH_SEED))]
        settings["refresh"] = refresh
    return run(param, opts, settings, terms=terms, extra_terms=extra)


VERB = Verb(
    "draw",
    draw,
    "optimize Bézier strokes to a prompt; writes SVG",
    outputs=(".svg", ".png"),
    default_output="vecgen.svg",
    config=DrawConfig,
)
