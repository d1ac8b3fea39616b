"""Fast-mode style transfer: one StyleNet per text, trained over a folder of photos, then one forward pass each.

    >>> from vecgen.api.style_train import train_style
    >>> train_style("photos/", "chain mail", output="chainmail.safetensors", steps=500)
    >>> vecgen.style("holiday.jpg", model="chainmail.safetensors").save("holiday_chainmail.png")

Each step renders a batch of random crops of the folder's images (at the
working size) and scores them with the same terms as ``vecgen style``: the
directional and patch CLIP terms per crop, content, TV. The training runs
through the one engine loop, so ``checkpoint=``/``resume=`` continue it
exactly (the crop sampler's state is checkpointed too).
"""
from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vecgen.api._run import Common, common, run
from vecgen.api.result import Result
from vecgen.api.style import (
    CANVAS,
    MODEL_SUFFIX,
    SOURCE,
    WEIGHTS,
    check_crops,
    check_patch_memory,
    check_weights,
    content_perceptor,
    load_style_image,
    style_terms,
    working_copy,
)
from vecgen.errors import VecgenError
from vecgen.options import as_int, check_limit, check_number, check_suffix, check_writable

#: Files a training folder may hold (others are ignored).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif")
#: Most images read from one folder (each is kept at the working size, as 8-bit).
MAX_IMAGES = 2000


def folder_images(folder: str | Path) -> list[Path]:
    """The image files of ``folder`` (sorted); one-line errors for a missing or empty folder."""
    p = Path(folder)
    if not p.is_dir():
        raise VecgenError(f"training folder not found: {p}")
    files = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise VecgenError(f"training folder {p} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    if len(files) > MAX_IMAGES:
        raise VecgenError(f"training folder {p} holds {len(files)} images, over the limit of {MAX_IMAGES}")
    return files


def _progress(batch: int, steps: int, done: int, quiet: bool) -> Callable | None:
    """A callback drawing a progress bar in images per second (the engine's own counts steps)."""
    if quiet:
        return None
    from tqdm.auto import tqdm

    bar = tqdm(total=steps * batch, initial=done * batch, unit="img", leave=False, dynamic_ncols=True)
    start = [time.perf_counter(), done]

    def update(step: int, param, values) -> None:
        bar.update(batch)
        rate = (step - start[1]) * batch / max(1e-9, time.perf_counter() - start[0])
        bar.set_postfix(loss=f"{values['total']:.3f}", img_s=f"{rate:.2f}", refresh=False)
        if step >= steps:
            bar.close()

    return update


def train_style(folder: str | Path, prompt: str, *, output: str | Path | None = None, source: str = SOURCE,
                steps: int = 500, batch: int = 4, crop: int = 256, work_size: int = 512, crops: int = 16,
                crop_size: int = 128, threshold: float = 0.7, patch_weight: float = WEIGHTS["patch"],
                dir_weight: float = WEIGHTS["direction"], content_weight: float = WEIGHTS["content"],
                tv_weight: float = WEIGHTS["tv"], lr: float = 5e-4, content_model: str = "auto",
                clip: str = "auto", seed: int = 0, device: str | None = "auto",
                checkpoint: str | Path | None = None, resume: str | Path | None = None, every: int = 10,
                snapshots: str | Path | None = None, quiet: bool = False, perceptors=None,
                warn: Callable[[str], None] | None = None, callbacks=None) -> Result:
    """Train one StyleNet for ``prompt`` over the images of ``folder``; returns a Result whose ``.safetensors``
    writer saves the network (``output``: written at the end) and whose image is the first photo stylized.

    Each of ``steps`` steps takes ``batch`` random ``crop`` px crops of the
    photos (each resized to ``work_size`` on the short side first) and scores
    every crop with ``crops`` patches; the other options are those of
    :func:`vecgen.api.style`.
    """
    from vecgen.params.stylenet import StyleNetBatches, save_model

    if prompt is None or not str(prompt).strip():
        raise VecgenError('--train needs a text, e.g. vecgen style --train photos/ "chain mail"')
    check_suffix(output, (MODEL_SUFFIX,), "--train's output")
    check_writable(output)
    batch = check_limit("batch", as_int("--batch", batch, minimum=1))
    crop = as_int("--crop", crop, minimum=16)
    work = as_int("--work-size", work_size, minimum=16)
    if crop > work:
        raise VecgenError(f"--crop {crop} is larger than --work-size {work}")
    crops = check_crops(crops)
    crop_size = as_int("--crop-size", crop_size, minimum=8)
    threshold = check_number("--threshold", threshold)
    weights = check_weights(patch_weight, dir_weight, content_weight, tv_weight)
    lr = check_number("--lr", lr, positive=True)
    files = folder_images(folder)
    opts: Common = common({**locals(), "prompt": str(prompt), "cutouts": 0})
    import torch

    images = []
    for f in files:  # kept as 8-bit: a folder of photos at 512 px stays a few hundred MB at most
        x = working_copy(load_style_image(f, "training image")[0], work)
        images.append((x * 255).round().to(torch.uint8))
    perceptors = opts.load_perceptors()
    check_patch_memory(opts, crops)
    content_p = content_perceptor(content_model, perceptors, opts.device, opts.warn)
    param = StyleNetBatches(images, crop=crop, batch=batch, lr=lr, seed=opts.seed, device=opts.device)
    terms = style_terms(perceptors, content_p, lambda: param.content, prompt=str(prompt), source=str(source),
                        crops=crops, crop_frac=min(1.0, crop_size / CANVAS), threshold=threshold, weights=weights)
    settings: dict[str, Any] = {
        "function": "style-train", "prompt": opts.prompt, "source": str(source), "folder": str(folder),
        "images": len(files), "steps": opts.steps, "batch": batch, "crop": crop, "work_size": work,
        "crops": crops, "crop_size": crop_size, "threshold": threshold, "weights": weights, "lr": lr,
        "clip": clip, "content_model": content_p.name, "seed": opts.seed}
    done = int(opts.resume_state.get("step", 0)) if opts.resume_state else 0
    bar = _progress(batch, opts.total_steps(), done, opts.quiet)
    if bar is not None:
        opts.callbacks.insert(0, bar)
    opts.quiet = True  # the images/s bar above replaces the engine's steps bar
    res = run(param, opts, settings, terms=terms)
    meta = {**res.metadata, "work_size": str(work)}
    res.writers[MODEL_SUFFIX] = lambda p: save_model(param.net, p, meta)
    first = images[0].float() / 255
    res.image = _preview(param.net, first)
    res.extras.update(net=param.net)
    if output is not None:
        res.save(output)
    return res


def _preview(net, x):
    """The first training photo, stylized at its working size (the Result's image)."""
    from vecgen.io import tensor_to_pil

    return tensor_to_pil(net.apply(x, x))


def defaults() -> dict[str, Any]:
    """:func:`train_style`'s keyword options and defaults (the CLI fills in only what the user gave)."""
    return {n: p.default for n, p in inspect.signature(train_style).parameters.items()
            if p.default is not inspect.Parameter.empty}
