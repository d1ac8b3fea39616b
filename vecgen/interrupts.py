"""Ctrl-C that never lands inside an import.

A ``KeyboardInterrupt`` raised while torch (or open_clip, torchvision ...)
initialises its C++ side is not safe: measured here, it can abort the process
(``pybind11::error_already_set``), be swallowed so the run goes on to the end,
leave a half-imported package that later fails with ``RecursionError``, or kill
the interpreter at exit (status -2). So the CLI installs :func:`install`'s
handler: outside imports it raises ``KeyboardInterrupt`` at once, as Python's
own does; inside one it holds the interrupt and raises it at the first line
after the outermost import returns (a second of delay at most on this machine).
"""

from __future__ import annotations

import _thread
import signal
import sys
import threading
import time
from types import FrameType
from typing import Any, Callable

__all__ = ["install", "in_import"]

_IMPORT_FILES = ("<frozen importlib._bootstrap>", "<frozen importlib._bootstrap_external>")
_POLL_S = 0.02


def in_import(frame: FrameType | None) -> bool:
    """True when ``frame`` or any frame that called it belongs to the import machinery."""
    while frame is not None:
        if frame.f_code.co_filename in _IMPORT_FILES:
            return True
        frame = frame.f_back
    return False


class _Handler:
    def __init__(self) -> None:
        self._waiting = threading.Event()

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if not in_import(frame):
            raise KeyboardInterrupt
        if not self._waiting.is_set():
            self._waiting.set()
            threading.Thread(target=self._deliver_after_import, name="vecgen-ctrl-c", daemon=True).start()

    def _deliver_after_import(self) -> None:
        # Handlers run in the main thread only; interrupt_main calls this handler again there, once
        # that thread's stack holds no import (if it has entered another by then, it waits again).
        main_id = threading.main_thread().ident
        while main_id is not None and in_import(sys._current_frames().get(main_id)):
            time.sleep(_POLL_S)
        self._waiting.clear()
        _thread.interrupt_main(signal.SIGINT)


def install() -> Callable[[int, FrameType | None], Any] | int | None:
    """Replace Python's default Ctrl-C handler by the import-safe one; return what to restore.

    Returns None (and changes nothing) off the main thread, when it is already
    installed, or when someone set a handler of their own. Otherwise restore
    with ``signal.signal(signal.SIGINT, returned)``.
    """
    if threading.current_thread() is not threading.main_thread():
        return None
    previous = signal.getsignal(signal.SIGINT)
    if previous is not signal.default_int_handler:
        return None
    signal.signal(signal.SIGINT, _Handler())
    return previous
