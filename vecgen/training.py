"""One small supervised training loop, :func:`fit`, shared by every model vecgen trains.

The mini CLIP models (:mod:`vecgen.minis.train`), their 3-D fine-tune
(:mod:`vecgen.minis.finetune3d`) and the classify3d adapter
(:mod:`vecgen.api.classify3d_fit`) all run through it: a data function of the
step, AdamW over parameter groups (each may scale the lr by its ``lr_mult``),
an lr schedule (a factor of the step), optional gradient clipping, progress
lines, and one checkpoint format (``torch.save`` of tensors and plain
containers, read back with ``weights_only=True``) from which a run resumes
exactly where it stopped: same weights, optimizer moments, random states and
history as a run that never stopped.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from vecgen.errors import VecgenError
from vecgen.io import atomic_write, read_checkpoint, torch_bytes

#: ``(batch, step) -> (loss, values)``: the scalar loss to minimise and the figures to record (floats).
LossFn = Callable[[Any, int], "tuple[Tensor, dict[str, float]]"]
#: ``(step, steps) -> lr factor`` of the 0-based ``step`` about to be taken.
Schedule = Callable[[int, int], float]
#: The random sources a data function draws from; their states go into checkpoints.
Rng = torch.Generator | random.Random

CHECKPOINT_FORMAT = "vecgen-fit-1"


def constant(step: int, steps: int) -> float:
    """No schedule: the lr factor is always 1."""
    return 1.0


def warmup_cosine(warmup: int, floor: float = 0.02) -> Schedule:
    """Linear warm-up over ``warmup`` steps, then cosine decay from 1 to ``floor``."""

    def factor(step: int, steps: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        t = (step - warmup) / max(1, steps - warmup)
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t))

    return factor


def cosine_epochs(per_epoch: int, epochs: int) -> Schedule:
    """Cosine annealing stepped once an epoch (``per_epoch`` steps each) from 1 to 0 over ``epochs``."""
    return lambda step, steps: 0.5 * (1 + math.cos(math.pi * (step // max(1, per_epoch)) / max(1, epochs)))


@dataclass
class FitResult:
    """What :func:`fit` did: the steps done, each step's ``values``, the seconds spent (across resumes)."""

    step: int
    history: list[dict[str, float]] = field(default_factory=list)
    elapsed: float = 0.0
    resumed_from: int | None = None


def _rng_states(rngs: dict[str, Rng]) -> dict[str, Any]:
    return {k: (r.get_state() if isinstance(r, torch.Generator) else r.getstate()) for k, r in rngs.items()}


def _set_rng_states(rngs: dict[str, Rng], states: dict[str, Any]) -> None:
    for k, r in rngs.items():
        if k not in states:
            raise VecgenError(f"training checkpoint has no state for the random source {k!r}")
        s = states[k]
        if isinstance(r, torch.Generator):
            r.set_state(s)
        else:  # random.Random: the state went through lists and tuples
            r.setstate((s[0], tuple(s[1]), s[2]))


def save_fit_checkpoint(
    path: str | Path,
    modules: dict[str, nn.Module],
    opt: torch.optim.Optimizer,
    step: int,
    history: list[dict[str, float]],
    elapsed: float,
    rngs: dict[str, Rng],
) -> None:
    """The one training checkpoint format (atomic write; loads with ``weights_only=True``)."""
    atomic_write(
        path,
        torch_bytes(
            {
                "format": CHECKPOINT_FORMAT,
                "modules": {k: m.state_dict() for k, m in modules.items()},
                "optimizer": opt.state_dict(),
                "step": int(step),
                "history": history,
                "elapsed": float(elapsed),
                "rng": _rng_states(rngs),
                "torch_rng": torch.get_rng_state(),
            }
        ),
        mkdir=True,
    )


def load_fit_checkpoint(path: str | Path) -> dict[str, Any]:
    """A checkpoint written by :func:`save_fit_checkpoint`; a one-line error for anything else."""
    state = read_checkpoint(path, "training checkpoint")
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise VecgenError(f"{path}: not a vecgen training checkpoint (no {CHECKPOINT_FORMAT!r} format)")
    return state


def _means(history: list[dict[str, float]], k: int) -> dict[str, float]:
    recent = history[-k:]
    keys = list(dict.fromkeys(key for h in recent for key in h))
    return {key: sum(h.get(key, 0.0) for h in recent) / len(recent) for key in keys}


def fit(
    modules: dict[str, nn.Module],
    loss_fn: LossFn,
    data: Callable[[int], Any],
    steps: int,
    *,
    lr: float,
    groups: Iterable[dict[str, Any]] | None = None,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.01,
    schedule: Schedule = constant,
    clip_grad: float | None = None,
    clip_params: list[Tensor] | None = None,
    after_step: Callable[[int], None] | None = None,
    rngs: dict[str, Rng] | None = None,
    checkpoint: str | Path | None = None,
    checkpoint_every: int = 0,
    resume: bool = False,
    log: Callable[[str], None] | None = None,
    log_every: int = 0,
    label: str = "step",
    elapsed: float = 0.0,
) -> FitResult:
    """Train ``modules`` for ``steps`` AdamW steps of ``loss_fn(data(step), step)``.

    ``groups``: AdamW parameter groups (each may carry ``weight_decay`` and an
    ``lr_mult``); default: every parameter of ``modules`` that requires grad.
    The lr of a step is ``lr * schedule(step, steps) * lr_mult``. ``clip_grad``:
    max gradient norm over ``clip_params`` (default: all optimized tensors).
    ``after_step(step)``: called after each step (e.g. clamp a temperature).
    ``rngs``: the generators ``data``/``loss_fn`` draw from (their states, and
    torch's global one, are checkpointed). ``checkpoint``: written every
    ``checkpoint_every`` steps (not after the last); ``resume``: continue from
    it when it exists. ``log``: receives a progress line every ``log_every``
    steps (the mean of each value since the last line, the lr, the seconds).
    ``elapsed``: seconds already spent (e.g. a pretraining phase), carried in
    checkpoints. Modules are left in train mode.
    """
    if steps < 0:
        raise VecgenError("steps must be >= 0")
    rngs = dict(rngs or {})
    if groups is None:
        groups = [{"params": [p for m in modules.values() for p in m.parameters() if p.requires_grad]}]
    opt = torch.optim.AdamW(
        [{"lr_mult": 1.0, **g} for g in groups], lr=lr, betas=betas, eps=eps, weight_decay=weight_decay
    )
    tensors = clip_params if clip_params is not None else [p for g in opt.param_groups for p in g["params"]]
    result = FitResult(step=0, elapsed=float(elapsed))
    if resume and checkpoint is not None and Path(checkpoint).exists():
        state = load_fit_checkpoint(checkpoint)
        try:
            for k, m in modules.items():
                m.load_state_dict(state["modules"][k])
            opt.load_state_dict(state["optimizer"])
        except (KeyError, ValueError, RuntimeError) as e:
            raise VecgenError(
                f"{checkpoint}: checkpoint does not match this model "
                f"({type(e).__name__}: {str(e).splitlines()[0][:100]})"
            ) from None
        _set_rng_states(rngs, state["rng"])
        torch.set_rng_state(state["torch_rng"])
        result.step = result.resumed_from = int(state["step"])
        result.history, result.elapsed = list(state["history"]), float(state["elapsed"])
        if log is not None:
            log(f"resumed from {checkpoint} at {label} {result.step}")
    for m in modules.values():
        m.train()
    t0 = time.time() - result.elapsed
    for step in range(result.step, steps):
        for g in opt.param_groups:
            g["lr"] = lr * schedule(step, steps) * g["lr_mult"]
        loss, values = loss_fn(data(step), step)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if clip_grad is not None:
            torch.nn.utils.clip_grad_norm_(tensors, clip_grad)
        opt.step()
        if after_step is not None:
            after_step(step)
        result.history.append({"loss": float(loss.detach()), **values})
        result.step, result.elapsed = step + 1, time.time() - t0
        if log is not None and log_every and ((step + 1) % log_every == 0 or step + 1 == steps):
            means = _means(result.history, min(len(result.history), log_every))
            log(
                f"{label} {step + 1}/{steps} "
                + " ".join(f"{k} {v:.4g}" for k, v in means.items())
                + f" lr {opt.param_groups[0]['lr']:.2e} {result.elapsed:.0f}s"
            )
        if checkpoint is not None and checkpoint_every and (step + 1) % checkpoint_every == 0 and step + 1 < steps:
            save_fit_checkpoint(checkpoint, modules, opt, step + 1, result.history, result.elapsed, rngs)
    return result
