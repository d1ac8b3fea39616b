"""StyleCLIP's latent mapper: a small residual network ``w -> w + M(w)`` trained for one text.

:class:`LatentMapper` acts on a generator's ``W+`` latent ``(B, n_latent, *w_shape)``:

* spatial latents (TAEF2, ``w_shape = (C, h, w)``): three 3x3 convolutions
  (C -> hidden -> hidden -> C); they run at any latent size, so one mapper
  edits photos of any aspect;
* vector latents (StyleGAN2, ``w_shape = (D,)``): a pixel-normalised MLP of
  ``depth`` layers applied to every row of ``W+`` (StyleCLIP's mapper shape);
* anything else: the same MLP over the flattened latent.

The last layer starts at zero, so an untrained mapper is the identity edit.

:class:`MapperTraining` is the parameterization the engine optimizes: each
step picks a seeded batch from a bank of (inverted) latents, renders the
edited latents and keeps the unedited renders in ``reference_image`` for a
directional term; ``l2_to_init()`` is the mean squared step ``|M(w)|^2`` (so
:class:`vecgen.losses.LatentL2` is StyleCLIP's L2 term, weight 0.8).

Files: :func:`save_mapper` / :func:`load_mapper` (safetensors; the text, the
generator's kind and weight fingerprint in the metadata).
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from vecgen.errors import VecgenError
from vecgen.io import atomic_write
from vecgen.params.base import StepContext

FORMAT = "vecgen-latent-mapper"


def generator_fingerprint(gen: nn.Module) -> str:
    """A short hash of a generator's kind and weights: which generator a mapper or a cache was made for."""
    h = hashlib.sha256(str(getattr(gen, "kind", type(gen).__name__)).encode())
    for name, t in sorted(gen.state_dict().items()):
        if name.startswith("encoder."):  # TAEF2's encoder loads lazily: not part of what renders
            continue
        h.update(name.encode())
        h.update(t.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


class _PixelNorm(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-8)


class LatentMapper(nn.Module):
    """``W+`` ``(B, n_latent, *w_shape)`` -> the step ``M(w)`` of the same shape (zero at init).

    ``hidden``: width (default 64 for spatial latents, ``D`` for vectors, capped at 512);
    ``depth``: MLP layers (vector latents only).
    """

    def __init__(self, w_shape: tuple[int, ...], hidden: int | None = None, depth: int = 4) -> None:
        super().__init__()
        self.w_shape = tuple(int(s) for s in w_shape)
        self.arch = "conv" if len(self.w_shape) == 3 else "mlp"
        if self.arch == "conv":
            c = self.w_shape[0]
            hidden = int(hidden or 64)
            self.net = nn.Sequential(
                nn.Conv2d(c, hidden, 3, padding=1),
                nn.LeakyReLU(0.2),
                nn.Conv2d(hidden, hidden, 3, padding=1),
                nn.LeakyReLU(0.2),
                nn.Conv2d(hidden, c, 3, padding=1),
            )
        else:
            d = math.prod(self.w_shape)
            hidden = int(hidden or min(d, 512))
            layers: list[nn.Module] = [_PixelNorm()]
            for i in range(max(1, int(depth))):
                last = i == max(1, int(depth)) - 1
                layers.append(nn.Linear(d if i == 0 else hidden, d if last else hidden))
                if not last:
                    layers.append(nn.LeakyReLU(0.2))
            self.net = nn.Sequential(*layers)
        self.hidden, self.depth = hidden, int(depth)
        out_layer = [m for m in self.net if isinstance(m, (nn.Conv2d, nn.Linear))][-1]
        nn.init.zeros_(out_layer.weight)
        if out_layer.bias is not None:
            nn.init.zeros_(out_layer.bias)

    def config(self) -> dict[str, Any]:
        return {"w_shape": list(self.w_shape), "hidden": self.hidden, "depth": self.depth, "arch": self.arch}

    def forward(self, w_plus: Tensor) -> Tensor:
        """``(B, n_latent, *w_shape)`` latents -> their steps, the same shape."""
        b, n = w_plus.shape[:2]
        rows = w_plus.reshape(b * n, *w_plus.shape[2:])
        if self.arch == "conv":
            if rows.dim() != 4 or rows.shape[1] != self.w_shape[0]:
                raise VecgenError(f"mapper for {self.w_shape[0]}-channel latents got {tuple(w_plus.shape)}")
            return self.net(rows).reshape(w_plus.shape)
        if math.prod(rows.shape[1:]) != math.prod(self.w_shape):
            raise VecgenError(f"mapper for latents {self.w_shape} got {tuple(w_plus.shape)}")
        return self.net(rows.reshape(b * n, -1)).reshape(w_plus.shape)


class MapperTraining:
    """Trains a :class:`LatentMapper` over ``bank`` ``(N, n_latent, *w_shape)`` through a frozen ``generator``.

    ``render()`` -> ``(batch, 3, H, W)``: ``G(w + M(w))`` for ``batch`` latents drawn
    (seeded by ``seed`` and the step) from the bank; ``reference_image``: ``G(w)``.
    """

    kind = "raster"
    name = "mapper"

    def __init__(
        self,
        generator,
        bank: Tensor,
        *,
        mapper: LatentMapper | None = None,
        batch: int = 2,
        lr: float = 0.002,
        seed: int = 0,
    ) -> None:
        if bank.dim() < 3 or bank.shape[0] < 1 or bank.shape[1] != generator.n_latent:
            raise VecgenError(f"mapper bank must be (N, {generator.n_latent}, ...), got {tuple(bank.shape)}")
        self.generator = generator
        self.device = generator.device
        self.bank = bank.detach().to(self.device, torch.float32)
        self.mapper = (mapper or LatentMapper(tuple(bank.shape[2:]))).to(self.device)
        self.batch, self.lr, self.seed = max(1, int(batch)), float(lr), int(seed)
        self.step = 0
        self.reference_image: Tensor | None = None
        self._delta: Tensor | None = None

    def _pick(self, step: int | None = None) -> Tensor:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + (self.step if step is None else step))
        idx = torch.randint(0, self.bank.shape[0], (self.batch,), generator=g)
        return self.bank[idx.to(self.device)]

    def param_groups(self) -> list[dict[str, Any]]:
        return [{"params": list(self.mapper.parameters()), "lr": self.lr, "name": "mapper"}]

    def render(self, ctx: StepContext | None = None) -> Tensor:
        """The edited renders of this step's latent batch, ``(B, 3, H, W)`` (``B = batch``).

        Publishes ``ctx.refs["reference"]`` (the unedited renders, ``reference_image``) and
        ``ctx.refs["l2_to_init"]`` (:meth:`l2_to_init`)."""
        w = self._pick(None if ctx is None else ctx.step)
        with torch.no_grad():
            self.reference_image = self.generator.synthesize(w)
        self._delta = self.mapper(w)
        if ctx is not None:
            ctx.refs["reference"] = self.reference_image
            ctx.refs["l2_to_init"] = self._delta.pow(2).mean()
        return self.generator.synthesize(w + self._delta)

    def l2_to_init(self) -> Tensor:
        """Mean squared step of the last rendered batch (StyleCLIP's mapper L2).

        Shape:

        - returns: ``()``
        """
        delta = self._delta
        if delta is None:
            self.render()
            delta = self._delta
        assert delta is not None  # render() sets it
        return delta.pow(2).mean()

    def project_(self) -> None:
        """Nothing to repair."""

    def end_step(self, ctx: StepContext) -> None:
        """The next step's latent batch (the step count is kept in the state for resume)."""
        self.step = ctx.step + 1

    @torch.no_grad()
    def apply(self, w_plus: Tensor) -> Tensor:
        """``(B, n_latent, *w_shape)`` latents -> the edited latents, the same shape."""
        return w_plus + self.mapper(w_plus)

    def state_dict(self) -> dict[str, Any]:
        return {
            "type": "mapper",
            "step": self.step,
            "mapper": {k: v.detach().cpu().clone() for k, v in self.mapper.state_dict().items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("type") != "mapper":
            raise VecgenError("checkpoint is not a mapper training run")
        try:
            self.mapper.load_state_dict(state["mapper"])
        except (RuntimeError, KeyError) as e:
            raise VecgenError(f"checkpoint mapper does not fit this run ({str(e).splitlines()[0]})") from None
        self.step = int(state.get("step", 0))


def save_mapper(path: str | Path, mapper: LatentMapper, meta: dict[str, Any]) -> Path:
    """Write the mapper as safetensors (atomically); ``meta`` (text, generator...) goes in the metadata."""
    from vecgen.io import safetensors_bytes

    info = {"format": FORMAT, "config": json.dumps(mapper.config(), sort_keys=True)}
    info.update({k: json.dumps(v, sort_keys=True) for k, v in meta.items()})
    return atomic_write(path, safetensors_bytes(mapper.state_dict(), info))


def load_mapper(path: str | Path) -> tuple[LatentMapper, dict[str, Any]]:
    """Read a mapper file -> ``(mapper, metadata)``; one-line VecgenError if it is not one."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    p = Path(path)
    if not p.is_file():
        raise VecgenError(f"mapper not found: {p}")
    try:
        with safe_open(str(p), "pt") as f:
            info = dict(f.metadata() or {})
        tensors = load_file(str(p))
    except Exception as e:  # safetensors raises several types for a damaged or foreign file
        raise VecgenError(f"cannot read mapper {p}: not a safetensors file ({type(e).__name__})") from None
    if info.get("format") != FORMAT:
        raise VecgenError(f"{p} is not a vecgen latent mapper (no '{FORMAT}' metadata)")
    try:
        cfg = json.loads(info.pop("config"))
        meta = {k: json.loads(v) for k, v in info.items() if k != "format"}
        mapper = LatentMapper(tuple(cfg["w_shape"]), cfg["hidden"], cfg["depth"])
        mapper.load_state_dict(tensors)
    except (KeyError, ValueError, TypeError, RuntimeError) as e:
        raise VecgenError(f"mapper {p} is damaged ({type(e).__name__})") from None
    return mapper.eval().requires_grad_(False), meta
