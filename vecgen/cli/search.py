"""``vecgen search``: text-to-image retrieval over a folder (the CLI over :mod:`vecgen.search`)."""

from __future__ import annotations

import argparse
import json

from vecgen.cli._common import warn


def run(args: argparse.Namespace) -> int:
    from vecgen import search

    hits = search.search(
        args.folder,
        args.query,
        args.k,
        clip=args.clip,
        device=args.device or "auto",
        warn=warn,
        cache=not args.no_cache,
    )
    if args.json:
        print(json.dumps([{"rank": h.rank, "score": round(h.score, 6), "path": h.path} for h in hits], indent=1))
    else:
        for h in hits:
            print(f"{h.rank:3d}  {h.score:+.4f}  {h.path}")
    return 0


def register(sub) -> None:
    s = sub.add_parser("search", help="CLIP text-to-image search over a folder of pictures (SVGs too)")
    s.add_argument("folder", help="folder of .png/.jpg/.webp/.svg... (searched recursively)")
    s.add_argument("query", help='what to look for, e.g. "a red circle" (prompt syntax: "a:1 | b:-0.5")')
    s.add_argument("-k", type=int, default=10, help="number of results (default 10)")
    s.add_argument("--clip", default="auto", help="CLIP model spec (default auto)")
    s.add_argument("--device", help="auto (default), cpu, cuda, cuda:N or mps")
    s.add_argument("--json", action="store_true", help="print the results as JSON")
    s.add_argument("--no-cache", action="store_true", help="do not read or write FOLDER/.vecgen-search-*.safetensors")
    s.set_defaults(func=run)
