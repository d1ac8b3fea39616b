"""The Python API: one module per verb, and the verb registry the CLI, gallery and studio read.

    >>> import vecgen
    >>> res = vecgen.draw("a red circle", steps=50, clip="mini-vit", quiet=True)
    >>> res.save("circle.svg"); res.image  # PIL image of what CLIP saw

Adding a verb: write ``vecgen/api/NAME.py`` with the function and its
``VERB = Verb(...)`` record, add that module to :data:`VERBS` below (the one
registry line), and write ``vecgen/cli/NAME.py`` (its flags). Nothing else
lists verbs: ``vecgen.NAME``, ``vecgen.api.NAME``, the CLI subcommand and the
gallery's ``function = "NAME"`` all come from here.
"""

from __future__ import annotations

from vecgen.api import adapt as _adapt
from vecgen.api import classify3d as _classify3d
from vecgen.api import draw as _draw
from vecgen.api import edit as _edit
from vecgen.api import edit_mapper as _edit_mapper
from vecgen.api import generate as _generate
from vecgen.api import mesh as _mesh
from vecgen.api import paint as _paint
from vecgen.api import sketch as _sketch
from vecgen.api import style as _style
from vecgen.api import style_train as _style_train
from vecgen.api import vectorize as _vectorize
from vecgen.api._run import Common, load_perceptors, parse_image_prompts, run, view_style
from vecgen.api.draw import draw_steps, draw_style
from vecgen.api.generate import load_generator_for
from vecgen.api.render import render_svg
from vecgen.api.result import Result
from vecgen.api.verb import Verb
from vecgen.io import load_image, pil_to_tensor, tensor_to_pil
from vecgen.options import check_writable, parse_clip, parse_colour, parse_size, parse_width, resolve_device

#: Every verb, by name, in the order the CLI lists them.
VERBS: dict[str, Verb] = {
    v.name: v
    for v in (
        _draw.VERB,
        _paint.VERB,
        _generate.VERB,
        _adapt.VERB,
        _edit.VERB,
        _edit_mapper.VERB,
        _style.VERB,
        _style_train.VERB,
        _classify3d.VERB,
        _classify3d.FIT_VERB,
        _mesh.VERB,
        _vectorize.VERB,
        _sketch.VERB,
    )
}


def python_name(verb: str) -> str:
    """A verb's name in Python: ``style-train`` is ``vecgen.style_train``."""
    return verb.replace("-", "_")


# Each verb's function under its name (``vecgen.api.draw`` is the function, not its module).
globals().update({python_name(name): verb.function for name, verb in VERBS.items()})


def list_models() -> list[dict]:
    """Every perceptor a ``--clip`` spec may name (see :func:`vecgen.backends.perceptors.list_models`)."""
    from vecgen.backends.perceptors import list_models as _list

    return _list()


def load_perceptor(spec: str, device="cpu"):
    """One perceptor from a spec such as ``mini-vit``, ``ViT-B-32@openai`` or ``RN50@random``."""
    from vecgen.backends.perceptors import load_perceptor as _load

    return _load(spec, device)


__all__ = [
    *map(python_name, VERBS),
    "VERBS",
    "Common",
    "Result",
    "Verb",
    "check_writable",
    "draw_steps",
    "draw_style",
    "list_models",
    "load_generator_for",
    "load_image",
    "load_perceptor",
    "load_perceptors",
    "parse_clip",
    "parse_colour",
    "parse_image_prompts",
    "parse_size",
    "parse_width",
    "pil_to_tensor",
    "python_name",
    "render_svg",
    "resolve_device",
    "run",
    "tensor_to_pil",
    "view_style",
]
