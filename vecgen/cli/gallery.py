"""``vecgen gallery run|build``: the CLI over :mod:`vecgen.gallery`."""

from __future__ import annotations

import argparse
import json
import sys

from vecgen.cli._common import Parser, warn
from vecgen.errors import VecgenError


def cmd_gallery_run(args: argparse.Namespace) -> int:
    from vecgen import gallery

    spec = gallery.load_spec(args.spec)
    if args.workers is not None and args.workers < 1:
        raise VecgenError("--workers must be >= 1")
    if args.address and args.executor != "ray":
        raise VecgenError("--address needs --executor ray")
    if args.dry_run:
        for job, done in gallery.plan(spec, args.out):
            state = "done" if done else "todo"
            print(f"{job.id}  {state:4}  {job.function}  seed={job.seed}  {json.dumps(job.prompt, ensure_ascii=False)}")
        if spec.duplicates:
            print(f"({spec.duplicates} duplicate job(s) in the spec counted once)")
        return 0
    if spec.duplicates:
        warn(f"{spec.duplicates} duplicate job(s) in {args.spec} are run once")
    summary = gallery.run_gallery(
        spec,
        args.out,
        executor=args.executor,
        workers=args.workers,
        address=args.address,
        connect_timeout=args.connect_timeout,
        progress=not args.quiet,
        build=not args.no_build,
        warn=warn,
    )
    for line in summary.failures():  # why each failed, and where the whole error is
        print(f"vecgen: {line}", file=sys.stderr)
    print(summary.line())
    return 1 if summary.failed else 0


def cmd_gallery_build(args: argparse.Namespace) -> int:
    from vecgen import gallery

    path = gallery.build_site(
        args.site, clip=args.clip, search=not args.no_search, device=args.device or "cpu", title=args.title, warn=warn
    )
    print(str(path))
    return 0


def register(sub) -> None:
    """Add ``gallery`` (run, build) to the ``vecgen`` parser's subcommands."""
    g = sub.add_parser("gallery", help="run a TOML spec of prompts x seeds into a static gallery site")
    gsub = g.add_subparsers(dest="gallery_command", required=True, parser_class=Parser)

    r = gsub.add_parser("run", help="run every unfinished job of a spec; writes OUT/manifest.json and OUT/index.html")
    r.add_argument("spec", help="gallery spec (.toml): [defaults] then [[entry]] tables")
    r.add_argument("-o", "--out", default="site", help="site folder (default: site)")
    r.add_argument(
        "--executor",
        choices=["local", "ray"],
        default="local",
        help="local (this machine) or ray (pip install 'vecgen[ray]')",
    )
    r.add_argument("--workers", type=int, help="parallel workers (local default 1; ray default: the cluster's CPUs)")
    r.add_argument(
        "--address", help="existing Ray cluster: HOST:PORT, ray://HOST:PORT or auto (default: start a local Ray)"
    )
    r.add_argument(
        "--connect-timeout",
        type=float,
        default=10.0,
        metavar="S",
        help="seconds to wait in all for a Ray cluster at --address to connect and answer (default 10)",
    )
    r.add_argument("--dry-run", action="store_true", help="list the jobs and whether each is done; run nothing")
    r.add_argument("--no-build", action="store_true", help="do not rebuild OUT/index.html afterwards")
    r.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    r.set_defaults(func=cmd_gallery_run)

    b = gsub.add_parser("build", help="write SITE/index.html from SITE/manifest.json")
    b.add_argument("site", help="site folder written by `vecgen gallery run`")
    b.add_argument("--clip", help="CLIP model for the retrieval ranks (default: the one the jobs used)")
    b.add_argument("--device", help="device for the retrieval ranks (default cpu)")
    b.add_argument("--title", help="page title (default: the spec's title)")
    b.add_argument("--no-search", action="store_true", help="no retrieval ranks on the page")
    b.set_defaults(func=cmd_gallery_build)
