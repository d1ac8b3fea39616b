"""``vecgen style``: the flags of :class:`vecgen.api.style.StyleConfig`, plus the old spelling of fast mode.

    vecgen style photo.jpg "oil painting of a stormy sea" -o out.png
    vecgen style --model chainmail.safetensors holiday.jpg -o holiday_chainmail.png
    vecgen style --train photos/ "chain mail" -o chainmail.safetensors   # = vecgen style-train photos/ "chain mail"

Everything here is parsing: ``--train DIR TEXT`` runs the ``style-train`` verb
with the same options (its flags are hidden from ``--help``: ``vecgen
style-train --help`` lists them), and flags of one mode given to the other
are refused in one line.
"""

from __future__ import annotations

import argparse

from vecgen.api import VERBS, Verb
from vecgen.cli._common import INTERNAL_KEYS, add_options, run_verb
from vecgen.errors import VecgenError

#: Shared flags of the other optimizing verbs that mean nothing here (refused by name, not as unknown).
NOT_FOR_STYLE = ("size", "cutouts", "views", "image_prompt")
TRAIN = "style-train"


def _train_config():
    return VERBS[TRAIN].config


def _style_only(verb: Verb) -> list[str]:
    """Options of ``style`` that ``style-train`` does not take (``--model``, ``--quality``, ``--tile``...)."""
    train = {n for n, _, _ in _train_config().options()}
    return [n for n, meta, _ in verb.config.options() if meta.cli and not meta.positional and n not in train]


def _train_only(verb: Verb) -> list[str]:
    """Options of ``style-train`` that ``style`` does not take (``--batch``, ``--crop``)."""
    own = {n for n, _, _ in verb.config.options()}
    return [n for n, meta, _ in _train_config().options() if meta.cli and not meta.positional and n not in own]


def add_arguments(p: argparse.ArgumentParser, verb: Verb) -> None:
    add_options(p, verb)
    p.add_argument("--train", metavar="DIR", help=argparse.SUPPRESS)  # the old spelling of `vecgen style-train`
    for name in _train_only(verb):
        meta = _train_config().option_of(name)
        p.add_argument(
            meta.flag_name(name), dest=name, type=int if meta.kind == "int" else float, help=argparse.SUPPRESS
        )
    for name in NOT_FOR_STYLE:
        p.add_argument("--" + name.replace("_", "-"), dest=name, action="append", help=argparse.SUPPRESS)


def _refuse(args: argparse.Namespace, names, why: str) -> None:
    for key in names:
        if getattr(args, key, None) is not None:
            raise VecgenError(f"--{key.replace('_', '-')} {why}")


def run(args: argparse.Namespace, verb: Verb) -> int:
    _refuse(args, NOT_FOR_STYLE, "does not apply to style")
    train = args.train
    if train is not None and args.model is not None:
        raise VecgenError("--train and --model are two modes: train a network, or apply one")
    if train is None:
        _refuse(args, _train_only(verb), "applies only to vecgen style-train (--train)")
        dropped = {"train", *NOT_FOR_STYLE, *_train_only(verb)}
        return run_verb(argparse.Namespace(**{k: v for k, v in vars(args).items() if k not in dropped}), verb)
    if args.prompt is not None:
        raise VecgenError(
            f'--train DIR takes one text: vecgen style-train photos/ "chain mail" -o model{VERBS[TRAIN].outputs[0]}'
        )
    _refuse(args, _style_only(verb), "does not apply to vecgen style-train (--train)")
    given = vars(args)
    names = [n for n, meta, _ in _train_config().options() if meta.cli]
    values = {n: given.get(n) for n in names if n not in ("folder", "prompt")}
    values.update(folder=train, prompt=args.image)  # the one positional is the text
    values.update({k: given[k] for k in INTERNAL_KEYS | {"output"} if k in given and k != "flag_actions"})
    return run_verb(argparse.Namespace(**values), VERBS[TRAIN])
