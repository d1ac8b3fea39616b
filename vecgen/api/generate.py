"""``generate``: a frozen generator's latent optimized to a prompt (StyleCLIP's latent optimization, FuseDream).

    >>> from vecgen.api import generate
    >>> res = generate("a red apple", generator="taef2", space="w", steps=100, clip="mini-vit")
    >>> res.save("apple.png")

Builds a :class:`vecgen.params.latent.Latent` and hands it to the one runner.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vecgen.api._run import Common, clip_terms, common, make_views, run
from vecgen.api.result import Result
from vecgen.api.verb import Verb
from vecgen.errors import VecgenError
from vecgen.options import INITS, check_number, check_suffix, check_writable, parse_size

if TYPE_CHECKING:
    import torch



def _is_generator(obj: Any) -> bool:
    from vecgen.backends.generators import Generator

    return isinstance(obj, Generator)


def load_generator_for(spec: Any, device: "torch.device", size: Any = None):
    """``--generator`` spec (or an already loaded Generator) -> a frozen generator on ``device``.

    ``size`` (W or WxH) sets the output size of TAEF2 (multiples of 8); other
    generators have a fixed size, and a different ``size`` is an error.
    """
    import torch

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


def spec_text(spec: Any) -> str:
    """A generator spec as recorded in the settings."""
    return f"<{spec.kind} generator>" if _is_generator(spec) else str(spec)


def generate(prompt: str | None, *, generator: Any, space: str = "w", l2: float = 0.0, init: str | None = None,
             samples: int = 64, top: int = 4, truncation: float | None = None, lr: float = 0.1,
             steps: int = 200, size: Any = None, clip: str = "auto", cutouts: int = 8, seed: int = 0,
             device: str | None = "auto", image_prompt=None, snapshots: str | Path | None = None, every: int = 10,
             checkpoint: str | Path | None = None, resume: str | Path | None = None, quiet: bool = False,
             perceptors=None, extra_terms=None, save_latent: str | Path | None = None,
             warn: Callable[[str], None] | None = None, views: str = "auto", callbacks=None) -> Result:
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
    The other options are those of :func:`vecgen.draw`.
    """
    import torch

    from vecgen.losses import LatentL2, score_images
    from vecgen.params.latent import Latent, _check_space, _check_truncation, check_fusedream

    space = _check_space(space)
    init_name = "random" if init is None else str(init).strip().lower()
    if init_name not in INITS:
        raise VecgenError(f"unknown --init {init!r} (choose {', '.join(INITS)})")
    l2 = check_number("--l2", l2, nonnegative=True)
    if truncation is not None:
        truncation = _check_truncation(truncation)
    opts: Common = common(locals())
    check_suffix(save_latent, (".pt", ".pth"), "--save-latent")
    check_writable(save_latent)
    if init_name == "fusedream":
        samples, top = check_fusedream(samples, top)  # before the generator loads
    gen = load_generator_for(generator, opts.device, size)
    settings = {"function": "generate", "prompt": prompt, "generator": spec_text(generator), "space": space,
                "l2": l2, "init": init_name, "samples": samples if init_name == "fusedream" else None,
                "top": top if init_name == "fusedream" else None, "truncation": truncation, "lr": lr,
                "steps": opts.steps, "size": None if size is None else list(parse_size(size)), "clip": clip,
                "cutouts": opts.cutouts, "seed": opts.seed}
    shared: dict[str, Any] = dict(space=space, seed=opts.seed, truncation=truncation, lr=float(lr), steps=opts.steps)
    terms = clip_terms(opts) + list(extra_terms or [])
    cuts = make_views(opts)
    if init_name == "fusedream" and resume:  # the kept samples are in the checkpoint: no need to rank again
        probe = Latent(gen, init="mean", **shared)
        param = Latent(gen, basis=probe.latent().detach().expand(top, *probe.space_shape), **shared)
    elif init_name == "fusedream":
        gen_rng = torch.Generator().manual_seed(opts.seed + 7)

        def score(images: torch.Tensor) -> torch.Tensor:
            return score_images(terms, images, cutouts=cuts, generator=gen_rng)

        param = Latent.fusedream(gen, score, samples=samples, top=top, progress=not opts.quiet, **shared)
    else:
        param = Latent(gen, init=init_name, **shared)
    if l2 > 0:
        terms.append(LatentL2(param, l2))
    result = run(param, opts, settings, terms=terms, views=cuts)
    if save_latent is not None:
        param.save_latent(save_latent)
    return result


VERB = Verb("generate", generate,
            "optimize a generator latent (TAEF2, StyleGAN2, TorchScript) to a prompt; writes PNG",
            outputs=(".png",), default_output="vecgen.png")
