"""``vecgen classify3d``: the flags of :class:`vecgen.api.classify3d.Classify3dConfig`, ``--json``, and the old
spelling of the fit verb (``vecgen classify3d --fit SET`` is ``vecgen classify3d-fit SET``).

Prints what the result says (:attr:`Result.text`: ranked labels or the report), or its JSON
payload with ``--json``; ``-o`` is optional here (nothing is written without it), except with
``--fit``, whose adapter must go somewhere.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from vecgen.api import VERBS, Verb
from vecgen.cli._common import _flag_help, add_options, call, merge_options
from vecgen.errors import VecgenError
from vecgen.options import check_suffix, check_writable

FIT = "classify3d-fit"


def add_arguments(p: argparse.ArgumentParser, verb: Verb) -> None:
    meta = verb.config.option_of("points")
    p.add_argument("points", nargs="*", default=argparse.SUPPRESS, metavar=meta.metavar, help=_flag_help(meta, None))
    add_options(p, verb, skip={"points"})
    p.add_argument("--json", action="store_true", default=None, help="print one JSON object")


def run(args: argparse.Namespace, verb: Verb) -> int:
    as_json = bool(args.json)
    given_output = args.output
    opts = merge_options(args, verb, {"json", "points"})
    opts.pop("output")
    points = getattr(args, "points", None) or None
    if opts.get("fit") is not None and points is None and opts.get("eval") is None:  # the old spelling
        if given_output is None or Path(given_output).suffix.lower() != ".safetensors":
            raise VecgenError("--fit writes the adapter: give -o FILE.safetensors")
        fit = VERBS[FIT]
        keep = {name for name, _, _ in fit.config.options()}
        for name, value in opts.items():
            if name not in keep and value != verb.config.defaults().get(name):
                raise VecgenError(f"--{name.replace('_', '-')} does not apply to --fit")
        opts = {k: v for k, v in opts.items() if k in keep}
        verb = fit
    else:
        opts["points"] = points
    if given_output is not None:
        check_suffix(given_output, verb.outputs, f"{verb.name}'s output")
        check_writable(given_output)
    res = call(verb, None, opts)
    if given_output is not None:
        res.save_all(given_output)
    print(json.dumps(res.payload, default=float) if as_json else res.text)
    if given_output is not None and not as_json:
        print(given_output)
    return 0
