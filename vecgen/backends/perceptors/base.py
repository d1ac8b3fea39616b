"""The Perceptor protocol: what every image/text encoder gives the objectives.

A CLIP model (open_clip, the shipped mini models) and an ImageNet classifier
both satisfy it; the loss terms use nothing else of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor


@runtime_checkable
class Perceptor(Protocol):
    """An image (and text) encoder.

    ``name``: its spec; ``kind``: ``"clip"`` or ``"classifier"`` (a classifier's
    "texts" are its class names); ``input_size``: the side its images are
    resized to; ``feature_layers`` / ``content_layers``: the tap names
    :meth:`features` takes, and those a content loss uses by default.
    """

    name: str
    kind: str
    input_size: int
    feature_layers: tuple[str, ...]
    content_layers: tuple[str, ...]

    @property
    def device(self) -> torch.device: ...

    def encode_image(self, x: Tensor) -> Tensor:
        """``(N, 3, H, W)`` in ``[0, 1]`` (resized and normalised inside) -> ``(N, D)`` unit embeddings."""
        ...

    def encode_text(self, texts: list[str]) -> Tensor:
        """``P`` texts -> ``(P, D)`` unit embeddings (cached by the perceptor)."""
        ...

    def features(self, x: Tensor, layers: Sequence[str] | None = None) -> dict[str, Tensor]:
        """``(N, 3, H, W)`` in ``[0, 1]`` -> ``{layer: activation}`` (``None``: every layer of ``feature_layers``)."""
        ...
