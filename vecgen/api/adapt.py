"""``adapt``: StyleGAN-NADA, a generator's weights shifted from a source text to a target text.

    >>> from vecgen.api import adapt
    >>> ad = adapt("photo", "pencil sketch", generator="stylegan2:ffhq.pt", steps=200)
    >>> ad.save("sketch.pt"); ad.save("sketch.png")   # adapted weights / frozen-vs-adapted grid

Builds a :class:`vecgen.params.generator_weights.GeneratorWeights` and hands it to the one runner.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from vecgen.api._run import Common, common, run
from vecgen.api.generate import load_generator_for, spec_text
from vecgen.api.result import Result
from vecgen.api.verb import Verb
from vecgen.errors import VecgenError
from vecgen.options import as_int, check_limit, check_suffix, check_writable, parse_size

GENERATOR_SUFFIXES = (".pt", ".pth")


def default_grid(output: str | Path, grid: str | Path | None = None) -> str:
    """Where the frozen-vs-adapted grid goes: ``grid``, else beside the generator file as ``.png``."""
    return str(grid or Path(output).with_suffix(".png"))


def adapt(source: str, target: str, *, generator: Any, steps: int = 200, layers_k: int | None = None,
          batch: int = 2, lr: float | None = None, truncation: float = 1.0, size: Any = None, clip: str = "auto",
          seed: int = 0, device: str | None = "auto", quiet: bool = False, output: str | Path | None = None,
          grid: str | Path | None = None, grid_samples: int = 4, probe_steps: int = 1,
          snapshots: str | Path | None = None, every: int = 10, checkpoint: str | Path | None = None,
          resume: str | Path | None = None, perceptors=None,
          warn: Callable[[str], None] | None = None, callbacks=None) -> Result:
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
    ``res.generator`` / ``res.frozen`` are the adapted and the original modules.
    """
    from vecgen.io import tensor_to_pil
    from vecgen.losses import DirectionalClipTerm, text_distance
    from vecgen.params.generator_weights import GeneratorWeights

    for name, text in (("--source", source), ("--target", target)):
        if text is None or not str(text).strip():
            raise VecgenError(f"adapt needs a non-empty {name} text")
    if str(source).strip() == str(target).strip():
        raise VecgenError("--source and --target are the same text; nothing to adapt")
    views = "crops"  # no cutouts: the directional term sees whole renders (recorded as before)
    opts: Common = common(locals(), uses_prompt=False)
    if layers_k is not None:
        layers_k = as_int("--layers-k", layers_k, minimum=1)
    grid_samples = check_limit("grid_samples", as_int("--grid-samples", grid_samples, minimum=1))
    batch = check_limit("batch", as_int("--batch", batch, minimum=1))
    probe_steps = as_int("--probe-steps", probe_steps, minimum=1)
    check_suffix(output, GENERATOR_SUFFIXES, "the adapted generator")
    check_suffix(grid, (".png",), "the grid")
    check_writable(output)
    check_writable(grid)
    gen = load_generator_for(generator, opts.device, size)
    perceptors = opts.load_perceptors()
    target_texts = [str(target).strip()]
    for p, _ in perceptors:  # texts a perceptor cannot take (a classifier's class names) fail before any work
        p.encode_text([str(source).strip(), *target_texts])

    def probe(images):
        return sum(w * text_distance(p, target_texts, images) for p, w in perceptors)

    param = GeneratorWeights(gen, probe=probe, layers_k=layers_k, batch=batch, seed=opts.seed,
                             truncation=float(truncation), lr=None if lr is None else float(lr),
                             probe_steps=probe_steps)
    terms = [DirectionalClipTerm(p, str(source).strip(), target_texts, weight=w) for p, w in perceptors]
    settings = {"function": "adapt", "source": source, "target": target, "generator": spec_text(generator),
                "steps": opts.steps, "layers_k": param.layers_k, "batch": batch, "lr": param.lr,
                "truncation": float(truncation), "clip": clip, "seed": opts.seed,
                "size": None if size is None else list(parse_size(size))}
    opts.cutouts = 0
    res = run(param, opts, settings, terms=terms, headline=("source", "target"))
    res.image = tensor_to_pil(param.grid(grid_samples, seed=opts.seed + 12345))
    meta = {"source": source, "target": target, "generator": settings["generator"], "steps": len(res.history)}
    res.writers.update({s: (lambda p: param.save_generator(p, meta=meta)) for s in GENERATOR_SUFFIXES})
    res.extras.update(generator=param.trained, frozen=param.frozen)
    if output is not None:
        res.save(output)
    if grid is not None:
        res.save(grid)
    return res


VERB = Verb("adapt", adapt,
            "StyleGAN-NADA: shift a generator from --source to --target text; writes .pt + grid PNG",
            outputs=(".pt", ".pth", ".png"), default_output="adapted.pt", gallery=False)
