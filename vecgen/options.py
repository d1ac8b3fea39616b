"""User input: parsing and validating option values, and choosing the device.

Each check raises one-line :class:`~vecgen.errors.VecgenError` naming the
option, so the CLI, the gallery and the API refuse bad input the same way,
before any model loads.
"""

from __future__ import annotations

import math
import os
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vecgen.errors import VecgenError

if TYPE_CHECKING:
    import torch

MAX_SIDE = 4096
MAX_PIXELS = 4096 * 4096
#: Hard bounds on options that size a run (docs: Limits). Far above any useful value, low
#: enough that a typo cannot ask for terabytes or hang in setup.
LIMITS = {
    "steps": 1_000_000,
    "cutouts": 256,
    "strokes": 10_000,
    "segments": 64,
    "samples": 4096,
    "top": 256,
    "batch": 64,
    "grid_samples": 64,
    "every": 1_000_000,
    "colors": 256,
}
#: Measured activation memory of a perceptor's forward+backward, per view, per input pixel
#: (ViT-B-32 at 224 px: ~29 MB a view; mini-vit at 64 px: ~1.5 MB; benchmarks on CPU, float32).
BYTES_PER_VIEW_PIXEL = 640
COLOURS = {"white": (1.0, 1.0, 1.0), "black": (0.0, 0.0, 0.0), "gray": (0.5, 0.5, 0.5), "grey": (0.5, 0.5, 0.5)}
DEVICES = ("auto", "cpu", "cuda", "cuda:N", "mps")
# The names users choose from, defined once: the modules that implement them import
# these, and the CLI offers them as choices (without loading torch for --help).
SHAPES = ("strokes", "blobs", "mixed")  # vecgen.params.strokes
VIEWS = ("crops", "zoom", "lowres")  # vecgen.augment.VIEWS
SPACES = ("z", "w", "wplus")  # vecgen.params.latent
INITS = ("random", "mean", "fusedream")  # vecgen.params.latent
SQUASHES = ("sigmoid", "tanh")  # vecgen.params.raster_base
PALETTE_MODES = ("end", "throughout")  # vecgen.params.pixels
RASTERIZERS = ("native", "diffvg")  # vecgen.backends.raster
PAINT_PARAMS = ("fft", "dwt", "pixels")  # vecgen.api.paint
_WEIGHT = re.compile(r"(.+?):([-+]?(?:\d+\.?\d*|\.\d+))")


# ----------------------------------------------------------------------------- numbers
def as_int(label: str, value: Any, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """A whole number (``3``, ``"3"``, ``3.0``) in ``minimum .. maximum``; refuses bools, fractions and text."""
    if isinstance(value, bool):
        raise VecgenError(f"{label} must be a whole number, got {value!r}")
    try:
        number = int(value)
        if isinstance(value, float) and not value.is_integer():
            raise ValueError
    except (TypeError, ValueError, OverflowError):
        raise VecgenError(f"{label} must be a whole number, got {value!r}") from None
    if minimum is not None and number < minimum:
        raise VecgenError(f"{label} must be >= {minimum}, got {number}")
    if maximum is not None and number > maximum:
        raise VecgenError(f"{label} {number} is above the limit of {maximum:,} (docs: Limits)")
    return number


#: Fewest pixels a photo may have on each side, as given and as a verb works on it (style, sketch): less is
#: no picture to learn from (a 1x1 or 20000x1 photo gave NaN, or an internal error, after the models loaded).
MIN_PHOTO_SIDE = 8


def check_photo_size(what: str, size: tuple[int, int], work: tuple[int, int] | None = None) -> None:
    """Refuse a photo of ``size`` (W, H) with a side under :data:`MIN_PHOTO_SIDE` px, as given or at the
    ``work`` size (W, H) a verb scales it to."""
    w, h = size
    if min(w, h) < MIN_PHOTO_SIDE:
        raise VecgenError(f"{what} is {w}x{h} px: it needs at least {MIN_PHOTO_SIDE} px on each side")
    if work is not None and min(work) < MIN_PHOTO_SIDE:
        raise VecgenError(
            f"{what} is {w}x{h} px: at the working size {work[0]}x{work[1]} px a side is under {MIN_PHOTO_SIDE} px; "
            "crop it to a less elongated picture"
        )


def check_number(
    label: str, value: Any, *, positive: bool = False, nonnegative: bool = False, maximum: float | None = None
) -> float:
    """A finite real number (optionally > 0 or >= 0, and <= ``maximum``)."""
    if isinstance(value, bool):
        raise VecgenError(f"{label} must be a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise VecgenError(f"{label} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise VecgenError(f"{label} must be finite, got {value!r}")
    if positive and number <= 0:
        raise VecgenError(f"{label} must be positive, got {value!r}")
    if nonnegative and number < 0:
        raise VecgenError(f"{label} must be >= 0, got {value!r}")
    if maximum is not None and number > maximum:
        raise VecgenError(f"{label} must be <= {maximum:g}, got {value!r}")
    return number


def check_limit(name: str, value: int) -> int:
    """Refuse ``value`` above ``LIMITS[name]`` in one line naming the limit."""
    top = LIMITS[name]
    if value > top:
        raise VecgenError(f"--{name.replace('_', '-')} {value} is above the limit of {top:,} (docs: Limits)")
    return value


def check_steps(steps: Any) -> int:
    if steps is None or as_int("--steps", steps) <= 0:
        raise VecgenError("--steps must be > 0")
    return check_limit("steps", int(steps))


def check_cutouts(cutouts: Any) -> int:
    if cutouts is None or as_int("--cutouts", cutouts) < 0:
        raise VecgenError("--cutouts must be >= 0")
    return check_limit("cutouts", int(cutouts))


def available_memory(device: "torch.device | None" = None) -> int | None:
    """Bytes free for a run on ``device`` (CUDA: the GPU's free memory; else RAM, and no more than the
    process's address-space limit leaves, as ``ulimit -v`` sets it), or None if unknown."""
    if device is not None and getattr(device, "type", "") == "cuda":
        import torch

        return int(torch.cuda.mem_get_info(device)[0])
    ram = _ram_available()
    room = _address_space_left()
    return room if ram is None else ram if room is None else min(ram, room)


def _address_space_left() -> int | None:
    """What ``RLIMIT_AS`` leaves above the process's present size (None: no limit, or not known)."""
    try:
        import resource

        limit = resource.getrlimit(resource.RLIMIT_AS)[0]
        if limit == resource.RLIM_INFINITY:
            return None
        with open("/proc/self/status", encoding="ascii") as f:
            size = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:"))
        return max(0, limit - size)
    except (ImportError, OSError, ValueError, StopIteration):
        return None


def _ram_available() -> int | None:
    """RAM free for new work: Linux's MemAvailable, else the free pages."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


MAX_SEED = 2**63 - 1  # torch generators take 64-bit seeds


def check_seed(seed: Any) -> int:
    """A whole number in ``0 .. 2**63 - 1``."""
    value = as_int("--seed", seed)
    if not 0 <= value <= MAX_SEED:
        raise VecgenError(f"--seed must be between 0 and {MAX_SEED}, got {value}")
    return value


def make_generator(seed: Any) -> "torch.Generator":
    """A CPU generator seeded by ``seed`` (draws are then moved to the device,
    so the same seed gives the same start on every device)."""
    import numpy as np
    import torch

    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise VecgenError(f"seed must be an integer, got {seed!r}")
    generator = torch.Generator(device="cpu")
    generator.manual_seed(int(seed) % (2**63))
    return generator


# ----------------------------------------------------------------------------- sizes, colours, widths
def check_size(size: Any) -> tuple[int, int]:
    """Validate ``(W, H)`` and return it as a tuple of two positive ints."""
    import numpy as np

    try:
        width, height = size
    except (TypeError, ValueError):
        raise VecgenError(f"size must be (width, height), got {size!r}") from None
    out = []
    for label, value in (("width", width), ("height", height)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            else:
                raise VecgenError(f"image {label} must be an integer, got {value!r}")
        if value <= 0:
            raise VecgenError(f"image {label} must be positive, got {value}")
        out.append(int(value))
    return out[0], out[1]


def parse_size(size: Any) -> tuple[int, int]:
    """``224``, ``"224"``, ``"320x192"``, ``(320, 192)`` -> ``(W, H)``; refuses <= 0 or > MAX_SIDE."""
    if isinstance(size, (tuple, list)) and len(size) == 2:
        w, h = size
    elif isinstance(size, int):
        w = h = size
    else:
        m = re.fullmatch(r"\s*(-?\d+)\s*(?:[xX]\s*(-?\d+))?\s*", str(size))
        if not m:
            raise VecgenError(f"bad size {size!r}: use W or WxH, e.g. 224 or 320x192")
        w = int(m.group(1))
        h = int(m.group(2)) if m.group(2) else w
    w, h = int(w), int(h)
    if w <= 0 or h <= 0:
        raise VecgenError(f"size must be positive, got {w}x{h}")
    if w > MAX_SIDE or h > MAX_SIDE or w * h > MAX_PIXELS:
        raise VecgenError(f"size {w}x{h} is above the limit of {MAX_SIDE} px per side")
    return w, h


def parse_grid_spec(grid: Any) -> tuple[int, int | None]:
    """``"32x24"``, ``[32, 24]`` or ``32`` -> ``(columns, rows)`` of a pixel-art grid; rows None for a lone
    ``COLS`` (the canvas decides: :func:`vecgen.params.pixels.parse_grid`). Refuses <= 0 or > MAX_SIDE cells."""
    import numbers

    if isinstance(grid, (tuple, list)) and len(grid) == 2:
        cells: list[Any] = list(grid)
    elif isinstance(grid, numbers.Integral) and not isinstance(grid, bool):
        cells = [grid, None]
    elif isinstance(grid, str) and (m := re.fullmatch(r"\s*(-?\d+)\s*(?:[xX]\s*(-?\d+))?\s*", grid)):
        cells = [int(m.group(1)), int(m.group(2)) if m.group(2) else None]
    else:
        raise VecgenError(f"bad grid {grid!r}: use COLSxROWS (e.g. 32x32) or COLS")
    for label, value in zip(("columns", "rows"), cells):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise VecgenError(f"grid {label} must be an integer, got {value!r}")
        if int(value) <= 0:
            raise VecgenError(f"grid {label} must be positive, got {value}")
        if int(value) > MAX_SIDE:
            raise VecgenError(f"grid {label} {value} is above the limit of {MAX_SIDE} (README, Limits)")
    return int(cells[0]), None if cells[1] is None else int(cells[1])


#: Widest stroke ``--width`` may ask for, in pixels (an eighth of the largest picture side).
MAX_STROKE_WIDTH = 512.0


def parse_width(width: Any) -> tuple[float, float]:
    """``"1,8"``, ``(1, 8)`` or ``4`` -> ``(MIN, MAX)`` stroke widths with 0 <= MIN <= MAX <= 512."""
    if isinstance(width, (tuple, list)):
        vals = [float(x) for x in width]
    else:
        try:
            vals = [float(x) for x in str(width).split(",")]
        except ValueError:
            raise VecgenError(f"bad --width {width!r}: use MIN,MAX e.g. 1,8") from None
    if len(vals) == 1:
        vals = [vals[0], vals[0]]
    if len(vals) != 2 or vals[0] < 0 or vals[1] < vals[0]:
        raise VecgenError(f"bad --width {width!r}: use MIN,MAX with 0 <= MIN <= MAX")
    if not all(math.isfinite(v) for v in vals) or vals[1] > MAX_STROKE_WIDTH:
        raise VecgenError(f"bad --width {width!r}: stroke widths are finite, at most {MAX_STROKE_WIDTH:g} px")
    return vals[0], vals[1]


def parse_colour(value: Any) -> tuple[float, float, float]:
    """``white``, ``black``, ``gray``, ``#rrggbb`` or an RGB triple in ``[0, 1]``."""
    if isinstance(value, (tuple, list)) and len(value) == 3:
        return tuple(float(v) for v in value)  # type: ignore[return-value]
    v = str(value).strip().lower()
    if v in COLOURS:
        return COLOURS[v]
    if re.fullmatch(r"#?[0-9a-f]{6}", v):
        v = v.lstrip("#")
        return tuple(int(v[i : i + 2], 16) / 255 for i in (0, 2, 4))  # type: ignore[return-value]
    raise VecgenError(f"bad colour {value!r}: use white, black, gray or #rrggbb")


def parse_palette(text: Any) -> list[tuple[float, float, float]]:
    """``"#000000,#ff8800"`` -> RGB triples in ``[0, 1]`` (exact multiples of 1/255), at most ``LIMITS["colors"]``."""
    items = [t.strip() for t in str(text).split(",") if t.strip()]
    if not items:
        raise VecgenError('--palette needs colours, e.g. "#000000,#ff0000"')
    if len(items) > LIMITS["colors"]:
        raise VecgenError(f"--palette lists {len(items)} colours, above the limit of {LIMITS['colors']}")
    out = []
    for item in items:
        if not re.fullmatch(r"#?[0-9a-fA-F]{6}", item):
            raise VecgenError(f"bad --palette colour {item!r}: use #rrggbb, e.g. #ff0000")
        out.append(tuple(int(item.lstrip("#")[i : i + 2], 16) / 255.0 for i in (0, 2, 4)))
    return out  # type: ignore[return-value]


def split_weight(spec: str) -> tuple[str, float]:
    """``"name:0.5"`` -> ``("name", 0.5)``; no weight -> 1.0."""
    m = _WEIGHT.fullmatch(spec)
    return (m.group(1), float(m.group(2))) if m else (spec, 1.0)


def parse_clip(spec: str) -> list[tuple[str, float]]:
    """``"ViT-B-32:1,RN50@openai:0.5"`` -> ``[("ViT-B-32", 1.0), ("RN50@openai", 0.5)]``.

    A weight must be a non-zero number (a zero-weight model would only cost time);
    a ``:`` in the model name itself (before any ``@``) is a bad weight.
    """
    out = []
    for part in str(spec).split(","):
        part = part.strip()
        if not part:
            continue
        name, weight = split_weight(part)
        model = name.partition("@")[0]
        if ":" in model:
            bad = model.rpartition(":")[2]
            raise VecgenError(
                f"bad weight {bad!r} in --clip {part!r}: use MODEL:WEIGHT, e.g. {model.rpartition(':')[0]}:0.5"
            )
        if weight == 0:
            raise VecgenError(f"--clip {part!r}: weight 0 would make that model do nothing; leave it out")
        out.append((name, weight))
    if not out:
        raise VecgenError("--clip needs at least one model, e.g. --clip ViT-B-32 or --clip auto")
    return out


# ----------------------------------------------------------------------------- device, files
def resolve_device(device: "str | torch.device | None") -> "torch.device":
    """``auto`` -> CUDA, else MPS, else CPU; a named device must exist."""
    import torch

    d = str(device or "auto").lower()
    if d == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(d)
    except RuntimeError:
        raise VecgenError(f"unknown device {device!r} (use auto, cpu, cuda, cuda:N or mps)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise VecgenError("--device cuda requested but no CUDA GPU is available")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise VecgenError("--device mps requested but MPS is not available")
    return dev


def check_writable(path: str | Path | None) -> None:
    """Fail before a long run if ``path`` cannot be written."""
    if path is None:
        return
    p = Path(path)
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise VecgenError(f"cannot write {p}: folder {parent} does not exist")
    if p.is_dir():
        raise VecgenError(f"cannot write {p}: it is a folder")
    if not os.access(parent, os.W_OK) or (p.exists() and not os.access(p, os.W_OK)):
        raise VecgenError(f"cannot write {p}: permission denied")
    try:  # a real probe: read-only mounts and odd filesystems pass os.access for root
        tempfile.TemporaryFile(dir=parent).close()
    except OSError as e:
        raise VecgenError(f"cannot write {p}: {e.strerror or e}") from None


def check_folder(path: str | Path, *, create: bool = True) -> Path:
    """A folder to write into: created if missing; one line if it cannot be.

    ``create=False``: only checked, so that a run refused later leaves nothing behind (the
    nearest folder that exists, at or above it, must take a new file); the run makes it.
    """
    p = Path(path)
    if not create:
        probe = p
        while not os.path.lexists(probe) and probe.parent != probe:
            probe = probe.parent
        if not probe.is_dir():
            raise VecgenError(f"cannot create folder {p}: {probe} is not a folder")
        try:  # a real probe, as check_writable's
            tempfile.TemporaryFile(dir=probe).close()
        except OSError as e:
            raise VecgenError(f"cannot write into folder {p}: {e.strerror or e}") from None
        return p
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise VecgenError(f"cannot create folder {p}: {e.strerror or e}") from None
    if not os.access(p, os.W_OK):
        raise VecgenError(f"cannot write into folder {p}: permission denied")
    return p


def check_suffix(path: str | Path | None, suffixes: tuple[str, ...], what: str) -> None:
    """Refuse an output whose suffix is not one of ``suffixes`` (``what`` says what it is for)."""
    if path is not None and Path(path).suffix.lower() not in suffixes:
        raise VecgenError(f"{path}: {what} is written as {' or '.join(suffixes)}")
