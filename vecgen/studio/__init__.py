"""``vecgen studio``: a local web page (Gradio) over every verb, with live previews, the gallery and search.

    >>> from vecgen import studio
    >>> demo, state = studio.launch("studio-out", port=7860)

Modules: :mod:`~vecgen.studio.forms` (a verb's form made from its config, the
options a filled form stands for and its command line; no Gradio),
:mod:`~vecgen.studio.jobs` (a run of the verb's function in a worker thread:
frames, stop, its Result), :mod:`~vecgen.studio.safety` (escaping, upload
checks, the file guard), :mod:`~vecgen.studio.app` (the page) and
:mod:`~vecgen.studio.browse` (gallery and search tabs). The studio calls the
Python API (:data:`vecgen.api.VERBS`); it never imports the command line.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vecgen.errors import VecgenError

INSTALL = "the studio needs Gradio: pip install 'vecgen[studio]'"


def default_folder() -> Path:
    """The studio's folder when ``--share-dir`` is not given: a user cache folder, never the working
    directory (a studio started in a git checkout must not fill it): ``$VECGEN_CACHE/studio``, else
    ``$XDG_CACHE_HOME/vecgen/studio``, else ``~/.cache/vecgen/studio``."""
    root = os.environ.get("VECGEN_CACHE") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "vecgen"
    return Path(root).expanduser() / "studio"


def launch(
    folder: str | Path | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 7860,
    galleries: Sequence[str | Path] = (),
    max_upload: int | None = None,
) -> tuple[Any, Any]:
    """Start the studio's server in the background; returns ``(gradio Blocks, Studio)``.

    ``folder``: the studio's own folder (runs, uploads, Gradio's and vecgen's
    caches), the only place it serves files from and writes to (None:
    :func:`default_folder`, a user cache folder). Raises a one-line
    :class:`VecgenError` when Gradio is missing or the port is taken.
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

    studio = Studio(root, galleries=list(galleries), max_upload=max_upload or MAX_UPLOAD_BYTES)
    demo = build_app(studio)
    demo.queue(default_concurrency_limit=1)
    try:
        demo.launch(
            server_name=host,
            server_port=int(port),
            prevent_thread_lock=True,
            quiet=True,
            show_error=True,
            inbrowser=False,
            share=False,
            ssr_mode=False,
            mcp_server=False,
            allowed_paths=[],
            max_file_size=studio.max_upload,
            theme=gr.themes.Default(),
            css=CSS,
            app_kwargs={"middleware": [Middleware(FileGuard, root=str(root))]},
        )
    except OSError as e:
        raise VecgenError(f"cannot serve on {host}:{port}: {str(e).splitlines()[0]}") from None
    return demo, studio


__all__ = ["INSTALL", "default_folder", "launch"]
