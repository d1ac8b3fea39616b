"""One studio run: the verb's function in a worker thread, with live frames, a stop switch and its Result.

A job calls ``verb.function(**options, callbacks=[...], quiet=True)`` (the
public Python API, as ``vecgen VERB`` does once it has parsed its flags) and
saves the :class:`~vecgen.api.Result` it returns with ``result.save_all`` (the
main file and its companions), so the files are those the job's command line
writes, byte for byte. The callback takes preview frames and stops a run by
raising :class:`vecgen.engine.StopRun` (the result is kept, as Ctrl-C keeps it).
The log is what the run reported through ``warn`` and its result; the process's
streams are never touched.
"""

from __future__ import annotations

import inspect
import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vecgen.api import Verb
from vecgen.errors import VecgenError
from vecgen.io import one_line

#: Seconds between preview frames (each costs one render of the parameterization).
FRAME_EVERY = 0.4
#: Longest side of a preview frame (the result files keep the full size).
PREVIEW_SIDE = 768
_ids = itertools.count(1)


@dataclass
class Frame:
    """What the run had reached when a preview was taken."""

    step: int
    values: dict[str, float]
    image: Any = None  # PIL image, or None when the parameterization cannot render one


@dataclass
class Job:
    """A run of ``verb`` with keyword ``options``, saving ``output`` (a file name) in ``folder``.

    ``shown``: the argv of the same run as ``vecgen VERB`` takes it (uploads by
    their own names). ``result``: the :class:`~vecgen.api.Result` once it ran;
    ``code``: 0, 130 (stopped: the result is saved) or None (an error: ``error``).
    ``started`` / ``finished``: ``time.time()`` stamps.
    """

    verb: Verb
    options: dict[str, Any]
    folder: Path
    output: str
    shown: list[str] = field(default_factory=list)
    id: str = field(default_factory=lambda: f"{next(_ids):04d}")
    stop: threading.Event = field(default_factory=threading.Event)
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    code: int | None = None
    error: str | None = None
    result: Any = None
    saved: list[Path] = field(default_factory=list)
    log: list[str] = field(default_factory=list)  # warnings, the files written, how it ended
    step: int = 0
    values: dict[str, float] = field(default_factory=dict)
    _frame: Frame | None = None
    _want: threading.Event = field(default_factory=threading.Event)
    _last_frame: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _thread: threading.Thread | None = None

    @property
    def name(self) -> str:
        return self.verb.name

    def check(self) -> None:
        """Every option checked as the verb checks it (its config) and its output files declared, before any
        work: a bad value raises a one-line :class:`VecgenError` naming the option's flag."""
        defaults = self.verb.config.defaults() if self.verb.config is not None else self.verb.defaults()
        if self.verb.config is not None:
            self.verb.config(**self.options)
        self.verb.files(str(self.folder / self.output), {**defaults, **self.options})

    def call_options(self) -> dict[str, Any]:
        """The options plus what the studio adds: ``callbacks`` (frames, Stop), ``quiet`` and ``warn``."""
        params = inspect.signature(self.verb.function).parameters
        extra: dict[str, Any] = {}
        if "callbacks" in params:
            extra["callbacks"] = [self._callback]
        if "quiet" in params:
            extra["quiet"] = True
        if "warn" in params:
            extra["warn"] = self._warn
        return {**self.options, **extra}

    # ------------------------------------------------------------------ running
    def start(self) -> "Job":
        self.check()  # before the thread: bad input is reported at once
        self.folder.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._run, name=f"vecgen-job-{self.id}", daemon=True)
        self.started = time.time()
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            result = self.verb.function(**self.call_options())
            self.result = result
            self.saved = result.save_all(self.folder / self.output)
            self.log.extend(p.name for p in self.saved)
            steps = len(getattr(result, "history", None) or [])
            self.step = self.step or steps
            if result.interrupted:
                self.log.append(f"stopped after {steps} steps; saved {self.saved[-1].name}")
            self.code = 130 if result.interrupted else 0
        except VecgenError as e:
            self.error = one_line(e)
        except Exception as e:  # a bug: one line here, the traceback in the server's log
            import traceback

            traceback.print_exc()
            self.error = f"internal error: {type(e).__name__}: {one_line(e)}"
        finally:
            if self.error:
                self.log.append(f"error: {self.error}")
            self.finished = time.time()

    def _warn(self, message: str) -> None:
        self.log.append(f"warning: {message}")

    def _callback(self, step: int, param, values: dict[str, float]) -> None:
        from vecgen.engine import StopRun

        self.step, self.values = step, dict(values)
        now = time.monotonic()
        if step == 1 or (self._want.is_set() and now - self._last_frame >= FRAME_EVERY):
            self._last_frame = now
            self._want.clear()
            frame = Frame(step, dict(values), _render(param))
            with self._lock:
                self._frame = frame
        if self.stop.is_set():
            raise StopRun()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wait(self, timeout: float | None = None) -> bool:
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.running

    def take_frame(self) -> Frame | None:
        """The newest frame not yet taken (None: none since the last call); asks the run for the next one."""
        with self._lock:
            frame, self._frame = self._frame, None
        self._want.set()
        return frame

    # ------------------------------------------------------------------ results
    @property
    def interrupted(self) -> bool:
        return self.code == 130

    def files(self) -> list[Path]:
        """Every file the run wrote, in name order (the main file and its companions)."""
        if not self.folder.is_dir():
            return []
        return sorted(p for p in self.folder.iterdir() if p.is_file() and not p.name.startswith("."))

    def picture(self) -> Any:
        """The result's picture, from the Result in memory (None: no run result, or not a PIL picture)."""
        image = getattr(self.result, "image", None)
        return image if hasattr(image, "save") and hasattr(image, "size") else None

    def metadata(self) -> dict[str, Any]:
        """Each output file's own metadata (settings JSON parsed), plus the job's record."""
        out: dict[str, Any] = {p.name: file_metadata(p) for p in self.files()}
        out["job"] = {
            "id": self.id,
            "verb": self.name,
            "exit_code": self.code,
            "interrupted": self.interrupted,
            "steps_done": self.step,
            "queued_s": round((self.started or self.created) - self.created, 3),
            "started": self.started,
            "finished": self.finished,
        }
        return out


def _render(param) -> Any:
    """A PIL picture of the parameterization now, without touching the run's random streams or autograd."""
    import torch

    from vecgen.io import tensor_to_pil

    try:
        devices = [torch.cuda.current_device()] if torch.cuda.is_available() and torch.cuda.is_initialized() else []
        with torch.random.fork_rng(devices=devices), torch.no_grad():
            image = param.render()
        if isinstance(image, torch.Tensor) and image.dim() == 4 and image.shape[1] in (1, 3, 4):
            picture = tensor_to_pil(image[:1, :3].detach().float().cpu())
            picture.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE))  # a 4096 px canvas is not re-encoded every frame
            return picture
    except Exception:  # a parameterization without a picture (or a failing one) just shows no preview
        return None
    return None


def file_metadata(path: Path) -> dict[str, Any]:
    """The text a vecgen file carries (SVG ``<metadata>`` entries, PNG text chunks), ``settings`` decoded."""
    meta: dict[str, Any] = {}
    try:
        if path.suffix.lower() == ".svg":
            from defusedxml import ElementTree as SafeET

            root = SafeET.parse(str(path)).getroot()
            for el in root.iter():
                if el.tag.endswith("entry") and "key" in el.attrib:
                    meta[el.attrib["key"]] = el.text or ""
        elif path.suffix.lower() == ".png":
            from PIL import Image

            with Image.open(path) as im:
                meta = {k: v for k, v in getattr(im, "text", {}).items()}
    except Exception as e:  # shown, not raised: the file is still there to download
        return {"unreadable": one_line(e)}
    if isinstance(meta.get("settings"), str):
        try:
            meta["settings"] = json.loads(meta["settings"])
        except ValueError:
            pass
    meta["bytes"] = path.stat().st_size
    return meta
