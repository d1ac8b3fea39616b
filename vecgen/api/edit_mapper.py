"""``edit-mapper``: StyleCLIP's latent mapper, trained once per text over many inverted photos, then one forward
pass per edit.

    >>> import vecgen
    >>> res = vecgen.edit_mapper("a leopard", images="photos/", generator="taef2", encoder="taef2", steps=200)
    >>> res.save_all("leopard_mapper.safetensors")   # the mapper, and its before/after grid as .png beside it
    >>> vecgen.edit(photo="cat.jpg", generator="taef2", encoder="taef2", mapper="leopard_mapper.safetensors")

Training runs through the one engine loop (:class:`vecgen.params.mapper.MapperTraining`):
CLIP/classifier terms toward the text over cutouts of each edited render
(or the directional term against ``source``), plus ``l2`` times the mean
squared latent step (StyleCLIP's mapper: 0.8). ``train_mapper`` is the same
function under its older name.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vecgen.api._run import Common, clip_terms, common, make_views, run
from vecgen.api.result import Result
from vecgen.api.run_options import RunConfig
from vecgen.api.verb import Verb
from vecgen.config import IMAGE_SUFFIXES, VerbConfig, like, option, verb_function
from vecgen.errors import VecgenError
from vecgen.options import LIMITS, available_memory, check_suffix, check_writable, parse_size

if TYPE_CHECKING:
    from torch import Tensor

MAPPER_SUFFIXES = (".safetensors",)
#: StyleCLIP's mapper L2 weight (on the mean squared step).
MAPPER_L2 = 0.8
#: Widest mapper ``--hidden`` (a conv mapper of this width holds ~150 M weights).
MAX_HIDDEN = 4096


def _need_generator(values: dict[str, Any]) -> None:
    from vecgen.api.generate import need_generator

    need_generator(values)


@dataclass(frozen=True)
class EditMapperConfig(VerbConfig):
    """Every option of :func:`edit_mapper` (see :mod:`vecgen.config`)."""

    cross_checks = (_need_generator,)

    target: str | None = option(
        None,
        'the text the mapper edits toward, e.g. "a leopard"',
        positional=True,
        required=True,
        metavar="TEXT",
        section="main",
    )
    images: Any = option(
        None,
        "training photos: a folder or photo files (repeatable)",
        "image",
        multiple=True,
        required=True,
        metavar="DIR|FILE",
        section="main",
    )
    generator: Any = option(
        None,
        "taef2[:FILE], stylegan2:FILE or script:FILE (required)",
        "object",
        required=True,
        metavar="SPEC",
        section="main",
    )
    encoder: Any = option(
        None,
        "taef2[:FILE] or script:FILE: invert by encoding (default: invert by optimization)",
        "object",
        metavar="SPEC",
    )
    source: str | None = option(None, 'what the photos show now, e.g. "a cat": a directional mapper')
    steps: int | None = like(RunConfig, "steps", 200)
    batch: int = option(2, "latents per training step", "int", minimum=1, maximum=LIMITS["batch"])
    lr: float = option(0.002, "learning rate", "float", above=0)
    l2: float = option(MAPPER_L2, "weight of the mean squared latent step", "float", minimum=0)
    hidden: int | None = option(
        None, "mapper width (default 64 for TAEF2, the latent size for StyleGAN2)", "int", minimum=1, maximum=MAX_HIDDEN
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
    size: Any = like(RunConfig, "size", None, help="TAEF2 training size WxH (default 256x256)")
    clip: str = like(RunConfig, "clip")
    cutouts: int = like(RunConfig, "cutouts")
    seed: int = like(RunConfig, "seed")
    device: str | None = like(RunConfig, "device")
    views: str = like(RunConfig, "views")
    snapshots: str | Path | None = like(RunConfig, "snapshots")
    every: int = like(RunConfig, "every")
    checkpoint: str | Path | None = like(RunConfig, "checkpoint")
    resume: str | Path | None = like(RunConfig, "resume")
    quiet: bool = like(RunConfig, "quiet")

    def run_values(self, **runtime: Any) -> dict[str, Any]:
        """Every option, plus the Python-only ``runtime`` values, as :func:`vecgen.api._run.common` reads them."""
        return {**self.asdict(), "prompt": self.target, **runtime}


def mapper_bytes(w_shape: tuple[int, ...], hidden: int | None, batch: int, depth: int = 4) -> int:
    """Estimated bytes to train a :class:`~vecgen.params.mapper.LatentMapper` on ``(batch, n, *w_shape)``
    latents: its weights four times (weights, gradients, two AdamW moments) plus a batch's activations."""
    if len(w_shape) == 3:  # conv mapper: C -> hidden -> hidden -> C, 3x3
        c, h, w = w_shape
        width = int(hidden or 64)
        weights = 9 * (c * width + width * width + width * c)
        acts = 3 * batch * width * h * w
    else:
        d = math.prod(w_shape)
        width = int(hidden or min(d, 512))
        weights = d * width + max(0, depth - 2) * width * width + width * d
        acts = 3 * batch * (depth * width + d)
    return 4 * (4 * weights + 2 * acts)


def grid_path(output: str | Path) -> Path:
    """The before/after grid that goes with a mapper file: ``m.safetensors`` -> ``m.png``."""
    return Path(output).with_suffix(".png")


def _files(output: str | Path, options: dict[str, Any]) -> list[str]:
    return [str(grid_path(output)), str(output)]


def photo_list(images: Any) -> list:
    """A folder (its image files, sorted), one file, or a list of files / pictures -> the photos."""
    if images is None:
        raise VecgenError("--images is required (a folder of photos, or photo files)")
    items = [images] if isinstance(images, (str, Path)) else list(images)
    out: list = []
    for item in items:
        p = Path(item) if isinstance(item, (str, Path)) else None
        if p is not None and p.is_dir():
            out += sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file())
        elif p is not None and not p.exists():
            raise VecgenError(f"--images: {p} not found")
        else:
            out.append(item)
    if not out:
        raise VecgenError(f"--images: no photos ({', '.join(IMAGE_SUFFIXES)}) in {images}")
    return out


def _w_plus(gen, inv) -> Tensor:
    import torch

    from vecgen.params.latent import Latent

    with torch.no_grad():
        return Latent(gen, space=inv.space, init=inv.latent, truncation=1.0).w_plus().detach()


@verb_function(EditMapperConfig, output=None, perceptors=None, warn=None, callbacks=None)
def edit_mapper(
    cfg: EditMapperConfig,
    *,
    output: str | Path | None = None,
    perceptors=None,
    warn: Callable[[str], None] | None = None,
    callbacks=None,
) -> Result:
    """Train a latent mapper toward ``target`` over the inverted ``images``; returns a :class:`Result`.

    ``res.save("m.safetensors")`` writes the mapper (text and generator in its metadata);
    the result's image is a grid: inverted photos (top) and their mapped edits (bottom),
    the companion ``m.png`` of ``res.save_all("m.safetensors")``. ``output``: save the mapper
    there too. TAEF2 trains at ``size`` (default 256x256; the conv mapper then edits photos of
    any size). Every option: :class:`EditMapperConfig`.
    """
    import torch

    from vecgen.api.edit_invert import invert, load_encoder_for, prepare_photo, read_photo
    from vecgen.api.generate import load_generator_for, spec_text
    from vecgen.io import tensor_to_pil
    from vecgen.losses import DirectionalClipTerm, LatentL2
    from vecgen.params.mapper import LatentMapper, MapperTraining, generator_fingerprint, save_mapper

    target, generator, encoder, size, clip = cfg.target, cfg.generator, cfg.encoder, cfg.size, cfg.clip
    source, hidden, invert_steps, invert_lr, perceptual = (
        cfg.source,
        cfg.hidden,
        cfg.invert_steps,
        cfg.invert_lr,
        cfg.perceptual,
    )
    if target is None or not str(target).strip():
        raise VecgenError("the mapper needs a non-empty target text")
    check_suffix(output, MAPPER_SUFFIXES, "the mapper")
    check_writable(output)
    batch, l2, lr = int(cfg.batch), float(cfg.l2), float(cfg.lr)
    files = photo_list(cfg.images)
    opts: Common = common(cfg.run_values(perceptors=perceptors, warn=warn, callbacks=callbacks))
    pics = [read_photo(f) for f in files]
    gen = load_generator_for(generator, opts.device, None)
    enc = load_encoder_for(encoder, opts.device)
    if getattr(gen, "kind", "") == "taef2":
        w, h = parse_size(size if size is not None else 256)
        gen.set_image_size((h, w))
    perceptors = opts.load_perceptors()
    t0 = time.perf_counter()
    invs = []
    with torch.no_grad():
        hw = tuple(gen.synthesize(gen.to_w_plus(gen.mean_latent().to(gen.device))).shape[-2:])
    for pic in pics:
        tgt, _ = prepare_photo(pic, hw)
        invs.append(
            invert(
                gen,
                tgt,
                encoder=enc,
                space="wplus",
                steps=invert_steps,
                lr=invert_lr,
                perceptors=perceptors,
                perceptual=perceptual,
                seed=opts.seed,
                quiet=True,
            )
        )
    invert_s = time.perf_counter() - t0
    bank = torch.cat([_w_plus(gen, inv) for inv in invs])
    need, free = mapper_bytes(tuple(bank.shape[2:]), hidden, batch), available_memory(opts.device)
    if free is not None and need > free:
        raise VecgenError(
            f"a mapper of --hidden {hidden or 'default'} at --batch {batch} needs about "
            f"{need / 2**30:.1f} GiB, but {free / 2**30:.1f} GiB is free on {opts.device}; lower "
            f"--hidden or --batch (README, Limits)"
        )
    param = MapperTraining(
        gen, bank, mapper=LatentMapper(tuple(bank.shape[2:]), hidden), batch=batch, lr=lr, seed=opts.seed
    )
    terms: list
    if source is not None and str(source).strip():
        terms = [DirectionalClipTerm(p, str(source).strip(), [str(target).strip()], weight=w) for p, w in perceptors]
    else:
        source = None
        terms = clip_terms(opts)
    if l2 > 0:
        terms.append(LatentL2(param, l2))
    settings = {
        "function": "train_mapper",
        "prompt": target,
        "source": source,
        "generator": spec_text(generator),
        "encoder": None if encoder is None else str(encoder),
        "images": len(files),
        "steps": opts.steps,
        "batch": batch,
        "lr": lr,
        "l2": l2,
        "clip": clip,
        "cutouts": opts.cutouts,
        "seed": opts.seed,
        "size": [int(hw[1]), int(hw[0])],
        "inversion_psnr": round(sum(i.psnr for i in invs) / len(invs), 2),
        "invert_s": round(invert_s, 2),
    }
    t1 = time.perf_counter()
    res = run(param, opts, settings, terms=terms, views=make_views(opts))
    settings["train_s"] = round(time.perf_counter() - t1, 2)
    with torch.no_grad():
        shown = bank[:4]
        before = gen.synthesize(shown)
        after = gen.synthesize(param.apply(shown))
        grid = torch.cat([torch.cat(list(before), -1), torch.cat(list(after), -1)], -2)[None]
    res.image = tensor_to_pil(grid)
    meta = {
        "target": str(target).strip(),
        "source": source,
        "generator": spec_text(generator),
        "generator_kind": gen.kind,
        "generator_fingerprint": generator_fingerprint(gen),
        "latent_shape": list(gen.latent_shape),
        "clip": clip,
        "steps": len(res.history),
        "l2": l2,
        "images": len(files),
    }
    res.writers[".safetensors"] = lambda p: save_mapper(p, param.mapper, meta)
    res.extras.update(mapper=param.mapper, bank=bank, generator=gen)
    res.companions = lambda out: [grid_path(out)]
    if output is not None:
        res.save(output)
    return res


#: The older name of :func:`edit_mapper` (``vecgen.api.edit_mapper.train_mapper``).
train_mapper = edit_mapper


def mapper_edit(gen, inv, mapper: str | Path, opts, settings: dict) -> tuple[Result, Tensor]:
    """``vecgen edit --mapper FILE``: one forward pass -> ``(Result, edited render (1, 3, h, w))``."""
    import torch

    from vecgen.params.mapper import generator_fingerprint, load_mapper

    net, meta = load_mapper(mapper)
    fp = generator_fingerprint(gen)
    if meta.get("generator_kind") != gen.kind or meta.get("generator_fingerprint") != fp:
        raise VecgenError(
            f"{mapper}: mapper trained for another generator ({meta.get('generator_kind')} "
            f"{meta.get('generator')}, weights {meta.get('generator_fingerprint')}); this one is "
            f"{gen.kind}, weights {fp}"
        )
    w = _w_plus(gen, inv)
    net = net.to(w.device)
    t1 = time.perf_counter()
    with torch.no_grad():
        edited = gen.synthesize(w + net(w))
    apply_ms = (time.perf_counter() - t1) * 1000.0
    text = meta.get("target")  # a prompt is refused with a mapper (EditConfig): the mapper's own text is the edit
    settings.update(
        mapper=str(mapper),
        prompt=settings.get("prompt") or text,
        mapper_target=text,
        mapper_source=meta.get("source"),
        apply_ms=round(apply_ms, 1),
    )
    res = Result(image=None, settings=settings)
    return res, edited


VERB = Verb(
    "edit-mapper",
    edit_mapper,
    "train a StyleCLIP latent mapper toward a text over photos; writes safetensors (+ a before/after grid PNG)",
    outputs=MAPPER_SUFFIXES,
    default_output="mapper.safetensors",
    gallery=False,
    config=EditMapperConfig,
    files=_files,
    description="Train StyleCLIP's latent mapper toward TEXT over the inverted --images (a folder or "
    "files), through a frozen --generator; -o FILE.safetensors, with a before/after grid "
    "beside it as FILE.png. Apply it with vecgen edit PHOTO --mapper FILE.safetensors "
    "(one forward pass per photo).",
)
