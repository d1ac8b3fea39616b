"""TAEF2: a tiny pretrained autoencoder (32-channel latent at 1/8 resolution).

The modules below reproduce, layer for layer, the architecture described in
``weights/taef2/README.md`` (shipped beside this module) so that the published state dicts
(``taef2_decoder.pth`` / ``taef2_encoder.pth``) load with ``strict=True``.
Both are ``nn.Sequential``; the index of each layer is its key prefix.

Shapes: the decoder maps ``(B, 32, h, w)`` to ``(B, 3, 8h, 8w)`` in ``[0, 1]``;
the encoder maps ``(B, 3, H, W)`` in ``[0, 1]`` (H, W multiples of 8) to
``(B, 32, H/8, W/8)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import torch
from torch import Tensor, nn

from vecgen.errors import VecgenError

from .base import Generator, load_weights, read_checkpoint

M = TypeVar("M", bound=nn.Module)

__all__ = [
    "LATENT_CHANNELS",
    "TAEF2Decoder",
    "TAEF2Encoder",
    "TAEF2Generator",
    "load_taef2",
    "load_taef2_encoder",
    "default_taef2_dir",
]

LATENT_CHANNELS = 32
_WIDTH = 64
#: Spatial down-sampling factor between image and latent.
SCALE = 8
#: Standard deviation of the latents the encoder gives (measured on smooth
#: procedural 256x256 test images, with and without pixel noise: 0.68-0.72
#: per element, mean about -0.05); the default prior of ``sample_latent``.
PRIOR_STD = 0.7


def _conv(n_in: int, n_out: int, bias: bool = True, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(n_in, n_out, 3, stride=stride, padding=1, bias=bias)


class _SoftClamp(nn.Module):
    """``3 * tanh(z / 3)``: keeps latents in (-3, 3) smoothly."""

    def forward(self, x: Tensor) -> Tensor:
        return torch.tanh(x / 3.0) * 3.0


class _Block(nn.Module):
    """Residual block ``n -> n``: ``relu(convs(x') + x')`` with ``x' = x + pool(x)``.

    ``conv`` is conv3x3, ReLU, conv3x3, ReLU, conv3x3 (keys ``conv.0/2/4``).
    The optional ``pool`` term (keys ``pool.0/1/3``) is 1x1 conv ``n -> 4n``
    without bias, GroupNorm(4 groups), ReLU, 1x1 conv ``4n -> n`` without bias.
    """

    def __init__(self, n: int, with_pool: bool = False) -> None:
        super().__init__()
        self.conv = nn.Sequential(_conv(n, n), nn.ReLU(), _conv(n, n), nn.ReLU(), _conv(n, n))
        self.pool: nn.Sequential | None = None
        if with_pool:
            self.pool = nn.Sequential(
                nn.Conv2d(n, 4 * n, 1, bias=False),
                nn.GroupNorm(4, 4 * n),
                nn.ReLU(),
                nn.Conv2d(4 * n, n, 1, bias=False),
            )
        self.fuse = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        if self.pool is not None:
            x = x + self.pool(x)
        return self.fuse(self.conv(x) + x)


class TAEF2Decoder(nn.Sequential):
    """Latent ``(B, 32, h, w)`` -> image ``(B, 3, 8h, 8w)`` (not yet clamped).

    0 soft clamp; 1 conv 32->64; 2 ReLU; 3-5 blocks with pool; 6 upsample;
    7 conv (no bias); 8-10 blocks; 11 upsample; 12 conv; 13-15 blocks;
    16 upsample; 17 conv; 18 block; 19 conv 64->3.
    """

    def __init__(self, latent_channels: int = LATENT_CHANNELS, width: int = _WIDTH) -> None:
        n = width
        super().__init__(
            _SoftClamp(),
            _conv(latent_channels, n),
            nn.ReLU(),
            _Block(n, True),
            _Block(n, True),
            _Block(n, True),
            nn.Upsample(scale_factor=2, mode="nearest"),
            _conv(n, n, bias=False),
            _Block(n),
            _Block(n),
            _Block(n),
            nn.Upsample(scale_factor=2, mode="nearest"),
            _conv(n, n, bias=False),
            _Block(n),
            _Block(n),
            _Block(n),
            nn.Upsample(scale_factor=2, mode="nearest"),
            _conv(n, n, bias=False),
            _Block(n),
            _conv(n, 3),
        )


class TAEF2Encoder(nn.Sequential):
    """Image ``(B, 3, H, W)`` in ``[0, 1]`` -> latent ``(B, 32, H/8, W/8)``.

    0 conv 3->64; 1 block; 2 stride-2 conv (no bias); 3-5 blocks; 6 stride-2
    conv; 7-9 blocks; 10 stride-2 conv; 11-13 blocks with pool; 14 conv 64->32.
    """

    def __init__(self, latent_channels: int = LATENT_CHANNELS, width: int = _WIDTH) -> None:
        n = width
        super().__init__(
            _conv(3, n),
            _Block(n),
            _conv(n, n, bias=False, stride=2),
            _Block(n),
            _Block(n),
            _Block(n),
            _conv(n, n, bias=False, stride=2),
            _Block(n),
            _Block(n),
            _Block(n),
            _conv(n, n, bias=False, stride=2),
            _Block(n, True),
            _Block(n, True),
            _Block(n, True),
            _conv(n, latent_channels),
        )


def default_taef2_dir() -> Path:
    """The TAEF2 weights shipped with vecgen (``vecgen/backends/generators/weights/taef2``: the
    decoder and encoder of madebyollin/taesd, MIT licence, LICENSE and provenance beside them)."""
    return Path(__file__).resolve().parent / "weights" / "taef2"


def _load_module(module: M, path: str | Path, what: str) -> M:
    state = read_checkpoint(path, what)
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    load_weights(module, state, f"{what} {Path(path).name}")
    return module


def load_taef2_encoder(path: str | Path | None = None, device: torch.device | str = "cpu") -> TAEF2Encoder:
    """The pretrained TAEF2 encoder alone (default: the shipped ``taef2_encoder.pth``), frozen, in eval mode.

    Maps ``(B, 3, H, W)`` in ``[0, 1]`` to the decoder's ``(B, 32, H/8, W/8)`` latents
    (encode then decode a natural 256x256 photo: ~31-34 dB PSNR).
    """
    p = Path(path).expanduser() if path else default_taef2_dir() / "taef2_encoder.pth"
    enc = _load_module(TAEF2Encoder(), p, "TAEF2 encoder")
    enc.requires_grad_(False).eval()
    return enc.to(device)


def _size_hw(image_size: int | tuple[int, int]) -> tuple[int, int]:
    """``image_size`` (an int, or ``(H, W)``: height first, unlike ``--size`` and the spec's ``:WxH``) -> ``(H, W)``."""
    from vecgen.options import MAX_SIDE

    h, w = (image_size, image_size) if isinstance(image_size, int) else image_size
    h, w = int(h), int(w)
    if h <= 0 or w <= 0 or h % SCALE or w % SCALE:
        raise VecgenError(f"taef2: image size must be positive multiples of {SCALE}, got {w}x{h} (WxH)")
    if h > MAX_SIDE or w > MAX_SIDE:
        raise VecgenError(f"taef2: image size {w}x{h} (WxH) is above the limit of {MAX_SIDE} px per side")
    return h, w


class TAEF2Generator(Generator):
    """Generator over the TAEF2 latent space: ``(B, 32, H/8, W/8) -> (B, 3, H, W)``.

    No mapping network (``n_latent == 1``). ``image_size`` fixes
    ``latent_shape``; ``forward`` accepts any latent size. If an encoder is
    attached (``encoder=`` or found next to the decoder by ``load_taef2``),
    ``encode`` maps images back to latents, e.g. to initialise from a picture.
    """

    kind = "taef2"

    def __init__(
        self,
        decoder: TAEF2Decoder,
        encoder: TAEF2Encoder | None = None,
        image_size: int | tuple[int, int] = 256,
        prior_std: float = PRIOR_STD,
        encoder_path: str | Path | None = None,
    ) -> None:
        super().__init__()
        self.decoder = decoder
        self.encoder = encoder
        self._encoder_path = Path(encoder_path) if encoder_path is not None else None
        self.prior_std = float(prior_std)
        self.set_image_size(image_size)

    def set_image_size(self, image_size: int | tuple[int, int]) -> None:
        """Set the output size ``(H, W)``, height first (multiples of 8); updates ``latent_shape``.

        The spec string writes sizes width first, as ``--size`` does:
        ``taef2:FILE:384x512`` is ``image_size=(512, 384)``.
        """
        h, w = _size_hw(image_size)
        self.image_size = (h, w)
        self.latent_shape = (LATENT_CHANNELS, h // SCALE, w // SCALE)

    def sample_latent(self, n: int, seed: int, device: torch.device | str | None = None) -> Tensor:
        """``(n, 32, H/8, W/8)`` normal latents with std ``prior_std``, seeded."""
        return super().sample_latent(n, seed, device) * self.prior_std

    def forward(self, latent: Tensor) -> Tensor:
        """``(B, 32, h, w)`` -> ``(B, 3, 8h, 8w)`` clamped to ``[0, 1]``."""
        if latent.dim() != 4 or latent.shape[1] != LATENT_CHANNELS:
            raise VecgenError(f"taef2: latent must be (B, {LATENT_CHANNELS}, h, w), got {tuple(latent.shape)}")
        return self.decoder(latent).clamp(0.0, 1.0)

    def _get_encoder(self) -> TAEF2Encoder:
        if self.encoder is None:
            if self._encoder_path is None:
                raise VecgenError("taef2: no encoder weights (taef2_encoder.pth) available")
            self.encoder = load_taef2_encoder(self._encoder_path, self.device)
        return self.encoder

    def encode(self, image: Tensor) -> Tensor:
        """Image ``(B, 3, H, W)`` in ``[0, 1]`` (H, W multiples of 8) -> ``(B, 32, H/8, W/8)``."""
        if image.dim() != 4 or image.shape[1] != 3 or image.shape[-1] % SCALE or image.shape[-2] % SCALE:
            raise VecgenError(
                f"taef2: encode expects (B, 3, H, W) with H, W multiples of {SCALE}, got {tuple(image.shape)}"
            )
        return self._get_encoder()(image)


def load_taef2(
    decoder_path: str | Path | None = None,
    encoder_path: str | Path | None = None,
    device: torch.device | str = "cpu",
    image_size: int | tuple[int, int] = 256,
) -> TAEF2Generator:
    """Load the pretrained TAEF2 decoder (and, lazily, its encoder).

    ``decoder_path`` defaults to ``default_taef2_dir() / "taef2_decoder.pth"``.
    ``encoder_path`` defaults to ``taef2_encoder.pth`` beside the decoder
    when that file exists (it is loaded on the first ``encode`` call).
    ``image_size`` is an int or ``(H, W)``, height first (``taef2:FILE:WxH`` and
    ``--size WxH`` give width first and are turned into this).
    Returns the generator in eval mode with frozen weights.
    """
    dec_path = Path(decoder_path).expanduser() if decoder_path else default_taef2_dir() / "taef2_decoder.pth"
    decoder = _load_module(TAEF2Decoder(), dec_path, "TAEF2 decoder")
    if encoder_path is None:
        guess = dec_path.with_name(dec_path.name.replace("decoder", "encoder"))
        encoder_path = guess if guess != dec_path and guess.is_file() else None
    elif not Path(encoder_path).expanduser().is_file():
        raise VecgenError(f"TAEF2 encoder not found: {encoder_path}")
    gen = TAEF2Generator(decoder, image_size=image_size, encoder_path=encoder_path)
    gen.requires_grad_(False).eval()
    return gen.to(device)
