"""Shared pieces of the raster parameterizations (:mod:`fft`, :mod:`dwt`).

Both raster parameterizations produce a *decorrelated, unsquashed* signal
``(1, 3, H, W)`` from their learnable tensors and hand it to
:class:`RasterParam`, which owns the common tail of the pipeline::

    decorrelated (d0 = luminance, d1/d2 = chroma)
      -> chroma * colors
      -> colour matrix (decorrelated -> RGB)   * contrast
      -> squash (sigmoid | tanh)               -> RGB in [0, 1]

Every step of that tail is invertible (for ``contrast > 0``, ``colors > 0``),
which is what lets an init image be turned into exact starting coefficients.

Also here: state-tensor checks for ``load_state_dict`` and a PSNR helper.
Image loading and writing live in :mod:`vecgen.io`, option checks in
:mod:`vecgen.options`.
"""

from __future__ import annotations

import math
import os
from typing import Any

import torch
from PIL import Image
from torch import Tensor

from vecgen.errors import VecgenError
from vecgen.io import FITS, InitSource, load_init_image, one_line, save_png, tensor_to_pil
from vecgen.options import SQUASHES, check_number, check_size
from vecgen.params.base import StepContext

# Clamp applied to an init image before the squash is inverted: pixels at
# exactly 0 or 1 would need infinite pre-squash values.  logit(1e-3) ~ -6.9,
# which keeps saturated pixels trainable, and the clamp error (<= 1e-3, i.e.
# a quarter of an 8-bit step) costs nothing measurable: >= 60 dB even for an
# image made only of saturated pixels.
DEFAULT_INIT_EPS = 1e-3

# --------------------------------------------------------------------------
# Colour decorrelation
# --------------------------------------------------------------------------

# Principal components of the RGB pixel distribution of ImageNet, as published
# with AlexNet (Krizhevsky et al. 2012, "PCA lighting" augmentation): variances
# and, as columns, the unit eigenvectors.
_IMAGENET_RGB_PCA_VARIANCES = (0.2175, 0.0188, 0.0045)
_IMAGENET_RGB_PCA_VECTORS = (
    (-0.5675, 0.7192, 0.4009),
    (-0.5808, -0.0045, -0.8140),
    (-0.5836, -0.6948, 0.4203),
)


def color_correlation_sqrt() -> Tensor:
    """The 3x3 matrix mapping decorrelated channels to RGB (float64).

    It is a square root ``U sqrt(S)`` of the ImageNet RGB covariance
    ``U S U^T``: independent unit-variance noise pushed through it has
    natural-image colour statistics.  Column 0 (made positive) is the
    luminance direction, columns 1 and 2 are the chroma directions.  The
    matrix is scaled so its largest column has unit norm (luminance is then
    passed through at unit gain, chroma at ~0.29 and ~0.14).

    Shape:

    - returns: ``(3, 3)``, rows RGB, columns the decorrelated channels
    """
    vectors = torch.tensor(_IMAGENET_RGB_PCA_VECTORS, dtype=torch.float64)
    std = torch.tensor(_IMAGENET_RGB_PCA_VARIANCES, dtype=torch.float64).sqrt()
    matrix = vectors * std[None, :]
    if matrix[:, 0].sum() < 0:  # luminance should brighten all of R, G, B
        matrix[:, 0] = -matrix[:, 0]
    return matrix / matrix.norm(dim=0).max()


def color_transform(contrast: float, colors: float) -> Tensor:
    """Effective decorrelated -> pre-squash RGB matrix (float64, 3x3)."""
    gains = torch.tensor([1.0, colors, colors], dtype=torch.float64)
    return contrast * color_correlation_sqrt() * gains[None, :]


def apply_color_matrix(matrix: Tensor, image: Tensor) -> Tensor:
    """``out[:, i] = sum_j matrix[i, j] * image[:, j]`` for ``(B, 3, H, W)``."""
    return torch.einsum("ij,bjhw->bihw", matrix.to(image.dtype), image)


# --------------------------------------------------------------------------
# Squashing
# --------------------------------------------------------------------------


def check_squash(name: Any) -> str:
    if not isinstance(name, str) or name.lower() not in SQUASHES:
        raise VecgenError(f"unknown squash {name!r}: expected one of {', '.join(SQUASHES)}")
    return name.lower()


def squash(x: Tensor, name: str) -> Tensor:
    """Map an unbounded signal to ``[0, 1]`` (any shape, e.g. ``(1, 3, H, W)``; the same shape out)."""
    if name == "sigmoid":
        return torch.sigmoid(x)
    if name == "tanh":
        return 0.5 * (torch.tanh(x) + 1.0)
    raise VecgenError(f"unknown squash {name!r}")


def unsquash(y: Tensor, name: str, eps: float = DEFAULT_INIT_EPS) -> Tensor:
    """Inverse of :func:`squash`, with ``y`` first clamped to ``[eps, 1-eps]``.

    Shape:

    - ``y``: any shape, e.g. ``(1, 3, H, W)``, values in ``[0, 1]``
    - returns: the same shape, unbounded
    """
    y = y.clamp(eps, 1.0 - eps)
    logit = torch.log(y) - torch.log1p(-y)
    if name == "sigmoid":
        return logit
    if name == "tanh":  # (tanh(x) + 1) / 2 == sigmoid(2 x)
        return 0.5 * logit
    raise VecgenError(f"unknown squash {name!r}")


def psnr(a: Tensor, b: Tensor, peak: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB between two images of one shape, e.g. ``(B, 3, H, W)``, in ``[0, peak]``
    (capped at 120 dB: finite in metadata)."""
    mse = torch.mean((a.detach().double() - b.detach().double().to(a.device)) ** 2).item()
    return 10.0 * math.log10(peak * peak / max(mse, 1e-12))


# --------------------------------------------------------------------------
# The common base of FFTImage / DWTImage
# --------------------------------------------------------------------------


class RasterParam:
    """Colour/squash tail, export and bookkeeping shared by raster params.

    Subclasses build the decorrelated signal and call :meth:`_to_rgb`; for an
    init image they call :meth:`_init_signal` to get the decorrelated signal
    that :meth:`_to_rgb` maps back onto the image.
    """

    kind = "raster"
    name = "raster"

    def __init__(
        self,
        size: tuple[int, int],
        *,
        device: str | torch.device = "cpu",
        lr: float,
        contrast: float = 1.0,
        colors: float = 1.0,
        squash: str = "sigmoid",
        init_std: float = 0.25,
        init_eps: float = DEFAULT_INIT_EPS,
        fit: str = "cover",
    ) -> None:
        self.size = check_size(size)
        self.width, self.height = self.size
        try:
            self.device = torch.device(device)
        except (RuntimeError, TypeError) as err:
            raise VecgenError(f"bad device {device!r}: {one_line(err)}") from None
        self.lr = check_number("lr", lr, positive=True)
        self.contrast = check_number("contrast", contrast, positive=True)
        self.colors = check_number("colors", colors, nonnegative=True)
        self.squash = check_squash(squash)
        self.init_std = check_number("init_std", init_std, nonnegative=True)
        self.init_eps = check_number("init_eps", init_eps, positive=True)
        if self.init_eps >= 0.5:
            raise VecgenError(f"init_eps must be below 0.5, got {init_eps!r}")
        if fit not in FITS:
            raise VecgenError(f"unknown fit {fit!r}: expected one of {', '.join(FITS)}")
        self.fit = fit
        self._update_color()

    # -- colour tail -------------------------------------------------------

    def _update_color(self) -> None:
        matrix = color_transform(self.contrast, self.colors)
        self._color64 = matrix
        self._color = matrix.to(self.device, torch.float32)

    def _to_rgb(self, signal: Tensor) -> Tensor:
        """Decorrelated pre-squash ``(1, 3, H, W)`` -> RGB in ``[0, 1]``."""
        return squash(apply_color_matrix(self._color, signal), self.squash)

    def _from_rgb(self, rgb: Tensor) -> Tensor:
        """Exact inverse of :meth:`_to_rgb` (float64; least squares if
        ``colors == 0``)."""
        pre = unsquash(rgb.to(torch.float64), self.squash, self.init_eps)
        inverse = torch.linalg.pinv(self._color64)
        return apply_color_matrix(inverse, pre)

    def _init_signal(self, init: InitSource) -> Tensor:
        rgb = load_init_image(init, self.size, fit=self.fit)
        return self._from_rgb(rgb)

    # -- protocol pieces ---------------------------------------------------

    def render(self, ctx: StepContext | None = None) -> Tensor:  # pragma: no cover - overridden
        """The current image ``(1, 3, H, W)`` in ``[0, 1]`` (differentiable)."""
        raise NotImplementedError

    def project_(self) -> None:
        """Nothing to repair: every coefficient value is valid."""

    @torch.no_grad()
    def to_pil(self) -> Image.Image:
        return tensor_to_pil(self.render())

    def export(self, path: str | os.PathLike) -> None:
        """Write the current image as an 8-bit RGB PNG (atomically)."""
        save_png(self.to_pil(), path, mkdir=True)

    def _common_state(self) -> dict[str, Any]:
        return {
            "type": self.name,
            "version": 1,
            "size": list(self.size),
            "contrast": self.contrast,
            "colors": self.colors,
            "squash": self.squash,
        }

    def _check_common_state(self, state: Any) -> dict[str, Any]:
        """Validate the shared part of a saved state; returns the colour
        settings to apply with :meth:`_apply_common_state`."""
        if not isinstance(state, dict):
            raise VecgenError(f"{self.name} state must be a dict, got {type(state).__name__}")
        if state.get("type") != self.name:
            raise VecgenError(f"state is for parameterization {state.get('type')!r}, not {self.name!r}")
        size: Any = state.get("size")  # untrusted: None or a non-sequence gives TypeError below
        try:
            same = tuple(int(v) for v in size) == self.size
        except (TypeError, ValueError):
            same = False
        if not same:
            raise VecgenError(f"state is for size {size}, this {self.name} image is {list(self.size)}")
        return {
            "contrast": check_number("contrast", state.get("contrast", self.contrast), positive=True),
            "colors": check_number("colors", state.get("colors", self.colors), nonnegative=True),
            "squash": check_squash(state.get("squash", self.squash)),
        }

    def _apply_common_state(self, values: dict[str, Any]) -> None:
        self.contrast = values["contrast"]
        self.colors = values["colors"]
        self.squash = values["squash"]
        self._update_color()


def check_state_tensor(target: Tensor, source: Any, label: str) -> Tensor:
    """Validate a saved tensor against a live parameter; returns ``source`` unchanged.

    Shape:

    - ``target``: any shape; ``source``: the same shape, else a :class:`VecgenError`
    """
    if not isinstance(source, Tensor):
        raise VecgenError(f"state entry {label!r} is missing or not a tensor")
    if tuple(source.shape) != tuple(target.shape):
        raise VecgenError(f"state entry {label!r} has shape {tuple(source.shape)}, expected {tuple(target.shape)}")
    return source


def copy_into(target: Tensor, source: Any, label: str) -> None:
    """Copy a saved tensor into a live parameter in place (keeps optimizer
    references valid); shape mismatches raise :class:`VecgenError`.

    Shape:

    - ``target``: any shape; ``source``: the same shape (any device and dtype, converted to ``target``'s)
    """
    check_state_tensor(target, source, label)
    with torch.no_grad():
        target.copy_(source.to(target.device, target.dtype))
