"""One studio run: the verb's own CLI code in a worker thread, with live frames and a stop switch.

A job parses its argv with the verb's real subparser and calls the function the
CLI dispatches to (``args.func``), so the files it writes are the files
``vecgen VERB ARGV`` writes, byte for byte. The only additions travel in the
parsed arguments the CLI hands to the API: ``quiet`` and ``callbacks`` (the
public per-step hook), through which the job takes preview frames and stops a
run (:class:`vecgen.engine.StopRun`, which keeps the result, as Ctrl-C does).
"""
from __future__ import annotations

import argparse
import io
import itertools
import json
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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


class _Tee(io.TextIOBase):
    """Writes go to the real stream and, line by line, to a list (the job's log)."""

    def __init__(self, stream, lines: list[str]) -> None:
        self.stream, self.lines, self._part = stream, lines, ""

    def write(self, text: str) -> int:
        self.stream.write(text)
        self._part += text
        *done, self._part = self._part.split("\n")
        self.lines.extend(d for d in done if d.strip())
        return len(text)

    def flush(self) -> None:
        self.stream.flush()


@dataclass
class Job:
    """A run of ``vecgen VERB ARGV`` writing into ``folder``.

    ``argv``: what the job parses (upload paths as stored on the server);
    ``shown``: the same argv as the user's command line shows it (uploads by
    their own names). ``started`` / ``finished``: ``time.time()`` stamps.
    """

    verb: str
    parser: argparse.ArgumentParser
    argv: list[str]
    shown: list[str]
    folder: Path
    takes_callbacks: bool = True
    id: str = field(default_factory=lambda: f"{next(_ids):04d}")
    stop: threading.Event = field(default_factory=threading.Event)
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    code: int | None = None
    error: str | None = None
    log: list[str] = field(default_factory=list)  # what the verb printed (paths, warnings, results)
    step: int = 0
    values: dict[str, float] = field(default_factory=dict)
    _frame: Frame | None = None
    _want: threading.Event = field(default_factory=threading.Event)
    _last_frame: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _thread: threading.Thread | None = None

    def parse(self) -> argparse.Namespace:
        """The argv parsed as ``vecgen VERB`` parses it (a bad value: one-line :class:`VecgenError`)."""
        args = self.parser.parse_args(self.argv)
        args.quiet = True
        if self.takes_callbacks:
            args.callbacks = [self._callback]
        return args

    # ------------------------------------------------------------------ running
    def start(self) -> "Job":
        args = self.parse()  # before the thread: bad input is reported at once
        self.folder.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._run, args=(args,), name=f"vecgen-job-{self.id}", daemon=True)
        self.started = time.time()
        self._thread.start()
        return self

    def _run(self, args: argparse.Namespace) -> None:
        # only one job runs at a time (the studio's queue), so swapping the process's streams is safe
        old, old_out = sys.stderr, sys.stdout
        tees = _Tee(old, self.log), _Tee(old_out, self.log)
        sys.stderr, sys.stdout = tees
        try:
            self.code = int(args.func(args) or 0)
        except VecgenError as e:
            self.error = str(e)
        except Exception as e:  # a bug: one line here, the traceback in the server's log
            import traceback

            traceback.print_exc(file=old)
            self.error = f"internal error: {type(e).__name__}: {one_line(e)}"
        finally:
            sys.stderr, sys.stdout = old, old_out
            self.log.extend(t._part for t in tees if t._part.strip())
            self.finished = time.time()

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
        """Every file the run wrote, in name order (the ``-o`` file and its twins: grid, SVG...)."""
        if not self.folder.is_dir():
            return []
        return sorted(p for p in self.folder.iterdir() if p.is_file() and not p.name.startswith("."))

    def metadata(self) -> dict[str, Any]:
        """Each output file's own metadata (settings JSON parsed), plus the job's record."""
        out: dict[str, Any] = {p.name: file_metadata(p) for p in self.files()}
        out["job"] = {"id": self.id, "verb": self.verb, "exit_code": self.code, "interrupted": self.interrupted,
                      "steps_done": self.step, "queued_s": round((self.started or self.created) - self.created, 3),
                      "started": self.started, "finished": self.finished}
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
