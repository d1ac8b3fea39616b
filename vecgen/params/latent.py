"""A frozen generator's latent as the parameterization (StyleCLIP, FuseDream).

The optimized tensor lives in one of three spaces of a
:class:`~vecgen.backends.generators.Generator`:

``z``
    the prior latent ``(1, *latent_shape)``; every render maps it
    (``mapping``), truncates it towards the mean latent and broadcasts it
    to all layers.
``w``
    one intermediate latent ``(1, *w_shape)`` shared by every layer.
``wplus``
    one ``w`` per synthesis layer, ``(1, n_latent, *w_shape)`` (StyleCLIP's
    space). It starts with identical rows, so at step 0 it renders exactly
    what ``w`` renders.

For generators without a mapping network (TAEF2, TorchScript modules) the
three spaces coincide (mapping is the identity, ``n_latent`` is 1).

``truncation`` (psi) pulls a latent towards the generator's mean latent:
``mean + psi * (w - mean)``. In ``z`` space it applies at every render; in
``w``/``wplus`` it applies to the starting point only (as in StyleCLIP, which
starts from a truncated ``w`` and then moves freely).

Learning rate: StyleCLIP's ramp, a linear warm-up over the first ``rampup``
of the run and a half-cosine decay over the last ``rampdown``, handed to the
engine as the groups' lr schedule (:meth:`Latent.lr_factor`).

FuseDream start (:meth:`Latent.fusedream`): ``samples`` prior draws are
rendered and scored with the objective (no grad, in batches); the ``top``
lowest-loss ones become a fixed basis and the optimized latent is
``sum_k softmax(logits)_k * basis_k + residual``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from vecgen.errors import VecgenError
from vecgen.io import atomic_write, save_png, tensor_to_pil, torch_bytes
from vecgen.options import SPACES, as_int, check_limit, check_number
from vecgen.params.base import StepContext

#: Scores a batch of renders ``(B, 3, H, W)`` -> ``(B,)`` losses (lower is better).
ScoreFn = Callable[[Tensor], Tensor]


def lr_ramp(step: int, steps: int, rampup: float = 0.05, rampdown: float = 0.25) -> float:
    """StyleCLIP's lr factor at ``step`` of ``steps`` (0-based), in ``[0, 1]``.

    Evaluated at the middle of the step (``t = (step + 0.5) / steps``) so that
    neither the first nor the last step has a zero learning rate.
    """
    if steps <= 0:
        return 1.0
    t = min(max((step + 0.5) / steps, 0.0), 1.0)
    f = 1.0
    if rampdown > 0:
        down = min(1.0, (1.0 - t) / rampdown)
        f = 0.5 - 0.5 * math.cos(down * math.pi)
    if rampup > 0:
        f *= min(1.0, t / rampup)
    return f


def _check_space(space: str) -> str:
    s = str(space).strip().lower().replace("+", "plus").replace("_", "").replace("-", "")
    if s not in SPACES:
        raise VecgenError(f"unknown --space {space!r} (choose z, w or wplus)")
    return s


def _check_truncation(truncation: float) -> float:
    # psi > 1 pushes latents away from the mean; past 2 the generator's images fall apart
    return check_number("--truncation", truncation, nonnegative=True, maximum=2.0)


def check_fusedream(samples: Any, top: Any) -> tuple[int, int]:
    """FuseDream's counts: ``1 <= top <= samples``, both within vecgen's limits."""
    samples = check_limit("samples", as_int("--samples", samples, minimum=1))
    top = check_limit("top", as_int("--top", top))
    if not 1 <= top <= samples:
        raise VecgenError(f"--top must be between 1 and --samples ({samples}), got {top}")
    return samples, top


class Latent:
    """A latent of a frozen ``generator``, rendered by it: ``(1, 3, H, W)`` in ``[0, 1]``.

    Args:
        generator: a loaded :class:`~vecgen.backends.generators.Generator`
            (frozen; its weights are never optimized here).
        space: ``"z"``, ``"w"`` or ``"wplus"``.
        seed: seeds the random start (``init="random"``).
        truncation: psi; ``None`` = the generator's own ``truncation``
            attribute if it has one, else 1 (none).
        init: ``"random"`` (a prior draw), ``"mean"`` (the mean latent; in
            ``z`` space the prior mean), or a tensor in the chosen space (or a
            ``z`` of ``(1, *latent_shape)`` for ``w``/``wplus``, mapped).
        lr: base learning rate (StyleCLIP: 0.1).
        steps: length of the run, for the lr ramp (``None`` = no ramp).
        rampup, rampdown: fractions of the run for warm-up and cosine decay.
        basis, basis_scores: FuseDream's kept samples ``(K, *space_shape)``
            and their scores; use :meth:`fusedream` rather than passing these.
        logits_lr: lr of the softmax logits of a FuseDream basis.
    """

    kind = "raster"
    name = "latent"

    def __init__(
        self,
        generator,
        *,
        space: str = "w",
        seed: int = 0,
        truncation: float | None = None,
        init: str | Tensor | None = "random",
        lr: float = 0.1,
        steps: int | None = None,
        rampup: float = 0.05,
        rampdown: float = 0.25,
        basis: Tensor | None = None,
        basis_scores: Tensor | None = None,
        logits_lr: float = 0.05,
    ) -> None:
        self.generator = generator
        self.space = _check_space(space)
        if truncation is None:
            truncation = getattr(generator, "truncation", 1.0)
        self.truncation = _check_truncation(truncation)
        if not (lr > 0 and math.isfinite(lr)):
            raise VecgenError(f"--lr must be > 0, got {lr!r}")
        if not (0 <= rampup <= 1 and 0 <= rampdown <= 1):
            raise VecgenError("rampup and rampdown are fractions of the run, in [0, 1]")
        self.lr, self.logits_lr = float(lr), float(logits_lr)
        self.steps = int(steps) if steps else None
        self.rampup, self.rampdown = float(rampup), float(rampdown)
        self.seed = int(seed)
        self.device = generator.device
        self.step = 0
        self._mean: Tensor | None = None
        #: FuseDream bookkeeping (set by :meth:`fusedream`): every sample's
        #: score, the indices of the kept ones (best first) and their scores.
        self.scores: Tensor | None = None
        self.top_indices: Tensor | None = None
        self.basis_scores = basis_scores

        # FuseDream runs optimize basis mixing logits and a residual; the others one latent value.
        self.basis: Tensor | None
        self.logits: Tensor | None
        self.residual: Tensor | None
        self.value: Tensor | None
        if basis is not None:
            basis = basis.detach().to(self.device, torch.float32).clone().contiguous()
            if tuple(basis.shape[1:]) != self.space_shape or basis.shape[0] < 1:
                raise VecgenError(
                    f"FuseDream basis must be (K, {', '.join(map(str, self.space_shape))}), got {tuple(basis.shape)}"
                )
            self.basis = basis
            logits = torch.zeros(basis.shape[0])
            if basis_scores is not None and basis.shape[0] > 1:
                s = torch.as_tensor(basis_scores, dtype=torch.float32).reshape(-1).cpu()
                spread = float(s.std()) if s.numel() > 1 else 0.0
                # the best sample dominates at the start; the others are a step away
                logits = -(s - s.min()) / max(spread, 1e-6)
            self.logits = logits.to(self.device).requires_grad_(True)
            self.residual = torch.zeros((1, *self.space_shape), device=self.device).requires_grad_(True)
            self.value = None
        else:
            self.basis = self.logits = self.residual = None
            self.value = self._initial_value(init).requires_grad_(True)
        with torch.no_grad():
            self._initial = self.latent().detach().clone()

    # ------------------------------------------------------------------ shapes and spaces
    @property
    def space_shape(self) -> tuple[int, ...]:
        """Shape of one latent in the optimized space (no batch dimension)."""
        g = self.generator
        if self.space == "z":
            return tuple(g.latent_shape)
        if self.space == "w":
            return tuple(g.w_shape)
        return (int(g.n_latent), *g.w_shape)

    def mean_w(self) -> Tensor:
        """The generator's mean intermediate latent ``(1, *w_shape)`` (cached)."""
        if self._mean is None:
            self._mean = self.generator.mean_latent().detach().to(self.device)
        return self._mean

    def truncate(self, w: Tensor) -> Tensor:
        """``mean + psi * (w - mean)`` for ``w`` ``(B, *w_shape)`` or ``(B, n_latent, *w_shape)``."""
        if self.truncation == 1.0:
            return w
        mean = self.mean_w()
        if w.dim() == mean.dim() + 1:
            mean = mean.unsqueeze(1)
        return mean + self.truncation * (w - mean)

    def to_space(self, z: Tensor) -> Tensor:
        """Prior draws ``(B, *latent_shape)`` -> the optimized space (truncated unless ``z``)."""
        if self.space == "z":
            return z
        w = self.truncate(self.generator.mapping(z))
        return w if self.space == "w" else self.generator.to_w_plus(w)

    def w_plus_of(self, x: Tensor) -> Tensor:
        """Latents in the optimized space ``(B, ...)`` -> ``(B, n_latent, *w_shape)``."""
        g = self.generator
        if self.space == "z":
            return g.to_w_plus(self.truncate(g.mapping(x)))
        if self.space == "w":
            return g.to_w_plus(x)
        return x

    def _initial_value(self, init) -> Tensor:
        g = self.generator
        with torch.no_grad():
            if isinstance(init, Tensor):
                x = init.detach().to(self.device, torch.float32)
                if x.dim() == len(self.space_shape):
                    x = x.unsqueeze(0)
                if tuple(x.shape) == (1, *self.space_shape):
                    return x.clone()
                if self.space != "z" and tuple(x.shape) == (1, *g.latent_shape):
                    return self.to_space(x).clone()
                raise VecgenError(
                    f"init latent has shape {tuple(init.shape)}; {self.space} space wants "
                    f"(1, {', '.join(map(str, self.space_shape))})"
                )
            init = "random" if init is None else str(init)
            if init == "random":
                return self.to_space(g.sample_latent(1, self.seed, device=self.device)).clone()
            if init == "mean":
                if self.space == "z":
                    return torch.zeros((1, *g.latent_shape), device=self.device)
                w = self.mean_w().clone()
                return w if self.space == "w" else g.to_w_plus(w)
        raise VecgenError(f"unknown latent init {init!r} (choose random, mean or fusedream)")

    # ------------------------------------------------------------------ FuseDream
    @classmethod
    @torch.no_grad()
    def fusedream(
        cls,
        generator,
        score: ScoreFn,
        *,
        samples: int = 64,
        top: int = 4,
        space: str = "w",
        seed: int = 0,
        truncation: float | None = None,
        chunk: int = 8,
        progress: bool = False,
        **kwargs: Any,
    ) -> Latent:
        """FuseDream start: rank ``samples`` prior draws by ``score`` and keep the ``top`` best.

        Draws come in chunks of ``chunk`` (chunk ``i`` is
        ``generator.sample_latent(n, seed + 1 + i)``); each chunk is rendered
        and scored in one batch; only the best ``top`` latents are kept in
        memory. The result has ``scores`` (every sample's, in draw order),
        ``top_indices`` (best first) and ``basis_scores``. ``progress``: a bar
        over the samples (ranking 128 draws takes minutes on a CPU).
        """
        samples, top = check_fusedream(samples, top)
        chunk = max(1, int(chunk))
        probe = cls(
            generator,
            space=space,
            seed=seed,
            truncation=truncation,
            init="mean",
            **{k: v for k, v in kwargs.items() if k in ("lr", "steps", "rampup", "rampdown")},
        )
        scores: list[Tensor] = []
        kept_x: Tensor | None = None
        kept_s: Tensor | None = None
        kept_i: Tensor | None = None
        start = 0
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=samples, unit="sample", desc="fusedream: ranking", leave=False, dynamic_ncols=True)
        for i in range(math.ceil(samples / chunk)):
            n = min(chunk, samples - start)
            z = generator.sample_latent(n, seed + 1 + i, device=probe.device)
            x = probe.to_space(z)
            s = score(generator.synthesize(probe.w_plus_of(x))).detach().reshape(-1).float().cpu()
            if s.numel() != n:
                raise VecgenError(f"FuseDream score returned {s.numel()} values for {n} images")
            s = torch.nan_to_num(s, nan=float("inf"))
            scores.append(s)
            idx = torch.arange(start, start + n)
            xs = x if kept_x is None else torch.cat([kept_x, x])
            ss = s if kept_s is None else torch.cat([kept_s, s])
            ii = idx if kept_i is None else torch.cat([kept_i, idx])
            order = torch.argsort(ss, stable=True)[:top]
            kept_x, kept_s, kept_i = xs[order], ss[order], ii[order]
            start += n
            if bar is not None:
                bar.update(n)
        if bar is not None:
            bar.close()
        param = cls(
            generator, space=space, seed=seed, truncation=truncation, basis=kept_x, basis_scores=kept_s, **kwargs
        )
        param.scores = torch.cat(scores)
        param.top_indices = kept_i
        return param

    # ------------------------------------------------------------------ the latent
    def latent(self) -> Tensor:
        """The current latent in the optimized space, ``(1, *space_shape)`` (differentiable)."""
        if self.basis is None:
            assert self.value is not None  # one of the two forms is always set
            return self.value
        assert self.logits is not None and self.residual is not None
        wts = torch.softmax(self.logits, 0).reshape(-1, *([1] * len(self.space_shape)))
        return (wts * self.basis).sum(0, keepdim=True) + self.residual

    def w_plus(self) -> Tensor:
        """The current latent as ``(1, n_latent, *w_shape)``."""
        return self.w_plus_of(self.latent())

    def l2_to_init(self) -> Tensor:
        """Squared L2 distance (sum over entries) of the latent to its starting value.

        Shape:

        - returns: ``()``
        """
        return (self.latent() - self._initial).pow(2).sum()

    def lr_factor(self, step: int, steps: int | None = None) -> float:
        """The ramp factor of the step taken at ``step`` of ``steps`` (default: this latent's ``steps``)."""
        steps = self.steps if steps is None else steps
        if not steps:
            return 1.0
        return lr_ramp(step, steps, self.rampup, self.rampdown)

    # ------------------------------------------------------------------ protocol
    def param_groups(self) -> list[dict[str, Any]]:
        ramp = {"schedule": self.lr_factor} if self.steps else {}
        if self.basis is not None:
            return [
                {"params": [self.logits], "lr": self.logits_lr, "name": "fusedream_logits", **ramp},
                {"params": [self.residual], "lr": self.lr, "name": f"latent_{self.space}", **ramp},
            ]
        return [{"params": [self.value], "lr": self.lr, "name": f"latent_{self.space}", **ramp}]

    def render(self, ctx: StepContext | None = None) -> Tensor:
        """The generator's image of the current latent, ``(1, 3, H, W)`` in ``[0, 1]`` (differentiable).

        Publishes ``ctx.refs["l2_to_init"]`` (:meth:`l2_to_init`, for :class:`~vecgen.losses.LatentL2`)."""
        if ctx is not None:
            ctx.refs["l2_to_init"] = self.l2_to_init()
        return self.generator.synthesize(self.w_plus())

    def project_(self) -> None:
        """Nothing to repair."""

    def end_step(self, ctx: StepContext) -> None:
        """The steps taken (kept in the state for resume)."""
        self.step = ctx.step + 1

    @torch.no_grad()
    def to_pil(self):
        return tensor_to_pil(self.render())

    def export(self, path: str | Path) -> None:
        """Write the render as PNG (``.png``) or the latent as a torch file (``.pt``/``.pth``)."""
        p = Path(path)
        if p.suffix.lower() in (".pt", ".pth"):
            self.save_latent(p)
            return
        save_png(self.to_pil(), p)

    def save_latent(self, path: str | Path) -> None:
        """``torch.save`` (atomically) ``{"space", "latent", "w_plus", "truncation"}``; loads with weights_only."""
        with torch.no_grad():
            data = {  # these keys mark the file as ours (io.LATENT_KEYS): --save-latent replaces nothing else
                "space": self.space,
                "latent": self.latent().detach().cpu().clone(),
                "w_plus": self.w_plus().detach().cpu().clone(),
                "truncation": self.truncation,
            }
        atomic_write(path, torch_bytes(data))

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "type": "latent",
            "space": self.space,
            "step": self.step,
            "initial": self._initial.detach().cpu().clone(),
        }
        if self.basis is not None:
            assert self.logits is not None and self.residual is not None
            state.update(
                basis=self.basis.detach().cpu().clone(),
                logits=self.logits.detach().cpu().clone(),
                residual=self.residual.detach().cpu().clone(),
            )
        else:
            assert self.value is not None
            state["value"] = self.value.detach().cpu().clone()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("type") != "latent" or state.get("space") != self.space:
            raise VecgenError(f"checkpoint is not a {self.space}-space latent run (space {state.get('space')!r})")
        fused = "basis" in state
        if fused != (self.basis is not None):
            raise VecgenError("checkpoint and this run differ in --init fusedream")

        def put(dst: Tensor, key: str) -> None:
            src = state.get(key)
            if not isinstance(src, Tensor) or tuple(src.shape) != tuple(dst.shape):
                got = tuple(src.shape) if isinstance(src, Tensor) else type(src).__name__
                raise VecgenError(f"checkpoint latent {key!r} has shape {got}, this run needs {tuple(dst.shape)}")
            dst.copy_(src.to(dst))

        with torch.no_grad():
            if fused:
                for key in ("basis", "logits", "residual"):
                    put(getattr(self, key), key)
            else:
                assert self.value is not None
                put(self.value, "value")
            put(self._initial, "initial")
        self.step = int(state.get("step", 0))

    def __repr__(self) -> str:
        extra = f", fusedream_top={self.basis.shape[0]}" if self.basis is not None else ""
        return (
            f"Latent(generator={getattr(self.generator, 'kind', '?')}, space={self.space!r}, "
            f"shape={self.space_shape}, truncation={self.truncation}{extra})"
        )
