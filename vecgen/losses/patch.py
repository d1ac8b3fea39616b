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

import math
from collections.abc import Callable, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from vecgen.errors import VecgenError
from vecgen.losses.direction import DIRECTION_FLOOR, mean_text
from vecgen.objective import Chunks, Context

#: CLIPstyler's patch threshold tau.
THRESHOLD = 0.7
#: Crops per perceptor pass of the patch term (its memory: see PatchDirectionTerm.chunks).
CHUNK = 4


def crop_warps(
    shape: Sequence[int],
    n: int,
    frac: float,
    perspective: float,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> Tensor:
    """``n`` random perspective-warped square crops of each of ``B`` images of ``shape`` ``(B, C, H, W)``,
    as homographies ``(B * n, 3, 3)`` from the unit square ``(u, v, 1)`` to ``grid_sample``'s coordinates
    (for :func:`warp_grid` and :func:`sample_crops`).

    Each crop's side is ``frac`` of the short side, its corners jittered by up to ``perspective`` of
    that side. One set serves several images of the same shape (the output and the content: the same
    crops of both).
    """
    from kornia.geometry.transform import get_perspective_transform

    b, h, w = int(shape[0]), int(shape[-2]), int(shape[-1])

    def rand(*dims: int) -> Tensor:
        return torch.rand(*dims, generator=generator).to(device)

    side = min(h, w) * frac
    x0 = rand(b * n) * (w - side)
    y0 = rand(b * n) * (h - side)
    base = torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]], device=device)
    corners = (base + (rand(b * n, 4, 2) * 2 - 1) * perspective) * side + torch.stack([x0, y0], 1).view(-1, 1, 2)
    m = get_perspective_transform(base.expand(b * n, 4, 2), corners)  # unit square -> the crop's corners (px)
    sx, sy = 2.0 / max(1, w - 1), 2.0 / max(1, h - 1)  # px -> [-1, 1] (align_corners=True), folded into m
    to_grid = torch.tensor([[sx, 0.0, -1.0], [0.0, sy, -1.0], [0.0, 0.0, 1.0]], device=device, dtype=m.dtype)
    return to_grid @ m


def warp_grid(warps: Tensor, size: int) -> Tensor:
    """The ``grid_sample`` grid ``(k, size, size, 2)`` of ``k`` homographies ``(k, 3, 3)`` (:func:`crop_warps`)
    over a ``size`` x ``size`` crop. Built by broadcasting (a ``(size^2, 3) @ (3, 3)`` product per crop
    was a twentieth of a 64-crop style step)."""
    t = torch.linspace(0.0, 1.0, size, device=warps.device, dtype=warps.dtype)
    cols = warps[:, None, None, :, 0] * t.view(1, 1, -1, 1)  # (k, 1, size, 3): u along a row
    rows = torch.addcmul(warps[:, None, None, :, 2], warps[:, None, None, :, 1], t.view(1, -1, 1, 1))  # (k, size, 1, 3)
    xyz = cols + rows  # (k, size, size, 3)
    return xyz[..., :2] / xyz[..., 2:]


def sample_crops(
    img: Tensor, warps: Tensor, size: int, start: int = 0, stop: int | None = None, channels_last: bool = False
) -> Tensor:
    """Crops ``start`` to ``stop`` (default: all ``B * n``) of the homographies ``warps`` ``(B * n, 3, 3)``
    (:func:`crop_warps`) out of ``img`` ``(B, C, H, W)``, ``size`` px square: ``(stop - start, C, size, size)``,
    crops numbered image by image.

    Bilinear, mirrored borders. The crops come out of one ``grid_sample`` per image over the image
    itself (stacked one under the other): nothing is copied per crop, so neither pass touches ``n``
    copies of the image (``Cutouts`` makes them: a third of a style step at 64 crops). Sampling a few
    crops at a time (the patch terms' chunks) gives the same crops, and a chunk's backward and grid are
    only its own size. ``channels_last``: the crops in that memory format (what the perceptors run
    fastest on), in the same one copy.
    """
    b, c = img.shape[:2]
    n = warps.shape[0] // b
    stop = b * n if stop is None else min(int(stop), b * n)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    parts = []
    for k in range(start // n, (stop - 1) // n + 1):  # the images the range touches (usually one)
        lo, hi = max(start, k * n), min(stop, (k + 1) * n)
        grid = warp_grid(warps[lo:hi].to(img), size).view(1, (hi - lo) * size, size, 2)
        out = F.grid_sample(img[k : k + 1], grid, mode="bilinear", padding_mode="reflection", align_corners=True)
        parts.append(out.view(c, hi - lo, size, size).transpose(0, 1))
    return (parts[0] if len(parts) == 1 else torch.cat(parts)).contiguous(memory_format=fmt)


def warp_crops(
    img: Tensor, n: int, size: int, frac: float, perspective: float, generator: torch.Generator | None = None
) -> Tensor:
    """``n`` random perspective-warped crops of each image ``(B, C, H, W)`` -> ``(B * n, C, size, size)``."""
    return sample_crops(img, crop_warps(img.shape, n, frac, perspective, generator, img.device), size)


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
    """The directional loss of the whole output (CLIPstyler's ``dir`` term), resized to the perceptor's input.

    ``whole``: a :class:`vecgen.losses.content.WholePass` of a classifier (``embedding="features"``)
    tapping ``"pool"``, whose pass this term shares with the content term."""

    def __init__(self, direction: StyleDirection, weight: float = 1.0, name: str | None = None, whole=None) -> None:
        self.dir, self.weight = direction, float(weight)
        self.perceptor = direction.perceptor
        self.name = name or f"dir:{self.perceptor.name}"
        if whole is not None and (whole.perceptor is not self.perceptor or "pool" not in whole.layers):
            raise VecgenError("directional term: the shared pass must be of its perceptor and tap 'pool'")
        self.whole = whole  # a content.WholePass tapping "pool": a classifier's embedding, shared with content

    def __call__(self, ctx: Context) -> Tensor:
        """The mean directional distance of the outputs from their content images.

        Shape:

        - ``ctx.image``: ``(B, 3, H, W)``, one output per content image
        - returns: ``()``
        """
        self.dir.use(ctx)
        if self.whole is not None:  # the classifier's "features" embedding: its unit pooled features
            e_out = F.normalize(self.whole(ctx)["pool"], dim=-1)
        else:
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
    see :meth:`chunks`). Crops whose distance is below ``threshold``
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
        self.crop_frac, self.perspective = float(crop_frac), float(perspective)
        self.size = int(self.perceptor.input_size)
        self.kept = 1.0

    def cutouts(self, img: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """This step's crops of ``img`` ``(B, C, H, W)``: ``(B * crops, C, S, S)``, ``S`` the perceptor's input."""
        return warp_crops(img, self.crops, self.size, self.crop_frac, self.perspective, generator)

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
        in chunks of 8), so the objective runs one piece's backward at a time. Each piece samples its own
        crops from the render (:func:`sample_crops` of its own warps), so its backward is
        chunk-sized and the crops of all pieces are never held at once.
        """
        content = self.dir.use(ctx)
        image = ctx.image
        if self.source == "crop":
            content = content.to(image)
            if content.shape != image.shape:
                raise VecgenError(
                    f"patch term: content {tuple(content.shape)} and output {tuple(image.shape)} differ in shape"
                )
        # one set of warps for the output and the content, so each crop pair matches
        warps = crop_warps(image.shape, self.crops, self.crop_frac, self.perspective, ctx.generator, image.device)
        n = image.shape[0] * self.crops
        group = n // self.dir.embedding().shape[0]  # crops per content image: chunks stay inside one
        step = max(1, min(self.chunk, group))
        step = max(d for d in range(1, step + 1) if group % d == 0)
        return self._pieces(image, warps, step, group, content if self.source == "crop" else None)

    def _pieces(self, image: Tensor, warps: Tensor, step: int, group: int, content: Tensor | None) -> Chunks:
        """The crops of ``image`` ``(B, 3, H, W)`` under ``warps`` in pieces of ``step`` (``group`` crops per
        content image; ``content``: the content whose crops under the same warps are the sources, or None)."""
        n = warps.shape[0]

        def pieces(leaf: Tensor) -> Iterator[Tensor]:
            kept = 0.0
            for i in range(0, n, step):
                # channels-last: a quarter less time in the perceptor's convolutions on CPU (EfficientNet-Lite0)
                part = sample_crops(leaf, warps, self.size, i, i + step, channels_last=True)
                src = None
                if content is not None:  # the content's crops need no gradient
                    with torch.no_grad():
                        src = sample_crops(content.detach(), warps, self.size, i, i + step, channels_last=True)
                yield self._chunk_loss(part, src, i // group, n)
                kept += self.kept * part.shape[0]
            self.kept = kept / n

        return Chunks(image, pieces)

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


#: ``-log`` of ImageNet's chance probability: :class:`PatchClassTerm`'s loss is 1 at chance, 0 at certainty.
CHANCE = math.log(1000.0)
#: Smallest side in px at which :class:`PatchClassTerm` feeds a crop to the classifier by default.
MIN_NATIVE = 96
#: Rec. 601 luminance weights of R, G, B (:class:`PatchClassTerm`'s ``grey``).
LUMA = torch.tensor([0.299, 0.587, 0.114])
#: A crop whose target-class probability reaches this is rejected by :class:`PatchClassTerm` (no gradient).
CLASS_REJECT = 0.5


def crop_px(crop_frac: float, short: int, view: int | None = None) -> int:
    """Side in px at which a crop of ``crop_frac`` of a ``short`` px image meets the classifier: its own size,
    or with ``view`` its size in a ``view`` px copy of the image (never more than its own); at least
    :data:`MIN_NATIVE`."""
    return max(MIN_NATIVE, round(crop_frac * (short if view is None else min(short, view))))


class PatchClassTerm(PatchDirectionTerm):
    """Patch-level class evidence, for ImageNet classifiers: ``-log p(target)`` of each crop, averaged.

    Divided by :data:`CHANCE`, so the term is 1 at chance and 0 at certainty, as the
    directional distance is about 1 for a crop that did not move.
    What a texture is to a classifier: crops that, on their own, read as the
    target class. The directional loss only asks each crop's features to move
    *toward* the class (its cosine saturates after a small move, and rejection
    then stops the crop: a colour cast); the cross-entropy keeps pulling until
    the crop carries the class, and crops past :data:`CLASS_REJECT` are rejected
    (exactly zero gradient). No pass over the photo's own crops is needed.
    ``size``: the crops' side in px as fed to the classifier (it is
    convolutional: any size); ``None``: each crop's own size in the output
    (``crop_frac`` of its short side, at least :data:`MIN_NATIVE`). A crop fed
    at its own pixel size shows the texture at the scale a judge of the whole
    picture sees it, and costs ``(size / input_size)^2`` of a full-size pass
    (128 px crops of a 256 px draft: a third).
    ``grey``: how far each crop is desaturated toward its luminance before the
    classifier sees it (0: colour, 1: greyscale). A classifier also reads a
    texture class off colour, and the cheapest way to raise it is a colour cast
    (coffee's cup turned a saturated red for "chain mail"); from grey crops only
    light and dark structure earns the class, and the colour is left to the
    content term.
    """

    def __init__(
        self,
        direction: StyleDirection,
        crops: int = 64,
        crop_frac: float = 0.25,
        size: int | None = None,
        perspective: float = 0.25,
        chunk: int = CHUNK,
        weight: float = 1.0,
        name: str | None = None,
        grey: float = 0.0,
    ) -> None:
        if direction.uses_source_text:
            raise VecgenError("patch class evidence needs an ImageNet classifier perceptor")
        if not 0.0 <= grey <= 1.0:
            raise VecgenError(f"patch grey must be in [0, 1], got {grey}")
        self.grey = float(grey)
        super().__init__(direction, crops, crop_frac, CLASS_REJECT, perspective, "image", chunk, weight, name=name)
        self.name = name or f"patch:{self.perceptor.name}"
        if size is not None and size < 16:
            raise VecgenError(f"patch crop size must be >= 16 px, got {size}")
        self.fixed = None if size is None else int(size)
        self.classes = [self.perceptor.class_index(t) for t in direction.target]

    def chunks(self, ctx: Context) -> Chunks:
        """The crops and their loss in pieces of ``chunk`` crops (see :meth:`PatchDirectionTerm.chunks`)."""
        h, w = ctx.image.shape[-2:]
        self.size = self.fixed or crop_px(self.crop_frac, min(h, w))
        warps = crop_warps(
            ctx.image.shape, self.crops, self.crop_frac, self.perspective, ctx.generator, ctx.image.device
        )
        # one target for every image: chunks need not stay inside an image's crops
        return self._pieces(ctx.image, warps, self.chunk, warps.shape[0], None)

    def _chunk_loss(self, part: Tensor, sources: Tensor | None, image: int, n: int) -> Tensor:
        if self.grey:  # Rec. 601 luminance: (N, 1, h, w) broadcast over the channels
            luma = (part * LUMA.to(part).view(1, 3, 1, 1)).sum(1, keepdim=True)
            part = part + self.grey * (luma - part)
        logp = self.perceptor.logits(part, native=True).log_softmax(-1)[:, self.classes].mean(-1)
        keep = (logp.detach().exp() < self.threshold).to(logp.dtype)
        self.kept = float(keep.mean())
        return -(logp * keep).sum() / (n * CHANCE)
