"""What the studio lets in and out: escaped text, checked uploads, files served only from its own folder."""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Any

from vecgen.config import IMAGE_SUFFIXES
from vecgen.errors import VecgenError
from vecgen.studio.forms import UPLOAD_KINDS

#: Largest upload the studio accepts (the server refuses bigger ones before they are stored, too).
MAX_UPLOAD_BYTES = 20 * 2**20


def escape(text: Any) -> str:
    """Text made safe to put inside HTML (quotes too, so it may sit in an attribute)."""
    return html.escape(str(text), quote=True)


def status_html(text: str, kind: str = "", step: int | None = None, **data: float | None) -> str:
    """A status line for the page, every character of ``text`` escaped (prompts are user text).

    ``step`` and ``data`` (numbers: a job's ``started`` / ``finished`` times) go in ``data-*`` attributes.
    """
    cls = "vg-status" + (f" vg-{kind}" if kind else "")
    attrs = {"step": None if step is None else int(step), **data}
    extra = "".join(
        f' data-{k}="{float(v):.3f}"' if k != "step" else f' data-step="{v}"' for k, v in attrs.items() if v is not None
    )
    return f'<div class="{cls}"{extra}>{escape(text)}</div>'


def check_upload(path: str | os.PathLike, kind: str | None, max_bytes: int = MAX_UPLOAD_BYTES) -> Path:
    """Refuse an uploaded file that is too big, of the wrong type, or not what its name says.

    ``kind``: ``image`` (decoded by PIL, size-checked), ``svg`` (parsed by
    vecgen's safe SVG reader), ``mesh`` (suffix only: meshes are read by the verb
    that takes them), ``file`` (size only) or ``folder`` (one file of a folder:
    checked as an image or an SVG when its suffix says it is one, else by size).
    Returns the path; raises a one-line :class:`VecgenError` saying what is wrong.
    """
    p = Path(path)
    name = p.name
    try:
        size = p.stat().st_size
    except OSError:
        raise VecgenError(f"{name}: the upload did not arrive") from None
    if size > max_bytes:
        raise VecgenError(f"{name}: {size / 2**20:.1f} MB is over the studio's {max_bytes / 2**20:.0f} MB upload limit")
    if size == 0:
        raise VecgenError(f"{name}: the file is empty")
    if kind == "folder":
        kind = "image" if p.suffix.lower() in IMAGE_SUFFIXES else "svg" if p.suffix.lower() == ".svg" else "file"
    suffixes = UPLOAD_KINDS.get(kind or "file", ())
    if suffixes and p.suffix.lower() not in suffixes:
        raise VecgenError(f"{name}: not {_article(kind)} file (expected {', '.join(suffixes)})")
    if kind == "image":
        from vecgen.io import open_image

        try:
            open_image(p, "image").close()
        except VecgenError as e:
            if "pixels" in str(e):  # a real image, over the size limit: say so (without the server's path)
                raise VecgenError(f"{name}: {str(e).replace(str(p), name)}") from None
            raise VecgenError(f"{name}: not an image (PNG, JPEG, WebP, BMP, GIF or TIFF) that can be read") from None
    elif kind == "svg":
        from vecgen.svg_read import read_svg

        try:
            read_svg(p)
        except VecgenError as e:
            raise VecgenError(f"{name}: not an SVG vecgen can read ({str(e).removeprefix(str(p) + ': ')})") from None
    return p


def _article(kind: str | None) -> str:
    return {"image": "an image", "svg": "an SVG", "mesh": "a mesh"}.get(kind or "", "a")


def inside(path: str | os.PathLike, root: str | os.PathLike) -> bool:
    """Whether ``path`` (symlinks resolved) is ``root`` or lies under it."""
    try:
        real = Path(os.path.realpath(path))
        base = Path(os.path.realpath(root))
    except (OSError, ValueError):
        return False
    return real == base or base in real.parents


class FileGuard:
    """ASGI middleware: the server's file routes answer only for files under the studio's folder.

    Gradio serves ``/gradio_api/file=PATH`` for its upload folder and cache (both
    inside the studio's folder, see :func:`vecgen.studio.app.configure_gradio`)
    and would fetch ``file=https://...`` URLs for a caller; this refuses, with 403,
    any file route whose target is not under ``root`` (URLs, ``..``, symlinks out).
    """

    MARK = "file="

    def __init__(self, app, root: str | os.PathLike) -> None:
        self.app = app
        self.root = str(root)

    def allowed(self, raw_path: str) -> bool:
        i = raw_path.find(self.MARK)
        if i < 0:
            return True
        target = raw_path[i + len(self.MARK) :]  # the ASGI path is already percent-decoded
        if "://" in target or target.startswith("//") or "\x00" in target:
            return False
        return inside(target, self.root)

    async def __call__(self, scope, receive, send) -> None:
        if scope.get("type") == "http" and not self.allowed(scope.get("path", "")):
            await send(
                {
                    "type": "http.response.start",
                    "status": 403,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8")],
                }
            )
            await send({"type": "http.response.body", "body": b"not a file of this studio\n"})
            return
        await self.app(scope, receive, send)
