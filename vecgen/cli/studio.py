"""``vecgen studio``: the CLI over :mod:`vecgen.studio` (a local web page over every verb)."""

from __future__ import annotations

import argparse
import sys
import time

from vecgen.errors import VecgenError


def run(args: argparse.Namespace) -> int:
    import importlib.util

    from vecgen import studio

    if importlib.util.find_spec("gradio") is None:
        raise VecgenError(studio.INSTALL)
    if args.max_upload_mb is not None and args.max_upload_mb <= 0:
        raise VecgenError("--max-upload-mb must be > 0")
    limit = None if args.max_upload_mb is None else int(args.max_upload_mb * 2**20)
    demo, state = studio.launch(
        args.share_dir, host=args.host, port=args.port, galleries=args.gallery or [], max_upload=limit
    )
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(
            f"vecgen: warning: serving on {args.host}: anyone who can reach this machine can run jobs and read "
            f"the studio's files",
            file=sys.stderr,
            flush=True,
        )
    print(f"vecgen studio: {demo.local_url} (files in {state.folder}; Ctrl-C stops)", flush=True)
    try:
        while True:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    print("vecgen studio: stopping", file=sys.stderr, flush=True)
    state.shutdown()
    demo.close()
    return 0


def register(sub) -> None:
    s = sub.add_parser(
        "studio",
        help="a local web page over every verb: live previews, downloads, gallery, "
        "search (pip install 'vecgen[studio]')",
    )
    s.add_argument("--host", default="127.0.0.1", help="address to serve on (default 127.0.0.1: this machine only)")
    s.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    s.add_argument(
        "--share-dir",
        default=None,
        metavar="DIR",
        help="the studio's folder: runs, uploads and cache; the only files it serves (default "
        "~/.cache/vecgen/studio, or $VECGEN_CACHE/studio)",
    )
    s.add_argument(
        "--gallery", action="append", metavar="SITE", help="a gallery site folder to browse and search (repeatable)"
    )
    s.add_argument("--max-upload-mb", type=float, metavar="MB", help="largest upload (default 20)")
    s.set_defaults(func=run)
