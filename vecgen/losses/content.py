"""Content loss: how far the output's deep features are from the content image's.

CLIPstyler uses VGG19's conv4_2 and conv5_2; here any perceptor's feature taps
(``perceptor.features(x, layers)``) stand in: a pretrained ImageNet classifier's
when one is installed, else a CLIP image tower's. Each layer's squared error is
divided by the mean square of the content's own features, so layers of
different scales (and perceptors) weigh alike and the loss is a relative error:
0 for the content image itself, about 1 for features of unrelated magnitude.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from vecgen.errors import VecgenError
from vecgen.objective import Context


class WholePass:
    """One pass of ``perceptor`` over the step's whole output ``ctx.image``, its ``layers`` tapped, shared by
    the terms that read it (the content term and a classifier's directional term read the same image: one
    forward and one backward instead of two). Cached in the step's ``ctx.cache``."""

    def __init__(self, perceptor, layers: Sequence[str]) -> None:
        self.perceptor, self.layers = perceptor, tuple(dict.fromkeys(layers))

    def __call__(self, ctx: Context) -> dict[str, Tensor]:
        """``{layer: activation}`` of ``ctx.image`` ``(B, 3, H, W)``, computed once per step."""
        key = ("whole", id(self))
        if key not in ctx.cache:
            ctx.cache[key] = self.perceptor.features(ctx.image, self.layers)
        return ctx.cache[key]


class ContentTerm:
    """Relative squared feature error of the output ``ctx.image`` against the content (same shape).

    The content ``(B, 3, H, W)`` is the step's ``"content"`` reference (``ctx.ref("content")``), or
    ``content()`` when a callable is given. ``layers``: the perceptor's tap names (default: its ``content_layers``).
    The content's features are computed once per content batch (no grad). ``whole``: a
    :class:`WholePass` of the same perceptor (tapping these layers) to read the output's features from.
    """

    def __init__(
        self,
        perceptor,
        content: Callable[[], Tensor] | None = None,
        layers: Sequence[str] | None = None,
        weight: float = 1.0,
        name: str | None = None,
        whole: WholePass | None = None,
    ) -> None:
        if not hasattr(perceptor, "features"):
            raise VecgenError(
                f"perceptor {getattr(perceptor, 'name', perceptor)!r} has no feature taps for a content loss"
            )
        known = tuple(getattr(perceptor, "feature_layers", ()))
        layers = tuple(layers) if layers else tuple(getattr(perceptor, "content_layers", ()))
        if not layers:
            raise VecgenError(f"perceptor {perceptor.name!r} names no content layers")
        bad = [n for n in layers if known and n not in known]
        if bad:
            raise VecgenError(f"unknown content layer {bad[0]!r} of {perceptor.name} (has: {', '.join(known)})")
        self.perceptor, self.content, self.layers = perceptor, content, layers
        self.weight = float(weight)
        self.name = name or f"content:{perceptor.name}"
        if whole is not None and (whole.perceptor is not perceptor or not set(layers) <= set(whole.layers)):
            raise VecgenError("content term: the shared pass must be of its perceptor and tap its layers")
        self.whole = whole
        self._seen: Tensor | None = None
        self._target: dict[str, Tensor] = {}

    def target(self, x: Tensor | None = None) -> dict[str, Tensor]:
        """``{layer: activation}`` of the content image ``x`` ``(B, 3, H, W)`` (default: ``content()``), as the
        perceptor's ``features`` gives them."""
        if x is None:
            if self.content is None:
                raise VecgenError("content term: no content given (it comes with the step's context)")
            x = self.content()
        if x is not self._seen:
            with torch.no_grad():
                feats = self.perceptor.features(x.to(self.perceptor.device), self.layers)
            self._target = {k: feats[k].detach() for k in self.layers}
            self._seen = x
        return self._target

    def __call__(self, ctx: Context) -> Tensor:
        """The mean over ``layers`` of the relative squared feature error.

        Shape:

        - ``ctx.image``: ``(B, 3, H, W)``, the content's shape
        - returns: ``()``
        """
        want = self.target(self.content() if self.content is not None else ctx.ref("content"))
        got = self.whole(ctx) if self.whole is not None else self.perceptor.features(ctx.image, self.layers)
        total = ctx.image.new_zeros(())
        for k in self.layers:
            t = want[k]
            total = total + (got[k] - t).pow(2).mean() / (t.pow(2).mean() + 1e-8)
        return total / len(self.layers)


#: ``-log`` of ImageNet's chance probability: :class:`ClassKeepTerm` is about 1 when the photo's classes fell to chance.
KEEP_CHANCE = 6.907755278982137


class ClassKeepTerm:
    """Keep the photo's own classes in a classifier's view of the whole output: identity is whole-image evidence.

    The patch term pushes a texture class onto crops; this term keeps the whole
    output's class distribution on the photo's own ``top`` classes (the content's
    top-``top`` probabilities, renormalised: ``w``). The loss is the cross-entropy
    ``-sum_k w_k log p_out(k)`` minus the content's own ``-sum_k w_k log p_content(k)``,
    divided by :data:`KEEP_CHANCE` and floored at 0: zero while the output keeps the
    photo's classes at least as likely as the photo itself did (so it never asks
    for more than the photo had), about 1 when they fell to chance. Only the
    optimized classifier reads it; the texture class is not held down (unlike a
    KL over all classes, which would pull the whole image's texture evidence back).

    ``whole``: a :class:`WholePass` of the same classifier tapping ``"logits"``.
    """

    def __init__(
        self,
        perceptor,
        top: int = 5,
        weight: float = 1.0,
        name: str | None = None,
        whole: WholePass | None = None,
        content: Callable[[], Tensor] | None = None,
    ) -> None:
        if getattr(perceptor, "kind", "") != "classifier":
            raise VecgenError("the class-keeping term needs an ImageNet classifier perceptor")
        if not 1 <= int(top) <= 1000:
            raise VecgenError(f"class-keeping top must be 1..1000, got {top}")
        if whole is not None and (whole.perceptor is not perceptor or "logits" not in whole.layers):
            raise VecgenError("class-keeping term: the shared pass must be of its perceptor and tap 'logits'")
        self.perceptor, self.top, self.weight = perceptor, int(top), float(weight)
        self.name = name or f"keep:{perceptor.name}"
        self.whole, self.content = whole, content
        self._seen: Tensor | None = None
        self._target: tuple[Tensor, Tensor, Tensor] | None = None

    def target(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(classes (B, top), weights (B, top), the content's own cross-entropy (B,))`` of ``x`` ``(B, 3, H, W)``."""
        if x is not self._seen or self._target is None:
            with torch.no_grad():
                logp = self.perceptor.logits(x.to(self.perceptor.device)).log_softmax(-1)
            top = logp.topk(self.top, dim=-1)
            w = top.values.softmax(-1)  # the top probabilities renormalised
            self._target = (top.indices, w, -(w * top.values).sum(-1))
            self._seen = x
        return self._target

    def __call__(self, ctx: Context) -> Tensor:
        """The floored excess cross-entropy on the photo's own classes, over :data:`KEEP_CHANCE`.

        Shape:

        - ``ctx.image``: ``(B, 3, H, W)``, the content's shape
        - returns: ``()``
        """
        classes, w, base = self.target(self.content() if self.content is not None else ctx.ref("content"))
        logits = self.whole(ctx)["logits"] if self.whole is not None else self.perceptor.logits(ctx.image)
        ce = -(w * logits.log_softmax(-1).gather(-1, classes)).sum(-1)
        return (ce - base).clamp(min=0).mean() / KEEP_CHANCE
