"""What every verb shares: the common options checked once, the perceptors, and the one runner.

A verb checks its own options, calls :func:`common` with its ``locals()`` (the
options below are named the same in every verb), builds a parameterization,
and hands both to :func:`run`, which builds the objective and runs the engine.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from vecgen.api.result import Result
from vecgen.api.run_options import VIEW_CHOICES
from vecgen.errors import VecgenError
from vecgen.io import is_checkpoint, refuse_foreign
from vecgen.options import (
    BYTES_PER_VIEW_PIXEL,
    as_int,
    available_memory,
    check_cutouts,
    check_folder,
    check_limit,
    check_seed,
    check_steps,
    check_writable,
    parse_clip,
    resolve_device,
    split_weight,
)
from vecgen.params.base import Finalizes, VectorExport
from vecgen.prompts import Prompt, parse_prompts

if TYPE_CHECKING:
    import torch

Warn = Callable[[str], None]


@dataclass
class Common:
    """The options every optimizing verb takes, validated, with the device resolved."""

    prompt: str | None
    prompts: list[Prompt]
    steps: int | None
    cutouts: int
    views: str
    seed: int
    device: "torch.device"
    clip: str
    image_prompt: list[str]
    snapshots: str | Path | None = None
    every: int = 10
    checkpoint: str | Path | None = None
    resume: str | Path | None = None
    quiet: bool = False
    warn: Warn | None = None
    callbacks: list[Callable] = field(default_factory=list)
    perceptors: list | None = None
    resume_state: dict | None = field(default=None, repr=False)  # the checkpoint, read up front
    images: list = field(default_factory=list, repr=False)  # the image prompts, loaded up front

    def total_steps(self) -> int:
        """``steps``, which verbs with ``steps_auto`` resolve before :func:`run`."""
        if self.steps is None:
            raise VecgenError("--steps must be > 0")
        return self.steps

    def load_perceptors(self, fallback: str | None = None) -> list:
        """The ``clip`` spec's ``(perceptor, weight)`` pairs, loaded once (``fallback``: as in :func:`load_perceptors`)."""
        if self.perceptors is None:
            self.perceptors = load_perceptors(self.clip, self.device, self.warn, fallback)
        return self.perceptors


def common(values: dict[str, Any], *, uses_prompt: bool = True, steps_auto: bool = False) -> Common:
    """Check the shared options in a verb's ``locals()`` before any model loads.

    The prompt may be left empty only when image prompts (or extra terms) give
    the objective something to aim at; ``uses_prompt=False``: the verb takes none.
    ``steps_auto``: ``steps=None`` is allowed (the verb resolves it before :func:`run`).
    """
    get = values.get
    prompt = get("prompt") if uses_prompt else None
    if prompt is not None and not isinstance(prompt, str):
        raise VecgenError(f"the prompt must be text, got {type(prompt).__name__}")
    if prompt is None or not str(prompt).strip():
        if get("image_prompt") or get("extra_terms") or not uses_prompt:
            prompt = None
        elif prompt is None:
            raise VecgenError("nothing to optimize: give a prompt or an image prompt")
        else:
            parse_prompts(prompt)  # raises its one-line "empty prompt" error
    prompts = parse_prompts(prompt) if prompt is not None else []
    views = get("views", "auto")
    if views not in (None, *VIEW_CHOICES):
        raise VecgenError(f"unknown --views {views!r} (choose {', '.join(VIEW_CHOICES)})")
    steps = get("steps")
    if steps is None and not steps_auto:
        raise VecgenError("--steps must be > 0")
    callbacks = get("callbacks") or []
    if callable(callbacks):
        callbacks = [callbacks]
    if not all(callable(cb) for cb in callbacks):
        raise VecgenError("callbacks must be callables f(step, param, values)")
    checkpoint = get("checkpoint")
    check_writable(checkpoint)
    if checkpoint is not None:  # a checkpoint of ours is refreshed; anything else there is the user's
        refuse_foreign(checkpoint, "checkpoint", "--checkpoint", ours=is_checkpoint)
    snapshots = get("snapshots")
    if snapshots is not None:
        check_folder(snapshots, create=False)  # made at the first snapshot: a refusal leaves nothing
    clip = str(get("clip") or "auto")
    parse_clip(clip)  # a bad spec is refused before anything loads
    image_prompt = get("image_prompt") or []
    if isinstance(image_prompt, (str, Path)):
        image_prompt = [image_prompt]
    images = parse_image_prompts(image_prompt)
    resume = get("resume")
    resume_state = None
    if resume is not None:
        from vecgen.engine import load_checkpoint

        resume_state = load_checkpoint(resume)
    return Common(
        prompt=prompt,
        prompts=prompts,
        steps=None if steps is None else check_steps(steps),
        cutouts=check_cutouts(get("cutouts", 8)),
        views=views or "auto",
        seed=check_seed(get("seed", 0)),
        device=resolve_device(get("device")),
        clip=clip,
        image_prompt=[str(s) for s in image_prompt],
        snapshots=snapshots,
        every=check_limit("every", max(1, as_int("--every", get("every", 10)))),
        checkpoint=get("checkpoint"),
        resume=get("resume"),
        quiet=bool(get("quiet")),
        warn=get("warn"),
        callbacks=list(callbacks),
        perceptors=get("perceptors"),
        resume_state=resume_state,
        images=images,
    )


# ----------------------------------------------------------------------------- perceptors
def load_perceptors(clip: str, device: "torch.device", warn: Warn | None = None, fallback: str | None = None) -> list:
    """Load every model of a ``--clip`` spec -> list of ``(perceptor, weight)``.

    ``fallback``: the built-in model ``auto`` means offline (default ``mini-vit``; the 3-D verbs pass
    ``mini-vit-3d``)."""
    from vecgen.backends.perceptors import load_perceptor, resolve_auto

    out = []
    for name, weight in parse_clip(clip):
        if name == "auto":
            name = resolve_auto(warn) if fallback is None else resolve_auto(warn, fallback)
        out.append((load_perceptor(name, device), weight))
    return out


def shared_hint(perceptors) -> dict:
    """The perceptors' ``draw_hint`` when they all give the same one, else ``{}``."""
    hints = [getattr(p, "draw_hint", {}) or {} for p, _ in perceptors or []]
    return hints[0] if hints and all(h == hints[0] for h in hints) else {}


def view_style(perceptors, views: str | None = "auto", thumbnails: bool = False) -> str:
    """Resolve ``views="auto"``: the perceptors' ``draw_hint["views"]`` when they all agree, else ``crops``.

    ``lowres`` (thumbnails of the whole picture) is for results read whole at a glance: draw, sketch and mesh
    pass ``thumbnails=True``. The photo verbs (edit, style, paint, generate) keep full-size crops: with
    thumbnails, edit's cup -> strawberry fell from the judge's rank 5 to 13 and its PSNR outside the box from
    34.2 to 31.7 dB (bisected to 0fb3444).
    """
    from vecgen.augment import VIEWS

    if views in (None, "auto"):
        views = shared_hint(perceptors).get("views", "crops")
        views = "crops" if views == "lowres" and not thumbnails else views
    if views not in VIEWS:
        raise VecgenError(f"unknown --views {views!r} (choose auto, {', '.join(VIEWS)})")
    return str(views)


def parse_image_prompts(specs) -> list:
    """``["cat.png", "dog.png:0.5"]`` -> image targets (a file named ``x:0.5`` wins over the weight syntax)."""
    from vecgen.io import load_image
    from vecgen.losses import ImageTarget

    out = []
    for spec in specs or []:
        path, weight = split_weight(str(spec))
        if Path(str(spec)).exists():
            path, weight = str(spec), 1.0
        out.append(ImageTarget(load_image(path), weight, label=Path(path).name))
    return out


def clip_terms(opts: Common, images: list | None = None) -> list:
    """One :class:`~vecgen.losses.ClipTerm` per perceptor of ``opts`` (none without prompts or images)."""
    from vecgen.losses import ClipTerm

    images = opts.images if images is None else images
    if not (opts.prompts or images):
        return []
    terms = [ClipTerm(p, opts.prompts, images, weight=w) for p, w in opts.load_perceptors()]
    for term in terms:
        term.targets()  # encode now: a prompt a perceptor cannot take (a classifier's class names) fails before step 0
    return terms


def make_views(opts: Common):
    """The cutouts of a run, sized for the largest perceptor input."""
    from vecgen.augment import make_views as _make

    perceptors = opts.perceptors or []
    size = max((p.input_size for p, _ in perceptors), default=224)
    return _make(view_style(perceptors, opts.views), opts.cutouts, size)


# ----------------------------------------------------------------------------- the runner
def _snapshot_callback(folder: str | Path, every: int) -> Callable:
    import torch

    from vecgen.io import atomic_write, save_png

    snap = Path(folder)

    def snapshot(step: int, p, values) -> None:
        if step % every == 0:
            with torch.no_grad():
                save_png(p.render(), snap / f"{step:05d}.png", mkdir=True)
            if isinstance(p, VectorExport):
                atomic_write(snap / f"{step:05d}.svg", p.svg().encode("utf-8"), mkdir=True)

    return snapshot


def check_memory(opts: Common, terms: list) -> None:
    """Refuse, before the first step, a run whose perceptor views cannot fit in the free memory.

    Estimate: each view costs :data:`~vecgen.options.BYTES_PER_VIEW_PIXEL` per
    input pixel of each perceptor that sees it (forward + backward).
    """
    sizes = [t.perceptor.input_size for t in terms if getattr(t, "needs_views", False)]
    views = max(1, opts.cutouts)
    need = views * BYTES_PER_VIEW_PIXEL * sum(s * s for s in sizes)
    free = available_memory(opts.device)
    if free is not None and need > free:
        raise VecgenError(
            f"{views} views for {len(sizes)} perceptor(s) need about {need / 2**30:.1f} GiB, but "
            f"{free / 2**30:.1f} GiB is free on {opts.device}; lower --cutouts (docs: Limits)"
        )


def check_resume(checkpoint: dict, settings: dict[str, Any], path: Any) -> None:
    """Refuse to resume a checkpoint made by another verb or with other settings (``steps`` may grow)."""
    meta = checkpoint.get("meta", {}) if isinstance(checkpoint, dict) else {}
    try:
        saved = json.loads(meta["settings"])
    except (TypeError, KeyError, ValueError):
        raise VecgenError(f"{path}: not a vecgen checkpoint (no settings recorded)") from None
    now = json.loads(json.dumps(settings, default=str))
    if saved.get("function") != now.get("function"):
        raise VecgenError(
            f"{path}: checkpoint of `vecgen {saved.get('function')}`, cannot resume it with "
            f"`vecgen {now.get('function')}`"
        )
    differ = [
        k for k in sorted(set(saved) | set(now)) if k not in ("steps", "steps_done") and saved.get(k) != now.get(k)
    ]
    if differ:
        said = "; ".join(f"{k}: {json.dumps(saved.get(k))} there, {json.dumps(now.get(k))} here" for k in differ[:4])
        raise VecgenError(f"{path}: checkpoint made with other settings ({said}); resume with the same options")
    done = int(checkpoint.get("step", 0))
    if now.get("steps") is not None and done > int(now["steps"]):
        raise VecgenError(f"{path}: checkpoint is {done} steps in, more than --steps {now['steps']}")


def run(
    param,
    opts: Common | None = None,
    settings: dict[str, Any] | None = None,
    *,
    extra_terms=None,
    terms=None,
    views=None,
    headline: tuple[str, ...] = ("prompt",),
    **options: Any,
) -> Result:
    """Optimize ``param`` for ``opts.steps`` steps against the CLIP terms of ``opts`` plus ``extra_terms``.

    Any parameterization runs this way, e.g. ``run(my_param, prompt="a cat",
    steps=100, clip="mini-vit")``: without ``opts``, the keyword ``options``
    (those of :func:`vecgen.draw`: prompt, steps, cutouts, views, seed, device,
    clip, image_prompt, snapshots, every, checkpoint, resume, quiet, warn,
    callbacks, perceptors) are checked into one. ``terms`` / ``views`` replace
    the CLIP terms and the cutouts built from ``opts`` (a verb that already
    built them, or one with its own losses). ``settings`` are recorded in the
    result and every file saved from it (``views`` is filled in here, as resolved).
    """
    if opts is None:
        opts = common({**options, "extra_terms": extra_terms or terms})
    elif options:
        raise TypeError(f"run() got options {sorted(options)} besides opts")
    settings = {} if settings is None else settings
    import torch

    from vecgen.engine import optimize
    from vecgen.io import tensor_to_pil
    from vecgen.objective import Objective

    terms = clip_terms(opts) if terms is None else list(terms)
    terms += list(extra_terms or [])
    if not terms:
        raise VecgenError("nothing to optimize: give a prompt, an image prompt or another loss term")
    check_memory(opts, terms)
    settings["views"] = view_style(opts.perceptors, opts.views)
    objective = Objective(terms, make_views(opts) if views is None else views)
    callbacks = list(opts.callbacks)
    if opts.snapshots is not None:
        callbacks.insert(0, _snapshot_callback(opts.snapshots, opts.every))
    ck = opts.resume_state
    if ck is not None:
        check_resume(ck, settings, opts.resume)
    state = optimize(
        param,
        objective,
        opts.total_steps(),
        seed=opts.seed,
        callbacks=callbacks,
        checkpoint=opts.checkpoint,
        resume=ck,
        meta={"settings": json.dumps(settings, default=str)},
        progress=not opts.quiet,
    )
    if state.interrupted:
        settings["steps_done"] = state.step  # the files say how far the run got
    if isinstance(param, Finalizes):  # optional: e.g. pixel art snaps to its palette, so PNG and SVG agree
        param.finalize()
    with torch.no_grad():
        final = param.render()
    result = Result(
        image=tensor_to_pil(final[:1]),
        history=state.history,
        settings=settings,
        interrupted=state.interrupted,
        param=param,
        headline=headline,
    )
    if isinstance(param, VectorExport):
        result.svg = param.svg(result.metadata)
    return result
