"""DWT parameterization: the image is a learnable multi-level wavelet pyramid.

Learnable tensors (per colour channel, in the decorrelated colour space):
the approximation band of the coarsest level, ``(1, 3, h, w)``, and for each
level one ``(1, 3, 3, h_l, w_l)`` tensor holding its horizontal, vertical and
diagonal detail bands.  Each level is multiplied by a fixed weight
``2**(level * decay)`` (level 1 = finest) before ``ptwt.waverec2``, so coarse
levels dominate at random init and move fastest under a gradient optimizer;
``decay`` means the same as for :class:`~vecgen.params.fft.FFTImage` (the
amplitude of frequency ``f`` goes as ``f**-decay``).
"""

from __future__ import annotations

import difflib
from typing import Any, Final

import numpy as np
import ptwt
import pywt
import torch
from torch import Tensor

from vecgen.errors import VecgenError
from vecgen.io import InitSource
from vecgen.options import check_number, make_generator
from vecgen.params.base import StepContext
from vecgen.params.raster_base import DEFAULT_INIT_EPS, RasterParam, check_state_tensor, copy_into

# Boundary handling of the forward transform (used for init images and to
# learn the band shapes).  "symmetric" works for every image size, unlike
# "reflect" which needs the image larger than the filter.
BOUNDARY_MODE: Final = "symmetric"


def check_wavelet(name: Any) -> str:
    """Validate a discrete wavelet name against PyWavelets."""
    valid = pywt.wavelist(kind="discrete")
    if isinstance(name, str) and name in valid:
        return name
    close = difflib.get_close_matches(str(name), valid, n=3) if isinstance(name, str) else []
    hint = f"did you mean {', '.join(close)}? " if close else ""
    raise VecgenError(
        f"unknown wavelet {name!r}: {hint}valid names include haar, db2, db4, "
        f"sym4, coif1, bior2.2 ({len(valid)} in pywt.wavelist(kind='discrete'))"
    )


def effective_levels(size: tuple[int, int], wavelet: str, levels: int) -> int:
    """``levels`` clamped to ``[1, pywt.dwtn_max_level]`` for the image size."""
    width, height = size
    most = pywt.dwtn_max_level((height, width), wavelet)
    return max(1, min(levels, most))


class DWTImage(RasterParam):
    """A raster image parameterized by discrete wavelet coefficients.

    Args:
        size: ``(W, H)`` of the rendered image (any positive size).
        device: torch device for parameters and rendering.
        seed: seeds the random start (ignored when ``init`` is given).
        init: optional start image (path, PIL image or tensor); the render at
            step 0 then reproduces it (>= 40 dB PSNR).
        lr: learning rate reported by :meth:`param_groups`.
        wavelet: any name from ``pywt.wavelist(kind="discrete")``.
        levels: decomposition depth; clamped to what the size allows
            (the value used is in ``self.levels``).
        decay: per-level weighting exponent (see the module docstring).
        contrast, colors, squash, init_std, init_eps, fit: as for
            :class:`~vecgen.params.fft.FFTImage`.
    """

    name = "dwt"

    def __init__(
        self,
        size: tuple[int, int],
        *,
        device: str | torch.device = "cpu",
        seed: int = 0,
        init: InitSource = None,
        lr: float = 0.05,
        wavelet: str = "db2",
        levels: int = 4,
        decay: float = 1.5,
        contrast: float = 1.0,
        colors: float = 1.0,
        squash: str = "sigmoid",
        init_std: float = 0.25,
        init_eps: float = DEFAULT_INIT_EPS,
        fit: str = "cover",
    ) -> None:
        super().__init__(
            size,
            device=device,
            lr=lr,
            contrast=contrast,
            colors=colors,
            squash=squash,
            init_std=init_std,
            init_eps=init_eps,
            fit=fit,
        )
        self.wavelet = check_wavelet(wavelet)
        if isinstance(levels, bool) or not isinstance(levels, (int, np.integer)) or levels < 1:
            raise VecgenError(f"levels must be a positive integer, got {levels!r}")
        self.requested_levels = int(levels)
        self.levels = effective_levels(self.size, self.wavelet, self.requested_levels)
        self.decay = check_number("decay", decay, nonnegative=True)
        self._wavelet = pywt.Wavelet(self.wavelet)

        if init is not None:
            signal = self._init_signal(init)
        else:
            signal = torch.zeros(1, 3, self.height, self.width, dtype=torch.float64)
        # The forward transform gives the band shapes (and, for an init image,
        # the exact coefficients); ordered coarse -> fine.
        coeffs = ptwt.wavedec2(signal, self._wavelet, level=self.levels, mode=BOUNDARY_MODE)
        bands = [coeffs[0]] + [torch.stack(tuple(detail), dim=2) for detail in coeffs[1:]]
        self._shapes = [tuple(band.shape) for band in bands]
        self._update_scale()

        if init is not None:
            values = [band / weight for band, weight in zip(bands, self._weights64)]
        else:
            generator = make_generator(seed)
            values = [
                torch.randn(shape, generator=generator, dtype=torch.float64) * self.init_std for shape in self._shapes
            ]
        tensors = [v.to(self.device, torch.float32).contiguous() for v in values]
        self.approx = tensors[0].requires_grad_(True)
        self.details = [t.requires_grad_(True) for t in tensors[1:]]

    def _update_scale(self) -> None:
        """Per-band weights (coarse -> fine), normalised so that i.i.d.
        unit coefficients give unit pixel variance (orthogonal wavelets)."""
        depth = self.levels
        raw = [2.0 ** (depth * self.decay)]  # approximation band
        raw += [2.0 ** (level * self.decay) for level in range(depth, 0, -1)]
        energy = sum(float(np.prod(shape)) * w * w for shape, w in zip(self._shapes, raw))
        norm = (energy / (3.0 * self.height * self.width)) ** 0.5
        self._weights64 = [w / norm for w in raw]
        self._weights = list(self._weights64)

    def parameters(self) -> list[Tensor]:
        """The optimized wavelet coefficients, coarse -> fine.

        Shape:

        - returns: the approximation band ``(1, 3, h, w)``, then one detail band per level,
          ``(1, 3, 3, h_l, w_l)`` (horizontal, vertical, diagonal stacked on dim 2)
        """
        return [self.approx, *self.details]

    def signal(self) -> Tensor:
        """The decorrelated pre-squash image ``(1, 3, H, W)``."""
        weights = self._weights
        coeffs: list[Any] = [self.approx * weights[0]]
        for band, weight in zip(self.details, weights[1:]):
            coeffs.append(tuple((band * weight).unbind(dim=2)))
        image = ptwt.waverec2(tuple(coeffs), self._wavelet)
        return image[..., : self.height, : self.width]

    def render(self, ctx: StepContext | None = None) -> Tensor:
        """The current image ``(1, 3, H, W)`` in ``[0, 1]`` (differentiable)."""
        return self._to_rgb(self.signal())

    def param_groups(self) -> list[dict[str, Any]]:
        return [{"params": self.parameters(), "lr": self.lr, "name": "dwt_coeffs"}]

    def state_dict(self) -> dict[str, Any]:
        state = self._common_state()
        state.update(
            wavelet=self.wavelet,
            levels=self.levels,
            decay=self.decay,
            approx=self.approx.detach().to("cpu").clone(),
            details=[d.detach().to("cpu").clone() for d in self.details],
        )
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        common = self._check_common_state(state)
        if state.get("wavelet") != self.wavelet:
            raise VecgenError(f"state uses wavelet {state.get('wavelet')!r}, this image uses {self.wavelet!r}")
        if state.get("levels") != self.levels:
            raise VecgenError(f"state has {state.get('levels')!r} wavelet levels, this image has {self.levels}")
        decay = check_number("decay", state.get("decay", self.decay), nonnegative=True)
        details = state.get("details")
        if not isinstance(details, (list, tuple)) or len(details) != len(self.details):
            raise VecgenError(f"state entry 'details' must be a list of {len(self.details)} tensors")
        check_state_tensor(self.approx, state.get("approx"), "approx")
        for i, (live, saved) in enumerate(zip(self.details, details)):
            check_state_tensor(live, saved, f"details[{i}]")
        self._apply_common_state(common)
        copy_into(self.approx, state["approx"], "approx")
        for i, (live, saved) in enumerate(zip(self.details, details)):
            copy_into(live, saved, f"details[{i}]")
        self.decay = decay
        self._update_scale()

    def __repr__(self) -> str:
        return (
            f"DWTImage(size={self.size}, wavelet={self.wavelet!r}, levels={self.levels}, "
            f"decay={self.decay}, contrast={self.contrast}, colors={self.colors}, "
            f"squash={self.squash!r})"
        )
