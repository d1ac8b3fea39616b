"""CLIP-like perceptors over open_clip, with offline-aware weight resolution.

Spec syntax: ``MODEL[@PRETRAINED]`` where PRETRAINED is an open_clip tag
(``openai``, ``laion2b_s34b_b79k``...), a local checkpoint path, or ``random``
(random weights, for tests and benchmarks). A bare ``MODEL`` uses the model's
first known tag (``openai`` for ViT-B-32), or the weights vecgen ships for its
own ``mini-*`` models.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vecgen.errors import VecgenError
from vecgen.io import PROTOCOL_WARNING

CONFIG_DIR = Path(__file__).parent / "configs"
WEIGHTS_DIR = Path(__file__).parent / "weights"
_PROBE_HOSTS = (("huggingface.co", 443), ("openaipublic.azureedge.net", 443))
_PROBE_TIMEOUT_S = 1.5


@dataclass(frozen=True)
class PerceptorSpec:
    model: str
    pretrained: str | None  # tag, path, "random" or None (= default)


def parse_spec(spec: str) -> PerceptorSpec:
    model, _, pre = spec.strip().partition("@")
    if not model:
        raise VecgenError(f"empty CLIP model name in {spec!r}")
    return PerceptorSpec(model, pre or None)


def _register_configs() -> None:
    import open_clip

    # add_model_config is idempotent: it re-reads the folder into open_clip's registry.
    if "vecgen-tiny-vit" not in open_clip.list_models():
        open_clip.add_model_config(CONFIG_DIR)


def _network_reachable() -> bool:
    """Bounded probe: can a weight host be reached? (DNS included: runs in a thread with a deadline.)"""
    if os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0") or os.environ.get("VECGEN_OFFLINE"):
        return False
    import threading

    found: list[bool] = []

    def probe() -> None:
        for host, port in _PROBE_HOSTS:
            try:
                with socket.create_connection((host, port), timeout=_PROBE_TIMEOUT_S):
                    found.append(True)
                    return
            except OSError:
                continue

    t = threading.Thread(target=probe, daemon=True)
    t.start()
    t.join(_PROBE_TIMEOUT_S * 2)
    return bool(found)


def _cached_file(cfg: dict) -> str | None:
    """Path of already-downloaded weights for an open_clip pretrained cfg, if any."""
    if cfg.get("file"):
        return cfg["file"]
    hub = cfg.get("hf_hub", "")
    if hub:
        try:
            from huggingface_hub import try_to_load_from_cache

            have_hub = True
        except ImportError:  # pragma: no cover - open_clip depends on it
            have_hub = False
        if have_hub:
            parts = hub.split("/")
            repo = "/".join(parts[:2])
            names = (
                [parts[2]]
                if len(parts) > 2 and parts[2]
                else ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"]
            )
            for name in names:
                hit = try_to_load_from_cache(repo, name)
                if isinstance(hit, str) and os.path.exists(hit):
                    return hit
    url = cfg.get("url", "")
    if url:
        cand = Path(os.path.expanduser("~/.cache/clip")) / os.path.basename(url)
        if cand.exists():
            return str(cand)
    return None


def weights_available(spec: PerceptorSpec) -> bool:
    """True when the weights for ``spec`` are local or (quickly) downloadable."""
    try:
        return _resolve(spec, probe=True)[0] is not None
    except VecgenError:
        return False


def _resolve(spec: PerceptorSpec, probe: bool = True) -> tuple[str | None, dict]:
    """-> (what to pass as open_clip ``pretrained``, pretrained cfg). None = random."""
    import open_clip
    from open_clip import pretrained as oc_pre

    _register_configs()
    if spec.model not in open_clip.list_models():
        raise VecgenError(f"unknown CLIP model {spec.model!r} (see `vecgen models` for the list)")
    tag = spec.pretrained
    if tag == "random":
        return None, {}
    shipped = WEIGHTS_DIR / f"{spec.model}.safetensors"
    if tag is None and shipped.exists():
        return str(shipped), {}
    if tag is None:
        tags = open_clip.list_pretrained_tags_by_model(spec.model)
        if not tags:
            raise VecgenError(
                f"CLIP model {spec.model!r} has no known pretrained weights; "
                f"use {spec.model}@/path/to/checkpoint or {spec.model}@random"
            )
        tag = "openai" if "openai" in tags else tags[0]
    if os.path.sep in tag or tag.endswith((".pt", ".pth", ".bin", ".safetensors")):
        if not os.path.isfile(tag):
            raise VecgenError(f"CLIP checkpoint {tag!r} not found")
        return tag, {}
    cfg = oc_pre.get_pretrained_cfg(spec.model, tag)
    if not cfg:
        raise VecgenError(_unknown_tag(spec.model, tag, open_clip.list_pretrained_tags_by_model(spec.model)))
    cached = _cached_file(cfg)
    if cached:
        return cached, cfg
    if probe and _network_reachable():
        return tag, cfg
    raise VecgenError(
        f"weights for {spec.model}@{tag} are not cached and cannot be downloaded (offline); "
        f"pass a local file as --clip {spec.model}@/path/to/open_clip_model.safetensors "
        f"or fill the Hugging Face cache (~/.cache/huggingface) on a connected machine"
    )


def _unknown_tag(model: str, tag: str, tags) -> str:
    """Say which tags ``model`` knows, and that weights vecgen ships load with the bare name."""
    tags = list(tags)
    known = f"known tags: {', '.join(tags)}" if tags else f"{model} has no open_clip pretrained tags"
    if (WEIGHTS_DIR / f"{model}.safetensors").exists():
        known += f"; vecgen ships {model}'s weights, which load with the bare name ({model}, no @)"
    return f"unknown pretrained tag {tag!r} for {model} ({known}; also {model}@/path/to/checkpoint or {model}@random)"


#: torch's weights-only unpickler warns about checkpoints pickled with protocol 3+ (they load fine).


def _mismatch_from_error(text: str) -> str | None:
    """The first bad keys of a ``load_state_dict`` error (its first line says only "Error(s) in loading ...")."""
    parts = []
    for line in text.splitlines():
        line = line.strip()
        keys = re.findall(r'"([^"]+)"', line)
        for label, start in (("missing key", "Missing key(s)"), ("unexpected key", "Unexpected key(s)")):
            if line.startswith(start) and keys:
                more = f" (and {len(keys) - 1} more)" if len(keys) > 1 else ""
                parts.append(f"{label} '{keys[0]}'{more}")
        m = re.match(
            r"size mismatch for ([^:]+): copying a param with shape (.+?) from checkpoint, "
            r"the shape in current model is (.+?)\.?$",
            line,
        )
        if m and not any(p.startswith("shape mismatch") for p in parts):
            got, want = _shape(m.group(2)), _shape(m.group(3))
            parts.append(f"shape mismatch for '{m.group(1)}': checkpoint {got} vs model {want}")
    return "; ".join(parts) or None


def _shape(text: str) -> str:
    """``torch.Size([2, 3])`` -> ``(2, 3)``."""
    m = re.fullmatch(r"torch\.Size\(\[(.*)\]\)", text.strip())
    return f"({m.group(1)})" if m else text


def _mismatch_from_files(model: nn.Module, path: str) -> str | None:
    """Compare a checkpoint's keys and shapes with ``model``'s (for failures open_clip words as bare asserts)."""
    from vecgen.io import read_checkpoint, state_mismatch, unwrap_state_dict

    try:
        state = read_checkpoint(path, "CLIP checkpoint")
    except VecgenError as e:
        return str(e)
    return state_mismatch(model.state_dict(), unwrap_state_dict(state))


def _checkpoint_error(spec: str, model_name: str, path: str, exc: BaseException, kwargs: dict) -> VecgenError:
    """One line for a local checkpoint open_clip could not load: the first bad key, or why the file is refused."""
    from vecgen.io import describe_load_error, file_format

    text = str(exc)
    why = None
    if "Error(s) in loading state_dict" in text:
        why = _mismatch_from_error(text)
    elif "Weights only load failed" in text or "PytorchStreamReader" in text:
        why = describe_load_error(exc)
    else:
        try:
            kind = file_format(Path(path))
        except OSError:
            kind = "unreadable"
        if kind in ("other", "empty"):
            why = "not a file written by torch.save or safetensors"
        else:
            import open_clip

            with torch.random.fork_rng(devices=[]):  # a throwaway model to compare with: global RNG untouched
                model = open_clip.create_model(model_name, pretrained=None, device="cpu", **kwargs)
            why = _mismatch_from_files(model, path)
    if why and why.startswith(("missing key", "unexpected key", "shape mismatch")):
        return VecgenError(
            f"could not load CLIP {spec!r}: {path} does not match {model_name} ({why}); "
            f"is it a checkpoint of another model? (`vecgen models` lists them)"
        )
    if why:
        return VecgenError(f"could not load CLIP {spec!r}: {path}: {why}")
    return VecgenError(f"could not load CLIP {spec!r}: {type(exc).__name__}: {' '.join(text.split())[:200]}")


class ClipPerceptor(nn.Module):
    """A frozen open_clip model with differentiable preprocessing inside.

    encode_image: ``(N, 3, H, W)`` in ``[0, 1]``, any size -> ``(N, D)`` unit vectors.
    encode_text: ``list[str]`` -> ``(P, D)`` unit vectors (cached per string).
    draw_hint: draw settings that suit the model's training domain (``{}`` = none);
    the API uses them where the user left ``--shapes``/``--strokes`` on auto.
    features: ``{layer: activation}`` of the image tower; ViT layers ``block0``.. give
    ``(N, tokens, width)``, ResNet layers ``layer1``..``layer4`` give ``(N, C, h, w)``,
    ``embed`` the ``(N, D)`` image embedding (before normalisation).
    """

    kind = "clip"
    mean: Tensor  # (1, 3, 1, 1) buffers
    std: Tensor

    def __init__(self, model: nn.Module, tokenizer, name: str, mean, std, draw_hint: dict | None = None) -> None:
        super().__init__()
        self.draw_hint = dict(draw_hint or {})
        # an open_clip CLIP: its towers and methods are attributes torch's Module stub cannot type
        self.model: Any = cast(Any, model.eval().requires_grad_(False))
        self.tokenizer = tokenizer
        self.name = name
        size = self.model.visual.image_size
        self.input_size = int(size[0] if isinstance(size, (tuple, list)) else size)
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)
        self._text_cache: dict[str, Tensor] = {}
        self._taps = _tower_layers(self.model.visual)
        self.feature_layers: tuple[str, ...] = (*self._taps, "embed")
        deep = list(self._taps)
        self.content_layers: tuple[str, ...] = tuple(deep[max(0, len(deep) // 2 - 1) : len(deep) // 2 + 1])

    @property
    def device(self) -> torch.device:
        return self.mean.device

    def prepare(self, x: Tensor) -> Tensor:
        """``(N, 3, H, W)`` in ``[0, 1]`` -> ``(N, 3, S, S)`` normalised, ``S = input_size`` (antialiased when shrinking)."""
        s = self.input_size
        if x.shape[-2:] != (s, s):
            x = F.interpolate(x, size=(s, s), mode="bilinear", align_corners=False, antialias=x.shape[-1] > s)
        return (x.to(self.mean) - self.mean) / self.std

    def encode_image(self, x: Tensor) -> Tensor:
        """``(N, 3, H, W)`` in ``[0, 1]``, any size -> ``(N, D)`` unit vectors."""
        return F.normalize(self.model.encode_image(self.prepare(x)).float(), dim=-1)

    def features(self, x: Tensor, layers: Sequence[str] | None = None) -> dict[str, Tensor]:
        """``(N, 3, H, W)`` in ``[0, 1]`` -> ``{layer: activation}`` of the image tower (layer names and
        shapes in the class docstring)."""
        from vecgen.backends.perceptors.taps import check_layers, tap

        layers = check_layers(layers, self.feature_layers, self.name)
        got: dict[str, Tensor] = {}
        run = lambda: got.setdefault("embed", self.model.encode_image(self.prepare(x)).float())  # noqa: E731
        return tap(self.model.visual, self._taps, layers, run, extra={"embed": lambda: got["embed"]})

    @torch.no_grad()
    def encode_text(self, texts: list[str]) -> Tensor:
        """``P`` texts -> ``(P, D)`` unit vectors (cached per string)."""
        missing = [t for t in dict.fromkeys(texts) if t not in self._text_cache]
        if missing:
            tokens = self.tokenizer(missing).to(self.device)
            emb = F.normalize(self.model.encode_text(tokens).float(), dim=-1)
            for t, e in zip(missing, emb):
                self._text_cache[t] = e
        return torch.stack([self._text_cache[t] for t in texts])


def _tower_layers(visual: nn.Module) -> dict[str, str]:
    """Public tap names -> submodule paths: ``block{i}`` for ViT towers, ``layer{i}`` for ResNets."""
    blocks = getattr(getattr(visual, "transformer", None), "resblocks", None)
    if blocks is not None:
        return {f"block{i}": f"transformer.resblocks.{i}" for i in range(len(blocks))}
    return {n: n for n, _ in visual.named_children() if n.startswith("layer")}


def load_perceptor(spec: str, device: str | torch.device = "cpu") -> ClipPerceptor:
    """Load a perceptor from a spec like ``ViT-B-32``, ``RN50@openai``, ``mini-vit``, ``X@random``."""
    import open_clip

    ps = parse_spec(spec)
    pre, cfg = _resolve(ps)
    shipped = pre is not None and pre.endswith(".safetensors") and Path(pre).parent == WEIGHTS_DIR
    kwargs = {}
    if cfg.get("quick_gelu"):
        kwargs["force_quick_gelu"] = True
    logger = logging.getLogger()
    level = logger.level
    logger.setLevel(logging.ERROR)  # open_clip warns loudly about random init
    local = pre is not None and not shipped and os.path.isfile(pre)
    try:
        # Building a model draws its initial weights from torch's global RNG: a fixed seed in a fork makes
        # @random the same model in every process and leaves the caller's RNG untouched for every spec.
        with warnings.catch_warnings(), torch.random.fork_rng(devices=[]):
            warnings.filterwarnings("ignore", message=PROTOCOL_WARNING, category=UserWarning)  # only that note
            torch.manual_seed(0)
            model = open_clip.create_model(ps.model, pretrained=None if shipped else pre, device="cpu", **kwargs)
            if shipped and pre is not None:
                _load_safetensors(model, pre)
    except VecgenError:
        raise
    except Exception as e:  # bad checkpoint files, hub errors
        if local and pre is not None:  # name the first bad key, or why the file is refused (read_checkpoint's words)
            raise _checkpoint_error(spec, ps.model, pre, e, kwargs) from None
        first = next((ln.strip() for ln in str(e).splitlines() if ln.strip()), type(e).__name__)
        raise VecgenError(f"could not load CLIP {spec!r}: {first[:200]}") from None
    finally:
        logger.setLevel(level)
    mean = cfg.get("mean") or getattr(model.visual, "image_mean", None) or open_clip.OPENAI_DATASET_MEAN
    std = cfg.get("std") or getattr(model.visual, "image_std", None) or open_clip.OPENAI_DATASET_STD
    tok = open_clip.get_tokenizer(ps.model)
    # The mini models' draw settings follow their training domain: the shipped weights, and a user's own
    # weights for a mini config (a fine-tune of them, measured the same way); random weights know no domain.
    mini = shipped or (local and ps.model in MINI_CONFIGS)
    return ClipPerceptor(model, tok, spec, mean, std, MINI_DRAW_HINT if mini else None).to(device)


def _load_safetensors(model: nn.Module, path: str) -> None:
    from safetensors.torch import load_file

    state = load_file(path)
    result = model.load_state_dict({k: v.float() for k, v in state.items()}, strict=False)
    bad = list(result.missing_keys) + list(result.unexpected_keys)
    if bad:
        raise VecgenError(f"{path}: checkpoint does not match the model (first mismatched key: {bad[0]})")


# The mini models saw only flat, filled shapes on plain backgrounds: a few filled blobs
# stay close to that domain, where 256 thin strokes leave clutter the models misread
# (benchmarks/quality.py: judge top-1 0.47 with strokes, 0.67 with 32 blobs). Their scenes
# are whole pictures, so views that zoom out onto the background suit them (vecgen.augment.VIEWS);
# with those views 300 steps beat 200 (README, Quality).
# mini-vit-3d: mini-vit's architecture, its image tower fine-tuned on six 3-D solids (minis/finetune3d.py);
# it draws worse than mini-vit (benchmarks/quality.py top-1 0.653 vs 0.753 over 5 seeds), so 2-D verbs fall
# back to mini-vit and the 3-D ones (classify3d, mesh) to mini-vit-3d.
MINI_CONFIGS = ("mini-vit", "mini-rn", "mini-vit-3d")  # the configs the project trains (and ships) on its own scenes
MINI_DRAW_HINT = {"shapes": "blobs", "strokes": 32, "views": "zoom", "steps": 300}

DEFAULT_MODEL = "ViT-B-32"
FALLBACK_MODEL = "mini-vit"
FALLBACK_3D = "mini-vit-3d"  # the offline default of classify3d and mesh


def resolve_auto(warn=None, fallback: str = FALLBACK_MODEL) -> str:
    """``--clip auto``: real ViT-B-32 (OpenAI) when its weights are cached or reachable, else ``fallback``
    (``mini-vit``; ``mini-vit-3d`` for the 3-D verbs).

    Decides within a couple of seconds offline: cache first, HF_HUB_OFFLINE
    honoured, and one bounded connection probe.
    """
    if weights_available(PerceptorSpec(DEFAULT_MODEL, "openai")):
        return f"{DEFAULT_MODEL}@openai"
    if (WEIGHTS_DIR / f"{fallback}.safetensors").exists():
        if warn is not None:
            warn(
                f"ViT-B-32 weights unavailable (offline?); using the built-in {fallback}, which knows only "
                f"simple shapes, colours and positions. For real CLIP: --clip ViT-B-32@/path/to/open_clip_model.safetensors "
                f"or run once with network to fill the cache"
            )
        return fallback
    raise VecgenError(
        "no CLIP weights available offline: pass --clip MODEL@/path/to/checkpoint "
        "or run once with network to fill the Hugging Face cache"
    )


def list_models() -> list[dict]:
    """Every model a ``--clip`` spec may name: ``{"name", "tags", "shipped"}``.

    ``tags``: open_clip's pretrained tags (downloadable or cached); ``shipped``:
    vecgen ships weights for it (a bare name loads them). Any model also takes
    ``@random`` and ``@/path/to/checkpoint``.
    """
    import open_clip

    _register_configs()
    shipped = {p.stem for p in WEIGHTS_DIR.glob("*.safetensors")} if WEIGHTS_DIR.exists() else set()
    out = []
    for name in open_clip.list_models():
        tags = list(open_clip.list_pretrained_tags_by_model(name))
        if tags or name in shipped or name.startswith(("vecgen-", "mini-")):
            out.append({"name": name, "tags": tags, "shipped": name in shipped})
    return out
