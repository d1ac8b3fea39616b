"""Parameterizations: one module each, all behind :class:`Parameterization`.

Classes are imported lazily so that using one does not load the others' dependencies.
"""
import importlib

from vecgen.params.base import Parameterization

_LAZY = {
    "Strokes": "vecgen.params.strokes",
    "PixelArt": "vecgen.params.pixels",
    "FFTImage": "vecgen.params.fft",
    "DWTImage": "vecgen.params.dwt",
    "Latent": "vecgen.params.latent",
    "GeneratorWeights": "vecgen.params.generator_weights",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'vecgen.params' has no attribute {name!r}")


__all__ = ["Parameterization", *_LAZY]
