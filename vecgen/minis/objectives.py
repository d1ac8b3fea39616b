"""The mini models' training objectives: the contrastive loss with hard negatives, the attribute-caption
and attribute-head losses, adversarial views, and the trimmed text tower they share.

Used by :mod:`vecgen.minis.train` (and its 3-D fine-tune); kept apart from the loop so each stays small.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from vecgen.minis import shapes3d
from vecgen.minis.scenes import COLOURS, POSITIONS, SHAPES, SIZES, STYLES


def encode_text_trimmed(model, tokens: torch.Tensor) -> torch.Tensor:
    """``model.encode_text`` over only the first L token positions, L = the longest caption in the batch.

    Exact for causal text towers pooled at the end-of-text token: positions after it
    never influence it. Captions are far shorter than the context, so this saves time.

    Shape:

    - ``tokens``: ``(N, context)`` token ids, 0 = padding
    - returns: ``(N, D)`` text embeddings (not normalised)
    """
    from open_clip.transformer import text_global_pool

    length = int((tokens != 0).sum(1).max())
    tokens = tokens[:, :length]
    x = model.token_embedding(tokens) + model.positional_embedding[:length]
    x = model.transformer(x, attn_mask=model.attn_mask[:length, :length])
    x = model.ln_final(x)
    x = text_global_pool(x, tokens, model.text_pool_type, eos_token_id=getattr(model, "text_eos_id", None))
    return x @ model.text_projection


def contrastive_loss(
    img: torch.Tensor, txt: torch.Tensor, neg: torch.Tensor, captions: list[str], logit_scale: torch.Tensor
) -> tuple[torch.Tensor, float]:
    """CLIP loss with hard negatives: image i must pick caption i among all captions and all negatives.

    Identical captions of two images in a batch are not treated as negatives of each other.
    Returns (loss, image-to-text batch accuracy).
    """
    b = img.shape[0]
    s = logit_scale.exp().clamp(max=100)
    same = torch.tensor([[ci == cj for cj in captions] for ci in captions])
    off = same & ~torch.eye(b, dtype=torch.bool)
    l_it = s * img @ txt.t()
    l_it = l_it.masked_fill(off, float("-inf"))
    l_ti = l_it.t()
    l_in = s * img @ neg.t() if neg.shape[0] else img.new_zeros(b, 0)
    target = torch.arange(b)
    logits = torch.cat([l_it, l_in], 1)
    loss = 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(l_ti, target))
    acc = (logits.argmax(1) == target).float().mean().item()
    return loss, acc


def attribute_loss(
    img: torch.Tensor, groups: list[tuple[int, list[int]]], feats: torch.Tensor, logit_scale: torch.Tensor
) -> torch.Tensor:
    """Contrastive loss over attribute captions: image b must pick its true short caption
    (index 0 of its group) among the same caption with every other value of the attribute.

    Shape:

    - ``img``: ``(B, D)`` unit-norm image embeddings; ``groups``: ``(b, indices into feats)`` pairs
    - ``feats``: ``(P, D)`` unit-norm caption embeddings; ``logit_scale``: ``()``, the log temperature
    - returns: ``()``
    """
    width = max(len(g) for _, g in groups)
    rows = torch.tensor([b for b, _ in groups])
    cand = torch.tensor([g + [g[0]] * (width - len(g)) for _, g in groups])
    valid = torch.tensor([[j < len(g) for j in range(width)] for _, g in groups])
    logits = logit_scale.exp().clamp(max=100) * torch.einsum("nd,nkd->nk", img[rows], feats[cand])
    logits = logits.masked_fill(~valid, float("-inf"))
    return F.cross_entropy(logits, torch.zeros(len(groups), dtype=torch.long))


# ----------------------------------------------------------------------------- attribute heads
# Linear heads on the image embedding, trained on the generator's own labels. They give the
# image tower a direct, dense signal (which shape, which colour, where) long before the text
# tower has learned the words; the heads are thrown away, only the CLIP weights ship.
_SINGLE = {
    "shape": list(SHAPES),
    "colour": list(COLOURS),
    "size": list(SIZES),
    "style": list(STYLES),
    "position": list(POSITIONS.values()),
}
_PRESENT = {"shapes": list(SHAPES), "colours": list(COLOURS)}


def attribute_labels(attrs: list[dict]) -> dict[str, torch.Tensor]:
    """Per-scene targets: class index (-100 = not applicable) or multi-hot presence vectors.

    Shape:

    - returns: attribute -> ``(N,)`` long class indices, or ``(N, V)`` float multi-hot for
      ``"shapes"`` and ``"colours"`` (``N = len(attrs)``, ``V`` the attribute's values)
    """
    out = {k: torch.full((len(attrs),), -100, dtype=torch.long) for k in [*_SINGLE, "count", "solid"]}
    out.update({k: torch.zeros(len(attrs), len(v)) for k, v in _PRESENT.items()})
    for i, a in enumerate(attrs):
        if a["kind"] in shapes3d.KINDS:  # a 3-D primitive: only which solid it is (and, shaded, its colour)
            out["solid"][i] = list(shapes3d.SOLIDS).index(a["solid"])
            out["colour"][i] = _SINGLE["colour"].index(a["colour"]) if "colour" in a else -100
            continue
        objs = a["objects"]
        out["count"][i] = len(objs) - 1
        for o in objs:
            out["shapes"][i, _PRESENT["shapes"].index(o["shape"])] = 1.0
            out["colours"][i, _PRESENT["colours"].index(o["colour"])] = 1.0
        if a["kind"] in ("single", "count"):  # one kind of object: its shape/colour/style are well defined
            for k in ("shape", "colour", "style"):
                out[k][i] = _SINGLE[k].index(objs[0][k])
        if a["kind"] == "single":
            out["size"][i] = _SINGLE["size"].index(objs[0]["size"])
            out["position"][i] = _SINGLE["position"].index(objs[0]["position"])
    return out


class AttributeHeads(torch.nn.Module):
    """``(B, D)`` image embeddings -> one logit vector per attribute."""

    def __init__(self, dim: int, solids: bool = False):  # solids: a last head for the 3-D mix (off: as before)
        super().__init__()
        sizes = {
            **{k: len(v) for k, v in _SINGLE.items()},
            "count": 3,
            **{k: len(v) for k, v in _PRESENT.items()},
            **({"solid": len(shapes3d.SOLIDS)} if solids else {}),
        }
        self.heads = torch.nn.ModuleDict({k: torch.nn.Linear(dim, n) for k, n in sizes.items()})

    def loss(self, emb: torch.Tensor, labels: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        """The summed head losses and each single-label head's accuracy on the applicable scenes.

        Shape:

        - ``emb``: ``(B, D)`` image embeddings; ``labels``: as :func:`attribute_labels`, ``(B,)`` or ``(B, V)``
        - returns: ``(loss, accuracies)``, ``loss`` ``()``, accuracies plain floats
        """
        total, accs = emb.new_zeros(()), {}
        for k, head in self.heads.items():
            logits, y = head(emb), labels[k]
            if k in _PRESENT:
                total = total + F.binary_cross_entropy_with_logits(logits, y) * 4.0
                continue
            ok = y >= 0
            if ok.any():
                total = total + F.cross_entropy(logits[ok], y[ok])
                accs[k] = (logits[ok].argmax(1) == y[ok]).float().mean().item()
        return total, accs


def adversarial(
    model,
    x: torch.Tensor,
    txt: torch.Tensor,
    neg: torch.Tensor,
    captions: list[str],
    mean,
    std,
    eps: float,
    steps: int,
    gen: torch.Generator,
) -> torch.Tensor:
    """L2 PGD on pixels: ``x`` ``(B, 3, S, S)`` in [0, 1] -> the nearby images the tower matches worst.

    Training on them (Madry et al.) makes the tower's input gradients follow what a
    picture shows rather than invisible pixel patterns; that is what an optimizer
    drawing against the tower descends. ``eps`` is the L2 radius per image.
    """
    b = x.shape[0]
    delta = torch.randn(x.shape, generator=gen)
    delta = delta * (eps * 0.5 / delta.flatten(1).norm(dim=1).view(b, 1, 1, 1))
    alpha = 2.5 * eps / max(1, steps)
    for _ in range(steps):
        delta.requires_grad_(True)
        fi = F.normalize(model.encode_image(((x + delta).clamp(0, 1) - mean) / std), dim=-1)
        loss = contrastive_loss(fi, txt, neg, captions, model.logit_scale)[0]
        (g,) = torch.autograd.grad(loss, delta)
        with torch.no_grad():
            delta = delta + alpha * g / g.flatten(1).norm(dim=1).clamp_min(1e-12).view(b, 1, 1, 1)
            delta = delta * (eps / delta.flatten(1).norm(dim=1).clamp_min(eps)).view(b, 1, 1, 1)
    return (x + delta.detach()).clamp(0, 1)
