"""The generator protocol: a frozen network that maps a latent to an image.

A generator is what a "generator latent" parameterization optimizes through:
the parameterization owns a latent tensor (``z``, ``w`` or a per-layer ``W+``
stack) and calls the generator to render it. Three shapes matter:

* ``latent_shape``: one ``z`` latent, without the batch dimension.
  ``sample_latent(n, seed)`` returns ``(n, *latent_shape)``.
* ``w_shape``: one entry of the intermediate (post-mapping) space. For a
  generator without a mapping network this *is* ``latent_shape`` and
  ``mapping`` is the identity.
* ``n_latent``: how many per-layer ``W`` entries ``synthesize`` takes, i.e.
  ``synthesize`` wants ``(B, n_latent, *w_shape)``. It is 1 when there is no
  mapping network.

Every ``forward``/``synthesize`` returns ``(B, 3, H, W)`` in ``[0, 1]`` and is
differentiable with respect to its input (and, unless frozen, the weights).
Loaders return generators in eval mode with ``requires_grad`` off on every
weight; call ``requires_grad_(True)`` to fine-tune (StyleGAN-NADA).
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import Tensor, nn

from vecgen.errors import VecgenError
from vecgen.io import describe_load_error, read_checkpoint  # noqa: F401  (re-exported)

__all__ = ["Generator", "read_checkpoint", "describe_load_error", "check_state_dict", "load_weights"]


class Generator(nn.Module):
    """Base class of every generator backend.

    Subclasses set ``latent_shape`` and implement ``forward``; generators with
    a mapping network also set ``has_mapping = True`` and override
    ``mapping``, ``synthesize``, ``w_shape``, ``n_latent`` and
    ``mean_latent``.
    """

    #: Short name of the backend ("taef2", "stylegan2", "script").
    kind: str = "generator"
    #: True when ``mapping`` is a real network (z -> w), False for identity.
    has_mapping: bool = False

    def __init__(self) -> None:
        super().__init__()
        #: Shape of one ``z`` latent, without the batch dimension.
        self.latent_shape: tuple[int, ...] = ()

    # ------------------------------------------------------------------ shapes
    @property
    def w_shape(self) -> tuple[int, ...]:
        """Shape of one intermediate latent ``w`` (``latent_shape`` when no mapping)."""
        return tuple(self.latent_shape)

    @property
    def n_latent(self) -> int:
        """Number of per-layer entries in a ``W+`` latent (1 when no mapping)."""
        return 1

    @property
    def device(self) -> torch.device:
        """Device of the first parameter or buffer (CPU for a weightless module)."""
        for t in self.parameters():
            return t.device
        for b in self.buffers():
            return b.device
        return torch.device("cpu")

    # ----------------------------------------------------------------- latents
    def sample_latent(self, n: int, seed: int, device: torch.device | str | None = None) -> Tensor:
        """Draw ``n`` prior latents, deterministic for ``seed``.

        The draw happens on the CPU with a private ``torch.Generator`` (so the
        same seed gives the same latents on every device and leaves the global
        RNG untouched), then moves to ``device`` (default: the model's).
        The default prior is the standard normal.

        Shape:

        - returns: ``(n, *latent_shape)``
        """
        g = torch.Generator(device="cpu").manual_seed(int(seed))
        z = torch.randn((int(n), *self.latent_shape), generator=g)
        return z.to(device if device is not None else self.device)

    def mapping(self, z: Tensor) -> Tensor:
        """Map ``z`` ``(B, *latent_shape)`` to ``w`` ``(B, *w_shape)`` (identity here)."""
        return z

    def to_w_plus(self, w: Tensor) -> Tensor:
        """Repeat one ``w`` ``(B, *w_shape)`` per layer: ``(B, n_latent, *w_shape)``."""
        return w.unsqueeze(1).expand(w.shape[0], self.n_latent, *w.shape[1:]).contiguous()

    def synthesize(self, w_plus: Tensor) -> Tensor:
        """Render ``(B, n_latent, *w_shape)`` to ``(B, 3, H, W)`` in ``[0, 1]``.

        Without a mapping network ``n_latent`` is 1 and this is
        ``forward(w_plus[:, 0])``.
        """
        if w_plus.dim() != len(self.w_shape) + 2 or w_plus.shape[1] != 1:
            raise VecgenError(
                f"{self.kind}: synthesize expects (B, 1, {', '.join(map(str, self.w_shape))}),"
                f" got {tuple(w_plus.shape)}"
            )
        return self.forward(w_plus[:, 0])

    @torch.no_grad()
    def mean_latent(self, n: int = 4096, seed: int = 0) -> Tensor:
        """The centre of the latent distribution, ``(1, *w_shape)``.

        For a generator without a mapping network this is the prior mean
        (zeros for the standard normal prior); mapping generators average
        ``mapping`` over ``n`` seeded draws.
        """
        return torch.zeros((1, *self.w_shape), device=self.device)

    def forward(self, latent: Tensor) -> Tensor:  # pragma: no cover - abstract
        """Render ``z`` ``(B, *latent_shape)`` to ``(B, 3, H, W)`` in ``[0, 1]``."""
        raise NotImplementedError

    def extra_repr(self) -> str:
        return f"kind={self.kind}, latent_shape={tuple(self.latent_shape)}, n_latent={self.n_latent}"


def check_state_dict(model: nn.Module, state: Mapping[str, Any], source: str = "checkpoint") -> None:
    """Raise ``VecgenError`` naming the first key where ``state`` and ``model`` differ.

    Checked in order: keys the model needs but ``state`` lacks (in the model's
    order), keys ``state`` has but the model does not, then shape mismatches.
    """
    if not isinstance(state, Mapping):
        raise VecgenError(f"{source}: expected a state dict, got {type(state).__name__}")
    expected = model.state_dict()
    for key in expected:
        if key not in state:
            raise VecgenError(f"{source}: missing key '{key}' in state dict")
    for key in state:
        if key not in expected:
            raise VecgenError(f"{source}: unexpected key '{key}' in state dict")
    for key, ref in expected.items():
        got = state[key]
        if not isinstance(got, Tensor):
            raise VecgenError(f"{source}: key '{key}' is not a tensor")
        if tuple(got.shape) != tuple(ref.shape):
            raise VecgenError(
                f"{source}: shape mismatch for key '{key}': checkpoint {tuple(got.shape)} vs model {tuple(ref.shape)}"
            )


def load_weights(model: nn.Module, state: Mapping[str, Any], source: str = "checkpoint") -> None:
    """``check_state_dict`` then ``model.load_state_dict(state, strict=True)``."""
    check_state_dict(model, state, source)
    try:
        model.load_state_dict(dict(state), strict=True)
    except Exception as exc:  # pragma: no cover - check_state_dict catches these first
        first = str(exc).strip().splitlines()
        raise VecgenError(f"{source}: {first[-1].strip() if first else exc}") from None
