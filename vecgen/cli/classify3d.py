"""``vecgen classify3d``: flags over :func:`vecgen.api.classify3d`; prints ranked labels or an eval report."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from vecgen.api import Verb
from vecgen.api.classify3d import OUTPUTS
from vecgen.cli._common import call, default_text, merge_options
from vecgen.errors import VecgenError
from vecgen.options import check_suffix, check_writable

DESCRIPTION = ("Classify point clouds (PLY, XYZ/TXT, NPY, or meshes sampled to points) by projecting each to "
               "depth maps and scoring every view with CLIP against one caption per label (PointCLIP). "
               "--eval scores a labelled set (ModelNet40 .h5, or a folder per class); --fit trains the "
               "few-shot inter-view adapter (-o adapter.safetensors), which --adapter then uses.")


def add_arguments(p: argparse.ArgumentParser, verb: Verb) -> None:
    d = lambda name: default_text(verb, name)  # noqa: E731
    p.add_argument("points", nargs="*", default=argparse.SUPPRESS, metavar="FILE",
                   help="point clouds or meshes to classify")
    p.add_argument("--labels", help="class names, comma-separated: chair,table,lamp")
    p.add_argument("--labels-file", dest="labels_file", metavar="FILE", help="class names, one per line")
    p.add_argument("--template", help=f"caption per label, {{}} = the label (default {d('template')!s})")
    p.add_argument("--views", help=f"view count (1-10, 12) or AZ:EL,AZ:EL,... in degrees (default {d('views')})")
    p.add_argument("--view-weights", dest="view_weights", metavar="W,W,...", help="one weight per view (default equal)")
    p.add_argument("--search-weights", dest="search_weights", action="store_true", default=None,
                   help="grid-search the view weights on the --eval / --fit set")
    p.add_argument("--clip", help="auto, or MODEL[@PRETRAINED|@PATH][:WEIGHT],... (the ensemble)")
    p.add_argument("--size", type=int, help="depth-map side in pixels (default: the perceptors' input size)")
    p.add_argument("--splat", type=float, help=f"point splat size, x the point spacing (default {d('splat')})")
    p.add_argument("--keep-outliers", dest="keep_outliers", action="store_true", default=None,
                   help="project every point (default: drop isolated stray points first)")
    p.add_argument("--mesh-points", dest="mesh_points", type=int,
                   help=f"points sampled from a mesh file (default {d('mesh_points')})")
    p.add_argument("--adapter", metavar="FILE", help="few-shot adapter from --fit")
    p.add_argument("--eval", metavar="SET", help="labelled set to score: accuracy, per class, confusion matrix")
    p.add_argument("--fit", metavar="SET", help="labelled set to train the adapter on (write it with -o)")
    p.add_argument("--shots", type=int, help=f"examples per class for --fit (default {d('shots')})")
    p.add_argument("--epochs", type=int, help=f"adapter training epochs (default {d('epochs')})")
    p.add_argument("--ratio", type=float, help=f"adapter residual ratio (default {d('ratio')})")
    p.add_argument("--batch", type=int, help=f"clouds encoded at once (default {d('batch')})")
    p.add_argument("--seed", type=int, help="seed of the shot selection and adapter training")
    p.add_argument("--device", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--json", action="store_true", default=None, help="print one JSON object")
    p.add_argument("-o", "--output", help=f"also write {' or '.join(OUTPUTS)} (scores/report, the adapter, "
                                          "the first cloud's depth maps)")
    p.add_argument("--config", metavar="FILE", help="TOML file with any of these options; flags override")
    p.add_argument("-q", "--quiet", action="store_true", default=None, help="no progress output")


def _ranked_line(name: str, ranked: list, top: int = 5) -> str:
    return f"{name}: " + ", ".join(f"{lab} {p:.3f}" for lab, p in ranked[:top])


def run(args: argparse.Namespace, verb: Verb) -> int:
    from vecgen.api.classify3d_fit import format_report

    as_json = bool(args.json)
    given_output = args.output
    opts = merge_options(args, verb, {"json", "points"})
    opts.pop("output")
    if given_output is not None:
        check_suffix(given_output, OUTPUTS, "classify3d's output")
        check_writable(given_output)
    if opts.get("fit") is not None and (given_output is None or Path(given_output).suffix.lower() != ".safetensors"):
        raise VecgenError("--fit writes the adapter: give -o FILE.safetensors")
    points = getattr(args, "points", None) or None
    res = call(verb, None, {**opts, "points": points})
    if given_output is not None:
        res.save(given_output)
    if as_json:
        print(json.dumps(res.payload, default=float))
    elif "report" in res.extras:
        print(format_report(res.report))
    else:
        for name, ranked in zip(res.names, res.ranked):
            print(_ranked_line(name, ranked))
    if given_output is not None and not as_json:
        print(given_output)
    return 0
