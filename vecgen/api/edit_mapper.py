"""StyleCLIP's latent mapper: trained once per text over many inverted photos, then one forward pass per edit.

    >>> from vecgen.api.edit_mapper import train_mapper
    >>> res = train_mapper("a leopard", images="photos/", generator="taef2", encoder="taef2", steps=200)
    >>> res.save("leopard_mapper.safetensors"); res.save("leopard_mapper.png")   # mapper / before-after grid
    >>> vecgen.edit(photo="cat.jpg", generator="taef2", encoder="taef2", mapper="leopard_mapper.safetensors")

Training runs through the one engine loop (:class:`vecgen.params.mapper.MapperTraining`):
CLIP/classifier terms toward the text over cutouts of each edited render
(or the directional term against ``source``), plus ``l2`` times the mean
squared latent step (StyleCLIP's mapper: 0.8).
"""
from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from vecgen.api._run import Common, clip_terms, common, make_views, run
from vecgen.api.result import Result
from vecgen.errors import VecgenError
from vecgen.options import as_int, check_limit, check_number, check_suffix, check_writable, parse_size

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
MAPPER_SUFFIXES = (".safetensors",)
#: StyleCLIP's mapper L2 weight (on the mean squared step).
MAPPER_L2 = 0.8


def photo_list(images: Any) -> list:
    """A folder (its image files, sorted), one file, or a list of files / pictures -> the photos."""
    if images is None:
        raise VecgenError("--train-mapper needs --images (a folder of photos, or photo files)")
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
    from vecgen.params.latent import Latent

    with torch.no_grad():
        return Latent(gen, space=inv.space, init=inv.latent, truncation=1.0).w_plus().detach()


def train_mapper(target: str, *, images: Any, generator: Any, encoder: Any = None, source: str | None = None,
                 output: str | Path | None = None, steps: int = 200, batch: int = 2, lr: float = 0.002,
                 l2: float = MAPPER_L2, hidden: int | None = None, invert_steps: int | None = None,
                 invert_lr: float | None = None, perceptual: float | None = None, size: Any = None,
                 clip: str = "auto", cutouts: int = 8, seed: int = 0, device: str | None = "auto",
                 views: str = "auto", snapshots: str | Path | None = None, every: int = 10,
                 checkpoint: str | Path | None = None, resume: str | Path | None = None, quiet: bool = False,
                 perceptors=None, warn: Callable[[str], None] | None = None, callbacks=None) -> Result:
    """Train a latent mapper toward ``target`` over the inverted ``images``; returns a :class:`Result`.

    ``res.save("m.safetensors")`` writes the mapper (text and generator in its metadata);
    the result's image is a grid: inverted photos (top) and their mapped edits (bottom).
    TAEF2 trains at ``size`` (default 256x256; the conv mapper then edits photos of any size).
    """
    from vecgen.api.edit_invert import invert, load_encoder_for, prepare_photo, read_photo
    from vecgen.api.generate import load_generator_for, spec_text
    from vecgen.io import tensor_to_pil
    from vecgen.losses import DirectionalClipTerm, LatentL2
    from vecgen.params.mapper import LatentMapper, MapperTraining, generator_fingerprint, save_mapper

    prompt = target
    if target is None or not str(target).strip():
        raise VecgenError("--train-mapper needs a non-empty target text")
    check_suffix(output, MAPPER_SUFFIXES, "the mapper")
    check_writable(output)
    batch = check_limit("batch", as_int("--batch", batch, minimum=1))
    l2 = check_number("--l2", l2, nonnegative=True)
    lr = check_number("--lr", lr, positive=True)
    if hidden is not None:
        hidden = as_int("--hidden", hidden, minimum=1)
    files = photo_list(images)
    opts: Common = common(locals())
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
        invs.append(invert(gen, tgt, encoder=enc, space="wplus", steps=invert_steps, lr=invert_lr,
                           perceptors=perceptors, perceptual=perceptual, seed=opts.seed, quiet=True))
    invert_s = time.perf_counter() - t0
    bank = torch.cat([_w_plus(gen, inv) for inv in invs])
    param = MapperTraining(gen, bank, mapper=LatentMapper(tuple(bank.shape[2:]), hidden), batch=batch, lr=lr,
                           seed=opts.seed)
    terms: list
    if source is not None and str(source).strip():
        terms = [DirectionalClipTerm(p, str(source).strip(), [str(target).strip()],
                                     reference=lambda: param.reference_image, weight=w) for p, w in perceptors]
    else:
        source = None
        terms = clip_terms(opts)
    if l2 > 0:
        terms.append(LatentL2(param, l2))
    settings = {"function": "train_mapper", "prompt": target, "source": source, "generator": spec_text(generator),
                "encoder": None if encoder is None else str(encoder), "images": len(files), "steps": opts.steps,
                "batch": batch, "lr": lr, "l2": l2, "clip": clip, "cutouts": opts.cutouts, "seed": opts.seed,
                "size": [int(hw[1]), int(hw[0])],
                "inversion_psnr": round(sum(i.psnr for i in invs) / len(invs), 2), "invert_s": round(invert_s, 2)}
    t1 = time.perf_counter()
    res = run(param, opts, settings, terms=terms, views=make_views(opts))
    settings["train_s"] = round(time.perf_counter() - t1, 2)
    with torch.no_grad():
        shown = bank[:4]
        before = gen.synthesize(shown)
        after = gen.synthesize(param.apply(shown))
        grid = torch.cat([torch.cat(list(before), -1), torch.cat(list(after), -1)], -2)[None]
    res.image = tensor_to_pil(grid)
    meta = {"target": str(target).strip(), "source": source, "generator": spec_text(generator),
            "generator_kind": gen.kind, "generator_fingerprint": generator_fingerprint(gen),
            "latent_shape": list(gen.latent_shape), "clip": clip, "steps": len(res.history), "l2": l2,
            "images": len(files)}
    res.writers[".safetensors"] = lambda p: save_mapper(p, param.mapper, meta)
    res.extras.update(mapper=param.mapper, bank=bank, generator=gen)
    if output is not None:
        res.save(output)
    return res


def mapper_edit(gen, inv, mapper: str | Path, opts, settings: dict) -> tuple[Result, Tensor]:
    """``vecgen edit --mapper FILE``: one forward pass -> ``(Result, edited render (1, 3, h, w))``."""
    from vecgen.params.mapper import generator_fingerprint, load_mapper

    net, meta = load_mapper(mapper)
    fp = generator_fingerprint(gen)
    if meta.get("generator_kind") != gen.kind or meta.get("generator_fingerprint") != fp:
        raise VecgenError(f"{mapper}: mapper trained for another generator ({meta.get('generator_kind')} "
                          f"{meta.get('generator')}, weights {meta.get('generator_fingerprint')}); this one is "
                          f"{gen.kind}, weights {fp}")
    w = _w_plus(gen, inv)
    net = net.to(w.device)
    t1 = time.perf_counter()
    with torch.no_grad():
        edited = gen.synthesize(w + net(w))
    apply_ms = (time.perf_counter() - t1) * 1000.0
    text = meta.get("target")
    given = settings.get("prompt")
    if given and str(given).strip() != text and opts.warn is not None:
        opts.warn(f"the mapper was trained for {text!r}, not {given!r}; it edits toward {text!r}")
    settings.update(mapper=str(mapper), prompt=settings.get("prompt") or text, mapper_target=text,
                    mapper_source=meta.get("source"), apply_ms=round(apply_ms, 1))
    res = Result(image=None, settings=settings)
    return res, edited
