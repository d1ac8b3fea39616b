"""StyleCLIP's global directions: a text pair turned into one latent step, found without optimization.

Precomputed once per generator and perceptor (:func:`channel_responses`, cached
in a safetensors file): how moving each channel by one standard deviation moves
images in the perceptor's space, averaged over ``samples`` latents (central
difference, each image's step normalised, then averaged, as StyleCLIP does).

Channels:

* StyleGAN2: its style space, the outputs of every modulation layer
  (``conv.modulation`` of each styled conv and toRGB), offset by forward hooks;
* other generators (TAEF2, TorchScript): the latent's channels (dim 1 of
  ``(B, C, ...)``), each moved uniformly over its other dimensions.

Applying (:func:`global_direction`, :func:`apply_direction`): the text step
``d`` (``unit(E(target) - E(source))``; without a source, the target's
direction tangent to the photo's own embedding) is compared with every
channel's unit response; channels whose ``|relevance|`` is below ``beta``
are zeroed; the step is ``alpha * relevance / max|relevance| * std`` per channel. One render.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from vecgen.errors import VecgenError

#: Latents the responses are averaged over, and the perturbation in channel standard deviations.
SAMPLES, DELTA = 8, 1.0


def cache_dir() -> Path:
    """``$VECGEN_CACHE`` or ``$XDG_CACHE_HOME/vecgen`` (default ``~/.cache/vecgen``), ``/global`` below it."""
    root = os.environ.get("VECGEN_CACHE") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "vecgen"
    return Path(root) / "global"


# ----------------------------------------------------------------------------- channel spaces
def _modulations(gen) -> list[torch.nn.Module]:
    """StyleGAN2's modulation layers in synthesis order (their outputs are the style space)."""
    return [m for name, m in gen.named_modules() if name.endswith("conv.modulation")]


class ChannelSpace:
    """The channels a global direction moves, for one generator.

    ``kind``: ``"style"`` (StyleGAN2) or ``"latent"``; ``n``: number of channels;
    ``render(w_plus, offsets)``: images of ``(B, n_latent, *w_shape)`` with ``(B, n)``
    (or ``(n,)``) channel offsets added.
    """

    def __init__(self, gen) -> None:
        self.gen = gen
        mods = _modulations(gen) if getattr(gen, "has_mapping", False) else []
        self.modules = mods
        self.kind = "style" if mods else "latent"
        if mods:
            self.sizes = [int(m.get_parameter("weight").shape[0]) for m in mods]
        else:
            self.sizes = [int(gen.w_shape[0]) if gen.w_shape else 1]
        self.n = sum(self.sizes)

    @contextlib.contextmanager
    def _hooks(self, offsets: Tensor | None):
        handles = []
        if offsets is not None and self.kind == "style":
            start = 0
            for m, size in zip(self.modules, self.sizes):
                part = offsets[:, start : start + size]
                handles.append(m.register_forward_hook(lambda _m, _i, out, part=part: out + part.to(out)))
                start += size
        try:
            yield
        finally:
            for h in handles:
                h.remove()

    def render(self, w_plus: Tensor, offsets: Tensor | None = None) -> Tensor:
        """The generator's renders of ``w_plus`` with ``offsets`` added to the channels.

        Shape:

        - ``w_plus``: ``(B, n_latent, *w_shape)``; ``offsets``: ``(B, n)`` or ``(n,)`` (one for every latent)
        - returns: ``(B, 3, H, W)`` in ``[0, 1]``
        """
        if offsets is not None:
            offsets = offsets.reshape(-1, self.n).expand(w_plus.shape[0], self.n)
        if offsets is not None and self.kind == "latent":
            extra = w_plus.dim() - 3  # dims after (B, n_latent, C)
            w_plus = w_plus + offsets.reshape(w_plus.shape[0], 1, self.n, *([1] * extra)).to(w_plus)
        with self._hooks(offsets):
            return self.gen.synthesize(w_plus)

    @torch.no_grad()
    def channel_std(self, w_plus: Tensor, seed: int = 0, n: int = 256) -> Tensor:
        """Each channel's standard deviation -> ``(n,)``: latent channels over ``w_plus``
        ``(N, n_latent, *w_shape)`` (all other dims pooled); style channels over the modulation of
        ``n`` seeded prior draws (StyleCLIP's statistics; cheap: no synthesis)."""
        if self.kind == "latent":
            c = w_plus.transpose(0, 2).reshape(self.n, -1)
            return c.std(1).nan_to_num(0.0).clamp_min(1e-6)
        w = self.gen.mapping(self.gen.sample_latent(n, seed))
        return torch.cat([m(w) for m in self.modules], 1).std(0).clamp_min(1e-6)


# ----------------------------------------------------------------------------- precompute and cache
@dataclass
class Responses:
    """Per-channel responses ``(n, D)`` (mean unit embedding step for +1 std), ``std`` ``(n,)``, and provenance."""

    responses: Tensor
    std: Tensor
    meta: dict[str, Any]
    seconds: float = 0.0
    cached: bool = False


def cache_key(gen, perceptor, samples: int, seed: int, space: ChannelSpace) -> str:
    from vecgen.params.mapper import generator_fingerprint

    text = json.dumps(
        {
            "gen": generator_fingerprint(gen),
            "shape": list(gen.latent_shape),
            "kind": space.kind,
            "perceptor": getattr(perceptor, "name", type(perceptor).__name__),
            "embedding": str(getattr(perceptor, "embedding", "")),
            "samples": samples,
            "seed": seed,
            "delta": DELTA,
            "v": 2,
        }
    )
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def sample_bank(gen, samples: int, seed: int) -> Tensor:
    """``samples`` prior latents as ``W+`` ``(samples, n_latent, *w_shape)`` (seeded)."""
    with torch.no_grad():
        z = gen.sample_latent(samples, seed)
        return gen.to_w_plus(gen.mapping(z))


@torch.no_grad()
def channel_responses(
    gen,
    perceptor,
    *,
    samples: int = SAMPLES,
    seed: int = 0,
    bank: Tensor | None = None,
    chunk: int = 8,
    progress: bool = False,
) -> Responses:
    """Measure every channel's response in ``perceptor``'s space (``samples`` prior latents, or ``bank``).

    For channel ``c`` and latent ``x``: ``u = unit(E(x + std_c e_c) - E(x - std_c e_c))``; the
    response is the mean of ``u`` over the latents. Renders ``2 * n * samples`` images in batches of ``chunk``.

    Shape:

    - ``bank``: ``W+`` latents ``(N, n_latent, *w_shape)``, used instead of ``samples`` prior draws
    - returns: :class:`Responses`, ``responses`` ``(n, D)`` and ``std`` ``(n,)``, on the CPU
    """
    t0 = time.perf_counter()
    space = ChannelSpace(gen)
    w = (bank if bank is not None else sample_bank(gen, samples, seed)).to(gen.device)
    std = space.channel_std(w, seed)
    out: list[Tensor] = []
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=space.n, unit="channel", desc="edit: channel responses", leave=False, dynamic_ncols=True)
    eye = torch.eye(space.n, device=gen.device)
    for c in range(space.n):
        acc = None
        for i in range(0, w.shape[0], max(1, chunk // 2)):
            part = w[i : i + max(1, chunk // 2)]
            step = (eye[c] * std * DELTA).expand(part.shape[0], -1)
            imgs = space.render(torch.cat([part, part]), torch.cat([step, -step]))
            e = perceptor.encode_image(imgs).float()
            u = F.normalize(e[: part.shape[0]] - e[part.shape[0] :], dim=-1).sum(0)
            acc = u if acc is None else acc + u
        if acc is None:
            raise VecgenError("channel responses need at least one latent sample")
        out.append(acc / w.shape[0])
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    meta = {
        "kind": space.kind,
        "channels": space.n,
        "samples": int(w.shape[0]),
        "perceptor": getattr(perceptor, "name", "?"),
    }
    return Responses(torch.stack(out).cpu(), std.cpu(), meta, time.perf_counter() - t0)


def _embed_dim(perceptor) -> int:
    """The perceptor's embedding size (one tiny forward): a cache of another size is stale."""
    size = int(getattr(perceptor, "input_size", 32) or 32)
    dev = getattr(perceptor, "device", "cpu")
    with torch.no_grad():
        return int(perceptor.encode_image(torch.zeros(1, 3, size, size, device=dev)).shape[-1])


#: The metadata marker of our cache files (``{"vecgen": CACHE_KIND}``); older caches carry ``key`` and ``info``.
CACHE_KIND, CACHE_LEGACY = "global-direction cache", ("key", "info")


def check_cache_target(cache: str | Path | None) -> Path:
    """Where ``--global-cache`` points (a ``.safetensors`` file, or a folder; None: :func:`cache_dir`),
    checked before any work: an existing file must be one of our caches (never a user's model or
    picture, which would be overwritten), a folder must be a folder, and the place must be writable."""
    from vecgen.io import refuse_foreign

    target = Path(cache) if cache is not None else cache_dir()
    if target.suffix.lower() == ".safetensors" and not target.is_dir():
        refuse_foreign(target, CACHE_KIND, "--global-cache", legacy=CACHE_LEGACY)
        folder = target.parent if str(target.parent) else Path(".")
    else:
        if target.exists() and not target.is_dir():
            raise VecgenError(
                f"--global-cache {target}: a file that is not a .safetensors cache; give a folder "
                "or a .safetensors file"
            )
        folder = target
    probe = folder
    while not probe.exists() and probe != probe.parent:  # the folders to create: the nearest existing one decides
        probe = probe.parent
    if not probe.is_dir():
        raise VecgenError(f"--global-cache {target}: cannot write there ({probe} is not a folder)")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise VecgenError(f"--global-cache {target}: cannot write there (permission denied in {probe})")
    return target


def load_or_compute(
    gen, perceptor, *, cache: str | Path | None = None, samples: int = SAMPLES, seed: int = 0, progress: bool = False
) -> Responses:
    """The cached responses for this generator + perceptor, computed (and written atomically) when absent.

    ``cache``: a file, or a folder to keep ``<key>.safetensors`` in (default :func:`cache_dir`).
    A file that is not one of our caches is refused (one line), before any precompute.
    """
    from safetensors.torch import load_file

    from vecgen.io import atomic_write, refuse_foreign, safetensors_bytes, safetensors_metadata

    target = check_cache_target(cache)
    space = ChannelSpace(gen)
    key = cache_key(gen, perceptor, samples, seed, space)
    path = target if target.suffix.lower() == ".safetensors" and not target.is_dir() else target / f"{key}.safetensors"
    refuse_foreign(path, CACHE_KIND, "--global-cache", legacy=CACHE_LEGACY)
    if path.is_file():
        meta = safetensors_metadata(path) or {}
        try:
            data = load_file(str(path))
        except Exception:  # noqa: BLE001 - a damaged cache of ours is recomputed
            data = {}
        if (
            meta.get("key") == key
            and "responses" in data
            and data["responses"].shape[0] == space.n
            and data["responses"].shape[1] == _embed_dim(perceptor)
        ):
            return Responses(data["responses"], data["std"], json.loads(meta.get("info", "{}")), 0.0, cached=True)
        if meta.get("key") not in (None, key):
            raise VecgenError(
                f"{path}: global-direction cache of another generator or perceptor; give another --global-cache file"
            )
    res = channel_responses(gen, perceptor, samples=samples, seed=seed, progress=progress)
    info = {**res.meta, "seconds": round(res.seconds, 2)}
    data_bytes = safetensors_bytes(
        {"responses": res.responses, "std": res.std},
        {"vecgen": CACHE_KIND, "key": key, "info": json.dumps(info, sort_keys=True)},
    )
    atomic_write(path, data_bytes, mkdir=True)  # OS errors: one line (VecgenError)
    res.meta["cache"] = str(path)
    return res


# ----------------------------------------------------------------------------- directions
def text_step(perceptor, target: str, source: str | None, image: Tensor | None = None) -> Tensor:
    """Unit ``(D,)`` step in perceptor space: ``E(target) - E(source)``, or, without a source, the
    part of ``E(target)`` orthogonal to the photo's embedding ``E(image)`` (the way to raise its cosine)."""
    t = F.normalize(perceptor.encode_text([target]).float()[0], dim=-1)
    if source:
        d = t - F.normalize(perceptor.encode_text([source]).float()[0], dim=-1)
    else:
        if image is None:
            raise VecgenError("a global direction without --source needs the photo")
        e = F.normalize(perceptor.encode_image(image).float()[0], dim=-1)
        d = t - (t @ e) * e
    if float(d.norm()) < 1e-6:
        raise VecgenError("--source and the target mean the same to this perceptor; pick distinct texts")
    return F.normalize(d, dim=-1)


def relevance(responses: Tensor, step: Tensor) -> Tensor:
    """Cosine of each channel's response ``(n, D)`` with the text step ``(D,)`` -> ``(n,)``."""
    return F.normalize(responses.float(), dim=-1) @ step.float().to(responses.device)


def global_direction(responses: Tensor, std: Tensor, step: Tensor, beta: float) -> tuple[Tensor, Tensor]:
    """``(offsets per unit alpha, relevance)``: where ``|relevance| >= beta``,
    ``relevance / max|relevance| * std`` (so ``alpha`` counts standard deviations of the most
    relevant channel), else 0.

    Shape:

    - ``responses``: ``(n, D)``; ``std``: ``(n,)``; ``step``: ``(D,)`` unit text step
    - returns: offsets ``(n,)`` and relevance ``(n,)``
    """
    rel = relevance(responses, step)
    kept = torch.where(rel.abs() >= beta, rel, torch.zeros_like(rel))
    top = kept.abs().max()
    if float(top) > 0:
        kept = kept / top
    return kept * std.to(kept), rel


def apply_direction(space: ChannelSpace, w_plus: Tensor, offsets: Tensor, alpha: float) -> Tensor:
    """The edited render ``(1, 3, H, W)``: ``w_plus`` with ``alpha * offsets`` on its channels."""
    with torch.no_grad():
        return space.render(w_plus, alpha * offsets.to(w_plus.device))


# ----------------------------------------------------------------------------- the verb's method
def global_edit(
    gen,
    inv,
    opts,
    prompt: str | None,
    source: str | None,
    *,
    alpha: float,
    beta: float,
    samples: int,
    cache,
    settings: dict,
) -> tuple[Any, Tensor]:
    """``vecgen edit --method global``: -> ``(Result, edited render (1, 3, h, w))``; fills ``settings``.

    Responses and text steps of several perceptors are combined by their ``--clip`` weights.
    """
    from vecgen.api.result import Result

    if not opts.prompts:
        raise VecgenError("--method global needs a text prompt (the target)")
    check_cache_target(cache)  # before the perceptors load and the precompute
    target = " ".join(p.text for p in opts.prompts if p.weight > 0) or opts.prompts[0].text
    space = ChannelSpace(gen)
    offsets = None
    precompute, kept, cached = 0.0, 0, True
    for perceptor, weight in opts.load_perceptors():
        resp = load_or_compute(gen, perceptor, cache=cache, samples=samples, seed=opts.seed, progress=not opts.quiet)
        precompute += resp.seconds or float(resp.meta.get("seconds", 0.0))  # cached: the time it once took
        cached = cached and resp.cached
        with torch.no_grad():
            step = text_step(perceptor, target, source, inv.image)
        off, rel = global_direction(resp.responses, resp.std, step, beta)
        if not bool((off != 0).any()) and opts.warn is not None:
            opts.warn(
                f"{getattr(perceptor, 'name', 'perceptor')}: no channel reaches --beta {beta:g} (the most "
                f"relevant: {float(rel.abs().max()):.3f}); the edit is the inversion; lower --beta"
            )
        kept = max(kept, int((off != 0).sum()))
        offsets = weight * off if offsets is None else offsets + weight * off
    if offsets is None:
        raise VecgenError("--method global needs a perceptor (--clip)")
    t1 = time.perf_counter()
    edited = _apply(space, gen, inv, offsets, alpha)
    apply_ms = (time.perf_counter() - t1) * 1000.0
    settings.update(
        alpha=alpha,
        beta=beta,
        global_samples=samples,
        channels=space.n,
        channel_space=space.kind,
        channels_kept=kept,
        precompute_s=round(precompute, 2),
        precompute_cached=cached,
        apply_ms=round(apply_ms, 1),
    )
    res = Result(image=None, settings=settings)
    res.extras.update(offsets=offsets, channel_space=space)
    return res, edited


def _apply(space: ChannelSpace, gen, inv, offsets: Tensor, alpha: float) -> Tensor:
    """Render the inverted latent (as ``W+``) moved by ``alpha * offsets``."""
    from vecgen.params.latent import Latent

    param = Latent(gen, space=inv.space, init=inv.latent, truncation=1.0)
    with torch.no_grad():
        return apply_direction(space, param.w_plus(), offsets, alpha)
