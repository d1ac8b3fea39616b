"""A generator's *weights* as the parameterization (StyleGAN-NADA).

Two copies of one generator share every latent: ``frozen`` (never changes)
and ``trained`` (optimized). Each step draws a fresh, seeded batch of prior
latents; :meth:`GeneratorWeights.render` returns the trained copy's images
and keeps the frozen copy's images of the same latents in ``frozen_image``,
which a directional CLIP term (:class:`vecgen.losses.DirectionalClipTerm`)
reads as its reference. The mapping network is never trained.

Adaptive layer freezing, done in ``render`` before every training step
(every ``select_every`` steps) with a ``probe`` loss (``images -> (B,)``,
the global CLIP distance to the target text):

* StyleGAN2 (has W+): the batch's ``W+`` is copied and moved by
  ``probe_steps`` plain gradient steps (SGD, ``probe_lr``) on the probe loss
  through the trained copy; the ``layers_k`` W+ entries that moved most (mean
  L2 over the batch) pick the layers to train: every synthesis module that
  reads those entries (``conv1``; ``to_rgb1`` + ``convs.0``; ``convs.1``;
  ``convs.2`` + ``to_rgbs.0``; ...). The constant input and the mapping stay
  frozen.
* Generators without W+ (TAEF2, TorchScript): the candidate layers are the
  decoder's parameterized children (TAEF2: 15 of them, the convs 1, 7, 12,
  17, 19 and the blocks 3-5, 8-10, 13-15, 18). The probe loss is
  back-propagated once to the weights and the ``layers_k`` layers with the
  largest RMS gradient (gradient norm / sqrt(#weights), so big and small
  layers compare fairly) are trained.

Only the selected layers have ``requires_grad`` on during the training
step, so the others get no gradient and Adam leaves them untouched.

Learning rate (``lr=None``, see :func:`default_adapt_lr`): Adam's steps are
about ``lr`` per weight whatever the gradient's size (with NADA's
``beta1 = 0`` the first step is exactly ``lr * sign(grad)`` on every weight),
so what matters is ``lr`` relative to the weights' own scale. NADA's 0.002
is 0.2% of StyleGAN2's stored weights (equalized lr keeps them ~N(0, 1));
TAEF2's plain convolutions have weights of RMS 0.01-0.09, where 0.002 is
2-20% per step and the decoder collapses within one to five steps (saturated
noise, then noise or one flat colour). Each generator therefore gets its own default.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from vecgen.errors import VecgenError
from vecgen.io import atomic_write, save_png, torch_bytes
from vecgen.params.base import StepContext

#: ``images (B, 3, H, W) -> (B,)``: the loss the layer-selection probe lowers.
ProbeFn = Callable[[Tensor], Tensor]

#: Default Adam lr of the weights per generator kind, used when the generator
#: declares no ``adapt_lr`` of its own. StyleGAN2: NADA's 0.002. TAEF2: 1e-4
#: (0.002 times its conv weights' median RMS, ~0.05); at 0.002 the pretrained
#: decoder collapses in 1-5 steps, at 1e-4 200-300 steps keep its images natural.
ADAPT_LR: dict[str, float] = {"stylegan2": 0.002, "taef2": 1e-4}
#: For any other generator: this fraction of the median RMS of its trainable
#: weight matrices/kernels (the step StyleGAN2's 0.002 is relative to its ~1 weights).
RELATIVE_LR = 0.002


def _positive(value: Any) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if v > 0 and math.isfinite(v) else None


def weight_scale(params: list[Tensor]) -> float:
    """Median RMS of the weight tensors with >= 2 dims (all tensors if none; 1.0 if all are zero).

    Shape:

    - ``params``: a generator's parameters, tensors of any shape (weight matrices and kernels, biases)
    """
    mats = [p for p in params if p.dim() >= 2] or list(params)
    rms = sorted(float(p.detach().double().pow(2).mean().sqrt()) for p in mats if p.numel())
    rms = [r for r in rms if r > 0 and math.isfinite(r)]
    return rms[len(rms) // 2] if rms else 1.0


def default_adapt_lr(generator, params: list[Tensor] | None = None) -> tuple[float, str]:
    """The Adam lr ``adapt`` uses when none is given, and where it came from.

    In order: the generator's own ``adapt_lr`` attribute (a positive number);
    :data:`ADAPT_LR` for its ``kind``; else :data:`RELATIVE_LR` times
    :func:`weight_scale` of ``params`` (default: all of its parameters).

    Shape:

    - ``params``: parameters of ``generator``, tensors of any shape; returns ``(lr, source)``, no tensor
    """
    own = _positive(getattr(generator, "adapt_lr", None))
    if own is not None:
        return own, "generator"
    kind = str(getattr(generator, "kind", ""))
    if kind in ADAPT_LR:
        return ADAPT_LR[kind], kind
    ps = list(generator.parameters()) if params is None else list(params)
    return RELATIVE_LR * weight_scale(ps), "weight scale"


def _stylegan2_table(gen) -> list[tuple[str, list[nn.Module]]]:
    """Per W+ entry, the synthesis modules that read it (see ``StyleGAN2Generator.synthesize``)."""
    table: list[tuple[list[str], list[nn.Module]]] = [([], []) for _ in range(gen.n_latent)]

    def add(i: int, name: str) -> None:
        mod = gen.get_submodule(name)
        table[i][0].append(name)
        table[i][1].append(mod)

    add(0, "conv1")
    add(1, "to_rgb1")
    for k in range(len(gen.to_rgbs)):
        add(1 + 2 * k, f"convs.{2 * k}")
        add(2 + 2 * k, f"convs.{2 * k + 1}")
        add(3 + 2 * k, f"to_rgbs.{k}")
    return [(f"w{i}:" + "+".join(names), mods) for i, (names, mods) in enumerate(table)]


def _block_table(gen: nn.Module) -> list[tuple[str, list[nn.Module]]]:
    """Parameterized children of the generator's main network (decoder / scripted module)."""
    root, prefix = gen, ""
    for attr in ("decoder", "module"):
        sub = getattr(gen, attr, None)
        if isinstance(sub, nn.Module) and any(True for _ in sub.parameters()):
            root, prefix = sub, attr + "."
            break
    while True:  # descend through single wrappers
        kids = [(n, m) for n, m in root.named_children() if any(True for _ in m.parameters())]
        if len(kids) == 1 and not any(True for _ in root.parameters(recurse=False)):
            root, prefix = kids[0][1], prefix + kids[0][0] + "."
            continue
        break
    table = [(prefix + n, [m]) for n, m in kids]
    own = list(root.parameters(recurse=False))
    if own:
        holder = nn.Module()
        for i, p in enumerate(own):
            holder.register_parameter(f"p{i}", p)
        table.append((prefix.rstrip(".") or "weights", [holder]))
    if not table:
        raise VecgenError(f"{getattr(gen, 'kind', 'generator')}: no trainable weights to adapt")
    return table


class GeneratorWeights:
    """StyleGAN-NADA's trainable generator, driven by the engine like any parameterization.

    Args:
        generator: a loaded generator (becomes ``frozen``; ``trained`` is a deep copy).
        probe: the layer-selection loss ``images -> (B,)``; ``None`` trains
            every candidate layer.
        layers_k: how many layers to train per step (``None`` = half of
            them, at least 1; ``>=`` the number of layers = all).
        batch: latents per step (NADA: 2).
        seed: seeds the latent batches (step ``i`` draws with ``seed``-derived seed).
        truncation: psi applied to the sampled ``w`` (1 = none).
        lr: Adam lr of the weights, betas (0, 0.99) as in NADA; ``None`` = the
            generator's default (:func:`default_adapt_lr`: StyleGAN2 0.002 as in
            NADA, TAEF2 1e-4). ``lr_source`` says which ("given", "generator",
            the kind, or "weight scale").
        probe_steps, probe_lr: the W+ probe's SGD steps and step size.
        select_every: re-select layers every this many steps.
    """

    kind = "raster"
    name = "generator_weights"

    def __init__(
        self,
        generator,
        *,
        probe: ProbeFn | None = None,
        layers_k: int | None = None,
        batch: int = 2,
        seed: int = 0,
        truncation: float = 1.0,
        lr: float | None = None,
        probe_steps: int = 1,
        probe_lr: float = 0.01,
        select_every: int = 1,
    ) -> None:
        if batch < 1:
            raise VecgenError("--batch must be >= 1")
        if lr is not None and _positive(lr) is None:
            raise VecgenError(f"--lr must be > 0, got {lr!r}")
        if probe_steps < 1 or select_every < 1:
            raise VecgenError("probe_steps and select_every must be >= 1")
        if not (math.isfinite(truncation) and truncation >= 0):
            raise VecgenError(f"--truncation must be >= 0, got {truncation!r}")
        self.frozen = generator.eval().requires_grad_(False)
        self.trained = copy.deepcopy(generator).eval().requires_grad_(False)
        self.device = generator.device
        self.probe = probe
        self.batch, self.seed, self.truncation = int(batch), int(seed), float(truncation)
        self.probe_steps, self.probe_lr, self.select_every = int(probe_steps), float(probe_lr), int(select_every)
        self.mode = "wplus" if getattr(generator, "has_mapping", False) and hasattr(generator, "to_rgbs") else "grad"
        table = _stylegan2_table(self.trained) if self.mode == "wplus" else _block_table(self.trained)
        self.layer_names = [name for name, _ in table]
        self._layer_params: list[list[nn.Parameter]] = []
        seen: set[int] = set()
        for _, mods in table:
            ps = []
            for m in mods:
                for p in m.parameters():
                    if id(p) not in seen:
                        seen.add(id(p))
                        ps.append(p)
            self._layer_params.append(ps)
        if lr is None:
            self.lr, self.lr_source = default_adapt_lr(generator, [p for ps in self._layer_params for p in ps])
        else:
            self.lr, self.lr_source = float(lr), "given"
        n = len(self.layer_names)
        k = max(1, n // 2) if layers_k is None else int(layers_k)
        if k < 1:
            raise VecgenError(f"--layers-k must be >= 1, got {layers_k}")
        self.layers_k = min(k, n)
        self.step = 0
        self.selected: list[int] = []
        #: how often each layer was selected so far (index = ``layer_names``)
        self.selection_counts = torch.zeros(n, dtype=torch.long)
        #: the probe's per-layer scores at the last selection (movement or RMS gradient)
        self.last_scores: Tensor | None = None
        self.frozen_image: Tensor | None = None
        self._mean: Tensor | None = None

    # ------------------------------------------------------------------ latents
    def _truncate(self, w: Tensor) -> Tensor:
        if self.truncation == 1.0:
            return w
        if self._mean is None:
            self._mean = self.frozen.mean_latent().detach().to(self.device)
        return self._mean + self.truncation * (w - self._mean)

    @torch.no_grad()
    def w_plus_for(self, z: Tensor) -> Tensor:
        """Prior latents ``(B, *latent_shape)`` -> shared ``W+`` ``(B, n_latent, *w_shape)`` (frozen mapping)."""
        return self.frozen.to_w_plus(self._truncate(self.frozen.mapping(z)))

    def batch_latents(self, step: int) -> Tensor:
        """The seeded prior batch of ``step`` (the same on resume).

        Shape:

        - returns: ``(batch, *latent_shape)``, the frozen generator's prior latents
        """
        return self.frozen.sample_latent(self.batch, self.seed * 1_000_003 + 7919 * step + 1, device=self.device)

    # ------------------------------------------------------------------ layer selection
    def _set_trainable(self, chosen: list[int]) -> None:
        on = set(chosen)
        for i, ps in enumerate(self._layer_params):
            for p in ps:
                p.requires_grad_(i in on)

    def select_layers(self, w_plus: Tensor) -> list[int]:
        """Pick the layers to train for ``w_plus`` ``(B, n_latent, *w_shape)`` (see the module docstring); sets
        ``requires_grad``."""
        n = len(self.layer_names)
        if self.probe is None or self.layers_k >= n:
            chosen = list(range(n))
            self.last_scores = None
        else:
            with torch.enable_grad():
                probe = self.probe
                scores = self._probe_wplus(probe, w_plus) if self.mode == "wplus" else self._probe_grad(probe, w_plus)
            self.last_scores = scores.detach().cpu()
            order = torch.argsort(-self.last_scores, stable=True)
            chosen = sorted(int(i) for i in order[: self.layers_k])
        self._set_trainable(chosen)
        self.selected = chosen
        self.selection_counts[chosen] += 1
        return chosen

    def _probe_wplus(self, probe: ProbeFn, w_plus: Tensor) -> Tensor:
        self._set_trainable([])
        x0 = w_plus.detach()
        x = x0.clone().requires_grad_(True)
        for _ in range(self.probe_steps):
            loss = probe(self.trained.synthesize(x)).sum()
            (g,) = torch.autograd.grad(loss, [x])
            x = (x - self.probe_lr * g).detach().requires_grad_(True)
        move = (x.detach() - x0).flatten(2).norm(dim=-1).mean(0)  # (n_latent,)
        return move

    def _probe_grad(self, probe: ProbeFn, w_plus: Tensor) -> Tensor:
        self._set_trainable(list(range(len(self.layer_names))))
        params = [p for ps in self._layer_params for p in ps]
        loss = probe(self.trained.synthesize(w_plus.detach())).sum()
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        by_param = {id(p): g for p, g in zip(params, grads)}
        scores = []
        for ps in self._layer_params:
            sq, count = 0.0, 0
            for p in ps:
                g = by_param[id(p)]
                if g is not None:
                    sq += float(g.detach().double().pow(2).sum())
                count += p.numel()
            scores.append(math.sqrt(sq / max(count, 1)))
        return torch.tensor(scores)

    # ------------------------------------------------------------------ protocol
    def parameters(self) -> list[nn.Parameter]:
        """Every candidate weight of the trained copy (the mapping network excluded)."""
        return [p for ps in self._layer_params for p in ps]

    def param_groups(self) -> list[dict[str, Any]]:
        return [{"params": self.parameters(), "lr": self.lr, "name": "generator", "betas": (0.0, 0.99)}]

    def render(self, ctx: StepContext | None = None) -> Tensor:
        """The trained copy's images of this step's latents ``(batch, 3, H, W)``.

        With gradients on (a training step) the layers to train are chosen
        first. ``frozen_image`` gets the frozen copy's images of the same
        latents, also published as ``ctx.refs["reference"]`` (the directional loss's reference).
        """
        step = self.step if ctx is None else ctx.step
        w_plus = self.w_plus_for(self.batch_latents(step))
        if torch.is_grad_enabled() and (not self.selected or step % self.select_every == 0):
            self.select_layers(w_plus)
        with torch.no_grad():
            self.frozen_image = self.frozen.synthesize(w_plus)
        if ctx is not None:
            ctx.refs["reference"] = self.frozen_image
        return self.trained.synthesize(w_plus)

    def project_(self) -> None:
        """Nothing to repair."""

    def end_step(self, ctx: StepContext) -> None:
        """The next step's latents (the step count is kept in the state for resume)."""
        self.step = ctx.step + 1

    @torch.no_grad()
    def grid(self, n: int = 4, seed: int = 12345) -> Tensor:
        """Frozen (top row) vs adapted (bottom row) images of the same ``n`` latents: ``(1, 3, 2H, nW)``."""
        w_plus = self.w_plus_for(self.frozen.sample_latent(int(n), int(seed), device=self.device))
        rows = [self.frozen.synthesize(w_plus), self.trained.synthesize(w_plus)]
        rows = [torch.cat(list(r), dim=-1) for r in rows]  # (3, H, nW) each
        return torch.cat(rows, dim=-2).unsqueeze(0).clamp(0, 1)

    def generator_state(self, meta: dict[str, Any] | None = None) -> dict[str, Any]:
        """What :meth:`save_generator` writes, in a layout the generator loaders read back.

        StyleGAN2: ``{"g_ema": state_dict, "latent_avg": w_avg, "vecgen": meta}``
        (``stylegan2:FILE``); TAEF2: ``{"state_dict": decoder_state, "vecgen": meta}``
        (``taef2:FILE``); others ``{"state_dict": module_state, "vecgen": meta}``.
        """

        def cpu(sd: dict[str, Tensor]) -> dict[str, Tensor]:
            return {k: v.detach().cpu().clone() for k, v in sd.items()}

        meta = {str(k): str(v) for k, v in (meta or {}).items()}
        g = self.trained
        if self.mode == "wplus":
            out: dict[str, Any] = {"g_ema": cpu(g.state_dict()), "vecgen": meta}
            out["latent_avg"] = self.frozen.mean_latent().detach().cpu().reshape(-1).clone()
            return out
        if isinstance(getattr(g, "decoder", None), nn.Module):
            return {"state_dict": cpu(g.decoder.state_dict()), "vecgen": meta}
        if isinstance(getattr(g, "module", None), nn.Module):
            return {"state_dict": cpu(g.module.state_dict()), "vecgen": meta}
        return {"state_dict": cpu(g.state_dict()), "vecgen": meta}

    def save_generator(self, path: str | Path, meta: dict[str, Any] | None = None) -> Path:
        """Write the adapted generator with ``torch.save`` (atomically; loads with ``weights_only=True``)."""
        return atomic_write(path, torch_bytes(self.generator_state(meta)))

    def export(self, path: str | Path) -> None:
        """``.pt``/``.pth``: the adapted generator; ``.png``: the frozen-vs-adapted grid."""
        p = Path(path)
        if p.suffix.lower() in (".pt", ".pth"):
            self.save_generator(p)
            return
        save_png(self.grid(), p, mkdir=True)

    def state_dict(self) -> dict[str, Any]:
        return {
            "type": "generator_weights",
            "step": self.step,
            "selected": list(self.selected),
            "selection_counts": self.selection_counts.clone(),
            "trained": {k: v.detach().cpu().clone() for k, v in self.trained.state_dict().items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        from vecgen.backends.generators import load_weights

        if state.get("type") != "generator_weights":
            raise VecgenError("checkpoint is not from a generator-adaptation run")
        load_weights(self.trained, state["trained"], "checkpoint")
        self.step = int(state.get("step", 0))
        counts = state.get("selection_counts")
        if isinstance(counts, Tensor) and counts.shape == self.selection_counts.shape:
            self.selection_counts = counts.clone()
        self.selected = [int(i) for i in state.get("selected", [])]
        if self.selected:
            self._set_trainable(self.selected)

    def __repr__(self) -> str:
        return (
            f"GeneratorWeights(generator={getattr(self.frozen, 'kind', '?')}, mode={self.mode!r}, "
            f"layers={len(self.layer_names)}, layers_k={self.layers_k}, batch={self.batch})"
        )
