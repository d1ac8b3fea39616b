"""``generate``: a frozen generator's latent optimized to a prompt (StyleCLIP's latent optimization, FuseDream).

    >>> from vecgen.api import generate
    >>> res = generate("a red apple", generator="taef2", space="w", steps=100, clip="mini-vit")
    >>> res.save("apple.png")

Builds a :class:`vecgen.params.latent.Latent` and hands it to the one runner.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vecgen.api._run import Common, clip_terms, common, make_views, run
from vecgen.api.result import Result
from vecgen.api.run_options import RunConfig
from vecgen.api.verb import Verb
from vecgen.config import OptionError, like, option, verb_function
from vecgen.errors import VecgenError
from vecgen.io import is_latent_file, refuse_foreign
from vecgen.options import INITS, LIMITS, SPACES, check_suffix, check_writable, parse_size

if TYPE_CHECKING:
    import torch

DESCRIPTION = (
    "StyleCLIP-style latent optimization: the picture is what a frozen generator makes of an "
    "optimized latent in z, w or W+ space. --init fusedream ranks --samples random latents by "
    "the objective and optimizes a mix of the --top best."
)
#: psi > 1 pushes latents away from the mean; past 2 the generator's images fall apart.
MAX_TRUNCATION = 2.0


def need_generator(values: dict[str, Any]) -> None:
    """A generator spec (text) or a loaded generator must be given."""
    spec = values.get("generator")
    if spec is None or isinstance(spec, str) and not spec.strip():
        raise OptionError("generator", '{label} is required, e.g. "taef2" or "stylegan2:ckpt.pt"')
    if not isinstance(spec, str) and not hasattr(spec, "synthesize"):
        raise OptionError(
            "generator", f'{{label}} must be a spec such as "taef2" or a loaded generator, got {type(spec).__name__}'
        )


def _fusedream(values: dict[str, Any]) -> bool:
    init = values.get("init")
    return isinstance(init, str) and init.strip().lower() == "fusedream"


def _top_within_samples(values: dict[str, Any]) -> None:
    """FuseDream keeps the ``top`` best of ``samples`` draws."""
    samples, top = values.get("samples"), values.get("top")
    if _fusedream(values) and samples is not None and top is not None and int(top) > int(samples):
        raise OptionError("top", f"{{label}} must be between 1 and samples ({samples}), got {top}")


def _latent_suffix(values: dict[str, Any]) -> None:
    try:
        check_suffix(values.get("save_latent"), (".pt", ".pth"), "{label}")
    except VecgenError as e:
        raise OptionError("save_latent", str(e)) from None


@dataclass(frozen=True)
class GenerateConfig(RunConfig):
    """Every option of :func:`generate` (see :mod:`vecgen.config`)."""

    cross_checks = (need_generator, _top_within_samples, _latent_suffix)

    prompt: str | None = option(
        None, 'e.g. "a red apple:1 | blurry:-0.5"', positional=True, required=True, section="main"
    )
    generator: Any = option(
        None,
        "taef2[:FILE[:WxH]], stylegan2:FILE or script:FILE[:C,H,W] (required)",
        "object",
        required=True,
        metavar="SPEC",
        section="main",
    )
    space: str = option("w", "latent space to optimize", "choice", choices=SPACES, fold=True)
    l2: float = option(0.0, "weight of the L2 distance to the starting latent (StyleCLIP: 0.008)", minimum=0)
    init: str | None = option(
        None,
        "starting latent: a seeded random draw (default), the mean latent, or FuseDream's ranking",
        "choice",
        choices=INITS,
        fold=True,
    )
    samples: int = option(64, "fusedream: random latents to rank", "int", minimum=1, maximum=LIMITS["samples"])
    top: int = option(4, "fusedream: best latents kept and mixed", "int", minimum=1, maximum=LIMITS["top"])
    truncation: float | None = option(
        None,
        "pull latents toward the mean latent, 0..2 (default: the generator's, usually 1)",
        "float",
        minimum=0,
        maximum=MAX_TRUNCATION,
        metavar="PSI",
    )
    lr: float = option(0.1, "peak learning rate of the warm-up/cosine ramp", above=0)
    size: Any = like(
        RunConfig,
        "size",
        None,
        help="W or WxH in pixels: TAEF2's output size (multiples of 8); other generators have a fixed size",
        default_text="the generator's",
    )
    save_latent: str | Path | None = option(None, "also write the final latent", "output", metavar="FILE.pt")


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
            raise VecgenError(
                f"{kind} generator renders {shape[-1]}x{shape[-2]}; --size {wh[0]}x{wh[1]} "
                f"cannot change that (leave --size out)"
            )
    return gen


def spec_text(spec: Any) -> str:
    """A generator spec as recorded in the settings."""
    return f"<{spec.kind} generator>" if _is_generator(spec) else str(spec)


@verb_function(GenerateConfig, perceptors=None, extra_terms=None, warn=None, callbacks=None)
def generate(
    cfg: GenerateConfig, *, perceptors=None, extra_terms=None, warn: Callable[[str], None] | None = None, callbacks=None
) -> Result:
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
    ``extra_terms``: more objective terms. The other options are those of
    :func:`vecgen.draw`; every option: :class:`GenerateConfig`.
    """
    import torch

    from vecgen.losses import LatentL2, score_images
    from vecgen.params.latent import Latent, _check_space

    prompt, generator, size, lr, clip = cfg.prompt, cfg.generator, cfg.size, cfg.lr, cfg.clip
    save_latent = cfg.save_latent
    space = _check_space(cfg.space)
    init_name = "random" if cfg.init is None else str(cfg.init).strip().lower()
    l2 = float(cfg.l2)
    truncation = None if cfg.truncation is None else float(cfg.truncation)
    opts: Common = common(
        cfg.run_values(perceptors=perceptors, extra_terms=extra_terms, warn=warn, callbacks=callbacks)
    )
    check_writable(save_latent)
    if save_latent is not None:  # a latent of ours is replaced; any other file there is the user's
        refuse_foreign(save_latent, "latent", "--save-latent", ours=is_latent_file)
    samples, top = int(cfg.samples), int(cfg.top)
    gen = load_generator_for(generator, opts.device, size)
    settings = {
        "function": "generate",
        "prompt": prompt,
        "generator": spec_text(generator),
        "space": space,
        "l2": l2,
        "init": init_name,
        "samples": samples if init_name == "fusedream" else None,
        "top": top if init_name == "fusedream" else None,
        "truncation": truncation,
        "lr": lr,
        "steps": opts.steps,
        "size": None if size is None else list(parse_size(size)),
        "clip": clip,
        "cutouts": opts.cutouts,
        "seed": opts.seed,
    }
    shared: dict[str, Any] = dict(space=space, seed=opts.seed, truncation=truncation, lr=float(lr), steps=opts.steps)
    terms = clip_terms(opts) + list(extra_terms or [])
    cuts = make_views(opts)
    if init_name == "fusedream" and cfg.resume:  # the kept samples are in the checkpoint: no need to rank again
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


def _files(output: str | Path, options: dict[str, Any]) -> list[str]:
    """The output PNG and, with ``--save-latent``, the latent."""
    return [str(output), *([str(options["save_latent"])] if options.get("save_latent") else [])]


VERB = Verb(
    "generate",
    generate,
    "optimize a generator latent (TAEF2, StyleGAN2, TorchScript) to a prompt; writes PNG",
    outputs=(".png",),
    default_output="vecgen.png",
    config=GenerateConfig,
    files=_files,
    description=DESCRIPTION,
)
