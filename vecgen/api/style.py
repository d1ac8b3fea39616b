"""``style``: text-driven style transfer (CLIPstyler) of a photo, by a StyleNet through the one engine loop.

    >>> import vecgen
    >>> vecgen.style("photo.jpg", "oil painting of a stormy sea", steps=200).save("out.png")
    >>> vecgen.style("holiday.jpg", model="chainmail.safetensors").save("holiday_chainmail.png")  # fast mode

The network (:class:`vecgen.params.stylenet.StyleNet`) is optimized on the
photo at a working size and applied to it at its full size (tiled, so a
16-megapixel photo fits in memory); the output keeps the input's size, aspect
ratio and alpha channel. Terms: directional CLIP of the whole output, patch
CLIP over random perspective-warped crops with threshold rejection
(:mod:`vecgen.losses.patch`), content (:mod:`vecgen.losses.content`) and
total variation. Fast mode (one network per text over a folder) is in
:mod:`vecgen.api.style_train`.
"""
from __future__ import annotations

import importlib.util
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vecgen.api._run import Common, common, load_perceptors, run
from vecgen.api.result import Result
from vecgen.api.verb import Verb
from vecgen.errors import VecgenError
from vecgen.options import as_int, check_number, check_suffix, check_writable

SOURCE = "a photo"
#: ``--quality`` presets: what ``steps``, ``crops`` and ``work_size`` are when left on auto.
#: ``normal`` is CLIPstyler's (200 steps, 64 crops, 512 px); ``draft`` is for a quick look on a CPU.
QUALITY = {"draft": {"steps": 60, "crops": 16, "work_size": 256},
           "normal": {"steps": 200, "crops": 64, "work_size": 512},
           "best": {"steps": 300, "crops": 96, "work_size": 512}}
#: The paper's weights for patch and directional terms; content and TV rescaled to our normalised terms
#: (README, Style transfer: the content term is a relative feature error, TV a mean absolute difference).
WEIGHTS = {"patch": 9000.0, "direction": 500.0, "content": 3000.0, "tv": 3000.0}
#: The patch side is ``crop_size`` px of a canvas whose short side is this (CLIPstyler: 128 of 512).
CANVAS = 512
#: Longest working side: a panorama's working copy stays bounded too.
MAX_WORK_SIDE = 2048
#: The content model ``auto`` picks when the EfficientNet-Lite package imports.
CONTENT_AUTO = "efficientnet-lite0"
MODEL_SUFFIX = ".safetensors"
#: Most patch crops per step (each is one perceptor pass with its backward).
MAX_CROPS = 1024


# ----------------------------------------------------------------------------- images in and out
def load_style_image(image: Any, what: str = "image"):
    """A photo -> ``(rgb (1, 3, H, W) float32 in [0, 1], alpha PIL "L" image or None, label)``.

    Paths go through :func:`vecgen.io.open_image` (EXIF rotation, size limit,
    one-line errors); PIL images and ``(1, 3, H, W)`` / ``(3, H, W)`` tensors are taken as they are.
    Alpha is kept apart (the colours under it are styled, the alpha is put back unchanged).
    """
    import torch
    from PIL import Image

    from vecgen.io import _pil_to_rgb_array, open_image, pil_to_tensor

    label = type(image).__name__
    if isinstance(image, (str, Path)):
        label = str(image)
        image = open_image(image, what)
    if isinstance(image, torch.Tensor):
        x = image.detach().float().cpu()
        x = x[None] if x.dim() == 3 else x
        if x.dim() != 4 or x.shape[:2] != (1, 3) or min(x.shape[-2:]) < 1:
            raise VecgenError(f"{what} tensor must be (1, 3, H, W), got {tuple(image.shape)}")
        if not torch.isfinite(x).all() or float(x.min()) < 0 or float(x.max()) > 1:
            raise VecgenError(f"{what} tensor values must lie in [0, 1]")
        return x.contiguous(), None, label
    if not isinstance(image, Image.Image):
        raise VecgenError(f"{what} must be a path, a PIL image or a tensor, got {type(image).__name__}")
    if min(image.size) < 1:
        raise VecgenError(f"{what} {label} is empty ({image.width}x{image.height})")
    alpha = None
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        alpha, image = rgba.getchannel("A"), rgba.convert("RGB")
        if alpha.getextrema() == (255, 255):
            alpha = None  # fully opaque: nothing to keep
    if image.mode in ("I", "I;16", "I;16L", "I;16B", "I;16N", "F"):  # 16-bit / float greyscale
        import numpy as np

        arr = np.ascontiguousarray(_pil_to_rgb_array(image), dtype=np.float32)
        return torch.from_numpy(arr).permute(2, 0, 1)[None].contiguous(), alpha, label
    return pil_to_tensor(image), alpha, label


def working_copy(x, work_size: int):
    """``x`` ``(1, 3, H, W)`` resized (antialiased) to ``work_size`` on the short side; never enlarged."""
    import torch.nn.functional as F

    h, w = x.shape[-2:]
    k = min(1.0, work_size / min(h, w), MAX_WORK_SIDE / max(h, w))
    if k >= 1.0:
        return x.clone()
    size = (max(1, round(h * k)), max(1, round(w * k)))
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True).clamp(0, 1)


def to_pil(x, alpha=None):
    """``(1, 3, H, W)`` in ``[0, 1]`` -> PIL RGB, or RGBA with ``alpha`` put back.

    Converts in place (``x`` is consumed): a 16 MP float image is 190 MB, and
    each temporary copy would add as much to the peak memory.
    """
    import torch
    from PIL import Image

    arr = x.detach()[0].nan_to_num_(0.0).clamp_(0.0, 1.0).mul_(255.0).round_().to(torch.uint8)
    img = Image.fromarray(arr.permute(1, 2, 0).contiguous().numpy(), "RGB")
    if alpha is not None:
        img.putalpha(alpha)
    return img


# ----------------------------------------------------------------------------- terms
def content_perceptor(spec: str, perceptors: list, device, warn=None):
    """The perceptor of the content loss: ``spec``, or for ``auto`` EfficientNet-Lite0 when its package
    imports, else the first ``--clip`` perceptor. A spec that names a loaded perceptor reuses it."""
    spec = str(spec or "auto").strip()
    if spec == "auto":
        if importlib.util.find_spec("efficientnet_lite_pytorch") is not None:
            spec = CONTENT_AUTO
        else:
            return perceptors[0][0]
    for p, _ in perceptors:
        if p.name == spec:
            return p
    return load_perceptors(spec, device, warn)[0][0]


def style_terms(perceptors: list, content_p, content: Callable, *, prompt: str, source: str, crops: int,
                crop_frac: float, threshold: float, weights: dict[str, float]) -> list:
    """Directional + patch terms per perceptor (weighted by its ``--clip`` weight), content, TV."""
    from vecgen.losses.content import ContentTerm
    from vecgen.losses.image import total_variation
    from vecgen.losses.patch import GlobalDirectionTerm, PatchDirectionTerm, StyleDirection
    from vecgen.objective import FnTerm

    terms: list = []
    for p, w in perceptors:
        d = StyleDirection(p, source, prompt, content)
        if weights["direction"]:
            terms.append(GlobalDirectionTerm(d, weight=weights["direction"] * w))
        if weights["patch"]:
            terms.append(PatchDirectionTerm(d, crops=crops, crop_frac=crop_frac, threshold=threshold,
                                            weight=weights["patch"] * w))
    if weights["content"]:
        terms.append(ContentTerm(content_p, content, weight=weights["content"]))
    if weights["tv"]:
        terms.append(FnTerm("tv", total_variation, weight=weights["tv"]))
    return terms


def check_patch_memory(opts: Common, crops: int) -> None:
    """Refuse, before the first step, patch crops that cannot fit in free memory (the runner's estimate)."""
    from vecgen.losses.patch import CHUNK
    from vecgen.options import BYTES_PER_VIEW_PIXEL, available_memory

    chunk = min(crops, CHUNK)  # the crops one perceptor pass holds at a time
    need = chunk * BYTES_PER_VIEW_PIXEL * sum(p.input_size ** 2 for p, _ in opts.load_perceptors())
    free = available_memory(opts.device)
    if free is not None and need > free:
        raise VecgenError(f"{crops} patch crops need about {need / 2**30:.1f} GiB, but {free / 2**30:.1f} GiB is "
                          f"free on {opts.device}; lower --crops")


def check_weights(patch_weight, dir_weight, content_weight, tv_weight) -> dict[str, float]:
    out = {k: check_number(f"--{k}-weight", v, nonnegative=True)
           for k, v in (("patch", patch_weight), ("dir", dir_weight), ("content", content_weight),
                        ("tv", tv_weight))}
    out["direction"] = out.pop("dir")
    if not (out["patch"] or out["direction"]):
        raise VecgenError("--patch-weight and --dir-weight are both 0: nothing pulls toward the text")
    return out


def check_crops(crops: Any) -> int:
    n = as_int("--crops", crops, minimum=1)
    if n > MAX_CROPS:
        raise VecgenError(f"--crops {n} is over the limit of {MAX_CROPS}")
    return n


def resolve_quality(quality: str, steps, crops, work_size) -> tuple[int, int, int]:
    if quality not in QUALITY:
        raise VecgenError(f"unknown --quality {quality!r} (choose {', '.join(QUALITY)})")
    q = QUALITY[quality]
    crops = check_crops(q["crops"] if crops is None else crops)
    work = as_int("--work-size", q["work_size"] if work_size is None else work_size, minimum=16)
    if work > 4096:
        raise VecgenError(f"--work-size {work} is over the limit of 4096 px")
    return (q["steps"] if steps is None else steps), crops, work


# ----------------------------------------------------------------------------- the verb
#: Options only an optimization uses: with ``model=`` they must stay at their defaults.
OPTIMIZATION_ONLY = ("prompt", "source", "quality", "steps", "work_size", "crops", "crop_size", "threshold",
                     "patch_weight", "dir_weight", "content_weight", "tv_weight", "lr", "content_model", "clip",
                     "seed", "snapshots", "checkpoint", "resume", "callbacks")


def style(image: Any, prompt: str | None = None, *, model: str | Path | None = None, source: str = SOURCE,
          quality: str = "normal", steps: int | None = None, work_size: int | None = None,
          crops: int | None = None, crop_size: int = 128, threshold: float = 0.7,
          patch_weight: float = WEIGHTS["patch"], dir_weight: float = WEIGHTS["direction"],
          content_weight: float = WEIGHTS["content"], tv_weight: float = WEIGHTS["tv"], lr: float = 5e-4,
          content_model: str = "auto", clip: str = "auto", seed: int = 0, device: str | None = "auto",
          tile: int = 512, output: str | Path | None = None, snapshots: str | Path | None = None,
          every: int = 10, checkpoint: str | Path | None = None, resume: str | Path | None = None,
          quiet: bool = False, perceptors=None, warn: Callable[[str], None] | None = None,
          callbacks=None) -> Result:
    """Restyle ``image`` (path, PIL image or ``(1, 3, H, W)`` tensor) toward the text ``prompt``.

    Optimizes a StyleNet on the image at ``work_size`` px on the short side
    for ``steps`` steps (Adam ``lr``, halved at half way), against the
    directional CLIP loss of the whole output (``dir_weight``) and of ``crops``
    random perspective-warped patches of ``crop_size`` px per 512 px
    (``patch_weight``; patches already past ``threshold`` are rejected),
    content (``content_weight``, deep features of ``content_model``: ``auto``
    = EfficientNet-Lite0 when installed, else the first ``clip`` perceptor)
    and total variation (``tv_weight``). ``source``: the text the photo is
    now (CLIP perceptors; classifiers use the photo's own embedding).
    ``quality``: ``draft``/``normal``/``best`` presets of ``steps``, ``crops``,
    ``work_size`` when those are None. The result's image is the input at its
    full size (alpha kept), stylized ``tile`` px at a time; ``res.save("x.png")``,
    ``res.save("x.safetensors")`` (the network, reusable as ``model=``).

    ``model``: a network from :func:`vecgen.api.style_train.train_style` (or a
    ``.safetensors`` saved from a result): one forward pass, no optimization;
    the optimization options must then be left at their defaults.
    """
    from vecgen.params.stylenet import StyleNetImage, save_model

    check_suffix(output, (".png", MODEL_SUFFIX), "style's output")
    check_writable(output)
    tile = as_int("--tile", tile, minimum=16)
    if model is not None:
        return _apply_model(image, model, locals(), device=device, tile=tile, output=output)
    if prompt is None or not str(prompt).strip():
        raise VecgenError("style needs a text, e.g. vecgen style photo.jpg \"oil painting\"")
    steps, crops, work = resolve_quality(quality, steps, crops, work_size)
    crop_size = as_int("--crop-size", crop_size, minimum=8)
    threshold = check_number("--threshold", threshold)
    if not -1.0 <= threshold <= 2.0:
        raise VecgenError(f"--threshold must lie in [-1, 2] (a directional distance), got {threshold:g}")
    weights = check_weights(patch_weight, dir_weight, content_weight, tv_weight)
    lr = check_number("--lr", lr, positive=True)
    if not str(source or "").strip():
        raise VecgenError("--source must be a non-empty text (default \"a photo\")")
    opts: Common = common({**locals(), "prompt": str(prompt), "cutouts": 0})
    full, alpha, label = load_style_image(image)
    content = working_copy(full, work)
    crop_frac = min(1.0, crop_size / CANVAS)
    perceptors = opts.load_perceptors()
    check_patch_memory(opts, crops)
    content_p = content_perceptor(content_model, perceptors, opts.device, opts.warn)
    param = StyleNetImage(content, lr=lr, seed=opts.seed, device=opts.device)
    terms = style_terms(perceptors, content_p, lambda: param.content, prompt=str(prompt), source=str(source),
                        crops=crops, crop_frac=crop_frac, threshold=threshold, weights=weights)
    settings: dict[str, Any] = {
        "function": "style", "prompt": opts.prompt, "source": str(source), "image": label,
        "size": [int(full.shape[-1]), int(full.shape[-2])], "work_size": [int(content.shape[-1]),
                                                                          int(content.shape[-2])],
        "quality": quality, "steps": opts.steps, "crops": crops, "crop_size": crop_size, "threshold": threshold,
        "weights": weights, "lr": lr, "clip": clip, "content_model": content_p.name,
        "content_layers": [layer for t in terms for layer in getattr(t, "layers", ())],
        "seed": opts.seed, "alpha": alpha is not None}
    res = run(param, opts, settings, terms=terms)
    res.extras["work_image"] = res.image
    res.image = to_pil(param.net.apply(full, param.content, tile=tile), alpha)
    meta = {**res.metadata, "work_size": str(work)}
    res.writers[MODEL_SUFFIX] = lambda p: save_model(param.net, p, meta)
    if output is not None:
        res.save(output)
    return res


def _apply_model(image: Any, model: str | Path, values: dict[str, Any], *, device, tile: int,
                 output) -> Result:
    """Fast mode: one forward pass of a trained network over ``image`` at its full size."""
    import json

    from vecgen.options import resolve_device
    from vecgen.params.stylenet import load_model

    defaults = {n: p.default for n, p in inspect.signature(style).parameters.items()}
    for name in OPTIMIZATION_ONLY:
        if values.get(name) != defaults.get(name):
            flag = "the text" if name == "prompt" else f"--{name.replace('_', '-')}"
            raise VecgenError(f"{flag} does not apply with --model (the model was trained with its own); "
                              f"drop it, or optimize without --model")
    dev = resolve_device(device)
    net, meta = load_model(model, dev)
    try:
        work = int(meta.get("work_size", "512"))
    except ValueError:
        raise VecgenError(f"{model}: bad work_size {meta.get('work_size')!r} in the style model") from None
    full, alpha, label = load_style_image(image)
    out = net.apply(full, working_copy(full, work).to(dev), tile=tile)
    try:
        trained = json.loads(meta.get("settings", "{}"))
    except ValueError:
        trained = {}
    settings = {"function": "style", "prompt": meta.get("prompt", ""), "model": str(model), "image": label,
                "size": [int(full.shape[-1]), int(full.shape[-2])], "work_size": work,
                "trained": trained, "seed": trained.get("seed", ""), "alpha": alpha is not None}
    res = Result(image=to_pil(out, alpha), settings=settings)
    if output is not None:
        res.save(output)
    return res


VERB = Verb("style", style, "restyle a photo toward a text (CLIPstyler); --train DIR / --model FILE: fast mode",
            outputs=(".png", MODEL_SUFFIX), default_output="style.png", gallery=False)
