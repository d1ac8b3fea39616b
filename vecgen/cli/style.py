"""``vecgen style``: flags over :func:`vecgen.api.style` and, for fast mode, :func:`vecgen.api.style_train.train_style`.

    vecgen style photo.jpg "oil painting of a stormy sea" -o out.png
    vecgen style --train photos/ "chain mail" -o chainmail.safetensors
    vecgen style --model chainmail.safetensors holiday.jpg -o holiday_chainmail.png
"""
from __future__ import annotations

import argparse

from vecgen.api import Verb
from vecgen.api.style import MODEL_SUFFIX, OPTIMIZATION_ONLY, QUALITY
from vecgen.cli._common import add_common, call, default_text, finish, merge_options, set_help
from vecgen.errors import VecgenError
from vecgen.options import check_suffix, check_writable

DESCRIPTION = ("Restyle a photo toward a text (CLIPstyler): a small U-Net is optimized on the photo at a working "
               "size against directional CLIP losses of the whole output and of random patches, a content loss "
               "and total variation, then applied at the photo's full size (alpha kept). Fast mode: --train DIR "
               "fits one network for one text over a folder; --model FILE applies it in one forward pass.")
#: Shared flags that mean nothing here.
NOT_FOR_STYLE = ("cutouts", "views", "image_prompt", "size")
#: Fast-mode training options (vecgen.api.style_train) that optimization runs do not take.
TRAIN_ONLY = ("batch", "crop")


def add_arguments(p: argparse.ArgumentParser, verb: Verb) -> None:
    d = lambda name: default_text(verb, name)  # noqa: E731
    p.add_argument("image", metavar="IMAGE", help="the photo (with --train: the text; with --model: the photo)")
    p.add_argument("prompt", nargs="?", metavar="TEXT", help='the style, e.g. "oil painting of a stormy sea"')
    p.add_argument("--train", metavar="DIR", help="fast mode: train one network for TEXT over DIR's images; "
                   f"-o FILE{MODEL_SUFFIX}")
    p.add_argument("--model", metavar="FILE", help=f"fast mode: stylize IMAGE with a trained {MODEL_SUFFIX} network")
    p.add_argument("--source", help=f'what the photo is now, for CLIP perceptors (default "{d("source")}")')
    p.add_argument("--quality", choices=tuple(QUALITY),
                   help="presets of --steps/--crops/--work-size: " + "; ".join(
                       f"{k} {v['steps']}/{v['crops']}/{v['work_size']}" for k, v in QUALITY.items())
                   + f" (default {d('quality')})")
    p.add_argument("--work-size", dest="work_size", type=int, help="short side the network is optimized at")
    p.add_argument("--crops", type=int, help="patch crops per step")
    p.add_argument("--crop-size", dest="crop_size", type=int,
                   help=f"patch side in px of a 512 px canvas (scaled with the working size; default {d('crop_size')})")
    p.add_argument("--threshold", type=float, help=f"patch rejection threshold tau (default {d('threshold')})")
    for name, what in (("patch", "patch CLIP"), ("dir", "directional CLIP"), ("content", "content"),
                       ("tv", "total variation")):
        p.add_argument(f"--{name}-weight", dest=f"{name}_weight", type=float,
                       help=f"weight of the {what} term (default {d(f'{name}_weight')})")
    p.add_argument("--lr", type=float, help=f"Adam learning rate, halved at half way (default {d('lr')})")
    p.add_argument("--content-model", dest="content_model", metavar="SPEC",
                   help="perceptor of the content loss (auto: efficientnet-lite0 when installed, else the first "
                        "--clip model)")
    p.add_argument("--tile", type=int, help=f"tile side of the full-size pass (default {d('tile')})")
    p.add_argument("--batch", type=int, help="--train: crops per step (default 4)")
    p.add_argument("--crop", type=int, help="--train: side of the training crops in px (default 256)")
    add_common(p, verb)
    set_help(p, {"output": f"output .png (or {MODEL_SUFFIX}: the network; --train writes {MODEL_SUFFIX}; "
                           f"default {verb.default_output})",
                 **{k: argparse.SUPPRESS for k in NOT_FOR_STYLE}})


def _refuse(args: argparse.Namespace, names, why: str) -> None:
    for key in names:
        if getattr(args, key, None) is not None:
            raise VecgenError(f"--{key.replace('_', '-')} {why}")


def run(args: argparse.Namespace, verb: Verb) -> int:
    _refuse(args, NOT_FOR_STYLE, "does not apply to style")
    if args.train is not None and args.model is not None:
        raise VecgenError("--train and --model are two modes: train a network, or apply one")
    skip = {"image", "prompt", "train", *TRAIN_ONLY}
    if args.train is not None:
        return _train(args, verb)
    _refuse(args, TRAIN_ONLY, "applies only to --train")
    opts = merge_options(args, verb, skip)
    out = str(opts.pop("output"))
    check_suffix(out, verb.outputs, "style's output")
    check_writable(out)
    if opts.get("model") is not None:
        if args.prompt is not None:
            raise VecgenError("with --model the text is the model's own: give only the photo")
        given = [k for k in OPTIMIZATION_ONLY if getattr(args, k, None) is not None]
        if given:
            raise VecgenError(f"--{given[0].replace('_', '-')} does not apply with --model (the model was trained "
                              f"with its own); drop it")
        if out.lower().endswith(MODEL_SUFFIX):
            raise VecgenError(f"{out}: with --model the output is the stylized .png")
        return finish(call(verb, args.image, opts), out)
    if args.prompt is None:
        raise VecgenError('style needs a photo and a text, e.g. vecgen style photo.jpg "oil painting"')
    return finish(verb.function(args.image, args.prompt, **_with_warn(verb, opts)), out)


def _with_warn(verb: Verb, opts: dict) -> dict:
    from vecgen.cli._common import warn

    return {"warn": warn, **opts}


def _train(args: argparse.Namespace, verb: Verb) -> int:
    from vecgen.api import style_train

    if args.prompt is not None:
        raise VecgenError('--train DIR takes one text: vecgen style --train photos/ "chain mail" -o model'
                          + MODEL_SUFFIX)
    _refuse(args, ("tile",), "does not apply to --train")
    text = args.image  # the one positional is the text
    opts = merge_options(args, verb, {"image", "prompt", "train", "model", "tile"})
    opts.update({k: getattr(args, k) for k in TRAIN_ONLY if getattr(args, k) is not None})
    out = str(opts.pop("output"))
    if out == verb.default_output:
        out = "style" + MODEL_SUFFIX
    if not out.lower().endswith(MODEL_SUFFIX):
        raise VecgenError(f"{out}: --train writes the network as {MODEL_SUFFIX}")
    check_writable(out)
    train_defaults = style_train.defaults()
    opts = {k: v for k, v in opts.items() if k in train_defaults and (v != verb.defaults().get(k) or
                                                                       getattr(args, k, None) is not None)}
    res = style_train.train_style(args.train, text, output=out, **_with_warn(verb, opts))
    return finish(res, out)
