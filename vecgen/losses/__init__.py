"""Loss terms: each has a ``name``, a ``weight`` and ``__call__(ctx) -> unweighted scalar``
(the :class:`vecgen.objective.Term` protocol); the objective sums them.

* :mod:`~vecgen.losses.clip` -- the global CLIP term over augmented views, and per-image scores.
* :mod:`~vecgen.losses.direction` -- StyleGAN-NADA's directional CLIP loss.
* :mod:`~vecgen.losses.image` -- total variation, StyleCLIP's L2 to the starting latent.
"""

from vecgen.losses.clip import ClipTerm, ImageTarget, clamp_stops, score_images
from vecgen.losses.direction import DIRECTION_FLOOR, DirectionalClipTerm, text_distance
from vecgen.losses.image import LatentL2, total_variation

__all__ = [
    "DIRECTION_FLOOR",
    "ClipTerm",
    "DirectionalClipTerm",
    "ImageTarget",
    "LatentL2",
    "clamp_stops",
    "score_images",
    "text_distance",
    "total_variation",
]
