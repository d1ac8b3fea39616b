"""FFT parameterization: the image is a learnable Fourier spectrum.

The learnable tensor is the half spectrum used by ``torch.fft.irfft2`` (real
and imaginary parts side by side as a real ``(1, 3, H, W//2+1, 2)`` tensor).
Before the inverse transform each coefficient is multiplied by a fixed
``1 / f**decay`` weight, so low frequencies move much faster than high ones
under a gradient optimizer: the optimization is preconditioned towards smooth,
natural-looking images.  The result is a decorrelated colour signal that
:class:`~vecgen.params.raster_base.RasterParam` maps to RGB and squashes.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from vecgen.io import InitSource
from vecgen.options import check_number, make_generator
from vecgen.params.base import StepContext
from vecgen.params.raster_base import DEFAULT_INIT_EPS, RasterParam, check_state_tensor, copy_into


def spectrum_scale(height: int, width: int, decay: float) -> Tensor:
    """``(H, W//2+1)`` float64 weights ``1 / max(f, f_min)**decay``.

    ``f`` is the radial frequency in cycles per pixel and ``f_min`` the lowest
    non-zero frequency along the longer side (which also caps the DC weight).
    The weights are normalised to unit root-mean-square, so with i.i.d.
    coefficients of standard deviation ``s`` the pixels have a standard
    deviation of about ``s`` at any resolution.
    """
    fy = torch.fft.fftfreq(height, dtype=torch.float64)[:, None]
    fx = torch.fft.rfftfreq(width, dtype=torch.float64)[None, :]
    radius = torch.sqrt(fx * fx + fy * fy).clamp_min(1.0 / max(height, width))
    weights = radius.pow(-decay)
    return weights / weights.pow(2).mean().sqrt()


class FFTImage(RasterParam):
    """A raster image parameterized by its (1/f-weighted) Fourier spectrum.

    Args:
        size: ``(W, H)`` of the rendered image (any positive size).
        device: torch device for parameters and rendering.
        seed: seeds the random start (ignored when ``init`` is given).
        init: optional start image (path, PIL image or tensor); the render at
            step 0 then reproduces it (>= 40 dB PSNR).
        lr: learning rate reported by :meth:`param_groups`.
        decay: exponent of the ``1/f`` weighting; higher = smoother images.
        contrast: multiplies the pre-squash signal (higher = punchier).
        colors: multiplies the decorrelated chroma (0 = greyscale, >1 = more
            saturated).
        squash: ``"sigmoid"`` or ``"tanh"``.
        init_std: pre-squash standard deviation of the random start.
        init_eps: init images are clamped to ``[eps, 1-eps]`` before the
            squash is inverted.
        fit: how an init image of another size is fitted: ``"cover"``
            (keep aspect, centre-crop) or ``"stretch"``.
    """

    name = "fft"

    def __init__(
        self,
        size: tuple[int, int],
        *,
        device: str | torch.device = "cpu",
        seed: int = 0,
        init: InitSource = None,
        lr: float = 0.05,
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
        self.decay = check_number("decay", decay, nonnegative=True)
        self._update_scale()
        shape = (1, 3, self.height, self.width // 2 + 1, 2)
        if init is not None:
            signal = self._init_signal(init)
            spectrum = torch.fft.rfft2(signal, norm="ortho") / self._scale64
            coeffs = torch.view_as_real(spectrum).to(torch.float32)
        else:
            generator = make_generator(seed)
            # Real and imaginary parts each carry half the variance.
            coeffs = torch.randn(shape, generator=generator, dtype=torch.float32)
            coeffs *= self.init_std / 2**0.5
        self.spectrum = coeffs.to(self.device).contiguous().requires_grad_(True)

    def _update_scale(self) -> None:
        self._scale64 = spectrum_scale(self.height, self.width, self.decay)
        self._scale = self._scale64.to(self.device, torch.float32)

    def signal(self) -> Tensor:
        """The decorrelated pre-squash image ``(1, 3, H, W)``."""
        spectrum = torch.view_as_complex(self.spectrum) * self._scale
        return torch.fft.irfft2(spectrum, s=(self.height, self.width), norm="ortho")

    def render(self, ctx: StepContext | None = None) -> Tensor:
        """The current image ``(1, 3, H, W)`` in ``[0, 1]`` (differentiable)."""
        return self._to_rgb(self.signal())

    def param_groups(self) -> list[dict[str, Any]]:
        return [{"params": [self.spectrum], "lr": self.lr, "name": "fft_spectrum"}]

    def state_dict(self) -> dict[str, Any]:
        state = self._common_state()
        state["decay"] = self.decay
        state["spectrum"] = self.spectrum.detach().to("cpu").clone()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        common = self._check_common_state(state)
        decay = check_number("decay", state.get("decay", self.decay), nonnegative=True)
        check_state_tensor(self.spectrum, state.get("spectrum"), "spectrum")
        self._apply_common_state(common)
        copy_into(self.spectrum, state["spectrum"], "spectrum")
        self.decay = decay
        self._update_scale()

    def __repr__(self) -> str:
        return (
            f"FFTImage(size={self.size}, decay={self.decay}, contrast={self.contrast}, "
            f"colors={self.colors}, squash={self.squash!r})"
        )
