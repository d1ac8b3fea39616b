"""Memory checks of ``style`` and ``style-train``, made before the first step: a refusal costs nothing, an
out-of-memory kill halfway loses the run."""

from __future__ import annotations

from vecgen.api._run import Common
from vecgen.errors import VecgenError


def check_patch_memory(opts: Common, crops: int) -> None:
    """Refuse, before the first step, patch crops that cannot fit in free memory (the runner's estimate)."""
    from vecgen.losses.patch import CHUNK
    from vecgen.options import BYTES_PER_VIEW_PIXEL, available_memory

    chunk = min(crops, CHUNK)  # the crops one perceptor pass holds at a time
    need = chunk * BYTES_PER_VIEW_PIXEL * sum(p.input_size**2 for p, _ in opts.load_perceptors())
    free = available_memory(opts.device)
    if free is not None and need > free:
        raise VecgenError(
            f"{crops} patch crops need about {need / 2**30:.1f} GiB, but {free / 2**30:.1f} GiB is "
            f"free on {opts.device}; lower --crops"
        )


#: Measured memory of a StyleNet forward+backward, per pixel of its input (CPU, float32: ~960 B at 1024 px,
#: ~1.4 KB at 512 px with the fixed overheads).
STYLENET_BYTES_PER_PIXEL = 1200


def check_net_memory(opts: Common, pixels: int, what: str) -> None:
    """Refuse, before the network is built, a step over ``pixels`` input pixels that cannot fit in free memory."""
    from vecgen.options import available_memory

    need = pixels * STYLENET_BYTES_PER_PIXEL
    free = available_memory(opts.device)
    if free is not None and need > free:
        raise VecgenError(
            f"{what} need about {need / 2**30:.1f} GiB, but {free / 2**30:.1f} GiB is free on "
            f"{opts.device} (README, Limits)"
        )
