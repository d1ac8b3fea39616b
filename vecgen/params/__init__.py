"""Parameterizations: one module each, all behind :class:`Parameterization`.

:data:`REGISTRY` names every parameterization class and its module (a test
checks that it lists each one under ``vecgen/params``); classes are imported
lazily, so that using one does not load the others' dependencies.
"""

import importlib

from vecgen.params.base import Finalizes, Parameterization, StepAware, StepContext, VectorExport

#: Every parameterization: class name -> module.
REGISTRY: dict[str, str] = {
    "Strokes": "vecgen.params.strokes",
    "PixelArt": "vecgen.params.pixels",
    "FFTImage": "vecgen.params.fft",
    "DWTImage": "vecgen.params.dwt",
    "Latent": "vecgen.params.latent",
    "GeneratorWeights": "vecgen.params.generator_weights",
    "MapperTraining": "vecgen.params.mapper",
    "StyleField": "vecgen.params.style_field",
    "StyleNetImage": "vecgen.params.stylenet",
    "StyleNetBatches": "vecgen.params.stylenet",
    "FilledPaths": "vecgen.params.vector_fit",
}


def __getattr__(name: str):
    if name in REGISTRY:
        return getattr(importlib.import_module(REGISTRY[name]), name)
    raise AttributeError(f"module 'vecgen.params' has no attribute {name!r}")


__all__ = ["REGISTRY", "Finalizes", "Parameterization", "StepAware", "StepContext", "VectorExport", *REGISTRY]
