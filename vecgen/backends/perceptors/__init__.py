"""Perceptors: image/text encoders behind one small protocol, :class:`Perceptor`.

CLIP-like models (open_clip, the shipped mini models) and ImageNet classifiers
(EfficientNet-Lite, any timm/torchvision checkpoint) share it: ``encode_image``,
``encode_text``, ``input_size``, ``kind``, ``feature_layers``, ``content_layers``
and ``features``. :func:`load_perceptor` picks the family from the spec's name.
"""

from __future__ import annotations

from vecgen.backends.perceptors.base import Perceptor
from vecgen.backends.perceptors.clip import ClipPerceptor, parse_spec, resolve_auto, weights_available
from vecgen.backends.perceptors.clip import list_models as _list_clip
from vecgen.backends.perceptors.clip import load_perceptor as _load_clip


def load_perceptor(spec: str, device="cpu") -> Perceptor:
    """A perceptor from a spec: ``mini-vit``, ``ViT-B-32@openai``, ``efficientnet-lite0``, ``timm/resnet18@w.pth``."""
    from vecgen.backends.perceptors.classifier import is_classifier, load_classifier

    ps = parse_spec(spec)
    if is_classifier(ps.model):
        return load_classifier(ps.model, ps.pretrained, device)
    return _load_clip(spec, device)


def check_spec(spec: str) -> None:
    """Raise the one-line error :func:`load_perceptor` would give for ``spec``'s name or weights, without
    building the model (gallery and studio checks, before any job runs)."""
    from vecgen.backends.perceptors.classifier import CLASSIFIERS, is_classifier
    from vecgen.backends.perceptors.clip import _resolve

    ps = parse_spec(spec)
    if not is_classifier(ps.model):
        _resolve(ps, probe=True)
    elif ps.model in CLASSIFIERS and ps.pretrained is None:
        CLASSIFIERS[ps.model].weights_path()


def list_models() -> list[dict]:
    """Every model a ``--clip`` spec may name: ``{"name", "tags", "shipped", "kind", ...}``; classifiers
    also say whether their weights package is ``installed``."""
    from vecgen.backends.perceptors.classifier import list_classifiers

    return [{**m, "kind": "clip"} for m in _list_clip()] + list_classifiers()


__all__ = [
    "ClipPerceptor",
    "Perceptor",
    "check_spec",
    "list_models",
    "load_perceptor",
    "parse_spec",
    "resolve_auto",
    "weights_available",
]
