"""``paint``: raster parameterizations (FFT, wavelets, pixel art) optimized to a prompt.

    >>> import vecgen
    >>> res = vecgen.paint("a misty forest", param="dwt", steps=100, quiet=True)
    >>> res.save("forest.png")
    >>> art = vecgen.paint("a red mushroom", param="pixels", grid="24x24", palette=8)
    >>> art.save("mushroom.svg"); art.save("mushroom.png")
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from vecgen.api._run import Common, common, run
from vecgen.api.result import Result
from vecgen.api.verb import Verb
from vecgen.errors import VecgenError
from vecgen.options import PAINT_PARAMS, as_int, check_number, parse_size

PARAMS = PAINT_PARAMS
DEFAULT_LR = {"fft": 0.05, "dwt": 0.05, "pixels": 0.03}


def _check_param(param: Any) -> str:
    name = str(param).strip().lower() if isinstance(param, str) else param
    if name not in PARAMS:
        raise VecgenError(f"unknown --param {param!r}: choose {', '.join(PARAMS)}")
    return name


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


def build_param(param: str, size: tuple[int, int], *, device, seed: int = 0, init=None, lr: float | None = None,
                decay: float = 1.5, wavelet: str = "db2", levels: int = 4, contrast: float = 1.0,
                colors: float = 1.0, squash: str = "sigmoid", grid: Any = "32x32", palette: int | None = None,
                palette_mode: str = "end"):
    """Construct the parameterization named ``param`` (``fft``, ``dwt`` or ``pixels``)."""
    name = _check_param(param)
    rate = DEFAULT_LR[name] if lr is None else check_number("lr", lr)
    if name != "pixels" and palette is not None:
        raise VecgenError("--palette only applies to --param pixels")
    if name == "fft":
        from vecgen.params.fft import FFTImage

        return FFTImage(size, device=device, seed=seed, init=init, lr=rate, decay=decay, contrast=contrast,
                        colors=colors, squash=squash)
    if name == "dwt":
        from vecgen.params.dwt import DWTImage

        return DWTImage(size, device=device, seed=seed, init=init, lr=rate, wavelet=wavelet,
                        levels=as_int("levels", levels, minimum=1), decay=decay, contrast=contrast,
                        colors=colors, squash=squash)
    from vecgen.params.pixels import PixelArt

    return PixelArt(size, grid=grid, palette=palette, palette_mode=palette_mode, init=init, seed=seed, lr=rate,
                    device=device)


def paint(prompt: str | None, *, param: str = "fft", size: Any = 224, steps: int = 200, clip: str = "auto",
          cutouts: int = 8, seed: int = 0, device: str | None = "auto", init: Any = None, decay: float = 1.5,
          wavelet: str = "db2", levels: int = 4, contrast: float = 1.0, colors: float = 1.0,
          squash: str = "sigmoid", grid: Any = "32x32", palette: int | None = None, palette_mode: str = "end",
          lr: float | None = None, image_prompt=None, snapshots: str | Path | None = None, every: int = 10,
          checkpoint: str | Path | None = None, resume: str | Path | None = None, quiet: bool = False,
          perceptors=None, warn: Callable[[str], None] | None = None, views: str = "auto",
          callbacks=None) -> Result:
    """Optimize a raster image so CLIP sees ``prompt``; returns a :class:`~vecgen.api.Result`.

    ``param``: ``"fft"`` (1/f-weighted Fourier spectrum, aphantasia's default),
    ``"dwt"`` (wavelet pyramid) or ``"pixels"`` (a ``grid`` of flat cells,
    exported as SVG too; ``palette=k`` limits it to k colours, snapped at the
    end or, with ``palette_mode="throughout"``, learned all along).
    ``decay`` (fft/dwt): higher = smoother. ``contrast``/``colors``/``squash``
    (fft/dwt): colour tail. ``init``: start image (path, PIL image or tensor).
    ``lr`` defaults per parameterization (0.05 fft/dwt, 0.03 pixels).
    ``prompt`` may be None when ``image_prompt`` is given. The other options
    are those of :func:`vecgen.draw`.
    """
    name = _check_param(param)
    opts: Common = common(locals())
    wh = parse_size(size)
    palette_k = None
    if palette is not None:
        from vecgen.params.pixels import check_palette

        palette_k = check_palette(palette)
    settings: dict[str, Any] = {"function": "paint", "prompt": opts.prompt, "param": name, "steps": opts.steps,
                                "size": list(wh), "clip": clip, "cutouts": opts.cutouts, "seed": opts.seed,
                                "init": None if init is None else (str(init) if isinstance(init, (str, Path))
                                                                    else type(init).__name__)}
    if name in ("fft", "dwt"):
        settings.update(decay=decay, contrast=contrast, colors=colors, squash=squash)
    if name == "dwt":
        settings.update(wavelet=wavelet, levels=levels)
    if name == "pixels":
        settings.update(grid=grid, palette=palette_k, palette_mode=palette_mode)
    p = build_param(name, wh, device=opts.device, seed=opts.seed, init=init, lr=lr, decay=decay, wavelet=wavelet,
                    levels=levels, contrast=contrast, colors=colors, squash=squash, grid=grid, palette=palette_k,
                    palette_mode=palette_mode)
    settings["lr"] = p.lr
    if name == "dwt":
        settings["levels"] = p.levels  # what the size allowed
    if name == "pixels":
        settings["grid"] = f"{p.cols}x{p.rows}"
    return run(p, opts, settings)


VERB = Verb("paint", paint, "optimize a raster image (Fourier, wavelet or pixel art) to a prompt; writes PNG",
            outputs=(".png", ".svg"), default_output="vecgen.png")
