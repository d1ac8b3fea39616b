"""StyleGAN2 generator, pure PyTorch, in the state-dict layout of the common
PyTorch port (rosinality/stylegan2-pytorch ``model.Generator``).

Key layout (``size`` = 2**L, ``n_mlp`` mapping layers):

* ``style.{1..n_mlp}.weight/bias``: mapping MLP after a PixelNorm (index 0);
  equalized-lr linear layers with ``lr_mul`` (0.01) and a fused leaky ReLU.
* ``input.input`` ``(1, C4, 4, 4)``: the learned constant.
* ``conv1`` / ``to_rgb1``: the 4x4 styled conv and its RGB head.
* ``convs.{2k}`` (2x upsampling, has ``conv.blur.kernel``), ``convs.{2k+1}``,
  ``to_rgbs.{k}`` (has ``upsample.kernel``) for every resolution 8..size.
* each styled conv: ``conv.weight`` ``(1, out, in, 3, 3)``,
  ``conv.modulation.weight/bias`` (style affine, bias initialised to 1),
  ``noise.weight`` ``(1,)``, ``activate.bias`` ``(out,)``.
* ``noises.noise_{i}``: fixed per-layer noise maps, ``i < 2L - 3``.

Generated images are in ``[-1, 1]`` inside the network; this wrapper returns
``(x + 1) / 2`` clamped to ``[0, 1]`` (``raw=True`` gives the network output).

Latents: ``z`` ``(B, style_dim)`` --mapping--> ``w`` ``(B, style_dim)``;
``W+`` is ``(B, n_latent, style_dim)`` with ``n_latent = 2 L - 2`` (one entry
per modulated layer, to-RGB layers sharing the next conv's entry).
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vecgen.errors import VecgenError

from .base import Generator, load_weights, read_checkpoint

__all__ = [
    "StyleGAN2Generator",
    "default_channels",
    "load_stylegan2",
    "upfirdn2d",
]

NOISE_MODES = ("const", "random", "none")
_LRELU_SLOPE = 0.2
_LRELU_GAIN = math.sqrt(2.0)


# ------------------------------------------------------------- primitives
def upfirdn2d(x: Tensor, kernel: Tensor, up: int = 1, down: int = 1, pad: tuple[int, int] = (0, 0)) -> Tensor:
    """Upsample (zero insertion), pad, FIR-filter, downsample; plain torch ops.

    ``x`` ``(B, C, H, W)``; ``kernel`` ``(kh, kw)``; ``pad = (before, after)``
    applies to both axes (negative values crop). The filter is a true
    convolution (kernel flipped). Output side: ``(H * up + p0 + p1 - kh + 1) // down``
    (rounded up).
    """
    b, c, h, w = x.shape
    y = x.reshape(b * c, 1, h, w)
    if up > 1:
        y = y.reshape(b * c, 1, h, 1, w, 1)
        y = F.pad(y, (0, up - 1, 0, 0, 0, up - 1))
        y = y.reshape(b * c, 1, h * up, w * up)
    p0, p1 = pad
    y = F.pad(y, (max(p0, 0), max(p1, 0), max(p0, 0), max(p1, 0)))
    if p0 < 0 or p1 < 0:
        hh, ww = y.shape[-2:]
        y = y[:, :, max(-p0, 0) : hh - max(-p1, 0), max(-p0, 0) : ww - max(-p1, 0)]
    k = torch.flip(kernel, (0, 1)).to(y.dtype)[None, None]
    y = F.conv2d(y, k)
    if down > 1:
        y = y[:, :, ::down, ::down]
    return y.reshape(b, c, y.shape[-2], y.shape[-1])


def _fir_kernel(taps: Sequence[float], gain: float = 1.0) -> Tensor:
    """Separable 2-D FIR kernel from 1-D ``taps``, normalised to sum ``gain``."""
    k1 = torch.as_tensor(list(taps), dtype=torch.float32)
    k = k1[:, None] * k1[None, :]
    return k * (gain / k.sum())


class _PixelNorm(nn.Module):
    """Normalise each vector to unit RMS along the last dimension."""

    def forward(self, x: Tensor) -> Tensor:
        return x * torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + 1e-8)


class _EqualLinear(nn.Module):
    """Linear layer with equalized learning rate.

    Stored ``weight`` is ``(out, in)`` drawn from N(0, 1/lr_mul); applied as
    ``weight * lr_mul / sqrt(in)``; bias applied times ``lr_mul``. With
    ``activate=True`` the output is ``leaky_relu(x + b, 0.2) * sqrt(2)``.
    """

    def __init__(
        self,
        n_in: int,
        n_out: int,
        bias_init: float = 0.0,
        lr_mul: float = 1.0,
        activate: bool = False,
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n_out, n_in) / lr_mul)
        self.bias = nn.Parameter(torch.full((n_out,), float(bias_init)))
        self.lr_mul = float(lr_mul)
        self.gain = self.lr_mul / math.sqrt(n_in)
        self.activate = activate

    def forward(self, x: Tensor) -> Tensor:
        y = F.linear(x, self.weight * self.gain, self.bias * self.lr_mul)
        if self.activate:
            y = F.leaky_relu(y, _LRELU_SLOPE) * _LRELU_GAIN
        return y


class _Blur(nn.Module):
    """FIR low-pass after a strided transposed conv (``kernel`` buffer ``(4, 4)``)."""

    kernel: Tensor

    def __init__(self, taps: Sequence[float], pad: tuple[int, int], gain: float = 1.0) -> None:
        super().__init__()
        self.register_buffer("kernel", _fir_kernel(taps, gain))
        self.pad = pad

    def forward(self, x: Tensor) -> Tensor:
        return upfirdn2d(x, self.kernel, pad=self.pad)


class _Upsample(nn.Module):
    """2x FIR upsampling of the RGB skip path (``kernel`` buffer, sum 4)."""

    kernel: Tensor

    def __init__(self, taps: Sequence[float], factor: int = 2) -> None:
        super().__init__()
        self.factor = factor
        self.register_buffer("kernel", _fir_kernel(taps, factor * factor))
        p = len(taps) - factor
        self.pad = ((p + 1) // 2 + factor - 1, p // 2)

    def forward(self, x: Tensor) -> Tensor:
        return upfirdn2d(x, self.kernel, up=self.factor, pad=self.pad)


class _ModulatedConv(nn.Module):
    """Style-modulated conv: weight ``(1, out, in, k, k)`` scaled per sample.

    ``forward(x (B, in, H, W), w (B, style_dim)) -> (B, out, H', W')``
    (``H' = 2H`` when ``upsample``). One grouped convolution for the batch.
    """

    def __init__(
        self,
        n_in: int,
        n_out: int,
        k: int,
        style_dim: int,
        demodulate: bool = True,
        upsample: bool = False,
        blur_taps: Sequence[float] = (1, 3, 3, 1),
    ) -> None:
        super().__init__()
        self.n_in, self.n_out, self.k = n_in, n_out, k
        self.upsample = upsample
        self.demodulate = demodulate
        self.gain = 1.0 / math.sqrt(n_in * k * k)
        self.weight = nn.Parameter(torch.randn(1, n_out, n_in, k, k))
        if upsample:
            # transposed stride-2 conv gives 2H + k - 2 pixels; the blur trims to 2H
            p = (len(blur_taps) - 2) - (k - 1)
            self.blur = _Blur(blur_taps, ((p + 1) // 2 + 1, p // 2 + 1), gain=4.0)
        self.modulation = _EqualLinear(style_dim, n_in, bias_init=1.0)

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        b, c, h, wd = x.shape
        s = self.modulation(w)  # (B, in)
        weight = self.weight * self.gain * s.reshape(b, 1, c, 1, 1)  # (B, out, in, k, k)
        if self.demodulate:
            weight = weight * torch.rsqrt(weight.pow(2).sum(dim=(2, 3, 4), keepdim=True) + 1e-8)
        xg = x.reshape(1, b * c, h, wd)
        if self.upsample:
            wt = weight.transpose(1, 2).reshape(b * c, self.n_out, self.k, self.k)
            y = F.conv_transpose2d(xg, wt, stride=2, groups=b)
            y = self.blur(y.reshape(b, self.n_out, y.shape[-2], y.shape[-1]))
            return y
        y = F.conv2d(xg, weight.reshape(b * self.n_out, c, self.k, self.k), padding=self.k // 2, groups=b)
        return y.reshape(b, self.n_out, h, wd)


class _NoiseInjection(nn.Module):
    """``x + weight * noise`` with a learned scalar ``weight`` (init 0)."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, x: Tensor, noise: Tensor | None) -> Tensor:
        if noise is None:
            return x
        return x + self.weight * noise


class _BiasLeakyReLU(nn.Module):
    """Per-channel ``bias`` then ``leaky_relu(0.2) * sqrt(2)``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor) -> Tensor:
        return F.leaky_relu(x + self.bias.reshape(1, -1, 1, 1), _LRELU_SLOPE) * _LRELU_GAIN


class _StyledConv(nn.Module):
    """Modulated 3x3 conv, noise, bias + leaky ReLU."""

    def __init__(
        self,
        n_in: int,
        n_out: int,
        style_dim: int,
        upsample: bool = False,
        blur_taps: Sequence[float] = (1, 3, 3, 1),
    ) -> None:
        super().__init__()
        self.conv = _ModulatedConv(n_in, n_out, 3, style_dim, upsample=upsample, blur_taps=blur_taps)
        self.noise = _NoiseInjection()
        self.activate = _BiasLeakyReLU(n_out)

    def forward(self, x: Tensor, w: Tensor, noise: Tensor | None) -> Tensor:
        return self.activate(self.noise(self.conv(x, w), noise))


class _ToRGB(nn.Module):
    """1x1 modulated conv (no demodulation) to RGB, plus the upsampled skip."""

    def __init__(
        self,
        n_in: int,
        style_dim: int,
        upsample: bool = True,
        blur_taps: Sequence[float] = (1, 3, 3, 1),
    ) -> None:
        super().__init__()
        if upsample:
            self.upsample = _Upsample(blur_taps)
        self.conv = _ModulatedConv(n_in, 3, 1, style_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))

    def forward(self, x: Tensor, w: Tensor, skip: Tensor | None = None) -> Tensor:
        y = self.conv(x, w) + self.bias
        if skip is not None:
            y = y + self.upsample(skip)
        return y


class _ConstantInput(nn.Module):
    """The learned ``input`` ``(1, C, 4, 4)``, repeated over the batch."""

    def __init__(self, channels: int, size: int = 4) -> None:
        super().__init__()
        self.input = nn.Parameter(torch.randn(1, channels, size, size))

    def forward(self, batch: int) -> Tensor:
        return self.input.expand(batch, -1, -1, -1)


# ------------------------------------------------------------- generator
def default_channels(size: int, channel_multiplier: int = 2, narrow: float = 1.0) -> dict[int, int]:
    """Feature channels per resolution, as in the reference configs.

    512 up to 32 px, then ``(16384 // res) * channel_multiplier``
    (64: 256*cm, 128: 128*cm, ..., 1024: 16*cm), all times ``narrow``.
    """
    out: dict[int, int] = {}
    res = 4
    while res <= size:
        base = 512 if res <= 32 else (16384 // res) * channel_multiplier
        out[res] = max(1, int(base * narrow))
        res *= 2
    return out


def _check_size(size: int) -> int:
    size = int(size)
    if size < 8 or size & (size - 1):
        raise VecgenError(f"stylegan2: size must be a power of two >= 8, got {size}")
    return size


class StyleGAN2Generator(Generator):
    """StyleGAN2 generator (mapping + synthesis), rosinality state-dict layout.

    Args:
        size: output resolution, a power of two >= 8.
        style_dim: dimension of ``z`` and ``w``.
        n_mlp: number of mapping layers.
        channel_multiplier, narrow: channel widths (see ``default_channels``);
            ``channels`` (``{res: C}`` for 4, 8, ..., size) overrides both.
        lr_mlp: learning-rate multiplier of the mapping layers (0.01).
        blur_taps: 1-D FIR taps of the up-sampling filters.
        truncation: default truncation psi for ``forward`` (1 = none).
        noise_mode: "const" (the stored ``noises`` buffers: deterministic),
            "random" (fresh N(0,1) each call, global RNG) or "none".
        noise_seed: seed of the initial ``noises`` buffers.
    """

    w_avg: Tensor

    kind = "stylegan2"
    has_mapping = True

    def __init__(
        self,
        size: int,
        style_dim: int = 512,
        n_mlp: int = 8,
        channel_multiplier: int = 2,
        channels: Mapping[int, int] | None = None,
        narrow: float = 1.0,
        lr_mlp: float = 0.01,
        blur_taps: Sequence[float] = (1, 3, 3, 1),
        truncation: float = 1.0,
        noise_mode: str = "const",
        noise_seed: int = 0,
    ) -> None:
        super().__init__()
        self.size = _check_size(size)
        self.style_dim = int(style_dim)
        self.n_mlp = int(n_mlp)
        self.log_size = int(math.log2(self.size))
        ch = dict(channels) if channels is not None else default_channels(size, channel_multiplier, narrow)
        need = [2**i for i in range(2, self.log_size + 1)]
        missing = [r for r in need if r not in ch]
        if missing:
            raise VecgenError(f"stylegan2: channels lack resolution {missing[0]}")
        self.channels = {r: int(ch[r]) for r in need}
        self.latent_shape = (self.style_dim,)
        self.truncation = float(truncation)
        self.noise_mode = noise_mode

        self.style = nn.Sequential(
            _PixelNorm(),
            *[_EqualLinear(self.style_dim, self.style_dim, lr_mul=lr_mlp, activate=True) for _ in range(self.n_mlp)],
        )
        c4 = self.channels[4]
        self.input = _ConstantInput(c4)
        self.conv1 = _StyledConv(c4, c4, self.style_dim, blur_taps=blur_taps)
        self.to_rgb1 = _ToRGB(c4, self.style_dim, upsample=False, blur_taps=blur_taps)

        self.num_layers = (self.log_size - 2) * 2 + 1
        self.convs = nn.ModuleList()
        self.upsamples = nn.ModuleList()  # empty; kept for layout parity
        self.to_rgbs = nn.ModuleList()
        n_in = c4
        for i in range(3, self.log_size + 1):
            n_out = self.channels[2**i]
            self.convs.append(_StyledConv(n_in, n_out, self.style_dim, upsample=True, blur_taps=blur_taps))
            self.convs.append(_StyledConv(n_out, n_out, self.style_dim, blur_taps=blur_taps))
            self.to_rgbs.append(_ToRGB(n_out, self.style_dim, blur_taps=blur_taps))
            n_in = n_out

        self.noises = nn.Module()
        g = torch.Generator(device="cpu").manual_seed(int(noise_seed))
        for i, r in enumerate(self.noise_resolutions()):
            noise = torch.randn(1, 1, r, r, generator=g, device="cpu")
            self.noises.register_buffer(f"noise_{i}", noise.to(self.input.input.device))

        # cached mean latent; not part of the state dict (rosinality's g_ema has none)
        self.register_buffer("w_avg", torch.zeros(1, self.style_dim), persistent=False)
        self._w_avg_ready = False

    # ------------------------------------------------------------ shapes
    @property
    def n_latent(self) -> int:
        """Per-layer ``W+`` entries: ``2 * log2(size) - 2``."""
        return self.log_size * 2 - 2

    @property
    def w_shape(self) -> tuple[int, ...]:
        return (self.style_dim,)

    def noise_resolutions(self) -> list[int]:
        """Side of each noise map, layer by layer: 4, 8, 8, 16, 16, ..., size, size."""
        return [2 ** ((i + 5) // 2) for i in range(self.num_layers)]

    def config(self) -> dict[str, Any]:
        """Constructor arguments that rebuild this architecture."""
        return {"size": self.size, "style_dim": self.style_dim, "n_mlp": self.n_mlp, "channels": dict(self.channels)}

    # ------------------------------------------------------------ latents
    def mapping(self, z: Tensor) -> Tensor:
        """The mapping network. Shape: ``z`` ``(..., style_dim)`` -> ``w`` ``(..., style_dim)``, any leading dims."""
        if z.shape[-1] != self.style_dim:
            raise VecgenError(f"stylegan2: z must end in {self.style_dim}, got {tuple(z.shape)}")
        return self.style(z)

    @torch.no_grad()
    def mean_latent(self, n: int = 4096, seed: int = 0, refresh: bool = False) -> Tensor:
        """Average ``w`` ``(1, style_dim)`` over ``n`` seeded ``z`` draws (cached).

        A checkpoint's ``latent_avg`` (if present) is used instead; ``refresh``
        recomputes, e.g. after fine-tuning the mapping network.
        """
        if refresh or not self._w_avg_ready:
            z = self.sample_latent(n, seed)
            self.set_mean_latent(self.mapping(z).mean(0, keepdim=True))
        return self.w_avg.clone()

    def set_mean_latent(self, w: Tensor) -> None:
        """Set the truncation centre (``(style_dim,)`` or ``(1, style_dim)``)."""
        w = torch.as_tensor(w).detach().reshape(1, -1)
        if w.shape[1] != self.style_dim:
            raise VecgenError(f"stylegan2: mean latent has {w.shape[1]} entries, expected {self.style_dim}")
        self.w_avg.copy_(w.to(self.w_avg))
        self._w_avg_ready = True

    def truncate(self, w: Tensor, truncation: float | None = None) -> Tensor:
        """``mean + psi * (w - mean)``; ``w`` is ``(B, D)`` or ``(B, n_latent, D)``.

        ``psi = 1`` returns ``w`` itself; ``psi = 0`` gives the mean latent.
        """
        psi = self.truncation if truncation is None else float(truncation)
        if psi == 1.0:
            return w
        mean = self.mean_latent().to(w)
        if w.dim() == 3:
            mean = mean.unsqueeze(1)
        return mean + psi * (w - mean)

    # ------------------------------------------------------------ synthesis
    def make_noise(self, batch: int = 1, seed: int | None = None) -> list[Tensor]:
        """Fresh per-layer noise maps ``[(batch, 1, r, r), ...]`` (seeded if ``seed`` given)."""
        g = torch.Generator(device="cpu").manual_seed(int(seed)) if seed is not None else None
        return [torch.randn(batch, 1, r, r, generator=g).to(self.device) for r in self.noise_resolutions()]

    def _noise_list(self, noise: Sequence[Tensor | None] | None, mode: str | None, batch: int) -> list[Tensor | None]:
        if noise is not None:
            if len(noise) != self.num_layers:
                raise VecgenError(f"stylegan2: expected {self.num_layers} noise maps, got {len(noise)}")
            return list(noise)
        mode = self.noise_mode if mode is None else mode
        if mode == "const":
            return [getattr(self.noises, f"noise_{i}") for i in range(self.num_layers)]
        if mode == "random":
            return [torch.randn(batch, 1, r, r, device=self.device) for r in self.noise_resolutions()]
        if mode == "none":
            return [None] * self.num_layers
        raise VecgenError(f"stylegan2: unknown noise mode '{mode}' (use one of {', '.join(NOISE_MODES)})")

    def synthesize(
        self,
        w_plus: Tensor,
        noise: Sequence[Tensor | None] | None = None,
        noise_mode: str | None = None,
        raw: bool = False,
    ) -> Tensor:
        """``W+`` ``(B, n_latent, style_dim)`` -> image ``(B, 3, size, size)``.

        No truncation is applied here (see ``truncate``). Returns ``[0, 1]``
        unless ``raw`` (the network's ``[-1, 1]``-ish output, unclamped).
        """
        if w_plus.dim() != 3 or w_plus.shape[1:] != (self.n_latent, self.style_dim):
            raise VecgenError(
                f"stylegan2: W+ must be (B, {self.n_latent}, {self.style_dim}), got {tuple(w_plus.shape)}"
            )
        b = w_plus.shape[0]
        noises = self._noise_list(noise, noise_mode, b)
        x = self.input(b)
        x = self.conv1(x, w_plus[:, 0], noises[0])
        skip = self.to_rgb1(x, w_plus[:, 1])
        i = 1
        for k, to_rgb in enumerate(self.to_rgbs):
            x = self.convs[2 * k](x, w_plus[:, i], noises[2 * k + 1])
            x = self.convs[2 * k + 1](x, w_plus[:, i + 1], noises[2 * k + 2])
            skip = to_rgb(x, w_plus[:, i + 2], skip)
            i += 2
        if raw:
            return skip
        return ((skip + 1.0) * 0.5).clamp(0.0, 1.0)

    def forward(
        self,
        z: Tensor,
        truncation: float | None = None,
        noise: Sequence[Tensor | None] | None = None,
        noise_mode: str | None = None,
        raw: bool = False,
    ) -> Tensor:
        """``z`` ``(B, style_dim)`` (or per-layer ``(B, n_latent, style_dim)``) -> image.

        Maps, truncates toward ``mean_latent`` with ``truncation`` (default
        ``self.truncation``), broadcasts to ``W+`` and synthesizes.
        """
        w = self.truncate(self.mapping(z), truncation)
        w_plus = w if w.dim() == 3 else self.to_w_plus(w)
        return self.synthesize(w_plus, noise=noise, noise_mode=noise_mode, raw=raw)

    # ------------------------------------------------------------ I/O
    def save(self, path: str | Path) -> None:
        """Write ``{"g_ema": state_dict, "latent_avg": (style_dim,)}`` (rosinality-style)."""
        ckpt: dict[str, Any] = {"g_ema": self.state_dict()}
        if self._w_avg_ready:
            ckpt["latent_avg"] = self.w_avg[0].detach().cpu().clone()
        torch.save(ckpt, Path(path))

    @classmethod
    def from_state_dict(
        cls, state: Mapping[str, Any], source: str = "stylegan2 checkpoint", **kwargs: Any
    ) -> "StyleGAN2Generator":
        """Build a generator whose size/style_dim/n_mlp/channels fit ``state``, then load it.

        Noise buffers may be absent (older checkpoints): seeded ones are kept.
        ``kwargs`` go to the constructor (``lr_mlp``, ``truncation``, ...).
        """
        state = _strip_prefix(dict(state))

        def need(key: str) -> Tensor:
            t = state.get(key)
            if not isinstance(t, Tensor):
                raise VecgenError(f"{source}: missing key '{key}' in state dict")
            return t

        style_dim = int(need("conv1.conv.modulation.weight").shape[1])
        c4 = int(need("input.input").shape[1])
        mlp_ids = [int(m.group(1)) for k in state if (m := re.fullmatch(r"style\.(\d+)\.weight", k))]
        rgb_ids = {int(m.group(1)) for k in state if (m := re.match(r"to_rgbs\.(\d+)\.", k))}
        n_blocks = max(rgb_ids) + 1 if rgb_ids else 0
        if n_blocks < 1:
            raise VecgenError(f"{source}: missing key 'to_rgbs.0.conv.weight' in state dict")
        size = 2 ** (n_blocks + 2)
        channels = {4: c4}
        for b in range(n_blocks):
            channels[2 ** (b + 3)] = int(need(f"convs.{2 * b}.conv.weight").shape[1])
        kwargs.setdefault("noise_seed", 0)
        with torch.device("cpu"):
            gen = cls(size, style_dim=style_dim, n_mlp=max(mlp_ids, default=0), channels=channels, **kwargs)
        if not any(k.startswith("noises.") for k in state):
            for k, v in gen.state_dict().items():
                if k.startswith("noises."):
                    state[k] = v
        load_weights(gen, state, source)
        return gen


def _strip_prefix(state: dict[str, Any]) -> dict[str, Any]:
    """Drop a DataParallel ``module.`` prefix shared by every key."""
    if state and all(k.startswith("module.") for k in state):
        return {k[len("module.") :]: v for k, v in state.items()}
    return state


def load_stylegan2(
    path: str | Path,
    device: torch.device | str = "cpu",
    truncation: float = 1.0,
    noise_mode: str = "const",
    lr_mlp: float = 0.01,
) -> StyleGAN2Generator:
    """Load a StyleGAN2 checkpoint: a bare state dict or ``{"g_ema": ..., ["latent_avg": ...]}``.

    Architecture is inferred from the keys and shapes. Returns the generator
    in eval mode with frozen weights, on ``device``.
    """
    src = f"StyleGAN2 checkpoint {Path(path).name}"
    ckpt = read_checkpoint(path, "StyleGAN2 checkpoint")
    if not isinstance(ckpt, Mapping):
        raise VecgenError(f"{src}: expected a state dict or a dict with 'g_ema', got {type(ckpt).__name__}")
    latent_avg = None
    if "g_ema" in ckpt:
        state = ckpt["g_ema"]
        latent_avg = ckpt.get("latent_avg")
        if not isinstance(state, Mapping):
            raise VecgenError(f"{src}: 'g_ema' is not a state dict")
    elif ckpt and all(isinstance(v, Tensor) for v in ckpt.values()):
        state = ckpt
    else:
        keys = ", ".join(list(map(str, ckpt.keys()))[:6])
        raise VecgenError(f"{src}: no 'g_ema' entry and not a state dict (top-level keys: {keys})")
    gen = StyleGAN2Generator.from_state_dict(
        state, source=src, truncation=truncation, noise_mode=noise_mode, lr_mlp=lr_mlp
    )
    if isinstance(latent_avg, Tensor) and latent_avg.numel() == gen.style_dim:
        gen.set_mean_latent(latent_avg.float())
    gen.requires_grad_(False).eval()
    return gen.to(device)
