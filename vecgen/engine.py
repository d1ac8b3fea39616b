"""The one optimization loop every parameterization runs through.

Adam over the parameterization's groups (each with its own lr), lr schedules
(callables of the step) for groups that ask for one, a :class:`StepContext` for
every step (handed to ``render`` and the objective), ``project_()`` then the
optional ``end_step(ctx)`` hook after every step, a NaN guard over the
optimizer's tensors, per-step callbacks, atomic checkpoints, resume, and Ctrl-C
(or :class:`StopRun` from a callback) that keeps the result. The run draws
from its own seeded generators: the caller's global RNG state is left as it was.
"""

from __future__ import annotations

import contextlib
import json
import math
import signal
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import torch

from vecgen.errors import VecgenError
from vecgen.io import atomic_write, read_checkpoint, torch_bytes
from vecgen.objective import Objective
from vecgen.params.base import Parameterization, StepAware, StepContext

#: Called after every step with ``(step, param, values)``: the steps done so far,
#: the parameterization, and each term's value (plus ``"total"``). Raise
#: :class:`StopRun` to end the run early and keep the result (as Ctrl-C does).
Callback = Callable[[int, Parameterization, dict[str, float]], None]

#: ``(step, steps) -> lr factor`` for the step about to be taken (0-based ``step``).
LrSchedule = Callable[[int, int], float]


class StopRun(Exception):
    """Raised by a callback to end a run early; the run returns with ``interrupted=True``."""


@dataclass
class Schedule:
    """Step schedule: the lr factor becomes ``factors[k]`` from ``at[k]`` of the run on.

    The engine applies the run's schedule to groups with ``"schedule": True``; a
    group may instead carry its own callable ``"schedule": f(step, steps)``.
    CLIPDraw's defaults: x0.4 at 50% and x0.1 at 75%.
    """

    at: tuple[float, ...] = (0.5, 0.75)
    factors: tuple[float, ...] = (0.4, 0.1)

    def __call__(self, step: int, steps: int) -> float:
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
    lr_scale: float = 1.0  # the NaN guard halves it


def _rng_state(views: torch.Generator, devices: list[int]) -> dict[str, Any]:
    """Every random state the loop draws from: the views' generator and torch's global CPU/CUDA ones."""
    return {
        "views": views.get_state(),
        "torch": torch.get_rng_state(),
        "cuda": [torch.cuda.get_rng_state(d) for d in devices],
    }


def save_checkpoint(
    path: str | Path,
    param: Parameterization,
    opt: torch.optim.Optimizer,
    state: RunState,
    meta: dict[str, Any],
    rng: dict[str, Any] | None = None,
    steps: int | None = None,
) -> None:
    """Everything a resumed run needs to continue exactly as an uninterrupted one would.

    ``rng``: the random states (:func:`_rng_state`); checkpoints without them
    (older vecgen) still resume, with fresh views. ``steps``: the run's length (its lr
    schedule depends on it; see :func:`check_schedule`).
    """
    data = {  # these keys mark the file as ours (io.CHECKPOINT_KEYS): --checkpoint replaces nothing else
        "param": param.state_dict(),
        "optimizer": opt.state_dict(),
        "step": state.step,
        "history": state.history,
        "meta": meta,
    }
    if steps is not None:
        data["steps"] = int(steps)
    if rng is not None:
        data.update(rng=rng, lr_scale=state.lr_scale, nan_events=state.nan_events)
    atomic_write(path, torch_bytes(data))


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """A checkpoint written by :func:`save_checkpoint` (tensors and plain containers only)."""
    state = read_checkpoint(path, "checkpoint")
    if not isinstance(state, dict) or "param" not in state or "step" not in state:
        raise VecgenError(f"{path} is not a vecgen checkpoint (no parameterization state)")
    return state


@contextlib.contextmanager
def _holding_sigint() -> Iterator[None]:
    """Hold Ctrl-C (SIGINT) while the block runs; one that came meanwhile is handed to the previous
    handler (which raises ``KeyboardInterrupt``) right after it.

    Swaps the Python-level handler, which always runs in the main thread (a signal mask would
    not do: the kernel may give the signal to another thread, e.g. one of torch's). Off the main
    thread, or under a handler that is not a Python callable, the block runs unguarded.
    """
    previous = signal.getsignal(signal.SIGINT) if threading.current_thread() is threading.main_thread() else None
    if not callable(previous):
        yield
        return
    caught: list[Any] = []
    signal.signal(signal.SIGINT, lambda signum, frame: caught.append(frame))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        previous(signal.SIGINT, caught[0])


def _saved_steps(resume: dict[str, Any]) -> int | None:
    """The length of the run a checkpoint came from (older checkpoints: from their recorded settings)."""
    if resume.get("steps") is not None:
        return int(resume["steps"])
    try:
        value = json.loads(resume.get("meta", {}).get("settings", "{}")).get("steps")
        return int(value) if value is not None else None
    except (TypeError, ValueError, AttributeError):
        return None


def check_schedule(rules: list, schedule: LrSchedule, done: int, saved: int | None, steps: int) -> None:
    """Refuse (one line) to resume ``done`` steps of a ``saved``-step run as a ``steps``-step one when a
    group's schedule is marked ``exact_resume`` and the steps already taken had other lr factors
    under the new length (a resumed run would then differ from a plain run of ``steps``).

    Style's schedule (x0.5 from half the run) is marked: its checkpoints may change ``--steps``
    while they are before both halves, else only resume with their own ``--steps``. Unmarked
    schedules (draw's drops at 50% and 75%, generate's ramp) let ``--steps`` grow as the README
    says: the remaining steps follow the new length's schedule.
    """
    if saved is None or saved == steps:
        return
    for rule in rules:
        f = rule if callable(rule) else schedule
        if not rule or not getattr(f, "exact_resume", False):
            continue
        moved = next((i for i in range(done) if f(i, saved) != f(i, steps)), None)
        if moved is not None:
            raise VecgenError(
                f"this checkpoint is {done} steps into a {saved}-step run, and its learning rate "
                f"already followed that length (from step {moved}); resume it with --steps {saved}, "
                f"since a {steps}-step run would differ from a plain one"
            )


def _tensors(opt: torch.optim.Optimizer) -> list[torch.Tensor]:
    """The tensors the optimizer steps (the NaN guard's whole concern)."""
    return [p for g in opt.param_groups for p in g["params"]]


def _finite(tensors: list[torch.Tensor]) -> bool:
    return all(p.grad is None or bool(torch.isfinite(p.grad).all()) for p in tensors)


@torch.no_grad()
def _snapshot(tensors: list[torch.Tensor], into: list[torch.Tensor] | None = None) -> list[torch.Tensor]:
    """Copies of ``tensors`` on their own devices (reusing ``into``'s buffers when given)."""
    if into is None:
        return [t.detach().clone() for t in tensors]
    for buf, t in zip(into, tensors):
        buf.copy_(t)
    return into


@torch.no_grad()
def _restore(tensors: list[torch.Tensor], saved: list[torch.Tensor]) -> None:
    for t, s in zip(tensors, saved):
        t.copy_(s)


def optimize(
    param: Parameterization,
    objective: Objective,
    steps: int,
    *,
    seed: int = 0,
    schedule: LrSchedule | None = None,
    callbacks: list[Callback] | None = None,
    checkpoint: str | Path | None = None,
    checkpoint_every: int = 50,
    resume: dict[str, Any] | None = None,
    meta: dict[str, Any] | None = None,
    progress: bool = True,
) -> RunState:
    """Run ``steps`` optimizer steps of ``objective`` on ``param``'s render.

    Returns the run state; on Ctrl-C (or :class:`StopRun` from a callback) it
    returns early with ``interrupted=True`` (the caller saves the current
    result). Reproducible for a fixed ``seed``: the views come from a generator
    seeded by it, and the global RNG (which some backends draw noise from) is
    seeded inside a fork, so the caller's RNG state is untouched.
    """
    if steps <= 0:
        raise VecgenError("steps must be > 0")
    devices = sorted(
        {p.device.index or 0 for g in param.param_groups() for p in g["params"] if p.device.type == "cuda"}
    )
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        return _loop(
            param,
            objective,
            steps,
            seed=seed,
            schedule=schedule,
            callbacks=callbacks,
            checkpoint=checkpoint,
            checkpoint_every=checkpoint_every,
            resume=resume,
            meta=meta,
            progress=progress,
            devices=devices,
        )


def _loop(
    param: Parameterization,
    objective: Objective,
    steps: int,
    *,
    seed: int,
    schedule: LrSchedule | None,
    callbacks: list[Callback] | None,
    checkpoint: str | Path | None,
    checkpoint_every: int,
    resume: dict[str, Any] | None,
    meta: dict[str, Any] | None,
    progress: bool,
    devices: list[int],
) -> RunState:
    schedule = schedule or Schedule()
    groups = param.param_groups()
    # A group's own schedule (a callable) stays out of the optimizer: its state_dict goes into
    # checkpoints, which must load with weights_only=True.
    rules = [g.get("schedule") for g in groups]
    opt = torch.optim.Adam(
        [{**{k: v for k, v in g.items() if not (k == "schedule" and callable(v))}, "base_lr": g["lr"]} for g in groups]
    )
    state = RunState()
    gen = torch.Generator().manual_seed(seed + 1)
    if resume is not None:
        param.load_state_dict(resume["param"])
        try:
            opt.load_state_dict(resume["optimizer"])
        except (ValueError, KeyError) as e:
            raise VecgenError(f"checkpoint does not match this run's settings ({e})") from None
        state.step = int(resume["step"])
        check_schedule(rules, schedule, state.step, _saved_steps(resume), steps)
        state.history = list(resume.get("history", []))
        rng = resume.get("rng")
        if rng is not None:  # continue the very same random streams
            gen.set_state(rng["views"])
            torch.set_rng_state(rng["torch"])
            for d, s in zip(devices, rng.get("cuda", [])):
                torch.cuda.set_rng_state(s, d)
            state.lr_scale = float(resume.get("lr_scale", 1.0))
            state.nan_events = int(resume.get("nan_events", 0))
        else:  # an older checkpoint: new views after resume, still reproducible
            gen.manual_seed(seed + 1 + state.step)

    def save(path: str | Path, rng: dict[str, Any] | None = None) -> None:
        save_checkpoint(path, param, opt, state, meta or {}, rng or _rng_state(gen, devices), steps)

    tensors = _tensors(opt)
    good = _snapshot(tensors)  # the last good values (NaN guard, Ctrl-C inside a step)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=steps, initial=state.step, unit="step", leave=False, dynamic_ncols=True)
    # A Ctrl-C can land anywhere in a step. Before the optimizer moves anything, the step is
    # simply not taken: the checkpoint keeps the random states of the step's start (the views
    # and noise it drew are drawn again on resume). From ``opt.step()`` to the step's
    # bookkeeping, Ctrl-C is held (:func:`_holding_sigint`), so parameters, optimizer, the
    # parameterization's ``end_step`` and ``state.step`` always move together.
    start_rng: dict[str, Any] | None = None
    try:
        while state.step < steps:
            i = state.step
            start_rng = _rng_state(gen, devices)
            for g, rule in zip(opt.param_groups, rules):
                f = (rule if callable(rule) else schedule)(i, steps) if rule else 1.0
                g["lr"] = g["base_lr"] * f * state.lr_scale
            opt.zero_grad(set_to_none=True)
            ctx = StepContext(i, steps, gen)
            image = param.render(ctx)
            loss, values = objective(image, ctx)
            if not math.isfinite(values["total"]):
                ok = False
            else:
                loss.backward()
                ok = _finite(tensors)
            if not ok:
                # NaN guard: restore the last good values, lower the lr, try again.
                with _holding_sigint():
                    state.nan_events += 1
                    _restore(tensors, good)
                    state.lr_scale *= 0.5
                    opt.state.clear()
                if state.nan_events > 20:
                    raise VecgenError("optimization keeps producing NaN/inf; lower the learning rates")
                continue
            with _holding_sigint():
                opt.step()
                with torch.no_grad():
                    param.project_()
                    if isinstance(param, StepAware):
                        param.end_step(ctx)
                state.step += 1
                state.history.append(values)
                good = _snapshot(tensors, good)
                start_rng = None  # the step is done: the live random states are the next step's
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{values['total']:.4f}", refresh=False)
            for cb in callbacks or []:
                cb(state.step, param, values)
            if checkpoint and (state.step % checkpoint_every == 0 or state.step == steps):
                save(checkpoint)
    except (KeyboardInterrupt, StopRun):
        state.interrupted = True
        if start_rng is not None:  # stopped inside a step that was not taken: drop what it began
            _restore(tensors, good)
            opt.zero_grad(set_to_none=True)
        if checkpoint:
            save(checkpoint, start_rng)
    finally:
        if bar is not None:
            bar.close()
    return state
