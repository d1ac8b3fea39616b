"""``vecgen edit``: flags over :func:`vecgen.api.edit` (and :func:`vecgen.api.edit_mapper.train_mapper`)."""
from __future__ import annotations

import argparse
import inspect
import sys
from pathlib import Path

from vecgen.api import Verb
from vecgen.api.generate import need_generator
from vecgen.cli._common import (
    INTERNAL_KEYS,
    add_common,
    call,
    check_output,
    default_text,
    finish,
    merge_options,
    set_help,
)
from vecgen.errors import VecgenError
from vecgen.options import SPACES

DESCRIPTION = ("Edit a photo by text through a frozen generator (StyleCLIP). The photo is inverted first "
               "(--encoder: encode and refine; else by optimization), then edited by latent optimization "
               "(--method optimize, default), a precomputed global direction (--method global, --alpha, --beta) "
               "or a trained mapper (--mapper FILE; train one with --train-mapper TEXT --images DIR). "
               "Only the subject changes (--where: auto = where the perceptor sees the photo's class, a box "
               "X,Y,W,H, or all), and the change goes back into the photo at its own resolution.")
METHOD_CHOICES = ("auto", "optimize", "global", "mapper")
#: Flags that only training a mapper takes, and edit flags it does not.
TRAIN_ONLY = ("images", "batch", "hidden")
EDIT_ONLY = ("method", "mapper", "alpha", "beta", "global_samples", "global_cache", "space", "image_prompt", "where")


def add_arguments(p: argparse.ArgumentParser, verb: Verb) -> None:
    d = lambda name: default_text(verb, name)  # noqa: E731
    p.add_argument("photo", nargs="?", help="the photo to edit (PNG, JPEG...)")
    p.add_argument("prompt", nargs="?", help='what it should show, e.g. "a leopard"')
    p.add_argument("--generator", metavar="SPEC", help="taef2[:FILE], stylegan2:FILE or script:FILE (required)")
    p.add_argument("--encoder", metavar="SPEC", help="taef2[:FILE] or script:FILE: invert by encoding "
                   "(default: invert by optimization)")
    p.add_argument("--method", choices=METHOD_CHOICES, help="optimize, global or mapper (auto: mapper with "
                   "--mapper, global with --alpha, else optimize)")
    p.add_argument("--source", help='what the photo shows now, e.g. "a cat": directional edits')
    p.add_argument("--where", metavar="auto|all|X,Y,W,H", help="where the edit may change the photo: auto (default: "
                   "where the perceptor sees the photo's own class, or --source's), all, or a box in photo pixels")
    p.add_argument("--l2", type=float, help="weight of the L2 distance to the inverted latent (default: 0.008 for "
                   "StyleGAN2, 0.0005 for TAEF2 and others; mapper training: 0.8)")
    p.add_argument("--space", choices=SPACES, help=f"latent space of a StyleGAN2 edit (default {d('space')})")
    p.add_argument("--lr", type=float, help=f"learning rate (default {d('lr')}; mapper training 0.002)")
    p.add_argument("--alpha", type=float, help="global: strength, in standard deviations of the most relevant channel "
                   "(default 4 for StyleGAN2's style space, 0.5 for latent channels)")
    p.add_argument("--beta", type=float, help=f"global: drop channels less relevant than this (default {d('beta')})")
    p.add_argument("--global-samples", dest="global_samples", type=int,
                   help=f"global: latents the channel responses average over (default {d('global_samples')})")
    p.add_argument("--global-cache", dest="global_cache", metavar="PATH",
                   help="global: response cache file or folder (default ~/.cache/vecgen/global)")
    p.add_argument("--mapper", metavar="FILE.safetensors", help="apply a trained mapper (one forward pass)")
    p.add_argument("--train-mapper", dest="train_mapper", metavar="TEXT", help="train a mapper toward TEXT "
                   "over --images; -o FILE.safetensors (a before/after grid goes beside it as .png)")
    p.add_argument("--images", action="append", metavar="DIR|FILE", help="mapper training photos (repeatable)")
    p.add_argument("--batch", type=int, help="mapper training: latents per step (default 2)")
    p.add_argument("--hidden", type=int, help="mapper width (default 64 for TAEF2, the latent size for StyleGAN2)")
    p.add_argument("--invert-steps", dest="invert_steps", type=int,
                   help="inversion steps (default 10 after an encoder, 200 without)")
    p.add_argument("--invert-lr", dest="invert_lr", type=float, help="inversion learning rate (0.01 / 0.05)")
    p.add_argument("--perceptual", type=float, help="inversion: weight of the classifier feature term "
                   "(default 0 with an encoder, 0.1 without; needs a perceptor with features)")
    add_common(p, verb)
    set_help(p, {"output": f"output PNG (default {verb.default_output}), or the mapper .safetensors",
                 "size": "TAEF2 edit size WxH (default: the photo's aspect, long side 256)"})


def _train(args: argparse.Namespace, verb: Verb) -> int:
    from vecgen.api.edit_mapper import train_mapper

    for key in EDIT_ONLY:
        if getattr(args, key, None) is not None:
            raise VecgenError(f"--{key.replace('_', '-')} does not apply to --train-mapper")
    if args.photo is not None:
        raise VecgenError("--train-mapper takes its photos from --images, not a positional photo")
    trainer = Verb("edit", train_mapper, verb.summary, outputs=(".safetensors",),
                   default_output="mapper.safetensors", gallery=False)
    opts = merge_options(args, trainer, {"photo", "prompt", "train_mapper"} | set(EDIT_ONLY))
    params = inspect.signature(train_mapper).parameters
    opts = {k: v for k, v in opts.items() if k in params}
    out = str(opts.pop("output"))
    check_output(out, trainer)
    need_generator(opts)
    grid = str(Path(out).with_suffix(".png"))
    result = call(trainer, args.train_mapper, {**opts, "output": out})
    result.save(grid)
    print(out)
    print(grid)
    if result.interrupted:
        print(f"vecgen: interrupted after {len(result.history)} steps; saved {out}", file=sys.stderr)
        return 130
    return 0


def run(args: argparse.Namespace, verb: Verb) -> int:
    if args.train_mapper is not None:
        return _train(args, verb)
    for key in TRAIN_ONLY:
        if getattr(args, key, None) is not None:
            raise VecgenError(f"--{key} applies to --train-mapper only")
    if args.photo is None:
        raise VecgenError("give the photo to edit: vecgen edit PHOTO \"TEXT\" (or --train-mapper TEXT --images DIR)")
    opts = merge_options(args, verb, {"photo", "prompt", "train_mapper"} | set(TRAIN_ONLY) | INTERNAL_KEYS)
    out = str(opts.pop("output"))
    check_output(out, verb)
    need_generator(opts)
    return finish(call(verb, args.prompt, {**opts, "photo": args.photo}), out)
