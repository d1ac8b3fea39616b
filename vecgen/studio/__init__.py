"""``vecgen studio``: a local web page (Gradio) over every verb, with live previews, the gallery and search.

    >>> from vecgen.cli import build_parser
    >>> from vecgen import studio
    >>> demo, state = studio.launch(studio.verb_parsers(build_parser()), "studio-out", port=7860)

Modules: :mod:`~vecgen.studio.forms` (a verb's form read from its CLI parser,
and the argv a filled form stands for; no Gradio), :mod:`~vecgen.studio.jobs`
(a run in a worker thread: frames, stop, files), :mod:`~vecgen.studio.safety`
(escaping, upload checks, the file guard), :mod:`~vecgen.studio.app` (the
page) and :mod:`~vecgen.studio.browse` (gallery and search tabs). The studio
sits above the gallery and below the CLI: ``vecgen.cli.studio`` hands it the
parser, so it reads every verb's flags without importing the CLI.
"""
from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vecgen.errors import VecgenError

INSTALL = "the studio needs Gradio: pip install 'vecgen[studio]'"


def verb_parsers(parser) -> dict[str, argparse.ArgumentParser]:
    """``{verb: its subparser}`` from the ``vecgen`` parser (:func:`vecgen.cli.build_parser`) or its
    subcommands action, in registry order."""
    from vecgen.api import VERBS

    sub = parser if isinstance(parser, argparse._SubParsersAction) else next(
        (a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
    if sub is None:
        raise VecgenError("not the vecgen parser: it has no subcommands")
    return {name: sub.choices[name] for name in VERBS if name in sub.choices}


def default_folder() -> Path:
    """The studio's folder when ``--share-dir`` is not given: a user cache folder, never the working
    directory (a studio started in a git checkout must not fill it): ``$VECGEN_CACHE/studio``, else
    ``$XDG_CACHE_HOME/vecgen/studio``, else ``~/.cache/vecgen/studio``."""
    root = os.environ.get("VECGEN_CACHE") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "vecgen"
    return Path(root).expanduser() / "studio"


def launch(parsers: dict[str, argparse.ArgumentParser], folder: str | Path | None = None, *,
           host: str = "127.0.0.1", port: int = 7860, galleries: Sequence[str | Path] = (),
           max_upload: int | None = None) -> tuple[Any, Any]:
    """Start the studio's server in the background; returns ``(gradio Blocks, Studio)``.

    ``folder``: the studio's own folder (runs, uploads, Gradio's cache), the only
    place it serves files from (None: :func:`default_folder`, a user cache folder).
    Raises a one-line :class:`VecgenError` when Gradio is missing or the port is taken.
    """
    import importlib.util

    folder = default_folder() if folder is None else folder
    root = Path(folder).expanduser().resolve()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise VecgenError(f"--share-dir {folder}: cannot create it ({e.strerror or type(e).__name__})") from None
    from vecgen.studio.app import CSS, Studio, build_app, configure_gradio
    from vecgen.studio.safety import MAX_UPLOAD_BYTES, FileGuard

    configure_gradio(root)
    if importlib.util.find_spec("gradio") is None:
        raise VecgenError(INSTALL)
    import gradio as gr
    from starlette.middleware import Middleware

    studio = Studio(parsers, root, galleries=list(galleries), max_upload=max_upload or MAX_UPLOAD_BYTES)
    demo = build_app(studio)
    demo.queue(default_concurrency_limit=1)
    try:
        demo.launch(server_name=host, server_port=int(port), prevent_thread_lock=True, quiet=True, show_error=True,
                    inbrowser=False, share=False, ssr_mode=False, mcp_server=False, allowed_paths=[],
                    max_file_size=studio.max_upload, theme=gr.themes.Default(), css=CSS,
                    app_kwargs={"middleware": [Middleware(FileGuard, root=str(root))]})
    except OSError as e:
        raise VecgenError(f"cannot serve on {host}:{port}: {str(e).splitlines()[0]}") from None
    return demo, studio


__all__ = ["INSTALL", "default_folder", "launch", "verb_parsers"]
