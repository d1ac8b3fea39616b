"""Python API for generator latents and generator weights.

    >>> from vecgen.api import generate, adapt
    >>> res = generate("a red apple", generator="taef2", space="w", steps=100, clip="mini-vit")
    >>> res.save("apple.png")
    >>> ad = adapt("photo", "pencil sketch", generator="stylegan2:ffhq.pt", steps=200)
    >>> ad.save("sketch.pt"); ad.save("sketch.png")   # adapted weights / frozen-vs-adapted grid

Both build a parameterization (:class:`vecgen.params.latent.Latent`,
:class:`vecgen.params.generator_weights.GeneratorWeights`) and hand it to
:func:`vecgen.api.run`, i.e. the one engine loop.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from vecgen.errors import VecgenError

__all__ = ["AdaptResult", "adapt", "generate", "load_generator_for"]


def _is_generator(obj: Any) -> bool:
    from vecgen.backends.generators import Generator

    return isinstance(obj, Generator)


def load_generator_for(spec: Any, device: torch.device, size: Any = None):
    """``--generator`` spec (or an already loaded Generator) -> a frozen generator on ``device``.

    ``size`` (W or WxH) sets the output size of TAEF2 (multiples of 8); other
    generators have a fixed size, and a different ``size`` is an error.
    """
    from vecgen.api import parse_size
    from vecgen.backends.generators import load_generator, parse_spec

    wh = parse_size(size) if size is not None else None
    if _is_generator(spec):
        gen = spec.to(device).eval().requires_grad_(False)
        kind = gen.kind
    else:
        if spec is None or not str(spec).strip():
            raise VecgenError("--generator is required, e.g. --generator taef2 or --generator stylegan2:ckpt.pt")
        kind = parse_spec(str(spec))[0]
        options = {"image_size": (wh[1], wh[0])} if wh is not None and kind == "taef2" else {}
        gen = load_generator(str(spec), device, **options)
    if wh is not None and kind == "taef2" and hasattr(gen, "set_image_size"):
        gen.set_image_size((wh[1], wh[0]))
    elif wh is not None:
        with torch.no_grad():
            shape = gen.synthesize(gen.to_w_plus(gen.mean_latent().to(gen.device))).shape
        if (shape[-1], shape[-2]) != wh:
            raise VecgenError(f"{kind} generator renders {shape[-1]}x{shape[-2]}; --size {wh[0]}x{wh[1]} "
                              f"cannot change that (leave --size out)")
    return gen


def _spec_text(spec: Any) -> str:
    return f"<{spec.kind} generator>" if _is_generator(spec) else str(spec)


# ----------------------------------------------------------------------------- generate
def generate(prompt: str | None, *, generator: Any, space: str = "w", l2: float = 0.0, init: str | None = None,
             samples: int = 64, top: int = 4, truncation: float | None = None, lr: float = 0.1,
             steps: int = 200, size: Any = None, clip: str = "auto", cutouts: int = 8, seed: int = 0,
             device: str | None = "auto", image_prompt=None, snapshots: str | Path | None = None, every: int = 10,
             checkpoint: str | Path | None = None, resume: str | Path | None = None, quiet: bool = False,
             perceptors=None, extra_terms=None, save_latent: str | Path | None = None,
             warn: Callable[[str], None] | None = None, views: str = "auto"):
    """Optimize a generator latent so CLIP sees ``prompt``; returns a :class:`vecgen.api.Result` (PNG).

    ``generator``: a spec (``taef2``, ``stylegan2:ckpt.pt``, ``script:gen.pt``)
    or a loaded Generator. ``space``: ``z``, ``w`` or ``wplus``. ``l2``: weight
    of the squared L2 distance to the starting latent (StyleCLIP: 0.008).
    ``init``: ``None``/``"random"`` (seeded prior draw), ``"mean"`` or
    ``"fusedream"`` (rank ``samples`` draws with the objective, optimize a
    softmax mix of the ``top`` best plus a residual; the ranking is in
    ``result.param.scores`` / ``result.param.top_indices``). ``truncation``:
    psi (default: the generator's). ``lr``: base lr of StyleCLIP's warm-up /
    cosine-down ramp. ``save_latent``: also write the final latent (``.pt``).
    The other options are those of :func:`vecgen.api.draw`.
    """
    from vecgen import api
    from vecgen.augment import make_views
    from vecgen.losses import LatentL2, score_images
    from vecgen.objective import ClipTerm
    from vecgen.params.latent import INITS, Latent, _check_space, _check_truncation
    from vecgen.prompts import parse_prompts

    space = _check_space(space)
    init_name = "random" if init is None else str(init).strip().lower()
    if init_name not in INITS:
        raise VecgenError(f"unknown --init {init!r} (choose {', '.join(INITS)})")
    try:
        l2 = float(l2)
    except (TypeError, ValueError):
        raise VecgenError(f"--l2 must be a number, got {l2!r}") from None
    if not math.isfinite(l2) or l2 < 0:
        raise VecgenError(f"--l2 must be >= 0, got {l2}")
    if truncation is not None:
        truncation = _check_truncation(truncation)
    if steps is None or int(steps) <= 0:
        raise VecgenError("--steps must be > 0")
    if cutouts is None or int(cutouts) < 0:
        raise VecgenError("--cutouts must be >= 0")
    api.view_style([], views)
    if prompt is not None:
        parse_prompts(prompt)
    elif not image_prompt and not extra_terms:
        raise VecgenError("nothing to optimize: give a prompt or an image prompt")
    if save_latent is not None and Path(save_latent).suffix.lower() not in (".pt", ".pth"):
        raise VecgenError(f"{save_latent}: --save-latent writes a .pt file")
    api.check_writable(save_latent)
    dev = api.resolve_device(device)
    gen = load_generator_for(generator, dev, size)
    settings = {"function": "generate", "prompt": prompt, "generator": _spec_text(generator), "space": space,
                "l2": l2, "init": init_name, "samples": samples if init_name == "fusedream" else None,
                "top": top if init_name == "fusedream" else None, "truncation": truncation, "lr": lr,
                "steps": int(steps), "size": None if size is None else list(api.parse_size(size)), "clip": clip,
                "cutouts": int(cutouts), "seed": int(seed)}
    common = dict(space=space, seed=int(seed), truncation=truncation, lr=float(lr), steps=int(steps))
    if init_name == "fusedream":
        samples, top = int(samples), int(top)
        if samples < 1:
            raise VecgenError("--samples must be >= 1")
        if not 1 <= top <= samples:
            raise VecgenError(f"--top must be between 1 and --samples ({samples}), got {top}")
        if resume:  # the kept samples are in the checkpoint: no need to rank again
            probe = Latent(gen, init="mean", **common)
            param = Latent(gen, basis=probe.latent().detach().expand(top, *probe.space_shape), **common)
        else:
            prompts = parse_prompts(prompt) if prompt is not None else []
            images = api.parse_image_prompts(image_prompt)
            if perceptors is None and (prompts or images):
                perceptors = api.load_perceptors(clip, dev, warn)
            terms: list = [ClipTerm(p, prompts, images, weight=w) for p, w in perceptors or []]
            terms += list(extra_terms or [])
            view_size = max((p.input_size for p, _ in perceptors or []), default=224)
            cuts = make_views(api.view_style(perceptors, views), int(cutouts), view_size)
            gen_rng = torch.Generator().manual_seed(int(seed) + 7)

            def score(images_: torch.Tensor) -> torch.Tensor:
                return score_images(terms, images_, cutouts=cuts, generator=gen_rng)

            param = Latent.fusedream(gen, score, samples=samples, top=top, **common)
    else:
        param = Latent(gen, init=init_name, **common)
    terms_extra = list(extra_terms or [])
    if l2 > 0:
        terms_extra.append(LatentL2(param, l2))
    result = api.run(param, prompt, settings=settings, clip=clip, cutouts=int(cutouts), steps=int(steps),
                     seed=int(seed), device=dev, image_prompt=image_prompt, perceptors=perceptors,
                     extra_terms=terms_extra, snapshots=snapshots, every=every, checkpoint=checkpoint,
                     resume=resume, quiet=quiet, warn=warn, views=views)
    if save_latent is not None:
        param.save_latent(save_latent)
    return result


# ----------------------------------------------------------------------------- adapt
@dataclass
class AdaptResult:
    """Outcome of :func:`adapt`: the adapted generator, a frozen-vs-adapted grid, the loss history.

    ``save("x.pt")`` writes the adapted generator (``torch.save``, loadable
    with ``weights_only=True`` and as ``stylegan2:x.pt`` / ``taef2:x.pt``);
    ``save("x.png")`` writes the grid (top row frozen, bottom row adapted).
    """

    image: Any  # PIL grid
    history: list[dict[str, float]]
    settings: dict[str, Any]
    interrupted: bool = False
    param: Any = field(default=None, repr=False)

    @property
    def generator(self):
        """The adapted (trained) generator module."""
        return self.param.trained

    @property
    def frozen(self):
        return self.param.frozen

    @property
    def metadata(self) -> dict[str, str]:
        import json

        from vecgen import __version__

        return {"source": str(self.settings.get("source", "")), "target": str(self.settings.get("target", "")),
                "seed": str(self.settings.get("seed", "")),
                "settings": json.dumps(self.settings, sort_keys=True, default=str),
                "software": f"vecgen {__version__}"}

    def png_bytes(self) -> bytes:
        from vecgen.api import png_with_text

        return png_with_text(self.image, self.metadata)

    def save(self, path: str | Path) -> Path:
        p = Path(path)
        suffix = p.suffix.lower()
        if suffix in (".pt", ".pth"):
            return self.param.save_generator(p, meta={"source": self.settings.get("source"),
                                                      "target": self.settings.get("target"),
                                                      "generator": self.settings.get("generator"),
                                                      "steps": len(self.history)})
        if suffix == ".png":
            from vecgen.engine import atomic_write

            atomic_write(p, self.png_bytes())
            return p
        raise VecgenError(f"{p}: unknown output type (use .pt for the generator, .png for the grid)")

    def _repr_png_(self) -> bytes:
        return self.png_bytes()


def adapt(source: str, target: str, *, generator: Any, steps: int = 200, layers_k: int | None = None,
          batch: int = 2, lr: float = 0.002, truncation: float = 1.0, size: Any = None, clip: str = "auto",
          seed: int = 0, device: str | None = "auto", quiet: bool = False, output: str | Path | None = None,
          grid: str | Path | None = None, grid_samples: int = 4, probe_steps: int = 1,
          snapshots: str | Path | None = None, every: int = 10, checkpoint: str | Path | None = None,
          resume: str | Path | None = None, perceptors=None,
          warn: Callable[[str], None] | None = None) -> AdaptResult:
    """StyleGAN-NADA: shift ``generator`` from ``source`` to ``target`` text with the directional CLIP loss.

    Trains ``layers_k`` adaptively chosen layers per step (see
    :mod:`vecgen.params.generator_weights`) on ``batch`` fresh latents per
    step, ``steps`` steps, Adam ``lr``. Writes the adapted generator to
    ``output`` (``.pt``) and the frozen-vs-adapted grid of ``grid_samples``
    shared latents to ``grid`` (``.png``) when given; returns an
    :class:`AdaptResult` either way.
    """
    from vecgen import api
    from vecgen.losses import DirectionalClipTerm, text_distance
    from vecgen.params.generator_weights import GeneratorWeights

    for name, text in (("--source", source), ("--target", target)):
        if text is None or not str(text).strip():
            raise VecgenError(f"adapt needs a non-empty {name} text")
    if str(source).strip() == str(target).strip():
        raise VecgenError("--source and --target are the same text; nothing to adapt")
    if steps is None or int(steps) <= 0:
        raise VecgenError("--steps must be > 0")
    if layers_k is not None and int(layers_k) < 1:
        raise VecgenError(f"--layers-k must be >= 1, got {layers_k}")
    if int(grid_samples) < 1:
        raise VecgenError("--grid-samples must be >= 1")
    if output is not None and Path(output).suffix.lower() not in (".pt", ".pth"):
        raise VecgenError(f"{output}: the adapted generator is written as .pt")
    if grid is not None and Path(grid).suffix.lower() != ".png":
        raise VecgenError(f"{grid}: the grid is written as .png")
    api.check_writable(output)
    api.check_writable(grid)
    dev = api.resolve_device(device)
    gen = load_generator_for(generator, dev, size)
    if perceptors is None:
        perceptors = api.load_perceptors(clip, dev, warn)
    target_texts = [str(target).strip()]

    def probe(images: torch.Tensor) -> torch.Tensor:
        return sum(w * text_distance(p, target_texts, images) for p, w in perceptors)

    param = GeneratorWeights(gen, probe=probe, layers_k=layers_k, batch=int(batch), seed=int(seed),
                             truncation=float(truncation), lr=float(lr), probe_steps=int(probe_steps))
    terms = [DirectionalClipTerm(p, str(source).strip(), target_texts, reference=lambda: param.frozen_image,
                                 weight=w) for p, w in perceptors]
    settings = {"function": "adapt", "source": source, "target": target, "generator": _spec_text(generator),
                "steps": int(steps), "layers_k": param.layers_k, "batch": int(batch), "lr": float(lr),
                "truncation": float(truncation), "clip": clip, "seed": int(seed),
                "size": None if size is None else list(api.parse_size(size))}
    res = api.run(param, None, settings=settings, clip=clip, cutouts=0, steps=int(steps), seed=int(seed),
                  device=dev, perceptors=None, extra_terms=terms, snapshots=snapshots, every=every,
                  checkpoint=checkpoint, resume=resume, quiet=quiet, warn=warn)
    out = AdaptResult(image=api.tensor_to_pil(param.grid(int(grid_samples), seed=int(seed) + 12345)),
                      history=res.history, settings=settings, interrupted=res.interrupted, param=param)
    if output is not None:
        out.save(output)
    if grid is not None:
        out.save(grid)
    return out
