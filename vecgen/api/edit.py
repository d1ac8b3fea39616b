"""``edit``: a real photo edited by text through a frozen generator (StyleCLIP's three methods).

    >>> from vecgen.api import edit
    >>> res = edit("a leopard", photo="cat.jpg", generator="taef2", encoder="taef2", clip="efficientnet-lite0")
    >>> res.save("leopard.png"); res.settings["inversion_psnr"], res.settings["psnr_to_photo"]

Every method first inverts the photo (:mod:`vecgen.api.edit_invert`: encoder +
refinement, or optimization), then:

* ``optimize`` -- the one engine loop from the inverted latent: CLIP/classifier
  terms toward the prompt (directional against ``source`` when given) plus
  ``l2`` times the squared distance to the inversion (StyleCLIP: 0.008);
* ``global`` -- a precomputed global direction (:mod:`vecgen.api.edit_global`),
  one render;
* ``mapper`` -- a trained latent mapper (:mod:`vecgen.api.edit_mapper`), one
  forward pass.

Every method edits only where the subject is (:mod:`vecgen.api.edit_mask`):
``where="auto"`` (default) -- a soft mask of where the perceptor sees the
photo's own class (Grad-CAM of a classifier's top class, or of ``source``
when it names a class; occlusion for other perceptors); ``"X,Y,W,H"`` -- a
box in photo pixels; ``"all"`` -- everywhere. The optimized render is
``inversion + mask * (render - inversion)``, so the perceptor sees only that.

The change goes back as a residual at the photo's own resolution:
``photo + upsample(edit - inversion)``, clamped; what did not change keeps
the photo's own pixels (no blur from the generator's 256 px). Settings record
``change_inside`` (the share of ``sum |result - photo|`` inside the subject
region: the ``where`` box, or the mask >= 0.5) and ``psnr_outside``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vecgen.api._run import Common, clip_terms, common, make_views, run
from vecgen.api.generate import load_generator_for, need_generator, spec_text
from vecgen.api.result import Result
from vecgen.api.run_options import RunConfig
from vecgen.api.verb import Verb
from vecgen.config import OptionError, like, option, verb_function
from vecgen.errors import VecgenError
from vecgen.options import LIMITS, SPACES, available_memory, parse_size

METHODS = ("auto", "optimize", "global", "mapper")
#: Default ``--l2`` (weight of the squared L2 distance to the inverted latent, summed over its entries):
#: StyleCLIP's 0.008 for generators with a mapping network (its W+ has 18 x 512 entries); 0.0005 for the
#: others, measured on TAEF2 (a 256x168 latent has 21,504 entries): chelsea -> "leopard", Lite0, 30 steps,
#: Lite2 judging: at 0.008 the edit barely moves (rank 219 -> 161, 30.8 dB; Lite0's "probs" embedding),
#: at 0.0005 Lite2 ranks it first (24.8 dB "probs", 26.6 dB "features"; benchmarks/edit.py).
L2 = {"mapping": 0.008, "other": 0.0005}


#: Default ``--alpha`` of ``--method global`` (in standard deviations of the most relevant channel):
#: StyleCLIP's scale for style space; 0.5 for latent channels (TAEF2: 0.5 keeps ~19-22 dB, 1 ~15 dB).
ALPHA = {"mapping": 4.0, "other": 0.5}


def default_l2(gen) -> float:
    return L2["mapping" if getattr(gen, "has_mapping", False) else "other"]


def resolve_method(method: str | None, alpha: Any, mapper: Any) -> str:
    """``auto`` -> ``mapper`` with a mapper file, ``global`` with ``alpha``, else ``optimize``.

    Raises :class:`OptionError` naming the option for a mix that does not apply
    (``alpha`` without global, ``mapper`` without mapper, mapper without a file).
    """
    m = str(method or "auto").strip().lower()
    if m not in METHODS:
        raise OptionError("method", f"unknown {{label}} {method!r} (choose {', '.join(METHODS)})")
    if m == "auto":
        m = "mapper" if mapper is not None else "global" if alpha is not None else "optimize"
    if alpha is not None and m != "global":
        raise OptionError("alpha", "{label} applies to --method global only")
    if mapper is not None and m != "mapper":
        raise OptionError("mapper", "{label} applies to --method mapper only")
    if m == "mapper" and mapper is None:
        raise OptionError(
            "method", "--method mapper needs --mapper FILE.safetensors (train one with vecgen edit-mapper)"
        )
    return m


#: Most prior latents ``--global-samples`` may average over (each is rendered twice per channel).
MAX_GLOBAL_SAMPLES = 4096
#: The default of ``steps``: another value with a method that takes no steps is refused, not ignored.
STEPS = 100
#: Options of ``--method global`` only (a value but their default with another method is refused).
GLOBAL_ONLY = ("beta", "global_samples", "global_cache")


def _method_mix(values: dict[str, Any]) -> None:
    """Options that apply to one method only are refused with another (:func:`resolve_method`); a prompt
    or ``--steps`` with a mapper (it edits toward the text it was trained for, in one forward pass)."""
    m = resolve_method(values.get("method"), values.get("alpha"), values.get("mapper"))
    prompt = values.get("prompt")
    if m == "mapper" and prompt is not None and str(prompt).strip():
        raise OptionError(
            "prompt", "a prompt does not apply to --mapper (the mapper edits toward the text it was trained for)"
        )
    if m != "optimize" and values.get("steps") not in (None, STEPS):
        raise OptionError("steps", f"{{label}} applies to --method optimize only ({m} takes no steps)")
    if m != "global":  # the direction's own options: refused with another method, never ignored
        defaults = EditConfig.defaults()
        for name in GLOBAL_ONLY:
            if values.get(name) not in (None, defaults[name]):
                raise OptionError(name, f"{{label}} applies to --method global only (this edit is {m})")


@dataclass(frozen=True)
class EditConfig(RunConfig):
    """Every option of :func:`edit` (see :mod:`vecgen.config`)."""

    cross_checks = (need_generator, _method_mix)

    prompt: str | None = option(None, 'what it should show, e.g. "a leopard"', positional=True, section="main")
    # required: a keyword-only argument in Python (it follows the optional prompt), the first positional on the
    # command line (vecgen/cli/edit.py puts it first)
    photo: Any = option(
        None, "the photo to edit (PNG, JPEG...)", "image", positional=True, required=True, section="main"
    )
    generator: Any = option(
        None,
        "taef2[:FILE], stylegan2:FILE or script:FILE (required)",
        "object",
        required=True,
        metavar="SPEC",
        section="main",
    )
    method: str = option(
        "auto",
        "optimize, global or mapper (auto: mapper with --mapper, global with --alpha, else optimize)",
        "choice",
        choices=METHODS,
    )
    source: str | None = option(None, 'what the photo shows now, e.g. "a cat": directional edits')
    encoder: Any = option(
        None,
        "taef2[:FILE] or script:FILE: invert by encoding (default: invert by optimization)",
        "object",
        metavar="SPEC",
    )
    mapper: str | Path | None = option(
        None, "apply a trained mapper (one forward pass)", "file", metavar="FILE.safetensors"
    )
    l2: float | None = option(
        None,
        "weight of the L2 distance to the inverted latent (default: 0.008 for "
        "StyleGAN2, 0.0005 for TAEF2 and others; mapper training: 0.8)",
        "float",
        minimum=0,
    )
    alpha: float | None = option(
        None,
        "global: strength, in standard deviations of the most relevant channel "
        "(default 4 for StyleGAN2's style space, 0.5 for latent channels)",
        "float",
        minimum=-100,
        maximum=100,
    )
    beta: float = option(0.15, "global: drop channels less relevant than this", "float", minimum=0, maximum=1)
    global_samples: int = option(
        8, "global: latents the channel responses average over", "int", minimum=1, maximum=MAX_GLOBAL_SAMPLES
    )
    global_cache: str | Path | None = option(
        None, "global: response cache file or folder (default ~/.cache/vecgen/global)", "output", metavar="PATH"
    )
    invert_steps: int | None = option(
        None, "inversion steps (default 10 after an encoder, 200 without)", "int", minimum=0, maximum=LIMITS["steps"]
    )
    invert_lr: float | None = option(None, "inversion learning rate (0.01 / 0.05)", "float", above=0)
    perceptual: float | None = option(
        None,
        "inversion: weight of the classifier feature term (default 0 with "
        "an encoder, 0.1 without; needs a perceptor with features)",
        "float",
        minimum=0,
    )
    where: Any = option(
        None,
        "where the edit may change the photo: auto (default: where the perceptor sees the "
        "photo's own class, or --source's), all, or a box in photo pixels",
        "object",
        metavar="auto|all|X,Y,W,H",
        default_text="auto",
    )
    space: str = option("wplus", "latent space of a StyleGAN2 edit", "choice", choices=SPACES)
    lr: float = option(0.1, "learning rate (mapper training: 0.002)", "float", above=0)
    steps: int | None = like(RunConfig, "steps", STEPS)
    size: Any = like(RunConfig, "size", None, help="TAEF2 edit size WxH (default: the photo's aspect, long side 256)")


def check_bank_memory(gen, samples: int, device) -> None:
    """Refuse a ``--method global`` run whose bank of ``samples`` prior latents cannot fit in the free memory.

    Estimate: the bank's ``W+`` latents, float32, three times over (the prior draw, the mapped latents and
    the per-channel spread), before the first render.
    """
    import math

    import torch

    with torch.no_grad():
        per = math.prod(gen.to_w_plus(gen.mean_latent().to(gen.device)).shape[1:])
    need = 3 * 4 * per * int(samples)
    free = available_memory(device)
    if free is not None and need > free:
        raise VecgenError(
            f"--global-samples {samples}: the latent bank needs about {need / 2**30:.1f} GiB, but "
            f"{free / 2**30:.1f} GiB is free on {device}; lower --global-samples (README, Limits)"
        )


def setup(photo: Any, generator: Any, encoder: Any, size: Any, device) -> tuple[Any, Any, Any, Any, tuple]:
    """Read the photo, load generator and encoder, check they pair -> ``(photo, gen, enc, native, box)``."""
    from vecgen.api.edit_invert import (
        load_encoder_for,
        native_size,
        prepare_photo,
        read_photo,
    )

    pic = read_photo(photo)  # an unreadable photo is refused before any model loads
    if size is not None:
        parse_size(size)
    gen = load_generator_for(generator, device, None)
    enc = load_encoder_for(encoder, device)
    if enc is not None:
        from vecgen.backends.generators.encoders import check_pair

        check_pair(enc, gen)
    hw = native_size(gen, (int(pic.shape[-2]), int(pic.shape[-1])), size)
    if size is not None and getattr(gen, "kind", "") != "taef2" and parse_size(size) != (hw[1], hw[0]):
        raise VecgenError(f"{gen.kind} generator renders {hw[1]}x{hw[0]}; --size cannot change that")
    target, box = prepare_photo(pic, hw)
    return pic, gen, enc, target.to(gen.device), box


def finish(res: Result, photo, inv, edited, box, gen, settings: dict, t0: float, mask=None, region=None) -> Result:
    """Put the change ``edited - inversion`` into the photo at its own resolution (:func:`residual_paste`:
    what did not change keeps the photo's pixels); record PSNRs, locality and timings."""
    import torch

    from vecgen.api.edit_invert import psnr
    from vecgen.api.edit_mask import locality, region_at, residual_paste
    from vecgen.io import tensor_to_pil

    with torch.no_grad():
        full = residual_paste(photo, inv.image, edited[:1], box)
    photo_hw = (int(photo.shape[-2]), int(photo.shape[-1]))
    if region is None:
        region = region_at(mask if mask is not None else torch.ones(1, 1, 1, 1), box, photo_hw)
    settings.update(inv.info())
    settings["psnr_to_photo"] = round(psnr(full, photo.to(full.device)), 2)
    settings["psnr_to_inversion"] = round(psnr(edited[:1], inv.image), 2)
    settings.update(locality(photo, full, region))
    settings["photo_size"] = [photo_hw[1], photo_hw[0]]
    settings["box"] = [int(v) for v in box]
    settings["seconds"] = round(time.perf_counter() - t0, 2)
    res.image = tensor_to_pil(full)
    res.extras.update(
        edit=edited[:1].detach(), inversion=inv, photo=photo, box=box, generator=gen, mask=mask, region=region
    )
    return res


@verb_function(EditConfig, perceptors=None, extra_terms=None, warn=None, callbacks=None)
def edit(
    cfg: EditConfig, *, perceptors=None, extra_terms=None, warn: Callable[[str], None] | None = None, callbacks=None
) -> Result:
    """Edit ``photo`` toward ``prompt``; returns a :class:`vecgen.api.Result` (PNG at the photo's size).

    ``generator``: a spec (``taef2``, ``stylegan2:ckpt.pt``, ``script:gen.pt``) or a loaded
    Generator; ``encoder``: ``taef2[:FILE]`` / ``script:FILE`` (inversion by encoding), else by
    optimization (``invert_steps``, ``invert_lr``; ``perceptual``: weight of the feature term
    over the first perceptor with ``features()``). ``method``: ``optimize`` (``steps``, ``lr``,
    ``l2`` (None: 0.008 with a mapping network as StyleCLIP, 0.0005 for TAEF2 and others; see
    :data:`L2`), ``space`` and the options of :func:`vecgen.generate`), ``global`` (``alpha``,
    ``beta``; responses over ``global_samples`` latents cached in ``global_cache``, a file or a
    folder), ``mapper`` (``mapper``: a file from :func:`vecgen.api.edit_mapper.train_mapper`);
    ``auto`` picks by which of ``mapper`` / ``alpha`` is given. ``source``: the text the photo
    is now (directional terms). ``where``: ``"auto"`` (the perceptor's saliency mask of the
    photo's class), ``"X,Y,W,H"`` (a box in photo pixels) or ``"all"``. Settings record
    ``inversion_psnr``, ``psnr_to_photo`` (the result vs the photo), ``change_inside`` /
    ``psnr_outside`` (locality on the subject region), ``mask`` and the method's timings.
    """
    import torch

    from vecgen.api.edit_invert import invert
    from vecgen.api.edit_mask import MaskedLatent, compose, parse_where
    from vecgen.losses import DirectionalClipTerm, LatentL2
    from vecgen.params.latent import _check_space

    t0 = time.perf_counter()
    prompt, photo, generator, encoder, mapper, clip, size = (
        cfg.prompt,
        cfg.photo,
        cfg.generator,
        cfg.encoder,
        cfg.mapper,
        cfg.clip,
        cfg.size,
    )
    method = resolve_method(cfg.method, cfg.alpha, mapper)
    space = _check_space(cfg.space)
    l2 = None if cfg.l2 is None else float(cfg.l2)
    beta = float(cfg.beta)
    alpha = None if cfg.alpha is None else float(cfg.alpha)
    source = cfg.source
    if source is not None and not str(source).strip():
        source = None
    global_samples = int(cfg.global_samples)
    invert_steps = None if cfg.invert_steps is None else int(cfg.invert_steps)
    invert_lr, perceptual, lr, where = cfg.invert_lr, cfg.perceptual, cfg.lr, cfg.where
    opts: Common = common(
        cfg.run_values(perceptors=perceptors, extra_terms=extra_terms, warn=warn, callbacks=callbacks),
        uses_prompt=method != "mapper",
    )
    if method != "optimize" and opts.resume_state is not None:
        raise VecgenError(f"--resume applies to --method optimize only ({method} takes no steps)")
    pic, gen, enc, target, box = setup(photo, generator, encoder, size, opts.device)
    if method == "global":
        check_bank_memory(gen, global_samples, opts.device)
    photo_hw = (int(pic.shape[-2]), int(pic.shape[-1]))
    parse_where(where, photo_hw)  # a bad box is refused before the inversion
    use = method != "mapper" or perceptual or (str(clip) != "auto" and parse_where(where, photo_hw) == "auto")
    perceptors = opts.load_perceptors() if use else []
    settings: dict[str, Any] = {
        "function": "edit",
        "prompt": prompt,
        "method": method,
        "source": source,
        "photo": _name(photo),
        "generator": spec_text(generator),
        "encoder": None if encoder is None else _name(encoder),
        "space": space,
        "clip": clip,
        "seed": opts.seed,
        "steps": opts.steps if method == "optimize" else None,
        "size": None if size is None else list(parse_size(size)),
    }
    inv = invert(
        gen,
        target,
        encoder=enc,
        space=space if gen.has_mapping else "wplus",
        steps=invert_steps,
        lr=invert_lr,
        perceptors=perceptors,
        perceptual=perceptual,
        seed=opts.seed,
        quiet=opts.quiet,
    )
    mask, region = where_to_edit(where, perceptors, inv, box, photo_hw, source, settings)
    if method == "global":
        from vecgen.api.edit_global import global_edit

        if alpha is None:  # measured on TAEF2: alpha 4 drops PSNR to ~9 dB (README, Editing photos)
            alpha = ALPHA["mapping" if gen.has_mapping else "other"]
        res, edited = global_edit(
            gen,
            inv,
            opts,
            prompt,
            source,
            alpha=alpha,
            beta=beta,
            samples=global_samples,
            cache=cfg.global_cache,
            settings=settings,
        )
        return finish(res, pic, inv, compose(inv.image, edited, mask), box, gen, settings, t0, mask, region)
    if method == "mapper":
        from vecgen.api.edit_mapper import mapper_edit

        assert mapper is not None  # resolve_method refused mapper mode without a file
        res, edited = mapper_edit(gen, inv, mapper, opts, settings)
        return finish(res, pic, inv, compose(inv.image, edited, mask), box, gen, settings, t0, mask, region)
    l2 = default_l2(gen) if l2 is None else l2
    settings.update(l2=l2, lr=float(lr), cutouts=opts.cutouts)
    param = MaskedLatent(
        gen,
        base=inv.image,
        mask=mask,
        space=inv.space,
        init=inv.latent,
        lr=float(lr),
        steps=opts.steps,
        truncation=1.0,
        seed=opts.seed,
    )
    terms: list
    if source is not None:  # directional: the step from the inverted photo must follow source -> prompt
        reference = inv.image.detach()
        terms = [
            DirectionalClipTerm(
                p,
                str(source).strip(),
                [q.text for q in opts.prompts if q.weight > 0],
                reference=lambda: reference,
                weight=w,
            )
            for p, w in perceptors
        ]
        if opts.images:  # image prompts still pull globally
            opts.prompts = []
            terms += clip_terms(opts)
    else:
        terms = clip_terms(opts)
    terms += list(extra_terms or [])
    if l2 > 0:
        terms.append(LatentL2(param, l2))
    res = run(param, opts, settings, terms=terms, views=make_views(opts))
    with torch.no_grad():
        edited = param.render().detach()
        settings["latent_l2"] = round(float(param.l2_to_init()), 4)
    return finish(res, pic, inv, edited, box, gen, settings, t0, mask, region)


def where_to_edit(
    where: Any, perceptors, inv, box, photo_hw: tuple[int, int], source: str | None, settings: dict
) -> tuple[Any, Any]:
    """The soft mask the edit may change ``(1, 1, h, w)`` and the subject region its locality is measured
    on ``(1, 1, H, W)`` bool (the ``where`` box itself, or the mask >= 0.5); records both in ``settings``."""
    import torch

    from vecgen.api.edit_mask import box_mask, parse_where, region_at, subject_mask

    spec = parse_where(where, photo_hw)
    if spec == "auto" and not perceptors:  # the mapper without a perceptor: nothing to see the subject with
        spec = "all"
        settings["mask_note"] = "no perceptor to find the subject (give --clip or --where X,Y,W,H): edits everywhere"
    mask, info = subject_mask(spec if isinstance(spec, str) else where, perceptors, inv.target, box, photo_hw, source)
    settings.update(info)
    if isinstance(spec, tuple):
        x, y, w, h = spec
        region = box_mask(photo_hw, (x, y, w, h)).to(torch.bool)
    else:
        region = region_at(mask, box, photo_hw)
    return mask, region


def _name(obj: Any) -> str:
    return str(obj) if isinstance(obj, (str, Path)) else f"<{type(obj).__name__}>"


VERB = Verb(
    "edit",
    edit,
    "edit a photo by text through a generator (StyleCLIP: optimize, global, mapper); writes PNG",
    outputs=(".png",),
    default_output="edited.png",
    config=EditConfig,
    description="Edit a photo by text through a frozen generator (StyleCLIP). The photo is inverted first "
    "(--encoder: encode and refine; else by optimization), then edited by latent optimization "
    "(--method optimize, default), a precomputed global direction (--method global, --alpha, "
    "--beta) or a trained mapper (--mapper FILE; train one with vecgen edit-mapper TEXT "
    "--images DIR, or vecgen edit --train-mapper TEXT --images DIR). Only the subject changes "
    "(--where: auto = where the perceptor sees the photo's class, a box X,Y,W,H, or all), and "
    "the change goes back into the photo at its own resolution.",
)
