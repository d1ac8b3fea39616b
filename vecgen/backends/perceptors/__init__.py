"""Perceptors: CLIP-like image/text encoders behind one small protocol."""
from vecgen.backends.perceptors.clip import ClipPerceptor, load_perceptor, parse_spec, resolve_auto, weights_available

__all__ = ["ClipPerceptor", "load_perceptor", "parse_spec", "resolve_auto", "weights_available"]
