"""Perceptors: CLIP-like image/text encoders behind one small protocol."""
from vecgen.backends.perceptors.clip import (ClipPerceptor, list_models, load_perceptor, parse_spec, resolve_auto,
                                            weights_available)

__all__ = ["ClipPerceptor", "list_models", "load_perceptor", "parse_spec", "resolve_auto", "weights_available"]
