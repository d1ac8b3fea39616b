"""StyleNet: a small U-Net over a content image, the parameterization of ``vecgen style`` (CLIPstyler).

The network (``ngf`` 16 channels at full resolution, InstanceNorm, sigmoid
output) is what is optimized, not the pixels. Being convolutional it is
resolution-independent: it is optimized on the content image at a working
size (512 px on the short side by default) and then applied to the image at
its full size, tile by tile, so a 16-megapixel photo never holds more than
one tile's activations (:meth:`StyleNet.apply`).

Two choices of our own, both for short CPU runs:

* the output is ``sigmoid(logit(x) + f(x))`` with ``f``'s last layer zero at
  the start, so step 0 renders the content image exactly and the optimizer
  spends no steps learning to reproduce it;
* the InstanceNorm statistics used at full size are the ones the network saw
  at the working size (:meth:`StyleNet.freeze_stats`): tiles then compute
  exactly what one pass over the whole (impossibly large) image would with
  those statistics, and the look at full size is the look that was optimized.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vecgen.errors import VecgenError
from vecgen.params.base import StepContext

#: The network's input must be a multiple of this (two stride-2 levels).
ALIGN = 4
#: Pixels of context around each tile: more than the network's receptive radius (about 20 px).
HALO = 32
#: Side of the tiles :meth:`StyleNet.apply` computes at a time (before the halo).
TILE = 512
#: The logit of the content image is taken of ``x`` clamped to ``[EPS, 1 - EPS]`` (finite at 0 and 1).
EPS = 1e-3
ARCH = "stylenet-unet2"


class Norm(nn.Module):
    """InstanceNorm (affine) that can record its statistics and reuse them (for tiled application)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.frozen: tuple[Tensor, Tensor] | None = None  # (mean, std), each (B, C, 1, 1)
        self.record = False

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C, H, W)`` -> the same shape, normalised per channel then scaled and shifted."""
        if self.frozen is None and not self.record and x.shape[0] == 1 and x.shape[-1] * x.shape[-2] > 1:
            # one image: its instance norm is a batch norm (statistics over H x W), whose fused kernel's
            # backward is a few times faster than autograd through the formula below (a third of a
            # 768x512 StyleNet step)
            return F.batch_norm(x, None, None, self.weight, self.bias, True, 0.0, 1e-5)
        w, b = self.weight.view(1, -1, 1, 1), self.bias.view(1, -1, 1, 1)
        if self.frozen is not None:
            mean, std = self.frozen
        else:  # E[x^2] - E[x]^2: a quarter of var_mean's time on channels-last tensors
            mean = x.mean((2, 3), keepdim=True)
            var = (x * x).mean((2, 3), keepdim=True) - mean * mean
            std = (var.clamp(min=0.0) + 1e-5).sqrt()
            if self.record:
                self.frozen = (mean.detach(), std.detach())
        scale = w / std
        return torch.addcmul(b - mean * scale, x, scale)  # one fused pass over x: full-size application is fast


def pointwise(conv: nn.Conv2d, x: Tensor) -> Tensor:
    """A 1x1 ``conv`` as a matrix product over channels-last pixels, ``(B, C_in, H, W)`` -> ``(B, C_out, H, W)``
    (torch's CPU 1x1 conv on channels-last tensors takes a slow path: a third of a full-size pass)."""
    w = conv.weight.view(conv.out_channels, conv.in_channels)
    return F.linear(x.permute(0, 2, 3, 1), w, conv.bias).permute(0, 3, 1, 2)


def _block(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1), Norm(cout), nn.LeakyReLU(0.2, inplace=True))


class Merge(nn.Module):
    """``conv(cat(a, b))`` as ``conv_a(a) + conv_b(b)``, then Norm and LeakyReLU (no concatenated copy)."""

    def __init__(self, ca: int, cb: int, cout: int, k: int = 3) -> None:
        super().__init__()
        self.a = nn.Conv2d(ca, cout, k, 1, k // 2)
        self.b = nn.Conv2d(cb, cout, k, 1, k // 2, bias=False)
        self.norm = Norm(cout)
        self.act = nn.LeakyReLU(0.2, inplace=True)

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        """``(B, C_a, H, W)`` and ``(B, C_b, H, W)`` -> ``(B, C_out, H, W)``."""
        if self.a.kernel_size == (1, 1):
            return self.act(self.norm(pointwise(self.a, a) + pointwise(self.b, b)))
        return self.act(self.norm(self.a(a) + self.b(b)))


class StyleNet(nn.Module):
    """The U-Net: ``(B, 3, H, W)`` in ``[0, 1]`` -> ``(B, 3, H, W)`` in ``(0, 1)``, any H, W.

    Encoder at 1, 1/2 and 1/4 of the size (``ngf``, ``2 ngf``, ``4 ngf``
    channels), decoder with nearest upsampling and skip connections, a 1x1
    output conv added to the input's logit, then a sigmoid. Receptive radius
    about 21 px (under :data:`HALO`).
    """

    def __init__(self, ngf: int = 16) -> None:
        super().__init__()
        self.ngf = int(ngf)
        g = self.ngf
        # Full resolution gets one 3x3 conv in and a 1x1 conv out: most of the cost of a U-Net is there,
        # and a 1024x768 image must stylize in well under a second on one CPU core.
        self.enc0 = _block(3, g)
        self.enc1 = nn.Sequential(_block(g, 2 * g, 2), _block(2 * g, 2 * g))
        self.enc2 = nn.Sequential(_block(2 * g, 4 * g, 2), _block(4 * g, 4 * g))
        self.up2 = _block(4 * g, 2 * g)
        self.dec1 = Merge(2 * g, 2 * g, 2 * g)
        self.up1 = _block(2 * g, g)
        self.dec0 = Merge(g, g, g, 1)
        self.out = nn.Conv2d(g, 3, 1)
        nn.init.zeros_(self.out.weight)  # step 0 renders the content image itself
        if self.out.bias is not None:
            nn.init.zeros_(self.out.bias)
        self.to(memory_format=torch.channels_last)

    def norms(self) -> list[Norm]:
        return [m for m in self.modules() if isinstance(m, Norm)]

    def _residual_aligned(self, x: Tensor) -> Tensor:
        """The logit-space change for a channels-last ``x`` ``(B, 3, H, W)``, ``H`` and ``W`` multiples of ALIGN."""
        e0 = self.enc0(x)
        e1 = self.enc1(e0)
        e2 = self.enc2(e1)
        # the decoder's channel-reducing convs run before upsampling: 4x fewer pixels to convolve
        d1 = self.dec1(F.interpolate(self.up2(e2), scale_factor=2.0, mode="nearest"), e1)
        d0 = self.dec0(F.interpolate(self.up1(d1), scale_factor=2.0, mode="nearest"), e0)
        return pointwise(self.out, d0)

    def _forward_aligned(self, x: Tensor) -> Tensor:
        x = x.contiguous(memory_format=torch.channels_last)  # about 2x faster convolutions on CPU
        logit = torch.logit(x.clamp(EPS, 1.0 - EPS))
        return torch.sigmoid(logit + self._residual_aligned(x)).contiguous()

    def residual(self, x: Tensor) -> Tensor:
        """The change in logit space the network adds to ``x`` ``(B, 3, H, W)``: ``(B, 3, H, W)``."""
        h, w = x.shape[-2:]
        x = _pad_aligned(x).contiguous(memory_format=torch.channels_last)
        return self._residual_aligned(x)[..., :h, :w].contiguous()

    def forward(self, x: Tensor) -> Tensor:
        """``(B, 3, H, W)`` in ``[0, 1]``, any size -> the stylised ``(B, 3, H, W)``."""
        h, w = x.shape[-2:]
        return self._forward_aligned(_pad_aligned(x))[..., :h, :w]

    # ------------------------------------------------------------------------- full-size application
    @torch.no_grad()
    def freeze_stats(self, x: Tensor | None) -> None:
        """Record every InstanceNorm's statistics on ``x`` ``(B, 3, h, w)`` (the working-size content) and
        keep them for later passes; ``None`` goes back to per-input statistics."""
        for n in self.norms():
            n.frozen, n.record = None, x is not None
        if x is not None:
            self(x)
            for n in self.norms():
                n.record = False

    @torch.no_grad()
    def apply(  # type: ignore[override]
        self, image: Tensor, stats_from: Tensor, tile: int = TILE, at: str = "full"
    ) -> Tensor:
        """Stylize ``image`` ``(1, 3, H, W)`` at its full size.

        ``stats_from`` ``(1, 3, h, w)``: the content at the working size the
        network was optimized at. ``at="full"``: the network runs over the full
        size, ``tile`` x ``tile`` pixels at a time, with ``stats_from``'s
        InstanceNorm statistics (memory: the input, the output and one tile's
        activations). ``at="work"``: it runs once over ``stats_from`` and its
        change (in logit space) is upsampled onto the full-size photo: the look
        that was optimized, texture at the scale it was optimized at, at a
        fraction of the cost (:meth:`apply_work`).
        """
        if image.dim() != 4 or image.shape[0] != 1 or image.shape[1] != 3:
            raise VecgenError(f"StyleNet.apply takes a (1, 3, H, W) image, got {tuple(image.shape)}")
        if at == "work":
            return self.apply_work(image, stats_from)
        if at != "full":
            raise VecgenError(f"StyleNet.apply: at must be 'full' or 'work', not {at!r}")
        tile = max(ALIGN, int(tile) // ALIGN * ALIGN)
        dev = next(self.parameters()).device
        self.freeze_stats(stats_from.to(dev))
        try:
            h, w = image.shape[-2:]
            x = _pad_aligned(image)
            hh, ww = x.shape[-2:]
            out = torch.empty((1, 3, h, w), dtype=torch.float32)
            for y0 in range(0, hh, tile):
                for x0 in range(0, ww, tile):
                    y1, x1 = min(hh, y0 + tile), min(ww, x0 + tile)
                    # halo a multiple of ALIGN: the tile sits on the same stride grid as the whole image
                    ya, xa = max(0, y0 - HALO), max(0, x0 - HALO)
                    yb, xb = min(hh, y1 + HALO), min(ww, x1 + HALO)
                    piece = self._forward_aligned(x[..., ya:yb, xa:xb].to(dev, torch.float32)).cpu()
                    keep = piece[..., y0 - ya : y1 - ya, x0 - xa : x1 - xa]
                    out[..., y0 : min(y1, h), x0 : min(x1, w)] = keep[..., : min(y1, h) - y0, : min(x1, w) - x0]
            return out
        finally:
            self.freeze_stats(None)

    @torch.no_grad()
    def apply_work(self, image: Tensor, small: Tensor, band: int = 256) -> Tensor:
        """``sigmoid(logit(image) + up(residual(small)))``: ``(1, 3, H, W)`` from the network run once on
        ``small`` ``(1, 3, h, w)`` (the working copy), its change upsampled bilinearly to ``H x W``.

        Computed ``band`` rows of the output at a time (each band upsampled from
        the rows of ``small`` it needs), so the peak memory is the input, the
        output and one band, whatever the photo's size.
        """
        dev = next(self.parameters()).device
        r = self.residual(small.to(dev, torch.float32)).cpu()
        h, w = image.shape[-2:]
        rh, rw = r.shape[-2:]
        out = torch.empty((1, 3, h, w), dtype=torch.float32)
        sy = rh / h  # source rows per output row (align_corners=False)
        for y0 in range(0, h, band):
            y1 = min(h, y0 + band)
            # the residual rows this band reads, plus one of margin each side
            a = max(0, int(math.floor((y0 + 0.5) * sy - 0.5)) - 1)
            b = min(rh, int(math.ceil((y1 - 0.5) * sy - 0.5)) + 2)
            grid_y = ((torch.arange(y0, y1, dtype=torch.float32) + 0.5) * sy - 0.5).clamp(0, rh - 1) - a
            grid_x = ((torch.arange(w, dtype=torch.float32) + 0.5) * (rw / w) - 0.5).clamp(0, rw - 1)
            up = _bilinear(r[..., a:b, :], grid_y, grid_x)
            x = image[..., y0:y1, :].to(torch.float32)
            out[..., y0:y1, :] = torch.logit(x.clamp(EPS, 1.0 - EPS)).add_(up).sigmoid_()
        return out


# ----------------------------------------------------------------------------- the parameterization
class StyleNetImage:
    """The parameterization: a :class:`StyleNet`'s render of one content image at the working size.

    ``content`` ``(1, 3, h, w)`` in ``[0, 1]`` (already at the working size);
    ``lr`` for Adam, halved at half of the run (CLIPstyler's StepLR). The
    terms read :attr:`content` for the directional and content losses.
    """

    kind = "raster"

    def __init__(
        self,
        content: Tensor,
        *,
        ngf: int = 16,
        lr: float = 5e-4,
        seed: int = 0,
        device: torch.device | str = "cpu",
        net: StyleNet | None = None,
    ) -> None:
        if content.dim() != 4 or content.shape[1] != 3 or min(content.shape[-2:]) < 1:
            raise VecgenError(f"content must be (B, 3, h, w), got {tuple(content.shape)}")
        with torch.random.fork_rng(devices=[]):  # the init draws from its own seed, not the caller's RNG
            torch.manual_seed(seed)
            self.net = (net if net is not None else StyleNet(ngf)).to(device)
        self.content = content.to(device, torch.float32)
        self.lr = float(lr)

    def param_groups(self) -> list[dict[str, Any]]:
        return [{"params": list(self.net.parameters()), "lr": self.lr, "name": "stylenet", "schedule": halve_at_half}]

    def render(self, ctx: StepContext | None = None) -> Tensor:
        """The stylised content image ``(1, 3, H, W)`` in ``[0, 1]`` (differentiable).

        Publishes ``ctx.refs["content"]``, the content batch, for the style terms."""
        if ctx is not None:
            ctx.refs["content"] = self.content
        return self.net(self.content)

    def project_(self) -> None:
        pass

    def export(self, path: str | Path) -> None:
        from vecgen.io import save_png

        with torch.no_grad():
            save_png(self.render()[:1], path)

    def state_dict(self) -> dict[str, Any]:
        return {"net": copy.deepcopy(self.net.state_dict())}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.net.load_state_dict(state["net"])


def _pad_aligned(x: Tensor) -> Tensor:
    """``x`` ``(B, C, H, W)`` replicated at its bottom and right edges to multiples of ALIGN (cropped back by callers)."""
    ph, pw = (-x.shape[-2]) % ALIGN, (-x.shape[-1]) % ALIGN
    return F.pad(x, (0, pw, 0, ph), mode="replicate") if ph or pw else x


def _bilinear(r: Tensor, ys: Tensor, xs: Tensor) -> Tensor:
    """``r`` ``(1, C, h, w)`` sampled at rows ``ys`` ``(H,)`` and columns ``xs`` ``(W,)`` (pixel coordinates,
    inside ``r``), bilinear: ``(1, C, H, W)``. Separable: two gathers and two lerps."""
    y0 = ys.floor().long().clamp(0, r.shape[-2] - 1)
    y1 = (y0 + 1).clamp(max=r.shape[-2] - 1)
    x0 = xs.floor().long().clamp(0, r.shape[-1] - 1)
    x1 = (x0 + 1).clamp(max=r.shape[-1] - 1)
    fy, fx = (ys - y0).view(-1, 1), (xs - x0)
    rows = torch.lerp(r[..., y0, :], r[..., y1, :], fy)
    return torch.lerp(rows[..., x0], rows[..., x1], fx)


def halve_at_half(step: int, steps: int) -> float:
    """CLIPstyler's schedule: lr x0.5 from half of the run on (step 100 of 200).

    Marked ``exact_resume``: a checkpoint resumes with another ``--steps`` only while none of its
    steps depended on the length (before both halves); else the engine refuses, naming the
    ``--steps`` to use, so a resumed style run always equals a plain one (:func:`vecgen.engine.check_schedule`).
    """
    return 0.5 if step >= steps // 2 else 1.0


halve_at_half.exact_resume = True  # type: ignore[attr-defined]


# ----------------------------------------------------------------------------- fast mode: one net, many images
class StyleNetBatches(StyleNetImage):
    """Fast-mode training: the same network over random crops of a folder's images.

    ``images``: list of ``(1, 3, H, W)`` tensors (float in [0, 1] or uint8; at most a working size).
    Each step renders a batch of ``batch`` random ``crop`` x ``crop`` crops
    (smaller images are upscaled to fit); :meth:`end_step` draws the next
    batch, so :meth:`render` is deterministic between steps and a resumed run
    continues with the very batch it would have had (the sampler's state is in
    :meth:`state_dict`).
    """

    def __init__(
        self,
        images: list[Tensor],
        *,
        crop: int = 256,
        batch: int = 4,
        ngf: int = 16,
        lr: float = 1e-4,
        seed: int = 0,
        device: torch.device | str = "cpu",
    ) -> None:
        if not images:
            raise VecgenError("no training images")
        self.images = images
        self.crop, self.batch = int(crop), int(batch)
        self.gen = torch.Generator().manual_seed(seed + 7)
        self.device = torch.device(device)
        super().__init__(self._draw(), ngf=ngf, lr=lr, seed=seed, device=device)

    def _draw(self) -> Tensor:
        out = []
        for _ in range(self.batch):
            img = self.images[int(torch.randint(len(self.images), (1,), generator=self.gen))]
            h, w = img.shape[-2:]
            if min(h, w) < self.crop:
                k = self.crop / min(h, w)
                img = F.interpolate(
                    _as_float(img),
                    size=(max(self.crop, math.ceil(h * k)), max(self.crop, math.ceil(w * k))),
                    mode="bilinear",
                    align_corners=False,
                )
                h, w = img.shape[-2:]
            y = int(torch.randint(h - self.crop + 1, (1,), generator=self.gen))
            x = int(torch.randint(w - self.crop + 1, (1,), generator=self.gen))
            part = _as_float(img[..., y : y + self.crop, x : x + self.crop])
            if bool(torch.rand((), generator=self.gen) < 0.5):
                part = part.flip(-1)
            out.append(part)
        return torch.cat(out).to(self.device, torch.float32)

    def param_groups(self) -> list[dict[str, Any]]:
        return [{"params": list(self.net.parameters()), "lr": self.lr, "name": "stylenet"}]

    def end_step(self, ctx: StepContext) -> None:
        """Draw the next step's batch."""
        self.content = self._draw()

    def state_dict(self) -> dict[str, Any]:
        return {
            "net": copy.deepcopy(self.net.state_dict()),
            "sampler": self.gen.get_state(),
            "content": self.content.detach().cpu().clone(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.net.load_state_dict(state["net"])
        if "sampler" in state:
            self.gen.set_state(state["sampler"])
            self.content = state["content"].to(self.device)


def _as_float(x: Tensor) -> Tensor:
    """8-bit images (how training folders are kept) -> float32 in [0, 1]."""
    return x.float() / 255.0 if x.dtype == torch.uint8 else x.float()


# ----------------------------------------------------------------------------- model files
def save_model(net: StyleNet, path: str | Path, metadata: dict[str, str]) -> None:
    """Write the network as safetensors (atomically) with ``metadata`` (text, settings) and its architecture."""
    from vecgen.io import atomic_write, safetensors_bytes

    meta = {**{str(k): str(v) for k, v in metadata.items()}, "arch": ARCH, "ngf": str(net.ngf)}
    atomic_write(path, safetensors_bytes(net.state_dict(), meta))


def load_model(path: str | Path, device: torch.device | str = "cpu") -> tuple[StyleNet, dict[str, str]]:
    """A network written by :func:`save_model` -> ``(net, metadata)``; one-line errors for any other file."""
    from safetensors import safe_open

    from vecgen.io import file_format, read_checkpoint

    p = Path(path)
    if not p.is_file():
        raise VecgenError(f"style model not found: {p}")
    if file_format(p) != "safetensors":
        raise VecgenError(f"{p} is not a style model: expected a .safetensors file written by vecgen style --train")
    tensors = read_checkpoint(p, "style model")
    try:
        with safe_open(str(p), framework="pt") as f:
            meta = dict(f.metadata() or {})
    except Exception as e:  # noqa: BLE001 - read_checkpoint already accepted the file; be safe anyway
        raise VecgenError(f"cannot read style model {p}: {type(e).__name__}") from None
    if meta.get("arch") != ARCH:
        raise VecgenError(
            f"{p} is not a style model of this kind (architecture {meta.get('arch', 'unknown')!r}, "
            f"expected {ARCH!r}): make one with vecgen style --train"
        )
    try:
        ngf = int(meta.get("ngf", "16"))
        if not 1 <= ngf <= 256:
            raise ValueError
    except ValueError:
        raise VecgenError(f"{p}: bad ngf {meta.get('ngf')!r} in the style model's metadata") from None
    net = StyleNet(ngf)
    want = net.state_dict()
    for k, v in want.items():
        got = tensors.get(k)
        if got is None:
            raise VecgenError(f"{p} does not match the StyleNet architecture (missing tensor {k!r})")
        if tuple(got.shape) != tuple(v.shape):
            raise VecgenError(
                f"{p} does not match the StyleNet architecture ({k}: {tuple(got.shape)} in the file, "
                f"{tuple(v.shape)} expected)"
            )
    extra = sorted(set(tensors) - set(want))
    if extra:
        raise VecgenError(f"{p} does not match the StyleNet architecture (unexpected tensor {extra[0]!r})")
    net.load_state_dict({k: tensors[k].float() for k in want})
    return net.to(device).eval(), meta
