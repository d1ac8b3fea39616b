"""A classifier's own loss: the negative log-probability of the prompt's ImageNet class over the views.

The cosine terms reach a classifier through an embedding (``features``: the penultimate features
against the class's row of the final layer; ``probs``: ``1 - sqrt(p)``, whose gradient fades
with ``sqrt(p)`` where the class is still unlikely). ``-log p`` is the cross-entropy a classifier
was trained with: its gradient on the logits is ``p - onehot``, as strong at ``p = 0`` as anywhere,
and it pushes the other classes down as well as the class up.
"""

from __future__ import annotations

import torch
from torch import Tensor

from vecgen.losses.clip import clamp_stops
from vecgen.objective import Context
from vecgen.prompts import Prompt


class ClassTerm:
    """``sum_prompts weight * mean_views(-log softmax(logits)[class])`` for one classifier perceptor
    (anything with ``logits(x) -> (N, 1000)`` and ``class_index(text)``); ``stop`` clamps as in
    :class:`~vecgen.losses.ClipTerm`."""

    needs_views = True

    def __init__(self, perceptor, prompts: list[Prompt], weight: float = 1.0, name: str | None = None) -> None:
        self.perceptor = perceptor
        self.prompts = prompts
        self.weight = weight
        self.name = name or f"class:{perceptor.name}"
        self.classes = torch.tensor([perceptor.class_index(p.text) for p in prompts], dtype=torch.int64)
        self.weights = torch.tensor([p.weight for p in prompts], dtype=torch.float32)

    def __call__(self, ctx: Context) -> Tensor:
        """Scalar loss of the views ``ctx.views`` ``(N, 3, H, W)``."""
        assert ctx.views is not None
        logp = self.perceptor.logits(ctx.views).log_softmax(-1)  # (N, 1000)
        dist = -logp.index_select(1, self.classes.to(logp.device)).mean(0)  # (P,)
        return clamp_stops(dist, self.weights.to(dist.device), [p.stop for p in self.prompts])
