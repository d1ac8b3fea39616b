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

Also here: size/number validation, init-image loading (path, PIL image or
tensor; always ending in a float64 ``(1, 3, H, W)`` tensor in ``[0, 1]``),
atomic PNG writing and a PSNR helper.
"""
from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path
from typing import Any, Union

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torch import Tensor

from vecgen.errors import VecgenError

InitSource = Union[str, os.PathLike, Image.Image, Tensor, None]

SQUASHES: tuple[str, ...] = ("sigmoid", "tanh")
FITS: tuple[str, ...] = ("cover", "stretch")

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
        raise VecgenError(
            f"unknown squash {name!r}: expected one of {', '.join(SQUASHES)}"
        )
    return name.lower()


def squash(x: Tensor, name: str) -> Tensor:
    """Map an unbounded signal to ``[0, 1]``."""
    if name == "sigmoid":
        return torch.sigmoid(x)
    if name == "tanh":
        return 0.5 * (torch.tanh(x) + 1.0)
    raise VecgenError(f"unknown squash {name!r}")


def unsquash(y: Tensor, name: str, eps: float = DEFAULT_INIT_EPS) -> Tensor:
    """Inverse of :func:`squash`, with ``y`` first clamped to ``[eps, 1-eps]``."""
    y = y.clamp(eps, 1.0 - eps)
    logit = torch.log(y) - torch.log1p(-y)
    if name == "sigmoid":
        return logit
    if name == "tanh":  # (tanh(x) + 1) / 2 == sigmoid(2 x)
        return 0.5 * logit
    raise VecgenError(f"unknown squash {name!r}")


# --------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------


def check_size(size: Any) -> tuple[int, int]:
    """Validate ``(W, H)`` and return it as a tuple of two positive ints."""
    try:
        width, height = size
    except (TypeError, ValueError):
        raise VecgenError(f"size must be (width, height), got {size!r}") from None
    out = []
    for label, value in (("width", width), ("height", height)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            else:
                raise VecgenError(f"image {label} must be an integer, got {value!r}")
        if value <= 0:
            raise VecgenError(f"image {label} must be positive, got {value}")
        out.append(int(value))
    return out[0], out[1]


def check_number(
    label: str, value: Any, *, positive: bool = False, nonnegative: bool = False
) -> float:
    """Validate a finite real number (optionally > 0 or >= 0)."""
    if isinstance(value, bool):
        raise VecgenError(f"{label} must be a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise VecgenError(f"{label} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise VecgenError(f"{label} must be finite, got {value!r}")
    if positive and number <= 0:
        raise VecgenError(f"{label} must be positive, got {value!r}")
    if nonnegative and number < 0:
        raise VecgenError(f"{label} must be >= 0, got {value!r}")
    return number


def check_fit(fit: Any) -> str:
    if fit not in FITS:
        raise VecgenError(f"unknown fit {fit!r}: expected one of {', '.join(FITS)}")
    return fit


def make_generator(seed: Any) -> torch.Generator:
    """A CPU generator seeded by ``seed`` (draws are then moved to the device,
    so the same seed gives the same start on every device)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise VecgenError(f"seed must be an integer, got {seed!r}")
    generator = torch.Generator(device="cpu")
    generator.manual_seed(int(seed) % (2**63))
    return generator


# --------------------------------------------------------------------------
# Images in and out
# --------------------------------------------------------------------------


def _one_line(err: BaseException) -> str:
    text = str(err) or type(err).__name__
    return " ".join(text.split())


def _pil_to_rgb_array(img: Image.Image) -> np.ndarray:
    """Any PIL image -> float64 ``(H, W, 3)`` array in ``[0, 1]``; alpha is
    composited onto white."""
    if img.mode in ("I", "I;16", "I;16L", "I;16B", "I;16N", "F"):
        grey = np.asarray(img, dtype=np.float64)
        top = grey.max() if grey.size else 1.0
        grey = grey / (65535.0 if top > 255 else 255.0 if top > 1 else 1.0)
        return np.repeat(grey.clip(0, 1)[..., None], 3, axis=2)
    if img.mode in ("RGBA", "LA", "PA") or (
        img.mode == "P" and "transparency" in img.info
    ):
        rgba = np.asarray(img.convert("RGBA"), dtype=np.float64) / 255.0
        alpha = rgba[..., 3:4]
        return rgba[..., :3] * alpha + (1.0 - alpha)
    return np.asarray(img.convert("RGB"), dtype=np.float64) / 255.0


def _open_image(path: Path) -> Image.Image:
    if not path.exists():
        raise VecgenError(f"init image not found: {path}")
    if path.is_dir():
        raise VecgenError(f"init image is a directory, not an image file: {path}")
    try:
        with Image.open(path) as img:
            img.load()
            img = ImageOps.exif_transpose(img)
            return img.copy()
    except UnidentifiedImageError:
        raise VecgenError(
            f"cannot read init image {path}: not a recognised image file"
        ) from None
    except Image.DecompressionBombError as err:
        raise VecgenError(f"init image {path} is too large: {_one_line(err)}") from None
    except (OSError, ValueError, SyntaxError) as err:
        raise VecgenError(f"cannot read init image {path}: {_one_line(err)}") from None


def _tensor_to_nchw(image: Tensor) -> Tensor:
    """Accept ``(H, W)``, ``(C, H, W)`` or ``(1, C, H, W)`` with C in 1/3/4."""
    if image.is_complex() or image.dtype == torch.bool:
        raise VecgenError(f"init tensor has unsupported dtype {image.dtype}")
    x = image.detach().to("cpu")
    if x.dim() == 2:
        x = x[None, None]
    elif x.dim() == 3:
        x = x[None]
    if x.dim() != 4 or x.shape[0] != 1 or x.shape[1] not in (1, 3, 4):
        raise VecgenError(
            "init tensor must be (H, W), (C, H, W) or (1, C, H, W) with C in 1/3/4, "
            f"got shape {tuple(image.shape)}"
        )
    if x.shape[-1] == 0 or x.shape[-2] == 0:
        raise VecgenError(f"init tensor is empty: shape {tuple(image.shape)}")
    if x.dtype == torch.uint8:
        x = x.to(torch.float64) / 255.0
    else:
        x = x.to(torch.float64)
        if not torch.isfinite(x).all():
            raise VecgenError("init tensor contains NaN or infinite values")
        lo, hi = float(x.min()), float(x.max())
        if lo < -1e-3 or hi > 1.0 + 1e-3:
            raise VecgenError(
                f"init tensor values must lie in [0, 1], got [{lo:.4g}, {hi:.4g}]"
            )
        x = x.clamp(0.0, 1.0)
    if x.shape[1] == 1:
        x = x.expand(1, 3, *x.shape[-2:])
    elif x.shape[1] == 4:
        alpha = x[:, 3:4]
        x = x[:, :3] * alpha + (1.0 - alpha)
    return x.contiguous()


def _crop_to_aspect(x: Tensor, width: int, height: int) -> Tensor:
    """Centre-crop ``(1, 3, h, w)`` to the aspect ratio ``width / height``."""
    h, w = x.shape[-2:]
    if w * height > width * h:  # too wide
        new_w = max(1, round(h * width / height))
        left = (w - new_w) // 2
        return x[..., :, left : left + new_w]
    new_h = max(1, round(w * height / width))
    top = (h - new_h) // 2
    return x[..., top : top + new_h, :]


def load_init_image(
    init: InitSource, size: tuple[int, int], *, fit: str = "cover"
) -> Tensor:
    """Load an init image as float64 ``(1, 3, H, W)`` in ``[0, 1]`` on the CPU.

    ``init`` is a path, a PIL image or a tensor (``uint8`` in ``[0, 255]`` or
    float in ``[0, 1]``).  It is resized to ``size = (W, H)``: ``fit="cover"``
    (default) keeps the aspect ratio and centre-crops, ``fit="stretch"``
    resizes directly.  An image already of the right size is used unchanged.
    Unreadable input raises :class:`VecgenError`.
    """
    width, height = check_size(size)
    fit = check_fit(fit)
    if isinstance(init, (str, os.PathLike)):
        init = _open_image(Path(init))
    if isinstance(init, Image.Image):
        img = init
        if img.size != (width, height):
            if img.mode not in ("RGB", "L"):  # flatten alpha / odd modes first
                arr = _pil_to_rgb_array(img)
                img = Image.fromarray(np.round(arr * 255.0).astype(np.uint8), "RGB")
            if fit == "cover":
                img = ImageOps.fit(img, (width, height), method=Image.LANCZOS)
            else:
                img = img.resize((width, height), resample=Image.LANCZOS)
        arr = _pil_to_rgb_array(img)
        return torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1)[None].contiguous()
    if isinstance(init, Tensor):
        x = _tensor_to_nchw(init)
        if tuple(x.shape[-2:]) != (height, width):
            if fit == "cover":
                x = _crop_to_aspect(x, width, height)
            x = torch.nn.functional.interpolate(
                x, size=(height, width), mode="bicubic", align_corners=False,
                antialias=True,
            ).clamp(0.0, 1.0)
        return x
    raise VecgenError(
        f"init must be an image path, a PIL image or a tensor, got {type(init).__name__}"
    )


def tensor_to_pil(image: Tensor) -> Image.Image:
    """``(1, 3, H, W)`` or ``(3, H, W)`` in ``[0, 1]`` -> 8-bit RGB PIL image."""
    x = image.detach().to("cpu", torch.float32)
    if x.dim() == 4:
        if x.shape[0] != 1:
            raise VecgenError(f"can only save one image at a time, got batch {x.shape[0]}")
        x = x[0]
    if x.dim() != 3 or x.shape[0] != 3:
        raise VecgenError(f"expected a (3, H, W) image, got shape {tuple(image.shape)}")
    arr = (x.nan_to_num(0.0).clamp(0.0, 1.0) * 255.0).round().to(torch.uint8)
    return Image.fromarray(arr.permute(1, 2, 0).contiguous().numpy(), "RGB")


_UMASK = os.umask(0o022)
os.umask(_UMASK)


def save_png_atomic(image: Tensor | Image.Image, path: str | os.PathLike) -> Path:
    """Write a PNG atomically: a temp file in the same directory, then
    :func:`os.replace`.  Readers never see a half-written file."""
    pil = image if isinstance(image, Image.Image) else tensor_to_pil(image)
    path = Path(path)
    directory = path.parent
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(
            prefix=f".{path.name}.", suffix=".tmp", dir=directory
        )
    except OSError as err:
        raise VecgenError(f"cannot write {path}: {_one_line(err)}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            pil.save(handle, format="PNG")
        os.chmod(tmp_name, 0o666 & ~_UMASK)
        os.replace(tmp_name, path)
    except BaseException as err:
        try:
            os.unlink(tmp_name)
        except OSError:
            pass
        if isinstance(err, OSError):
            raise VecgenError(f"cannot write {path}: {_one_line(err)}") from None
        raise
    return path


def psnr(a: Tensor, b: Tensor, peak: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB between two images in ``[0, peak]``."""
    mse = torch.mean((a.detach().double() - b.detach().double().to(a.device)) ** 2).item()
    if mse <= 0.0:
        return float("inf")
    return 10.0 * math.log10(peak * peak / mse)


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
            raise VecgenError(f"bad device {device!r}: {_one_line(err)}") from None
        self.lr = check_number("lr", lr, positive=True)
        self.contrast = check_number("contrast", contrast, positive=True)
        self.colors = check_number("colors", colors, nonnegative=True)
        self.squash = check_squash(squash)
        self.init_std = check_number("init_std", init_std, nonnegative=True)
        self.init_eps = check_number("init_eps", init_eps, positive=True)
        if self.init_eps >= 0.5:
            raise VecgenError(f"init_eps must be below 0.5, got {init_eps!r}")
        self.fit = check_fit(fit)
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

    def render(self) -> Tensor:  # pragma: no cover - overridden
        raise NotImplementedError

    def project_(self) -> None:
        """Nothing to repair: every coefficient value is valid."""

    @torch.no_grad()
    def to_pil(self) -> Image.Image:
        return tensor_to_pil(self.render())

    def export(self, path: str | os.PathLike) -> None:
        """Write the current image as an 8-bit RGB PNG (atomically)."""
        save_png_atomic(self.to_pil(), path)

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
            raise VecgenError(
                f"state is for parameterization {state.get('type')!r}, not {self.name!r}"
            )
        size = state.get("size")
        try:
            same = tuple(int(v) for v in size) == self.size
        except (TypeError, ValueError):
            same = False
        if not same:
            raise VecgenError(
                f"state is for size {size}, this {self.name} image is {list(self.size)}"
            )
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
    """Validate a saved tensor against a live parameter (same shape)."""
    if not isinstance(source, Tensor):
        raise VecgenError(f"state entry {label!r} is missing or not a tensor")
    if tuple(source.shape) != tuple(target.shape):
        raise VecgenError(
            f"state entry {label!r} has shape {tuple(source.shape)}, "
            f"expected {tuple(target.shape)}"
        )
    return source


def copy_into(target: Tensor, source: Any, label: str) -> None:
    """Copy a saved tensor into a live parameter in place (keeps optimizer
    references valid); shape mismatches raise :class:`VecgenError`."""
    check_state_tensor(target, source, label)
    with torch.no_grad():
        target.copy_(source.to(target.device, target.dtype))
