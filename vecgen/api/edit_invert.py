"""Putting a photo into a generator's latent space (the first step of every ``vecgen edit``).

* :func:`prepare_photo` crops the photo, centred, to the generator's aspect and
  resizes it to the generator's size; :func:`paste` puts an edit back into the
  photo at the photo's own size (only the cropped box changes).
* :func:`invert` finds the latent: with an encoder (TAEF2) it encodes and then
  refines a few steps; without one (StyleGAN2, TorchScript) it starts from the
  mean latent and optimizes the reconstruction. The loss is pixel MSE plus,
  when a perceptor offers ``features()`` (the ImageNet classifiers), a
  perceptual term on its feature taps. Both run through the one engine loop.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from vecgen.errors import VecgenError
from vecgen.params.raster_base import psnr

#: Long side of a TAEF2 edit when ``--size`` is not given (the photo's aspect is kept).
TAEF2_SIDE = 256
#: Refinement steps after encoding, and optimization steps without an encoder.
ENCODER_STEPS, OPTIMIZE_STEPS = 10, 200
#: Learning rates of those steps: small for a refinement that starts close, larger from the mean latent.
ENCODER_LR, OPTIMIZE_LR = 0.01, 0.05
#: Weight of the perceptual term without an encoder (MSE is ~1e-3 near 30 dB; the relative feature error ~0.1).
PERCEPTUAL = 0.1


def read_photo(photo: Any) -> Tensor:
    """A path, PIL image or ``(1, 3, H, W)`` / ``(3, H, W)`` tensor in ``[0, 1]`` -> ``(1, 3, H, W)`` float32."""
    from vecgen.io import load_image, pil_to_tensor

    if photo is None or (isinstance(photo, str) and not photo.strip()):
        raise VecgenError("edit needs a photo (a file, e.g. photo.jpg)")
    if isinstance(photo, (str, Path)):
        return load_image(photo, None) if Path(photo).exists() else _missing(photo)
    if isinstance(photo, Tensor):
        x = photo.detach().float()
        x = x[None] if x.dim() == 3 else x
        if x.dim() != 4 or x.shape[0] != 1 or x.shape[1] != 3:
            raise VecgenError(f"photo tensor must be (1, 3, H, W), got {tuple(photo.shape)}")
        return x.clamp(0, 1).cpu()
    if hasattr(photo, "convert"):
        return pil_to_tensor(photo.convert("RGB"))
    raise VecgenError(f"photo must be an image file or a picture, got {type(photo).__name__}")


def _missing(photo: Any) -> Tensor:
    raise VecgenError(f"photo not found: {photo}")


def load_encoder_for(spec: Any, device):
    """``--encoder`` spec (or a loaded encoder module) -> an ImageEncoder on ``device``; None stays None."""
    if spec is None or spec is False or (isinstance(spec, str) and not spec.strip()):
        return None
    from vecgen.backends.generators.encoders import ImageEncoder, load_encoder

    if isinstance(spec, ImageEncoder):
        return spec.to(device)
    return load_encoder(str(spec), device)


def native_size(gen, photo_hw: tuple[int, int], size: Any = None) -> tuple[int, int]:
    """The ``(H, W)`` the edit runs at: TAEF2 follows ``size`` or the photo's aspect (long side 256,
    multiples of 8, and sets it on the generator); other generators render one fixed size."""
    from vecgen.options import parse_size

    if getattr(gen, "kind", "") == "taef2" and hasattr(gen, "set_image_size"):
        if size is not None:
            w, h = parse_size(size)
        else:
            ph, pw = photo_hw
            k = TAEF2_SIDE / max(ph, pw)
            h, w = (max(8, int(round(v * k / 8)) * 8) for v in (ph, pw))
        gen.set_image_size((h, w))
        return int(h), int(w)
    with torch.no_grad():
        out = gen.synthesize(gen.to_w_plus(gen.mean_latent().to(gen.device)))
    return int(out.shape[-2]), int(out.shape[-1])


def crop_box(photo_hw: tuple[int, int], native_hw: tuple[int, int]) -> tuple[int, int, int, int]:
    """The largest centred box of the native aspect inside the photo: ``(top, left, height, width)``."""
    ph, pw = photo_hw
    nh, nw = native_hw
    if pw * nh > ph * nw:  # the photo is wider: trim the sides
        bh, bw = ph, max(1, round(ph * nw / nh))
    else:
        bh, bw = max(1, round(pw * nh / nw)), pw
    return (ph - bh) // 2, (pw - bw) // 2, bh, bw


def _resize(x: Tensor, hw: tuple[int, int]) -> Tensor:
    if tuple(x.shape[-2:]) == tuple(hw):
        return x
    down = x.shape[-2] > hw[0] or x.shape[-1] > hw[1]
    return F.interpolate(x, size=hw, mode="bilinear", align_corners=False, antialias=down).clamp(0, 1)


def prepare_photo(photo: Tensor, native_hw: tuple[int, int]) -> tuple[Tensor, tuple[int, int, int, int]]:
    """``(1, 3, H, W)`` photo -> ``((1, 3, h, w)`` at the generator's size, the crop box it came from)."""
    top, left, bh, bw = box = crop_box((int(photo.shape[-2]), int(photo.shape[-1])), native_hw)
    return _resize(photo[..., top : top + bh, left : left + bw], native_hw), box


def paste(photo: Tensor, edit: Tensor, box: tuple[int, int, int, int]) -> Tensor:
    """The photo ``(1, 3, H, W)`` with ``edit`` (any size) resized into ``box``: the result at the photo's size."""
    top, left, bh, bw = box
    out = photo.detach().clone().to(edit.device)
    out[..., top : top + bh, left : left + bw] = _resize(edit.detach().float(), (bh, bw))
    return out


# ----------------------------------------------------------------------------- the reconstruction loss
class FeatureTerm:
    """Perceptual reconstruction: relative squared error of a perceptor's feature taps to the photo's.

    ``sum_layers |f(x) - f(photo)|^2 / |f(photo)|^2`` over ``perceptor.features(x, layers)``
    (the classifiers' ``content_layers`` by default).
    """

    def __init__(self, perceptor, target: Tensor, weight: float, layers=None) -> None:
        self.perceptor, self.weight = perceptor, float(weight)
        self.layers = list(layers if layers is not None else getattr(perceptor, "content_layers", None) or []) or None
        self.name = f"features:{getattr(perceptor, 'name', 'perceptor')}"
        with torch.no_grad():
            self.target = {k: v.detach() for k, v in perceptor.features(target, self.layers).items()}

    def __call__(self, ctx) -> Tensor:
        """The relative feature error of the render, summed over the layers.

        Shape:

        - ``ctx.image``: the target photo's shape, ``(1, 3, h, w)``
        - returns: ``()``
        """
        got = self.perceptor.features(ctx.image, self.layers)
        return sum((got[k] - t).pow(2).sum() / t.pow(2).sum().clamp_min(1e-8) for k, t in self.target.items())


def feature_perceptor(perceptors) -> Any | None:
    """The first perceptor of ``(perceptor, weight)`` pairs that has ``features()``, else None."""
    for p, _ in perceptors or []:
        if callable(getattr(p, "features", None)):
            return p
    return None


@dataclass
class Inversion:
    """Where a photo sits in a generator's latent space.

    ``latent``: ``(1, *space_shape)`` in ``space``; ``image``: its render ``(1, 3, h, w)``;
    ``target``: the cropped, resized photo it reconstructs; ``psnr``: of ``image`` to
    ``target`` (dB); ``encoded_psnr``: straight from the encoder (None without one).
    """

    latent: Tensor
    space: str
    image: Tensor
    target: Tensor
    psnr: float
    seconds: float
    how: str
    steps: int
    encoded_psnr: float | None = None
    loss: str = "mse"
    history: list = field(default_factory=list, repr=False)

    def info(self) -> dict[str, Any]:
        """What the settings record about the inversion."""
        return {
            "inversion": self.how,
            "inversion_steps": self.steps,
            "inversion_loss": self.loss,
            "inversion_psnr": round(self.psnr, 2),
            "encoded_psnr": None if self.encoded_psnr is None else round(self.encoded_psnr, 2),
            "inversion_s": round(self.seconds, 2),
        }


def invert(
    gen,
    target: Tensor,
    *,
    encoder=None,
    space: str = "wplus",
    steps: int | None = None,
    lr: float | None = None,
    perceptors=None,
    perceptual: float | None = None,
    seed: int = 0,
    quiet: bool = True,
) -> Inversion:
    """Find the latent whose render reconstructs ``target`` ``(1, 3, h, w)`` (the generator's size).

    ``encoder`` (an :class:`~vecgen.backends.generators.encoders.ImageEncoder`): encode, then
    ``steps`` (default 10) refinement steps at ``lr`` (0.01). Without it: ``steps`` (default 200)
    from the mean latent at ``lr`` (0.05). ``perceptual``: weight of :class:`FeatureTerm` over the
    first perceptor with ``features()`` (default 0 with an encoder, 0.1 without); with none, MSE only.
    """
    from vecgen.engine import optimize
    from vecgen.objective import FnTerm, Objective
    from vecgen.params.latent import Latent

    t0 = time.perf_counter()
    target = target.to(gen.device)
    encoded_psnr = None
    if encoder is not None:
        from vecgen.backends.generators.encoders import check_pair

        check_pair(encoder, gen)
        with torch.no_grad():
            z = encoder.to(gen.device).encode(target)
            if tuple(z.shape[1:]) != tuple(gen.latent_shape):
                raise VecgenError(
                    f"generator/encoder mismatch: the encoder gives latents {tuple(z.shape[1:])}, "
                    f"the generator takes {tuple(gen.latent_shape)}"
                )
            encoded_psnr = psnr(gen(z), target)
        start: Any = z
        steps = ENCODER_STEPS if steps is None else steps
        lr = ENCODER_LR if lr is None else lr
        perceptual = 0.0 if perceptual is None else perceptual
    else:
        start = "mean"
        steps = OPTIMIZE_STEPS if steps is None else steps
        lr = OPTIMIZE_LR if lr is None else lr
        perceptual = PERCEPTUAL if perceptual is None else perceptual
    steps = int(steps)
    param = Latent(gen, space=space, init=start, lr=float(lr), steps=steps or None, truncation=1.0, seed=seed)
    terms: list = [FnTerm("mse", lambda img: F.mse_loss(img, target))]
    fp = feature_perceptor(perceptors) if perceptual > 0 else None
    if fp is not None:
        terms.append(FeatureTerm(fp, target, perceptual))
    history: list = []
    if steps > 0:
        state = optimize(param, Objective(terms, None), steps, seed=seed, progress=not quiet)
        history = state.history
        if state.interrupted:
            raise KeyboardInterrupt
    with torch.no_grad():
        latent = param.latent().detach().clone()
        image = param.render().detach()
    return Inversion(
        latent=latent,
        space=param.space,
        image=image,
        target=target,
        psnr=psnr(image, target),
        seconds=time.perf_counter() - t0,
        how="encoder" if encoder is not None else "optimize",
        steps=steps,
        encoded_psnr=encoded_psnr,
        loss="+".join(t.name for t in terms),
        history=history,
    )
