"""``adapt``: StyleGAN-NADA, a generator's weights shifted from a source text to a target text.

    >>> from vecgen.api import adapt
    >>> ad = adapt("photo", "pencil sketch", generator="stylegan2:ffhq.pt", steps=200)
    >>> ad.save("sketch.pt"); ad.save("sketch.png")   # adapted weights / frozen-vs-adapted grid

Builds a :class:`vecgen.params.generator_weights.GeneratorWeights` and hands it to the one runner.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vecgen.api._run import Common, common, run
from vecgen.api.generate import load_generator_for, need_generator, spec_text
from vecgen.api.result import Result
from vecgen.api.run_options import RunConfig
from vecgen.api.verb import Verb
from vecgen.config import OptionError, VerbConfig, like, option, verb_function
from vecgen.errors import VecgenError
from vecgen.options import LIMITS, check_suffix, check_writable, parse_size

GENERATOR_SUFFIXES = (".pt", ".pth")
#: Most layers trained per step and W+ probe steps per step (README, Limits): far above any generator's.
MAX_LAYERS_K = 1024
MAX_PROBE_STEPS = 1000
#: psi of the sampled latents: past 2 the generator's images fall apart.
MAX_TRUNCATION = 2.0
DESCRIPTION = (
    "Fine-tune a copy of the generator so that its images move, in CLIP space, the way "
    "--source moves to --target (directional CLIP loss, adaptive layer freezing). Writes the "
    "adapted generator (-o, .pt) and a grid of frozen (top) vs adapted (bottom) samples."
)


def default_grid(output: str | Path, grid: str | Path | None = None) -> str:
    """Where the frozen-vs-adapted grid goes: ``grid``, else beside the generator file as ``.png``."""
    return str(grid or Path(output).with_suffix(".png"))


def _texts(values: dict[str, Any]) -> None:
    """Both texts given, not empty, not the same."""
    for name in ("source", "target"):
        text = values.get(name)
        if text is None:
            raise OptionError(name, '{label} is required, e.g. --source "photo" --target "pencil sketch"')
        if not str(text).strip():
            raise OptionError(name, "adapt needs a non-empty {label} text")
    if str(values["source"]).strip() == str(values["target"]).strip():
        raise OptionError("target", "--source and --target are the same text; nothing to adapt")


def _outputs(values: dict[str, Any]) -> None:
    """The generator is written as .pt, the grid as .png."""
    for name, suffixes, what in (
        ("output", GENERATOR_SUFFIXES, "the adapted generator"),
        ("grid", (".png",), "the grid"),
    ):
        try:
            check_suffix(values.get(name), suffixes, what)
        except VecgenError as e:
            raise OptionError(name, str(e).replace("{", "(").replace("}", ")")) from None


@dataclass(frozen=True)
class AdaptConfig(VerbConfig):
    """Every option of :func:`adapt` (see :mod:`vecgen.config`). No cutouts, views or image prompts: the
    directional term sees whole renders."""

    cross_checks = (_texts, need_generator, _outputs)

    source: str | None = option(
        None,
        'what the generator makes now, e.g. "photo"',
        positional=True,
        required=True,
        flag="--source",
        section="main",
    )
    target: str | None = option(
        None,
        'what it should make, e.g. "pencil sketch"',
        positional=True,
        required=True,
        flag="--target",
        section="main",
    )
    generator: Any = option(
        None,
        "stylegan2:FILE, taef2[:FILE] or script:FILE (required)",
        "object",
        required=True,
        metavar="SPEC",
        section="main",
    )
    steps: int = like(RunConfig, "steps")
    layers_k: int | None = option(
        None, "layers trained per step", "int", minimum=1, maximum=MAX_LAYERS_K, default_text="half"
    )
    batch: int = option(2, "latents per step", "int", minimum=1, maximum=LIMITS["batch"])
    lr: float | None = option(
        None,
        "Adam learning rate of the weights",
        "float",
        above=0,
        default_text="the generator's own; stylegan2 0.002, taef2 0.0001",
    )
    truncation: float = option(
        1.0, "truncation of the sampled latents", minimum=0, maximum=MAX_TRUNCATION, metavar="PSI"
    )
    size: Any = like(
        RunConfig,
        "size",
        None,
        help="W or WxH in pixels: TAEF2's output size (multiples of 8); other generators have a fixed size",
        default_text="the generator's",
    )
    clip: str = like(RunConfig, "clip")
    seed: int = like(RunConfig, "seed")
    device: str | None = like(RunConfig, "device")
    quiet: bool = like(RunConfig, "quiet")
    output: str | Path | None = option(None, "write the adapted generator here (.pt)", "output", cli=False)
    grid: str | Path | None = option(
        None, "frozen-vs-adapted grid (default: OUTPUT with .png)", "output", metavar="FILE.png"
    )
    grid_samples: int = option(4, "latents in the grid", "int", minimum=1, maximum=LIMITS["grid_samples"])
    probe_steps: int = option(1, "W+ probe steps of the layer selection", "int", minimum=1, maximum=MAX_PROBE_STEPS)
    snapshots: str | Path | None = like(RunConfig, "snapshots")
    every: int = like(RunConfig, "every")
    checkpoint: str | Path | None = like(RunConfig, "checkpoint")
    resume: str | Path | None = like(RunConfig, "resume")


def _files(output: str | Path, options: dict[str, Any]) -> list[str]:
    """The adapted generator (``-o``, .pt) and its grid (``--grid``, default OUTPUT with .png)."""
    out = str(output)
    if Path(out).suffix.lower() not in GENERATOR_SUFFIXES:
        raise VecgenError(f"{out}: adapt writes the generator as .pt (the grid goes to --grid, default OUT.png)")
    return [out, default_grid(out, options.get("grid"))]


@verb_function(AdaptConfig, perceptors=None, warn=None, callbacks=None)
def adapt(cfg: AdaptConfig, *, perceptors=None, warn: Callable[[str], None] | None = None, callbacks=None) -> Result:
    """StyleGAN-NADA: shift ``generator`` from ``source`` to ``target`` text with the directional CLIP loss.

    Trains ``layers_k`` adaptively chosen layers per step (see
    :mod:`vecgen.params.generator_weights`) on ``batch`` fresh latents per
    step, ``steps`` steps, Adam ``lr`` (``None``: the generator's default,
    StyleGAN2 0.002 as in NADA, TAEF2 1e-4; see
    :func:`vecgen.params.generator_weights.default_adapt_lr`; the lr used is
    recorded in ``settings["lr"]``). Writes the adapted generator to
    ``output`` (``.pt``) and the frozen-vs-adapted grid of ``grid_samples``
    shared latents to ``grid`` (``.png``) when given. The result's image is the
    grid; ``res.save("x.pt")`` writes the generator (``torch.save``, loadable
    with ``weights_only=True`` and as ``stylegan2:x.pt`` / ``taef2:x.pt``);
    ``res.save_all("x.pt")`` writes the grid beside it too (``x.png``, or ``grid``);
    ``res.generator`` / ``res.frozen`` are the adapted and the original modules.
    Every option: :class:`AdaptConfig`.
    """
    from vecgen.io import tensor_to_pil
    from vecgen.losses import DirectionalClipTerm, text_distance
    from vecgen.params.generator_weights import GeneratorWeights

    source, target, generator, size, output, grid = (
        cfg.source,
        cfg.target,
        cfg.generator,
        cfg.size,
        cfg.output,
        cfg.grid,
    )
    lr, truncation, clip = cfg.lr, cfg.truncation, cfg.clip
    # no cutouts: the directional term sees whole renders (views recorded as before)
    opts: Common = common(
        {**cfg.asdict(), "views": "crops", "perceptors": perceptors, "warn": warn, "callbacks": callbacks},
        uses_prompt=False,
    )
    layers_k = None if cfg.layers_k is None else int(cfg.layers_k)
    grid_samples, batch, probe_steps = int(cfg.grid_samples), int(cfg.batch), int(cfg.probe_steps)
    check_writable(output)
    check_writable(grid)
    gen = load_generator_for(generator, opts.device, size)
    perceptors = opts.load_perceptors()
    target_texts = [str(target).strip()]
    for p, _ in perceptors:  # texts a perceptor cannot take (a classifier's class names) fail before any work
        p.encode_text([str(source).strip(), *target_texts])

    def probe(images):
        return sum(w * text_distance(p, target_texts, images) for p, w in perceptors)

    param = GeneratorWeights(
        gen,
        probe=probe,
        layers_k=layers_k,
        batch=batch,
        seed=opts.seed,
        truncation=float(truncation),
        lr=None if lr is None else float(lr),
        probe_steps=probe_steps,
    )
    terms = [DirectionalClipTerm(p, str(source).strip(), target_texts, weight=w) for p, w in perceptors]
    settings = {
        "function": "adapt",
        "source": source,
        "target": target,
        "generator": spec_text(generator),
        "steps": opts.steps,
        "layers_k": param.layers_k,
        "batch": batch,
        "lr": param.lr,
        "truncation": float(truncation),
        "clip": clip,
        "seed": opts.seed,
        "size": None if size is None else list(parse_size(size)),
    }
    opts.cutouts = 0
    res = run(param, opts, settings, terms=terms, headline=("source", "target"))
    res.image = tensor_to_pil(param.grid(grid_samples, seed=opts.seed + 12345))
    meta = {"source": source, "target": target, "generator": settings["generator"], "steps": len(res.history)}
    res.writers.update({s: (lambda p: param.save_generator(p, meta=meta)) for s in GENERATOR_SUFFIXES})
    res.extras.update(generator=param.trained, frozen=param.frozen)
    res.companions = lambda out: [Path(default_grid(out, grid))]
    if output is not None:
        res.save(output)
    if grid is not None:
        res.save(grid)
    return res


VERB = Verb(
    "adapt",
    adapt,
    "StyleGAN-NADA: shift a generator from --source to --target text; writes .pt + grid PNG",
    outputs=(".pt", ".pth", ".png"),
    default_output="adapted.pt",
    gallery=False,
    config=AdaptConfig,
    files=_files,
    description=DESCRIPTION,
)
