"""Parameterizations: one module each, all behind :class:`Parameterization`."""
from vecgen.params.base import Parameterization
from vecgen.params.generator_weights import GeneratorWeights
from vecgen.params.latent import Latent
from vecgen.params.pixels import PixelArt

__all__ = ["GeneratorWeights", "Latent", "Parameterization", "PixelArt"]
