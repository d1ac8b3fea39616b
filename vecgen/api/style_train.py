"""Fast-mode style transfer: one StyleNet per text, trained over a folder of photos, then one forward pass each.

    >>> import vecgen
    >>> vecgen.style_train("photos/", "chain mail", output="chainmail.safetensors", steps=500)
    >>> vecgen.style("holiday.jpg", model="chainmail.safetensors").save("holiday_chainmail.png")

Each step renders a batch of random crops of the folder's images (at the
working size) and scores them with the same terms as ``vecgen style``: the
directional and patch CLIP terms per crop, content, TV. The training runs
through the one engine loop, so ``checkpoint=``/``resume=`` continue it
exactly (the crop sampler's state is checkpointed too).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vecgen.api._run import Common, common, run
from vecgen.api.result import Result
from vecgen.api.run_options import RunConfig
from vecgen.api.style import (
    CANVAS,
    MAX_WORK_SIZE,
    MODEL_SUFFIX,
    StyleConfig,
    _something_pulls,
    _source_text,
    content_perceptor,
    load_style_image,
    style_terms,
    style_weights,
    working_copy,
)
from vecgen.api.style_memory import check_net_memory, check_patch_memory
from vecgen.api.verb import Verb
from vecgen.config import IMAGE_SUFFIXES, OptionError, VerbConfig, like, option, verb_function
from vecgen.errors import VecgenError
from vecgen.options import LIMITS, check_suffix, check_writable

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


def _crop_fits(values: dict[str, Any]) -> None:
    crop, work = values.get("crop"), values.get("work_size")
    if crop is not None and work is not None and int(crop) > int(work):
        raise OptionError("crop", f"--crop {crop} is larger than --work-size {work}")


def _needs_text(values: dict[str, Any]) -> None:
    prompt = values.get("prompt")
    if prompt is None or not str(prompt).strip():
        raise OptionError("prompt", 'style-train needs a text, e.g. vecgen style-train photos/ "chain mail"')


@dataclass(frozen=True)
class StyleTrainConfig(VerbConfig):
    """Every option of :func:`style_train` (see :mod:`vecgen.config`); shared ones are :class:`StyleConfig`'s."""

    cross_checks = (_needs_text, _crop_fits, _something_pulls, _source_text)

    folder: str | Path = option(
        None,
        "folder of training photos (" + " ".join(IMAGE_SUFFIXES) + ")",
        "folder",
        positional=True,
        required=True,
        metavar="DIR",
        section="main",
    )
    prompt: str = option(
        None, 'the style, e.g. "chain mail"', "text", positional=True, required=True, metavar="TEXT", section="main"
    )
    output: str | Path | None = option(None, f"also save the network here ({MODEL_SUFFIX})", "output", cli=False)
    source: str = like(StyleConfig, "source")
    steps: int = like(RunConfig, "steps", 500)
    batch: int = option(4, "training crops per step", "int", minimum=1, maximum=LIMITS["batch"])
    crop: int = option(
        256, "side of the training crops in px (at most --work-size)", "int", minimum=16, maximum=MAX_WORK_SIZE
    )
    work_size: int = like(
        StyleConfig, "work_size", 512, default_text=None, help="short side each photo is resized to first"
    )
    crops: int = like(StyleConfig, "crops", 16, default_text=None, help="patch crops per training crop")
    crop_size: int = like(StyleConfig, "crop_size", 128, default_text=None)
    threshold: float = like(StyleConfig, "threshold")
    patch_loss: str = like(StyleConfig, "patch_loss")
    patch_px: int | None = like(StyleConfig, "patch_px")
    patch_weight: float = like(StyleConfig, "patch_weight")
    dir_weight: float = like(StyleConfig, "dir_weight")
    content_weight: float = like(StyleConfig, "content_weight")
    tv_weight: float = like(StyleConfig, "tv_weight")
    lr: float = like(StyleConfig, "lr", 5e-4, default_text=None, help="Adam learning rate")
    content_model: str = like(StyleConfig, "content_model")
    clip: str = like(RunConfig, "clip")
    seed: int = like(RunConfig, "seed")
    device: str | None = like(RunConfig, "device")
    checkpoint: str | Path | None = like(RunConfig, "checkpoint")
    resume: str | Path | None = like(RunConfig, "resume")
    every: int = like(RunConfig, "every")
    snapshots: str | Path | None = like(RunConfig, "snapshots")
    quiet: bool = like(RunConfig, "quiet")


@verb_function(StyleTrainConfig, perceptors=None, warn=None, callbacks=None)
def style_train(
    cfg: StyleTrainConfig, *, perceptors=None, warn: Callable[[str], None] | None = None, callbacks=None
) -> Result:
    """Train one StyleNet for ``prompt`` over the images of ``folder``; returns a Result whose ``.safetensors``
    writer saves the network (``output``: written at the end) and whose image is the first photo stylized.

    Each of ``steps`` steps takes ``batch`` random ``crop`` px crops of the
    photos (each resized to ``work_size`` on the short side first) and scores
    every crop with ``crops`` patches; the other options are those of
    :func:`vecgen.style`. Every option: :class:`StyleTrainConfig`.
    """
    from vecgen.params.stylenet import StyleNetBatches, save_model

    folder, prompt, output, source, clip = cfg.folder, cfg.prompt, cfg.output, cfg.source, cfg.clip
    check_suffix(output, (MODEL_SUFFIX,), "style-train's output")
    check_writable(output)
    batch, crop, work, crops = int(cfg.batch), int(cfg.crop), int(cfg.work_size), int(cfg.crops)
    crop_size = int(cfg.crop_size)
    threshold = float(cfg.threshold)
    weights = style_weights(cfg)
    lr = float(cfg.lr)
    files = folder_images(folder)
    opts: Common = common(
        {
            **cfg.asdict(),
            "perceptors": perceptors,
            "warn": warn,
            "callbacks": callbacks,
            "prompt": str(prompt),
            "cutouts": 0,
        }
    )
    check_net_memory(opts, batch * crop * crop, f"--batch {batch} crops of {crop} px")
    import torch

    images = []
    for f in files:  # kept as 8-bit: a folder of photos at 512 px stays a few hundred MB at most
        x = working_copy(load_style_image(f, "training image")[0], work)
        images.append((x * 255).round().to(torch.uint8))
    perceptors = opts.load_perceptors()
    check_patch_memory(opts, crops)
    content_p = content_perceptor(cfg.content_model, perceptors, opts.device, opts.warn)
    param = StyleNetBatches(images, crop=crop, batch=batch, lr=lr, seed=opts.seed, device=opts.device)
    terms = style_terms(
        perceptors,
        content_p,
        prompt=str(prompt),
        source=str(source),
        crops=crops,
        crop_frac=min(1.0, crop_size / CANVAS),
        threshold=threshold,
        weights=weights,
        patch_loss=cfg.patch_loss,
        patch_px=cfg.patch_px,
    )
    settings: dict[str, Any] = {
        "function": "style-train",
        "prompt": opts.prompt,
        "source": str(source),
        "folder": str(folder),
        "images": len(files),
        "steps": opts.steps,
        "batch": batch,
        "crop": crop,
        "work_size": work,
        "crops": crops,
        "crop_size": crop_size,
        "threshold": threshold,
        "patch_loss": cfg.patch_loss,
        "patch_px": cfg.patch_px,
        "weights": weights,
        "lr": lr,
        "clip": clip,
        "content_model": content_p.name,
        "seed": opts.seed,
    }
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


#: The name fast mode had before it was a verb (``from vecgen.api.style_train import train_style``).
train_style = style_train


def _preview(net, x):
    """The first training photo, stylized at its working size (the Result's image)."""
    from vecgen.io import tensor_to_pil

    return tensor_to_pil(net.apply(x, x))


VERB = Verb(
    "style-train",
    style_train,
    "fast-mode style: train one network for a text over a folder of photos; "
    f"writes {MODEL_SUFFIX} (apply it with vecgen style --model)",
    outputs=(MODEL_SUFFIX,),
    default_output="style" + MODEL_SUFFIX,
    gallery=False,
    config=StyleTrainConfig,
    description="Fast-mode style transfer: fit one StyleNet for one text over a folder of photos (random "
    "crops, the same terms as vecgen style), then apply it to any photo in one forward pass "
    f"with vecgen style --model FILE{MODEL_SUFFIX}. Old spelling: vecgen style --train DIR TEXT.",
)
