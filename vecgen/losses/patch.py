"""CLIPstyler's directional terms: the whole output, and random perspective-warped patches of it.

Both measure the step from the content image to the output in a perceptor's
embedding space against the step from the source text to the target text.
For a perceptor with no text for the source (an ImageNet classifier, ``kind
== "classifier"``) the source point is the content image's own embedding, so
the text step is "from what this image is, toward the target class".

The patch term rejects patches already past the threshold: a patch whose
directional distance ``1 - cos`` is below ``threshold`` (CLIPstyler's tau,
0.7) contributes exactly zero, and so exactly zero gradient, which keeps the
optimizer from overdoing patches that already show the style.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from vecgen.errors import VecgenError
from vecgen.losses.direction import DIRECTION_FLOOR, mean_text
from vecgen.objective import Chunks, Context

#: CLIPstyler's patch threshold tau.
THRESHOLD = 0.7
#: Crops per perceptor pass of the patch term (its memory: see PatchDirectionTerm._chunked).
CHUNK = 4


class StyleDirection:
    """The text step and the content's embedding for one perceptor, cached while the content stays the same.

    The content batch ``(B, 3, h, w)`` is the step's ``"content"`` reference
    (``ctx.ref("content")``, published by the style parameterization; fast mode
    draws a new batch each step), or ``content()`` when a callable is given.
    Terms call :meth:`use` with their context first.
    """

    def __init__(
        self,
        perceptor,
        source: str | Sequence[str],
        target: str | Sequence[str],
        content: Callable[[], Tensor] | None = None,
    ) -> None:
        tgt = [target] if isinstance(target, str) else list(target)
        src = [source] if isinstance(source, str) else list(source or [])
        if not tgt or not all(str(t).strip() for t in tgt):
            raise VecgenError("style needs a non-empty target text")
        self.perceptor, self.source, self.target, self.content = perceptor, src, tgt, content
        self.uses_source_text = getattr(perceptor, "kind", "clip") != "classifier"
        if self.uses_source_text and not all(str(s).strip() for s in src):
            raise VecgenError('style needs a non-empty source text (default "a photo")')
        self._seen: Tensor | None = None
        self._embedding: Tensor | None = None
        self._direction: Tensor | None = None
        self._target: Tensor | None = None

    def content_of(self, ctx: Context) -> Tensor:
        """This step's content batch ``(B, 3, h, w)``."""
        return self.content() if self.content is not None else ctx.ref("content")

    def use(self, ctx: Context) -> Tensor:
        """Take this step's content batch (re-embedding it when it changed); returns it.

        Shape:

        - returns: the content batch ``(B, 3, h, w)``
        """
        x = self.content_of(ctx)
        self._update(x)
        return x

    def _update(self, x: Tensor | None = None) -> None:
        if x is None:
            if self._seen is not None:
                return
            if self.content is None:
                raise VecgenError("style direction: no content batch seen yet (call use(ctx) first)")
            x = self.content()
        if x is self._seen:
            return
        with torch.no_grad():
            emb = self.perceptor.encode_image(x.to(self.perceptor.device)).detach()
        if self._target is None:
            self._target = mean_text(self.perceptor, self.target)
        if self.uses_source_text:
            d = (self._target - mean_text(self.perceptor, self.source)).expand_as(emb)
        else:
            d = self._target.expand_as(emb) - emb  # classifiers: from the image itself to the target class
        if float(d.norm(dim=-1).min()) < 1e-6:
            raise VecgenError("the source and the target mean the same to this perceptor; pick distinct texts")
        self._seen, self._embedding, self._direction = x, emb, F.normalize(d, dim=-1)

    def target_embedding(self) -> Tensor:
        """The target text's unit embedding ``(D,)``."""
        self._update()
        assert self._target is not None  # set by _update
        return self._target

    def embedding(self) -> Tensor:
        """The content's embeddings ``(B, D)``."""
        self._update()
        assert self._embedding is not None  # set by _update
        return self._embedding

    def direction(self) -> Tensor:
        """Unit text steps ``(B, D)``, one per content image (all equal for CLIP)."""
        self._update()
        assert self._direction is not None  # set by _update
        return self._direction


def directional_distance(e_out: Tensor, e_src: Tensor, d_text: Tensor, floor: float = DIRECTION_FLOOR) -> Tensor:
    """``1 - cos(e_out - e_src, d_text)`` per row ``(N,)``; the floor keeps a zero step finite (loss 1)."""
    d = e_out - e_src
    return 1.0 - (d * d_text).sum(-1) / (d.pow(2).sum(-1) + floor**2).sqrt()


class GlobalDirectionTerm:
    """The directional loss of the whole output (CLIPstyler's ``dir`` term), resized to the perceptor's input."""

    def __init__(self, direction: StyleDirection, weight: float = 1.0, name: str | None = None) -> None:
        self.dir, self.weight = direction, float(weight)
        self.perceptor = direction.perceptor
        self.name = name or f"dir:{self.perceptor.name}"

    def __call__(self, ctx: Context) -> Tensor:
        """The mean directional distance of the outputs from their content images.

        Shape:

        - ``ctx.image``: ``(B, 3, H, W)``, one output per content image
        - returns: ``()``
        """
        self.dir.use(ctx)
        e_out = self.perceptor.encode_image(ctx.image)
        return directional_distance(e_out, self.dir.embedding(), self.dir.direction()).mean()


class PatchDirectionTerm:
    """The directional loss over ``crops`` random perspective-warped crops of each output, with rejection.

    Each crop has side ``crop_frac`` of the output's short side (128 px of a
    512 canvas: 0.25), corners jittered by up to ``perspective`` of the side,
    and is resized to the perceptor's input. ``source``: where a crop's step
    starts: ``"image"``, the whole content image's embedding (CLIPstyler's
    choice, no extra cost), or ``"crop"``, the same crop of the content image
    (one more forward pass, no backward). ``None``: ``"crop"`` for classifiers,
    whose step toward the target is measured from the image itself, so a crop
    of the photo must start at that crop, else every crop reads as already
    moved (measured with EfficientNet-Lite0 at 256 px: 64 of 64 crops of
    skimage's chelsea, 62 of 64 of coffee rejected at step 0); ``"image"`` for CLIP. ``chunk``: crops per perceptor pass (memory,
    see :meth:`_chunked`). Crops whose distance is below ``threshold``
    are rejected: they add exactly zero to the loss and its gradient.
    :attr:`kept` is the fraction kept at the last call. The crops are drawn
    from the run's generator (``ctx.generator``, which the engine seeds and
    checkpoints), so runs repeat and resume exactly. The objective evaluates
    the term through :meth:`chunks` (its chunked backward); calling the term
    gives the same value in one graph.
    """

    def __init__(
        self,
        direction: StyleDirection,
        crops: int = 64,
        crop_frac: float = 0.25,
        threshold: float = THRESHOLD,
        perspective: float = 0.25,
        source: str | None = None,
        chunk: int = CHUNK,
        weight: float = 1.0,
        name: str | None = None,
    ) -> None:
        from vecgen.augment import Cutouts

        if crops < 1:
            raise VecgenError("--crops must be >= 1")
        if not 0.0 < crop_frac <= 1.0:
            raise VecgenError(f"patch crops must be at most the image's short side, got fraction {crop_frac:g}")
        if source is None:
            source = "image" if direction.uses_source_text else "crop"
        if source not in ("image", "crop"):
            raise VecgenError(f"patch source must be 'image' or 'crop', got {source!r}")
        self.dir, self.weight, self.source = direction, float(weight), source
        self.perceptor = direction.perceptor
        self.crops, self.threshold, self.chunk = int(crops), float(threshold), max(1, int(chunk))
        self.name = name or f"patch:{self.perceptor.name}"
        self.cutouts = Cutouts(
            self.crops,
            size=self.perceptor.input_size,
            min_frac=crop_frac,
            max_frac=crop_frac,
            perspective=perspective,
            noise=0.0,
            antialias=False,
        )
        self.kept = 1.0

    def distances(self, views: Tensor, sources: Tensor | None = None) -> Tensor:
        """Directional distances of views grouped by content image (``crops`` each).

        ``sources``: the content's crops under the same warps (``source="crop"``), else the whole content's.

        Shape:

        - ``views``: ``(B * crops, 3, S, S)``, each content image's crops together; ``sources``: the same shape
        - returns: ``(B * crops,)``
        """
        e_out = self.perceptor.encode_image(views)
        n = views.shape[0] // self.dir.embedding().shape[0]
        d_text = self.dir.direction().repeat_interleave(n, 0)
        if sources is None:
            return directional_distance(e_out, self.dir.embedding().repeat_interleave(n, 0), d_text)
        with torch.no_grad():
            e_src = self.perceptor.encode_image(sources)
        if not self.dir.uses_source_text:  # classifiers: from this crop of the photo toward the target class
            d_text = F.normalize(self.dir.target_embedding().expand_as(e_src) - e_src, dim=-1)
        return directional_distance(e_out, e_src, d_text)

    def reject(self, dist: Tensor) -> Tensor:
        """Per-crop distances ``(N,)`` -> their mean ``()`` with the crops below the threshold zeroed (no gradient
        flows through them)."""
        keep = (dist.detach() >= self.threshold).to(dist.dtype)
        self.kept = float(keep.mean())
        return (dist * keep).mean()

    def __call__(self, ctx: Context) -> Tensor:
        """The loss in one graph (all crops' activations at once); the objective uses :meth:`chunks`.

        Shape:

        - ``ctx.image``: ``(B, 3, H, W)``
        - returns: ``()``
        """
        work = self.chunks(ctx)
        return torch.stack(list(work.pieces(work.inputs))).sum()

    def chunks(self, ctx: Context) -> Chunks:
        """The crops (output crops, and the content's under the same warps for ``source="crop"``) and their
        loss in pieces of ``chunk`` crops, each piece its share of the mean over all crops.

        Memory: a perceptor's forward + backward activations for all crops at
        once are what caps a run (EfficientNet-Lite0, 64 crops: peak RSS 8.3 GB on a 12 MP photo, 3.2 GB
        in chunks of 8), so the objective runs one piece's backward at a time.
        """
        content = self.dir.use(ctx)
        if self.source == "image":
            views, sources = self.cutouts(ctx.image, ctx.generator), None
        else:
            content = content.to(ctx.image)
            if content.shape != ctx.image.shape:
                raise VecgenError(
                    f"patch term: content {tuple(content.shape)} and output {tuple(ctx.image.shape)} differ in shape"
                )
            # one warp for both: the channels of output and content are stacked, so each crop pair matches
            both = self.cutouts(torch.cat([ctx.image, content.detach()], 1), ctx.generator)
            views, sources = both[:, :3], both[:, 3:].detach()
        n = views.shape[0]
        group = n // self.dir.embedding().shape[0]  # crops per content image: chunks stay inside one
        step = max(1, min(self.chunk, group))
        step = max(d for d in range(1, step + 1) if group % d == 0)

        def pieces(leaf: Tensor) -> Iterator[Tensor]:
            kept = 0.0
            for i in range(0, n, step):
                part = leaf[i : i + step]
                src = None if sources is None else sources[i : i + step]
                yield self._chunk_loss(part, src, i // group, n)
                kept += self.kept * part.shape[0]
            self.kept = kept / n

        return Chunks(views, pieces)

    def _chunk_loss(self, part: Tensor, sources: Tensor | None, image: int, n: int) -> Tensor:
        """This chunk's share of the mean over all ``n`` crops (crops of content image number ``image``)."""
        e_out = self.perceptor.encode_image(part)
        d_text = self.dir.direction()[image].expand_as(e_out)
        if sources is None:
            dist = directional_distance(e_out, self.dir.embedding()[image].expand_as(e_out), d_text)
        else:
            with torch.no_grad():
                e_src = self.perceptor.encode_image(sources)
            if not self.dir.uses_source_text:
                d_text = F.normalize(self.dir.target_embedding().expand_as(e_src) - e_src, dim=-1)
            dist = directional_distance(e_out, e_src, d_text)
        return self.reject(dist) * (part.shape[0] / n)
