"""The studio's gallery and search tabs: a gallery site's pictures, and CLIP text search over a folder.

Only folders the studio was started with are offered (its own runs folder, the
``--gallery`` sites and the sites inside its folder), from a list, never a typed
path; pictures reach the page as copies in the studio's folder, so the server
hands out no file from elsewhere.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vecgen.config import Option
from vecgen.errors import VecgenError
from vecgen.studio.forms import Field, check_spec
from vecgen.studio.safety import escape, inside, status_html

#: The search tab's model spec, checked as a verb's ``--clip`` is (names, never server paths).
SEARCH_CLIP = Field("clip", Option("CLIP model spec", "clip"), "auto", "text")
#: Most pictures a gallery view shows (a site may hold thousands).
MAX_SHOWN = 200


# ``studio``: a :class:`vecgen.studio.app.Studio` (its folder, runs folder and --gallery sites).
def site_folders(studio: Any) -> list[Path]:
    """Gallery sites on offer: the ``--gallery`` folders, then sites (folders with a manifest) in the studio's."""
    found = list(studio.galleries)
    if studio.folder.is_dir():
        for manifest in sorted(studio.folder.glob("*/manifest.json")):
            if manifest.parent not in found:
                found.append(manifest.parent)
    return found


def search_folders(studio: Any) -> list[Path]:
    """Folders on offer to search: the studio's runs, then each gallery site."""
    return [studio.runs, *site_folders(studio)]


def _offered(choice: Any, offered: list[Path]) -> Path:
    for p in offered:
        if str(p) == str(choice):
            return p
    raise VecgenError("choose one of the folders in the list")


def _picture(path: Path, size: int = 256):
    """A picture file as a small PIL image (SVGs through vecgen's rasterizer)."""
    if path.suffix.lower() == ".svg":
        from vecgen.api import render_svg

        image = render_svg(path)
    else:
        from vecgen.io import open_image

        image = open_image(path).convert("RGB")
    image.thumbnail((size, size))
    return image


def gallery_view(studio: Any, choice: Any) -> tuple[list, str]:
    """``(pictures with captions, HTML table)`` of a gallery site's finished jobs."""
    from vecgen.gallery.manifest import read_manifest

    site = _offered(choice, site_folders(studio))
    data = read_manifest(site, required=True)
    records = [data["jobs"][i] for i in data.get("order", []) if i in data["jobs"]] or list(data["jobs"].values())
    items, rows = [], []
    for r in records:
        if r.get("status") != "done":
            continue
        files = r.get("files") or {}
        rel = files.get("png") or files.get("svg")
        path = site / rel if isinstance(rel, str) else None
        if path is None or not inside(path, site) or not path.is_file():
            continue
        caption = f"{r.get('prompt', '')} · seed {r.get('seed', '')}"
        items.append((_picture(path), caption))
        loss = r.get("loss")
        loss = f"{loss:.4f}" if isinstance(loss, (int, float)) else ""
        rows.append(
            f"<tr><td>{escape(r.get('function', ''))}</td><td>{escape(r.get('prompt', ''))}</td>"
            f"<td>{escape(r.get('seed', ''))}</td><td>{escape(loss)}</td>"
            f"<td><code>{escape(json.dumps(r.get('options', {}), sort_keys=True))}</code></td></tr>"
        )
        if len(items) >= MAX_SHOWN:
            break
    title = escape(data.get("title") or site.name)
    table = (
        f"<p><b>{title}</b>: {len(items)} pictures</p><table class='vg-table'><tr><th>verb</th><th>prompt</th>"
        f"<th>seed</th><th>loss</th><th>options</th></tr>{''.join(rows)}</table>"
    )
    return items, table


def search_view(studio: Any, choice: Any, query: str, k: Any, clip: str) -> tuple[list, str]:
    """``(pictures with captions, HTML list)``: the ``k`` pictures of a folder nearest to ``query``."""
    from vecgen import search

    folder = _offered(choice, search_folders(studio))
    if not folder.is_dir():
        raise VecgenError(f"{folder.name}: nothing there yet")
    spec = (clip or "auto").strip()
    check_spec(SEARCH_CLIP, spec)
    # the search cache is written only inside the studio's own folder (not into a --gallery site elsewhere)
    hits = search.search(folder, query, int(k or 8), clip=spec, device="auto", cache=inside(folder, studio.folder))
    items, rows = [], []
    for h in hits:
        path = folder / h.path
        if not inside(path, folder):
            continue
        items.append((_picture(path), f"{h.rank}. {h.score:+.3f} {h.path}"))
        rows.append(f"<li>{h.rank}. {h.score:+.4f} <code>{escape(h.path)}</code></li>")
    return items, f"<p>{len(hits)} results for \u201c{escape(query)}\u201d</p><ol class='vg-hits'>{''.join(rows)}</ol>"


def browse_tabs(studio: Any) -> None:
    """Add the gallery and search tabs to the page being built."""
    import gradio as gr

    def sites():
        return [str(p) for p in site_folders(studio)]

    def folders():
        return [str(p) for p in search_folders(studio)]

    with gr.Tab("gallery", id="gallery", elem_id="tab-gallery"):
        with gr.Row():
            site = gr.Dropdown(
                choices=sites(),
                value=(sites() or [None])[0],
                label="gallery site",
                info="a folder written by `vecgen gallery run` (start the studio with --gallery DIR)",
                elem_id="gallery-site",
            )
            refresh = gr.Button("Refresh list", elem_id="gallery-refresh")
            show = gr.Button("Show", variant="primary", elem_id="gallery-show")
        pictures = gr.Gallery(label="pictures", columns=6, height=420, elem_id="gallery-pictures")
        table = gr.HTML(elem_id="gallery-table")

        def do_show(choice):
            try:
                return gallery_view(studio, choice)
            except VecgenError as e:
                return [], status_html(str(e), "error")

        show.click(do_show, inputs=site, outputs=[pictures, table], api_name="gallery")
        refresh.click(lambda: gr.Dropdown(choices=sites()), outputs=site, api_visibility="private", queue=False)

    with gr.Tab("search", id="search", elem_id="tab-search"):
        with gr.Row():
            folder = gr.Dropdown(
                choices=folders(),
                value=folders()[0],
                label="folder",
                info="the studio's runs or a gallery site (searched recursively)",
                elem_id="search-folder",
            )
            query = gr.Textbox(label="query", placeholder='e.g. "a red circle"', elem_id="search-query")
        with gr.Row():
            k = gr.Number(value=8, precision=0, label="-k", info="number of results", elem_id="search-k")
            clip = gr.Textbox(value="auto", label="--clip", info="CLIP model spec", elem_id="search-clip")
            go = gr.Button("Search", variant="primary", elem_id="search-go")
        found = gr.Gallery(label="results", columns=6, height=420, elem_id="search-results")
        hits = gr.HTML(elem_id="search-hits")

        def do_search(choice, text, count, model):
            try:
                return search_view(studio, choice, text, count, model)
            except VecgenError as e:
                return [], status_html(str(e), "error")

        go.click(
            do_search,
            inputs=[folder, query, k, clip],
            outputs=[found, hits],
            api_name="search",
            concurrency_limit=1,
            concurrency_id="vecgen-run",
        )
        folder.focus(lambda: gr.Dropdown(choices=folders()), outputs=folder, api_visibility="private", queue=False)
