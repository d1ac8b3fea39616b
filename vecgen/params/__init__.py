"""Parameterizations: one module each, all behind :class:`Parameterization`."""
from vecgen.params.base import Parameterization

__all__ = ["Parameterization"]
