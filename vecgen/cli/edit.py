"""``vecgen edit``: the flags of :class:`vecgen.api.edit.EditConfig`, plus the old spelling of the mapper verb.

``vecgen edit PHOTO TEXT ...`` edits (the photo comes first on the command line,
while in Python it is the ``photo=`` keyword); ``vecgen edit --train-mapper TEXT
--images DIR ...`` is ``vecgen edit-mapper TEXT --images DIR ...``
(:func:`vecgen.api.edit_mapper.edit_mapper`). Everything else comes from the configs.
"""

from __future__ import annotations

import argparse

from vecgen.api import VERBS, Verb
from vecgen.api.edit_mapper import EditMapperConfig
from vecgen.cli._common import _flag_help, add_options, run_verb
from vecgen.errors import VecgenError

MAPPER = "edit-mapper"
#: Options of the mapper verb that editing does not take (flags of the old spelling only), and the reverse.
TRAIN_ONLY = tuple(
    n
    for n, m, _ in EditMapperConfig.options()
    if not m.positional and n not in {name for name, _, _ in VERBS["edit"].config.options()}
)
EDIT_ONLY = tuple(
    n
    for n, _, _ in VERBS["edit"].config.options()
    if n not in {name for name, _, _ in EditMapperConfig.options()} and n not in ("photo", "prompt")
)


def add_arguments(p: argparse.ArgumentParser, verb: Verb) -> None:
    config = verb.config
    for name in ("photo", "prompt"):  # both optional here: --train-mapper takes neither
        p.add_argument(name, nargs="?", help=_flag_help(config.option_of(name), None))
    add_options(p, verb, skip={"photo", "prompt"})
    p.add_argument(
        "--train-mapper",
        dest="train_mapper",
        metavar="TEXT",
        help=f"train a mapper toward TEXT over --images (vecgen {MAPPER}); -o FILE.safetensors "
        "(a before/after grid goes beside it as .png)",
    )
    for name, meta, default in EditMapperConfig.options():
        if name in TRAIN_ONLY:
            kw = {"action": "append"} if meta.multiple else {"type": int if meta.kind == "int" else str}
            p.add_argument(
                meta.flag_name(name),
                dest=name,
                metavar=meta.metavar,
                help=f"{MAPPER}: {_flag_help(meta, default)}",
                **kw,
            )
    p.set_defaults(train_mapper=None)


def run(args: argparse.Namespace, verb: Verb) -> int:
    given = {k for k, v in vars(args).items() if v is not None}
    if args.train_mapper is not None:  # the old spelling of `vecgen edit-mapper`
        for key in EDIT_ONLY:
            if key in given:
                raise VecgenError(f"--{key.replace('_', '-')} does not apply to --train-mapper")
        if args.photo is not None or args.prompt is not None:
            raise VecgenError("--train-mapper takes its photos from --images, not a positional photo")
        ns = argparse.Namespace(
            **{k: v for k, v in vars(args).items() if k not in ("photo", "prompt", "train_mapper", *EDIT_ONLY)}
        )
        ns.target = args.train_mapper
        return run_verb(ns, VERBS[MAPPER])
    for key in TRAIN_ONLY:
        if key in given:
            raise VecgenError(f"--{key} applies to --train-mapper only")
    if args.photo is None:
        raise VecgenError('give the photo to edit: vecgen edit PHOTO "TEXT" (or vecgen edit-mapper TEXT --images DIR)')
    return run_verb(args, verb)
