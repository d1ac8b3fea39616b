"""``paint``: raster parameterizations (FFT, wavelets, pixel art) optimized to a prompt.

>>> import vecgen
>>> res = vecgen.paint("a misty forest", param="dwt", steps=100, quiet=True)
>>> res.save("forest.png")
>>> art = vecgen.paint("a red mushroom", param="pixels", grid="24x24", palette=8)
>>> art.save("mushroom.svg"); art.save("mushroom.png")
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vecgen.api._run import Common, common, run
from vecgen.api.result import Result
from vecgen.api.run_options import RunConfig
from vecgen.api.verb import Verb
from vecgen.config import OptionError, option, verb_function
from vecgen.errors import VecgenError
from vecgen.options import PAINT_PARAMS, PALETTE_MODES, SQUASHES, as_int, check_number, parse_grid_spec, parse_size

PARAMS = PAINT_PARAMS
DEFAULT_LR = {"fft": 0.05, "dwt": 0.05, "pixels": 0.03}
#: Most colours of a pixel-art palette (k-means / learned palette; README, Limits).
MAX_PALETTE = 256
#: Most wavelet levels (a 4096 px side allows 12; the size caps them anyway).
MAX_LEVELS = 16
DESCRIPTION = (
    "Optimize an image so CLIP sees the prompt. --param fft|dwt write PNG; --param pixels "
    "writes both the -o file and its .png/.svg twin (same name, other suffix)."
)


def _check_param(param: Any) -> str:
    name = str(param).strip().lower() if isinstance(param, str) else param
    if name not in PARAMS:
        raise VecgenError(f"unknown --param {param!r}: choose {', '.join(PARAMS)}")
    return name


def _pixels(values: dict[str, Any]) -> bool:
    param = values.get("param")
    return isinstance(param, str) and param.strip().lower() == "pixels"


def _palette_needs_pixels(values: dict[str, Any]) -> None:
    if values.get("palette") is not None and not _pixels(values):
        raise OptionError("palette", '{label} only applies to param "pixels"')


def _throughout_needs_palette(values: dict[str, Any]) -> None:
    if values.get("palette_mode") == "throughout" and values.get("palette") is None:
        raise OptionError("palette_mode", '{label} "throughout" needs a palette (a number of colours, e.g. 16)')


def _grid_fits_size(values: dict[str, Any]) -> None:
    """Pixel art: no more cells than pixels on either side."""
    if not _pixels(values) or values.get("grid") is None or values.get("size") is None:
        return
    w, h = parse_size(values["size"])
    cols, rows = parse_grid_spec(values["grid"])
    rows = max(1, round(cols * h / w)) if rows is None else rows
    if cols > w or rows > h:
        raise OptionError(
            "grid",
            f"{{label}} {cols}x{rows} is larger than the {w}x{h} image: use a smaller {{label}} or a larger size",
        )


@dataclass(frozen=True)
class PaintConfig(RunConfig):
    """Every option of :func:`paint` (see :mod:`vecgen.config`)."""

    cross_checks = (_palette_needs_pixels, _throughout_needs_palette, _grid_fits_size)

    prompt: str | None = option(
        None, 'e.g. "a misty forest:1 | blurry:-0.5"', positional=True, required=True, section="main"
    )
    param: str = option(
        "fft",
        "fft: Fourier spectrum; dwt: wavelet pyramid; pixels: grid of flat cells",
        "choice",
        choices=PARAMS,
        fold=True,
    )
    decay: float = option(1.5, "fft/dwt: 1/f spectrum decay, higher = smoother", "float", minimum=0, maximum=10)
    wavelet: str = option("db2", "dwt: wavelet name, e.g. haar, db2, sym4, coif1, bior2.2")
    levels: int = option(4, "dwt: decomposition levels (capped by the size)", "int", minimum=1, maximum=MAX_LEVELS)
    contrast: float = option(1.0, "fft/dwt: gain before the squash", "float", above=0, maximum=100)
    colors: float = option(1.0, "fft/dwt: colour saturation, 0 = grey", "float", minimum=0, maximum=10)
    squash: str = option("sigmoid", "fft/dwt: map to [0, 1]", "choice", choices=SQUASHES, fold=True)
    grid: Any = option("32x32", "pixels: COLSxROWS cells, or COLS for square cells", "grid")
    palette: int | None = option(
        None, "pixels: limit to K colours", "int", minimum=1, maximum=MAX_PALETTE, metavar="K", default_text=None
    )
    palette_mode: str = option(
        "end",
        "pixels: snap to K colours at the end (k-means; default) or learn K colours throughout",
        "choice",
        choices=PALETTE_MODES,
    )
    lr: float | None = option(
        None, "learning rate", "float", above=0, default_text=", ".join(f"{v:g} {k}" for k, v in DEFAULT_LR.items())
    )
    init: Any = option(None, "start from this image", "image", metavar="IMG")


def output_files(output: str | Path, param: str) -> list[str]:
    """The files a paint run writes for ``output``: it, plus its ``.png``/``.svg`` twin for pixel art
    (the SVG is the exact vector form, the PNG what it looks like)."""
    out = str(output)
    suffix = Path(out).suffix.lower()
    if suffix not in (".png", ".svg"):
        raise VecgenError(f"{out}: output must end in .png (or .svg for --param pixels)")
    if param != "pixels":
        if suffix == ".svg":
            raise VecgenError(f"{out}: --param {param} makes raster images; use a .png output")
        return [out]
    twin = ".svg" if suffix == ".png" else ".png"
    return [out, str(Path(out).with_suffix(twin))]


def _files(output: str | Path, options: dict[str, Any]) -> list[str]:
    param = options.get("param")
    return output_files(output, param.strip().lower() if isinstance(param, str) else "")


def build_param(
    param: str,
    size: tuple[int, int],
    *,
    device,
    seed: int = 0,
    init=None,
    lr: float | None = None,
    decay: float = 1.5,
    wavelet: str = "db2",
    levels: int = 4,
    contrast: float = 1.0,
    colors: float = 1.0,
    squash: str = "sigmoid",
    grid: Any = "32x32",
    palette: int | None = None,
    palette_mode: str = "end",
):
    """Construct the parameterization named ``param`` (``fft``, ``dwt`` or ``pixels``)."""
    name = _check_param(param)
    rate = DEFAULT_LR[name] if lr is None else check_number("lr", lr)
    if name != "pixels" and palette is not None:  # PaintConfig refuses it too (_palette_needs_pixels)
        raise VecgenError("--palette only applies to --param pixels")
    if name == "fft":
        from vecgen.params.fft import FFTImage

        return FFTImage(
            size,
            device=device,
            seed=seed,
            init=init,
            lr=rate,
            decay=decay,
            contrast=contrast,
            colors=colors,
            squash=squash,
        )
    if name == "dwt":
        from vecgen.params.dwt import DWTImage

        return DWTImage(
            size,
            device=device,
            seed=seed,
            init=init,
            lr=rate,
            wavelet=wavelet,
            levels=as_int("levels", levels, minimum=1),
            decay=decay,
            contrast=contrast,
            colors=colors,
            squash=squash,
        )
    from vecgen.params.pixels import PixelArt

    return PixelArt(
        size, grid=grid, palette=palette, palette_mode=palette_mode, init=init, seed=seed, lr=rate, device=device
    )


@verb_function(PaintConfig, perceptors=None, warn=None, callbacks=None)
def paint(cfg: PaintConfig, *, perceptors=None, warn: Callable[[str], None] | None = None, callbacks=None) -> Result:
    """Optimize a raster image so CLIP sees ``prompt``; returns a :class:`~vecgen.api.Result`.

    ``param``: ``"fft"`` (1/f-weighted Fourier spectrum, aphantasia's default),
    ``"dwt"`` (wavelet pyramid) or ``"pixels"`` (a ``grid`` of flat cells,
    exported as SVG too; ``palette=k`` limits it to k colours, snapped at the
    end or, with ``palette_mode="throughout"``, learned all along).
    ``decay`` (fft/dwt): higher = smoother. ``contrast``/``colors``/``squash``
    (fft/dwt): colour tail. ``init``: start image (path, PIL image or tensor).
    ``lr`` defaults per parameterization (0.05 fft/dwt, 0.03 pixels).
    ``prompt`` may be None when ``image_prompt`` is given. The other options
    are those of :func:`vecgen.draw`; every option: :class:`PaintConfig`.
    Pixel art's result saves its twin too: ``res.save_all("art.png")`` writes
    ``art.svg`` and ``art.png``.
    """
    name = _check_param(cfg.param)
    opts: Common = common(cfg.run_values(perceptors=perceptors, warn=warn, callbacks=callbacks))
    wh = parse_size(cfg.size)
    init, grid, palette_mode = cfg.init, cfg.grid, cfg.palette_mode
    decay, contrast, colors, squash = cfg.decay, cfg.contrast, cfg.colors, cfg.squash
    wavelet, levels = cfg.wavelet, cfg.levels
    palette_k = None if cfg.palette is None else int(cfg.palette)
    settings: dict[str, Any] = {
        "function": "paint",
        "prompt": opts.prompt,
        "param": name,
        "steps": opts.steps,
        "size": list(wh),
        "clip": cfg.clip,
        "cutouts": opts.cutouts,
        "seed": opts.seed,
        "init": None if init is None else (str(init) if isinstance(init, (str, Path)) else type(init).__name__),
    }
    if name in ("fft", "dwt"):
        settings.update(decay=decay, contrast=contrast, colors=colors, squash=squash)
    if name == "dwt":
        settings.update(wavelet=wavelet, levels=levels)
    if name == "pixels":
        settings.update(grid=grid, palette=palette_k, palette_mode=palette_mode)
    p = build_param(
        name,
        wh,
        device=opts.device,
        seed=opts.seed,
        init=init,
        lr=cfg.lr,
        decay=decay,
        wavelet=wavelet,
        levels=levels,
        contrast=contrast,
        colors=colors,
        squash=squash,
        grid=grid,
        palette=palette_k,
        palette_mode=palette_mode,
    )
    settings["lr"] = p.lr
    if name == "dwt":
        settings["levels"] = p.levels  # what the size allowed
    if name == "pixels":
        settings["grid"] = f"{p.cols}x{p.rows}"
    result = run(p, opts, settings)
    if name == "pixels":  # the exact vector form and what it looks like: each output has its twin
        result.companions = lambda out: [Path(f) for f in output_files(out, name)[1:]]
    return result


VERB = Verb(
    "paint",
    paint,
    "optimize a raster image (Fourier, wavelet or pixel art) to a prompt; writes PNG",
    outputs=(".png", ".svg"),
    default_output="vecgen.png",
    config=PaintConfig,
    files=_files,
    description=DESCRIPTION,
)
