"""Helpers shared by the benchmark scripts (timing, peak memory, locating ../shared)."""

from __future__ import annotations

import resource
import time
from pathlib import Path
from typing import Callable

SHARED = Path(__file__).resolve().parents[2] / "shared"


def time_ms(fn: Callable[[], object], repeat: int = 5, warmup: int = 2) -> float:
    """Median wall time of ``fn`` in milliseconds."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    return times[len(times) // 2]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def clip_fwd_bwd(perceptor, cutouts: int, size: int = 224) -> Callable[[], None]:
    """A closure running the perceptor forward+backward on ``cutouts`` random views."""
    import torch

    text = perceptor.encode_text(["a watercolor lighthouse at dusk"])

    def run() -> None:
        x = torch.rand(cutouts, 3, size, size, requires_grad=True)
        loss = (1 - perceptor.encode_image(x) @ text.t()).mean()
        loss.backward()

    return run
