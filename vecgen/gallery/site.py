"""The static site: ``index.html`` built from a site's manifest, one self-contained page.

The page has every picture as a card (status, settings, links to its files), a
filter box, and, when CLIP ranks the pictures (:func:`rank_site`), each one's
retrieval rank for its own prompt and the best matches per prompt. Every user
string is escaped, links are checked to point inside the site's files folder,
and a Content-Security-Policy pins the one inline style and script by hash and
allows no network.
"""
from __future__ import annotations

import base64
import hashlib
import html
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any, Callable

from vecgen.errors import VecgenError
from vecgen.gallery.manifest import FILES_DIR, read_manifest
from vecgen.io import atomic_write

INDEX = "index.html"


def _json_for_script(data: Any) -> str:
    """JSON safe inside ``<script type="application/json">`` (no ``</script>``, ``<!--`` or U+2028)."""
    s = json.dumps(data, ensure_ascii=False, sort_keys=True, default=str)
    for a, b in (("&", "\\u0026"), ("<", "\\u003c"), (">", "\\u003e"), ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        s = s.replace(a, b)
    return s


_SAFE_FILE = re.compile(rf"^{FILES_DIR}/[A-Za-z0-9][A-Za-z0-9._-]*$")


def _href(rel: Any) -> str | None:
    """A manifest file path as a safe relative link, or None (no schemes, no ``..``)."""
    return rel if isinstance(rel, str) and _SAFE_FILE.match(rel) and ".." not in rel else None


def _picture(record: dict[str, Any]) -> str | None:
    """The safe link to show a record's picture by: its SVG, else its PNG, else None."""
    files = record.get("files") or {}
    return _href(files.get("svg")) or _href(files.get("png"))


def rank_site(out: Path, records: list[dict[str, Any]], clip: str | None = None, device="cpu",
              warn: Callable[[str], None] | None = None) -> dict[str, Any] | None:
    """CLIP retrieval over the site's pictures for each prompt -> ``{"clip", "ranks", "best"}``.

    ``ranks[job id]`` is the 1-based rank of the job's picture among all pictures for its own prompt;
    ``best[prompt]`` the top matches ``[(job id, score)]``. None when fewer than two pictures exist.
    """
    from vecgen.search import ImageIndex

    done = [r for r in records if r.get("status") == "done" and _href((r.get("files") or {}).get("png"))]
    if len(done) < 2:
        return None
    if clip is None:
        clips = Counter(str((r.get("options") or {}).get("clip", "auto")) for r in done)
        clip = clips.most_common(1)[0][0]
    by_path = {r["files"]["png"][len(FILES_DIR) + 1:]: r["id"] for r in done}
    index = ImageIndex(out / FILES_DIR, clip, device=device, warn=warn).refresh(sorted(by_path))
    ranks: dict[str, int] = {}
    best: dict[str, list] = {}
    for prompt in dict.fromkeys(r["prompt"] for r in done):
        hits = index.search(prompt, None)
        order = [(by_path[h.path], h.score) for h in hits if h.path in by_path]
        best[prompt] = [[jid, round(score, 4)] for jid, score in order[:4]]
        pos = {jid: i + 1 for i, (jid, _) in enumerate(order)}
        for r in done:
            if r["prompt"] == prompt and r["id"] in pos:
                ranks[r["id"]] = pos[r["id"]]
    return {"clip": clip, "ranks": ranks, "best": best, "count": len(index.paths)}


#: How a card names what a draw job drew, by its resolved ``shapes`` setting.
SHAPE_WORDS = {"strokes": "strokes", "blobs": "blobs", "mixed": "strokes and blobs"}


def drawn_text(record: dict[str, Any], settings: dict[str, Any] | None = None) -> str | None:
    """What a draw job's picture is made of, e.g. ``"32 blobs"``, ``"64 strokes"``, ``"16 strokes and blobs"``.

    ``settings`` are those the run recorded in its files (where ``shapes="auto"`` is resolved, e.g. to blobs
    for the mini models); without them the record's own options say it when they name the shapes. None for
    other functions, jobs not done, and shapes left on auto with no recorded settings.
    """
    if record.get("function") != "draw" or record.get("status") != "done":
        return None
    merged = {**(record.get("options") or {}), **(settings or {})}
    shapes = merged.get("shapes")
    word = SHAPE_WORDS.get(shapes) if isinstance(shapes, str) else None
    if word is None:
        return None
    n = merged.get("strokes")
    return f"{n} {word}" if isinstance(n, int) and not isinstance(n, bool) else word


def file_settings(out: Path, record: dict[str, Any]) -> dict[str, Any]:
    """The settings a job's run wrote into its PNG (``{}`` when it has none or the file is unreadable)."""
    rel = _href((record.get("files") or {}).get("png"))
    if not rel:
        return {}
    try:
        from PIL import Image

        with Image.open(out / rel) as im:
            text = (getattr(im, "text", None) or {}).get("settings")
        data = json.loads(text) if text else {}
    except Exception:  # noqa: BLE001 - a damaged file costs its card a detail, never the page
        return {}
    return data if isinstance(data, dict) else {}


def build_site(out: str | Path, *, clip: str | None = None, search: bool = True, device="cpu",
               title: str | None = None, warn: Callable[[str], None] | None = None) -> Path:
    """Write ``out/index.html`` from ``out/manifest.json``; returns its path."""
    out = Path(out)
    if not out.is_dir():
        raise VecgenError(f"{out}: not a folder")
    manifest = read_manifest(out, required=True)
    order = [jid for jid in manifest.get("order", []) if jid in manifest["jobs"]] or list(manifest["jobs"])
    records = [manifest["jobs"][jid] for jid in order]
    ranking = None
    if search and records:
        try:
            ranking = rank_site(out, records, clip, device, warn)
        except VecgenError as e:
            if clip is not None:
                raise
            if warn is not None:
                warn(f"no retrieval ranks on the page: {e}")
    drawn = {str(r.get("id")): text for r in records
             if r.get("function") == "draw" and r.get("status") == "done"
             and (text := drawn_text(r, file_settings(out, r)))}
    page = render_page(title or manifest.get("title") or "vecgen gallery", records, ranking, manifest, drawn=drawn)
    path = out / INDEX
    atomic_write(path, page.encode("utf-8"))
    return path


_CSS = """
:root{color-scheme:light;--fg:#1d1d1f;--muted:#5f6368;--line:#dadce0;--bg:#f6f7f9;--card:#fff;--bad:#b3261e}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
header{position:sticky;top:0;z-index:1;background:var(--card);border-bottom:1px solid var(--line);padding:12px 20px}
h1{font-size:20px;margin:0 0 4px}
.summary{color:var(--muted);margin:0 0 8px}
.bar{display:flex;gap:12px;align-items:center}
#filter{flex:0 1 420px;padding:7px 10px;font:inherit;border:1px solid var(--line);border-radius:6px}
#count{color:var(--muted)}
main{padding:16px 20px}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(220px,1fr));gap:16px}
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;overflow:hidden;
  display:flex;flex-direction:column}
.thumb{display:block;background:#fff;border-bottom:1px solid var(--line)}
.thumb img{display:block;width:100%;aspect-ratio:1/1;object-fit:contain}
.placeholder{display:flex;align-items:center;justify-content:center;aspect-ratio:1/1;color:var(--muted);
  background:#eef0f3;border-bottom:1px solid var(--line)}
.failed .placeholder{color:var(--bad)}
.body{padding:8px 10px 10px}
.prompt{font-size:14px;font-weight:600;margin:0 0 4px;overflow-wrap:anywhere}
.meta{color:var(--muted);margin:0 0 4px}
.error{color:var(--bad);overflow-wrap:anywhere;margin:4px 0}
.links a{margin-right:10px}
details pre{white-space:pre-wrap;overflow-wrap:anywhere;font-size:12px;background:#f1f3f4;padding:6px;
  border-radius:4px;margin:4px 0 0}
.best{margin:24px 0 0}
.best h2{display:inline;font-size:15px;margin:0}
.best summary{cursor:pointer;margin:0 0 8px}
.row{display:flex;gap:10px;flex-wrap:wrap;margin:0 0 12px}
.row h3{flex-basis:100%;font-size:13px;font-weight:500;margin:0;color:var(--muted);overflow-wrap:anywhere}
.match{width:92px;text-decoration:none;color:var(--muted);font-size:12px;text-align:center}
.match img{display:block;width:92px;height:92px;object-fit:contain;background:#fff;border:1px solid var(--line);
  border-radius:4px}
[hidden]{display:none!important}
"""

_JS = """
(function(){
  "use strict";
  var data = JSON.parse(document.getElementById("gallery-data").textContent);
  var cards = Array.prototype.slice.call(document.querySelectorAll("#grid .card"));
  var rows = Array.prototype.slice.call(document.querySelectorAll(".best .row"));
  var box = document.getElementById("filter");
  var count = document.getElementById("count");
  var empty = document.getElementById("empty");
  var text = {};
  data.jobs.forEach(function(j){
    text[j.id] = [j.prompt, j.name || "", j.function, j.drawn || "", "seed " + j.seed, j.status,
                  JSON.stringify(j.options)].join(" \\n ").toLowerCase();
  });
  function apply(){
    var terms = box.value.toLowerCase().split(/\\s+/).filter(Boolean);
    var shown = 0;
    cards.forEach(function(c){
      var t = text[c.getAttribute("data-id")] || "";
      var ok = terms.every(function(q){ return t.indexOf(q) !== -1; });
      c.hidden = !ok;
      if (ok) shown++;
    });
    rows.forEach(function(r){
      var t = (r.getAttribute("data-prompt") || "").toLowerCase();
      r.hidden = terms.length > 0 && !terms.every(function(q){ return t.indexOf(q) !== -1; });
    });
    count.textContent = shown + " of " + cards.length + " shown";
    empty.hidden = shown !== 0;
  }
  box.addEventListener("input", apply);
  var q = new URLSearchParams(window.location.search).get("q");
  if (q) box.value = q;
  apply();
})();
"""



def _csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii") + "'"


def _card(r: dict[str, Any], records: list[dict[str, Any]], ranking: dict[str, Any] | None,
          drawn: str | None = None) -> str:
    """One record's ``<article>``: thumbnail or placeholder, prompt, meta line, error, settings and links."""
    e = html.escape
    ranks = (ranking or {}).get("ranks", {})
    jid = str(r.get("id", ""))
    files = r.get("files") or {}
    status = r.get("status", "pending")
    thumb_src = _picture(r)
    prompt = str(r.get("prompt", ""))
    parts = [f'<article class="card {e(status)}" id="job-{e(jid)}" data-id="{e(jid)}" data-status="{e(status)}">']
    if status == "done" and thumb_src:
        parts.append(f'<a class="thumb" href="{e(thumb_src)}"><img src="{e(thumb_src)}" alt="{e(prompt)}" '
                     f'title="{e(prompt)}"></a>')
    else:
        parts.append(f'<div class="placeholder">{"failed" if status == "failed" else "not run yet"}</div>')
    parts.append('<div class="body">')
    parts.append(f'<h2 class="prompt">{e(prompt)}</h2>')
    meta = [e(str(r.get("function", ""))), f"seed {e(str(r.get('seed', '')))}"]
    if drawn:
        meta.insert(1, f'<span class="drawn">{e(drawn)}</span>')
    if r.get("name"):
        meta.insert(0, e(str(r["name"])))
    if isinstance(r.get("loss"), (int, float)):
        meta.append(f"loss {r['loss']:.4f}")
    if isinstance(r.get("time_s"), (int, float)):
        meta.append(f"{r['time_s']:.1f} s")
    if jid in ranks:
        total = sum(1 for x in records if x.get("prompt") == prompt and x.get("id") in ranks)
        meta.append(f'<span class="rank" title="CLIP retrieval rank of this picture among all pictures of the '
                    f'gallery for its own prompt">rank {ranks[jid]}/{(ranking or {}).get("count", total)}</span>')
    parts.append(f'<p class="meta">{" · ".join(meta)}</p>')
    if status == "failed":
        parts.append(f'<p class="error">{e(str(r.get("error", "")))}</p>')
    settings = {"function": r.get("function"), "prompt": prompt, "seed": r.get("seed"), **(r.get("options") or {})}
    parts.append(f'<details><summary>settings</summary><pre>'
                 f'{e(json.dumps(settings, indent=1, ensure_ascii=False, default=str))}</pre></details>')
    links = [f'<a href="{e(h)}">{k.upper()}</a>' for k in ("svg", "png") if (h := _href(files.get(k)))]
    if links:
        parts.append(f'<p class="links">{" ".join(links)}</p>')
    parts.append("</div></article>")
    return "".join(parts)


def _best_matches(ranking: dict[str, Any] | None, records: list[dict[str, Any]]) -> str:
    """The "best matches per prompt" section, or "" without a ranking."""
    if not (ranking and ranking.get("best")):
        return ""
    e = html.escape
    by_id = {r.get("id"): r for r in records}
    rows = []
    for prompt, matches in ranking["best"].items():
        items = []
        for i, (jid, score) in enumerate(matches):
            rec = by_id.get(jid) or {}
            src = _picture(rec)
            if not src:
                continue
            own = " (own)" if rec.get("prompt") == prompt else ""
            items.append(f'<a class="match" href="#job-{e(str(jid))}" title="{e(str(rec.get("prompt", "")))}">'
                         f'<img src="{e(src)}" alt="{e(str(rec.get("prompt", "")))}">'
                         f'#{i + 1} · {score:.3f}{own}</a>')
        rows.append(f'<div class="row" data-prompt="{e(prompt)}"><h3>{e(prompt)}</h3>{"".join(items)}</div>')
    return (f'<section class="best"><details open><summary><h2>Best matches per prompt</h2></summary>'
            f'<p class="meta">CLIP retrieval over all {ranking.get("count", 0)} pictures with '
            f'{e(str(ranking.get("clip")))}</p>{"".join(rows)}</details></section>')


def render_page(title: str, records: list[dict[str, Any]], ranking: dict[str, Any] | None,
                manifest: dict[str, Any] | None = None, *, drawn: dict[str, str] | None = None) -> str:
    """The gallery page as one self-contained HTML string (every user string escaped).

    ``drawn``: job id -> what its picture is made of (see :func:`drawn_text`; :func:`build_site` reads it from
    the files); by default the records' own options say it where they can.
    """
    from vecgen import __version__

    e = html.escape
    ranks = (ranking or {}).get("ranks", {})
    n_done = sum(1 for r in records if r.get("status") == "done")
    n_failed = sum(1 for r in records if r.get("status") == "failed")
    n_pending = len(records) - n_done - n_failed
    if drawn is None:
        drawn = {str(r.get("id")): text for r in records if (text := drawn_text(r))}
    cards = [_card(r, records, ranking, drawn.get(str(r.get("id")))) for r in records]
    data = {"title": title, "jobs": [{"id": r.get("id"), "prompt": r.get("prompt"), "name": r.get("name"),
                                      "function": r.get("function"), "seed": r.get("seed"), "status": r.get("status"),
                                      "options": r.get("options") or {}, "loss": r.get("loss"),
                                      "drawn": drawn.get(str(r.get("id"))),
                                      "rank": ranks.get(r.get("id")),
                                      "files": {k: h for k, v in (r.get("files") or {}).items() if (h := _href(v))}}
                                     for r in records],
            "ranking": {"clip": ranking.get("clip"), "best": ranking.get("best")} if ranking else None}
    summary = f"{n_done} pictures"
    if n_failed:
        summary += f" · {n_failed} failed"
    if n_pending:
        summary += f" · {n_pending} not run yet"
    last = (manifest or {}).get("last_run") or {}
    if last.get("finished"):
        summary += f" · last run {e(str(last['finished']))}"
    summary += f" · vecgen {e(__version__)}"
    csp = (f"default-src 'none'; img-src 'self' data:; style-src {_csp_hash(_CSS)}; script-src {_csp_hash(_JS)}; "
           f"base-uri 'none'; form-action 'none'")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<meta http-equiv=\"Content-Security-Policy\" content=\"{e(csp, quote=False)}\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        "<meta name=\"referrer\" content=\"no-referrer\">\n<link rel=\"icon\" href=\"data:,\">\n"
        f"<title>{e(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        f"<header><h1>{e(title)}</h1><p class=\"summary\">{summary}</p>"
        "<div class=\"bar\"><input id=\"filter\" type=\"search\" placeholder=\"Filter by prompt, settings, seed…\" "
        "aria-label=\"Filter the pictures\" autocomplete=\"off\"><span id=\"count\"></span></div></header>\n"
        "<main>\n<div class=\"grid\" id=\"grid\">\n" + "\n".join(cards) + "\n</div>\n"
        f"<p id=\"empty\" hidden>No picture matches the filter.</p>\n{_best_matches(ranking, records)}\n</main>\n"
        f"<script type=\"application/json\" id=\"gallery-data\">{_json_for_script(data)}</script>\n"
        f"<script>{_JS}</script>\n</body>\n</html>\n"
    )
