"""``draw``: coloured Bézier paths optimized so the perceptors see the prompt (CLIPDraw).

    >>> import vecgen
    >>> res = vecgen.draw("a red circle", steps=50, clip="mini-vit", quiet=True)
    >>> res.save("circle.svg"); res.image  # PIL image of what CLIP saw
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from vecgen.api._run import Common, common, run, shared_hint
from vecgen.api.result import Result
from vecgen.api.verb import Verb
from vecgen.errors import VecgenError
from vecgen.options import SHAPES, as_int, check_limit, parse_colour, parse_size, parse_width

#: CLIPDraw's look, for real CLIP models; perceptors may hint another (the mini models: 32 blobs, 300 steps).
DRAW_STYLE = {"shapes": "strokes", "strokes": 256, "steps": 200}
SHAPE_CHOICES = ("auto", *SHAPES)


def draw_style(perceptors, shapes: str | None = "auto", strokes: int | None = None) -> tuple[str, int]:
    """Resolve ``shapes="auto"`` / ``strokes=None`` from the perceptors' ``draw_hint``.

    The hint applies, as a bundle, only when shapes is auto and every perceptor
    gives the same one (e.g. all built-in mini models); otherwise CLIPDraw's 256
    open strokes. Values the user gave always win.
    """
    auto = shapes in (None, "auto")
    style = {**DRAW_STYLE, **(shared_hint(perceptors) if auto else {})}
    return (style["shapes"] if auto else str(shapes), int(style["strokes"] if strokes is None else strokes))


def draw_steps(perceptors, steps: int | None = None) -> int:
    """Resolve ``steps=None``: the perceptors' shared ``draw_hint["steps"]``, else 200."""
    if steps is not None:
        return int(steps)
    return int({**DRAW_STYLE, **shared_hint(perceptors)}["steps"])


def draw(prompt: str, *, strokes: int | None = None, segments: int = 3, width: Any = (1.0, 8.0),
         shapes: str = "auto", steps: int | None = None, size: Any = 224, clip: str = "auto", cutouts: int = 8,
         seed: int = 0, device: str | None = "auto", init: str | Path | None = None, background: Any = "white",
         rasterizer: str = "native", image_prompt=None, snapshots: str | Path | None = None, every: int = 10,
         checkpoint: str | Path | None = None, resume: str | Path | None = None, quiet: bool = False,
         perceptors=None, warn: Callable[[str], None] | None = None, views: str = "auto",
         callbacks=None, keep_all: bool = False) -> Result:
    """Optimize coloured Bézier paths so CLIP sees ``prompt``; returns a :class:`Result`.

    ``prompt`` uses ``"text:weight | other:-0.5"``. ``clip`` is ``auto`` or
    ``MODEL[@PRETRAINED][:WEIGHT],...``. ``init`` starts from an SVG's paths.
    ``shapes="auto"`` and ``strokes=None`` follow the models: 256 open strokes for
    real CLIP, 32 filled blobs for the built-in mini models (see :func:`draw_style`);
    ``steps=None`` is 200, or 300 for the mini models (:func:`draw_steps`), and
    ``views="auto"`` picks the cutouts likewise. ``callbacks``: functions
    ``f(step, param, values)`` called after every step. The SVG drops paths whose
    removal changes no pixel by more than 1/255 (counted as ``pruned`` in its
    metadata) unless ``keep_all``.
    """
    from vecgen.params.strokes import Strokes

    opts: Common = common(locals(), steps_auto=True)  # None: the models' hint decides (draw_steps)
    wh = parse_size(size)
    wrange = parse_width(width)
    if shapes != "auto" and shapes not in SHAPES:
        raise VecgenError(f"unknown --shapes {shapes!r} (choose auto, {', '.join(SHAPES)})")
    if strokes is not None and (as_int("--strokes", strokes) < 0 or (int(strokes) == 0 and init is None)):
        raise VecgenError("--strokes must be > 0")  # checked before any model loads
    if strokes is not None:
        check_limit("strokes", int(strokes))
    segments = check_limit("segments", as_int("--segments", segments, minimum=1))
    bg = parse_colour(background)
    perceptors = opts.load_perceptors()
    shapes, strokes = draw_style(perceptors, shapes, strokes)
    opts.steps = draw_steps(perceptors, opts.steps)
    settings = {"function": "draw", "prompt": prompt, "strokes": strokes, "segments": segments,
                "width": list(wrange), "shapes": shapes, "steps": opts.steps, "size": list(wh), "clip": clip,
                "cutouts": cutouts, "seed": seed, "init": str(init) if init else None,
                "background": background, "rasterizer": rasterizer, **({"keep_all": True} if keep_all else {})}
    param = Strokes(wh, strokes=int(strokes), segments=segments, width=wrange, shapes=shapes, background=bg,
                    init=init, seed=opts.seed, device=opts.device, rasterizer=rasterizer, keep_all=bool(keep_all))
    return run(param, opts, settings)


VERB = Verb("draw", draw, "optimize Bézier strokes to a prompt; writes SVG", outputs=(".svg", ".png"),
            default_output="vecgen.svg")
