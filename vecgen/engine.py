"""The one optimization loop every parameterization runs through.

Adam over the parameterization's groups (each with its own lr), a step
schedule for groups that ask for it, ``project_()`` after every step, a NaN
guard, callbacks, atomic checkpoints, resume, and Ctrl-C that keeps the result.
"""
from __future__ import annotations

import copy
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from vecgen.errors import VecgenError
from vecgen.objective import Objective
from vecgen.params.base import Parameterization

Callback = Callable[[int, Parameterization, dict[str, float]], None]


@dataclass
class Schedule:
    """Multiply the lr of groups with ``"schedule": True`` by ``factors`` at ``at`` fractions of the run.

    CLIPDraw's defaults: x0.4 at 50% and x0.1 at 75%.
    """

    at: tuple[float, ...] = (0.5, 0.75)
    factors: tuple[float, ...] = (0.4, 0.1)

    def factor(self, step: int, steps: int) -> float:
        f = 1.0
        for a, k in zip(self.at, self.factors):
            if step >= int(a * steps):
                f = k
        return f


@dataclass
class RunState:
    """What a run has produced so far (the engine fills it in)."""

    history: list[dict[str, float]] = field(default_factory=list)
    step: int = 0
    interrupted: bool = False
    nan_events: int = 0


def atomic_write(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temp file in the same folder and a rename."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; outputs should look like any other file
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_checkpoint(path: str | Path, param: Parameterization, opt: torch.optim.Optimizer, state: RunState,
                    meta: dict[str, Any]) -> None:
    import io

    buf = io.BytesIO()
    torch.save({"param": param.state_dict(), "optimizer": opt.state_dict(), "step": state.step,
                "history": state.history, "meta": meta}, buf)
    atomic_write(path, buf.getvalue())


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise VecgenError(f"checkpoint {path} not found") from None
    except Exception as e:
        raise VecgenError(f"checkpoint {path} is unreadable ({type(e).__name__})") from None


def _finite(param: Parameterization) -> bool:
    return all(p.grad is None or bool(torch.isfinite(p.grad).all()) for g in param.param_groups() for p in g["params"])


def optimize(
    param: Parameterization,
    objective: Objective,
    steps: int,
    *,
    seed: int = 0,
    schedule: Schedule | None = None,
    callbacks: list[Callback] | None = None,
    checkpoint: str | Path | None = None,
    checkpoint_every: int = 50,
    resume: dict[str, Any] | None = None,
    meta: dict[str, Any] | None = None,
    progress: bool = True,
) -> RunState:
    """Run ``steps`` optimizer steps of ``objective`` on ``param``'s render.

    Returns the run state; on Ctrl-C it returns early with ``interrupted=True``
    (the caller saves the current result). Reproducible for a fixed ``seed``.
    """
    if steps <= 0:
        raise VecgenError("steps must be > 0")
    schedule = schedule or Schedule()
    groups = param.param_groups()
    opt = torch.optim.Adam([{**g, "base_lr": g["lr"]} for g in groups])
    state = RunState()
    gen = torch.Generator().manual_seed(seed + 1)
    if resume is not None:
        param.load_state_dict(resume["param"])
        try:
            opt.load_state_dict(resume["optimizer"])
        except (ValueError, KeyError) as e:
            raise VecgenError(f"checkpoint does not match this run's settings ({e})") from None
        state.step = int(resume["step"])
        state.history = list(resume.get("history", []))
        gen.manual_seed(seed + 1 + state.step)  # new views after resume, still reproducible
    good = copy.deepcopy(param.state_dict())
    lr_scale = 1.0
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=steps, initial=state.step, unit="step", leave=False, dynamic_ncols=True)
    try:
        while state.step < steps:
            i = state.step
            for g in opt.param_groups:
                f = schedule.factor(i, steps) if g.get("schedule") else 1.0
                g["lr"] = g["base_lr"] * f * lr_scale
            opt.zero_grad(set_to_none=True)
            image = param.render()
            loss, values = objective(image, gen)
            if not math.isfinite(values["total"]):
                ok = False
            else:
                loss.backward()
                ok = _finite(param)
            if not ok:
                # NaN guard: restore the last good state, lower the lr, try again.
                state.nan_events += 1
                param.load_state_dict(good)
                lr_scale *= 0.5
                opt.state.clear()
                if state.nan_events > 20:
                    raise VecgenError("optimization keeps producing NaN/inf; lower the learning rates")
                continue
            opt.step()
            with torch.no_grad():
                param.project_()
            state.step += 1
            state.history.append(values)
            good = copy.deepcopy(param.state_dict())
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{values['total']:.4f}", refresh=False)
            for cb in callbacks or []:
                cb(state.step, param, values)
            if checkpoint and (state.step % checkpoint_every == 0 or state.step == steps):
                save_checkpoint(checkpoint, param, opt, state, meta or {})
    except KeyboardInterrupt:
        state.interrupted = True
        if checkpoint:
            save_checkpoint(checkpoint, param, opt, state, meta or {})
    finally:
        if bar is not None:
            bar.close()
    return state
