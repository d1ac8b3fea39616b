"""CLIP text-to-image retrieval over a folder of pictures (PNG, JPEG, WebP, SVG...).

    >>> from vecgen.search import search
    >>> for hit in search("site/files", "a red circle", k=5, clip="ViT-B-32"):
    ...     print(hit.rank, f"{hit.score:.3f}", hit.path)

Image embeddings are cached in the folder, one file per CLIP model
(``DIR/.vecgen-search-<model>.safetensors``): a ``(N, D)`` tensor plus a JSON
index in the file's metadata keyed by relative path, modification time and size.
A later search re-embeds only the files that were added or changed and drops
the ones that are gone. SVGs are rasterized with :func:`vecgen.api.render_svg`.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Sequence

from vecgen.errors import VecgenError

if TYPE_CHECKING:  # torch loads on first use, not on import
    from torch import Tensor

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".svg")
CACHE_PREFIX = ".vecgen-search-"
CACHE_VERSION = "1"
_BATCH = 32


@dataclass(frozen=True)
class Hit:
    """One search result: ``path`` relative to the searched folder, cosine ``score``, 1-based ``rank``."""

    rank: int
    score: float
    path: str


# ----------------------------------------------------------------------------- perceptors
def text_embedding(perceptors, query: str):
    """Weighted, normalized text embedding of a prompt (``"a:1 | b:-0.5"`` syntax) per perceptor."""
    import torch
    import torch.nn.functional as F

    from vecgen.prompts import parse_prompts

    parts = parse_prompts(query)
    out = []
    for perceptor, _ in perceptors:
        emb = perceptor.encode_text([p.text for p in parts])
        w = torch.tensor([p.weight for p in parts], dtype=emb.dtype, device=emb.device)
        out.append(F.normalize((w[:, None] * emb).sum(0), dim=-1).cpu())
    return out


def check_query(query: str) -> None:
    """Refuse an empty query in search's own words (the prompt parser's message is about drawing)."""
    from vecgen.prompts import parse_prompts

    if query is None or not any(part.strip() for part in str(query).split("|")):
        raise VecgenError('empty query: say what to look for, e.g. vecgen search DIR "a red circle"')
    parse_prompts(query)


# ----------------------------------------------------------------------------- files
def list_images(folder: str | Path) -> list[str]:
    """Relative POSIX paths of the pictures under ``folder`` (recursive, hidden entries skipped), sorted."""
    root = Path(folder)
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            if name.startswith(".") or not name.lower().endswith(IMAGE_SUFFIXES):
                continue
            out.append((Path(dirpath) / name).relative_to(root).as_posix())
    return sorted(out)


def _file_key(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_mtime_ns, st.st_size


def _unchanged(path: Path, mtime_ns: int, size: int) -> bool:
    try:
        return _file_key(path) == (mtime_ns, size)
    except OSError:
        return False


def load_picture(path: str | Path, size: int):
    """A picture file -> ``(1, 3, size, size)`` in ``[0, 1]``; SVGs go through vecgen's rasterizer."""
    from vecgen.api import render_svg
    from vecgen.io import load_image, pil_to_tensor

    p = Path(path)
    if p.suffix.lower() == ".svg":
        return pil_to_tensor(render_svg(p, (size, size)))
    return load_image(p, (size, size))


def cache_path(folder: str | Path, clip: str) -> Path:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", clip).strip("_") or "model"
    return Path(folder) / f"{CACHE_PREFIX}{slug}.safetensors"


def _read_cache(path: Path, clip: str) -> dict[str, tuple[int, int, Tensor]]:
    """``{relpath: (mtime_ns, size, embedding row)}`` from a cache file; empty if absent or unusable."""
    if not path.is_file():
        return {}
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            if meta.get("version") != CACHE_VERSION or meta.get("clip") != clip:
                return {}
            index = json.loads(meta.get("index", "[]"))
            emb = f.get_tensor("embeddings") if index else None
    except Exception:  # a damaged cache is rebuilt, never fatal
        return {}
    if emb is None or emb.shape[0] != len(index):
        return {}
    return {row["path"]: (int(row["mtime_ns"]), int(row["size"]), emb[i]) for i, row in enumerate(index)}


def _write_cache(
    path: Path, clip: str, entries: Sequence[tuple[str, int, int, Tensor]], warn: Callable[[str], None] | None
) -> None:
    import torch

    from vecgen.io import atomic_write, refuse_foreign, safetensors_bytes

    index = [{"path": p, "mtime_ns": m, "size": s} for p, m, s, _ in entries]
    emb = torch.stack([e for *_, e in entries]).contiguous() if entries else torch.zeros(0, 1)
    data = safetensors_bytes(
        {"embeddings": emb},
        {"vecgen": "search cache", "version": CACHE_VERSION, "clip": clip, "index": json.dumps(index)},
    )
    try:
        refuse_foreign(path, "search cache", "search cache", legacy=("version", "clip", "index"))
        atomic_write(path, data)
    except VecgenError as e:  # an unwritable folder, or a file of another kind there: never fatal, never lost
        if warn is not None:
            warn(f"{e}; searching without a cache")


# ----------------------------------------------------------------------------- the index
class ImageIndex:
    """Image embeddings of a folder for one CLIP spec, kept in sync with an on-disk cache."""

    def __init__(
        self,
        folder: str | Path,
        clip: str = "auto",
        *,
        device="cpu",
        perceptors=None,
        warn: Callable[[str], None] | None = None,
        cache: bool = True,
    ) -> None:
        from vecgen.options import resolve_device

        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise VecgenError(f"{folder}: not a folder")
        self.clip = clip
        self.device = resolve_device(device) if isinstance(device, (str, type(None))) else device
        self.warn = warn
        self.cache = cache
        self._perceptors = perceptors
        self.paths: list[str] = []
        self.embeddings: list = []  # one (N, D) tensor per perceptor
        self.stats = {"embedded": 0, "cached": 0, "skipped": 0}
        self.cache_written = False

    @property
    def perceptors(self):
        if self._perceptors is None:
            from vecgen.api import load_perceptors

            self._perceptors = load_perceptors(self.clip, self.device, self.warn)
        return self._perceptors

    def refresh(self, paths: Iterable[str] | None = None) -> "ImageIndex":
        """Embed the pictures (all of the folder's, or ``paths`` relative to it), reusing cached rows."""
        import torch

        wanted = list_images(self.folder) if paths is None else sorted(dict.fromkeys(paths))
        self.stats = {"embedded": 0, "cached": 0, "skipped": 0}
        keys = {}
        for rel in wanted:
            try:
                keys[rel] = _file_key(self.folder / rel)
            except OSError:
                self.stats["skipped"] += 1
        per_model = []
        changed = False
        for k, (perceptor, _) in enumerate(self.perceptors):
            spec = self._spec_name(k)
            cfile = cache_path(self.folder, spec)
            cached = _read_cache(cfile, spec) if self.cache else {}
            rows: dict[str, Tensor] = {}
            todo = []
            for rel, (mtime, size) in keys.items():
                hit = cached.get(rel)
                if hit is not None and hit[0] == mtime and hit[1] == size:
                    rows[rel] = hit[2]
                else:
                    todo.append(rel)
            if k == 0:
                self.stats["cached"] = len(rows)
            bad = set()
            for start in range(0, len(todo), _BATCH):
                batch, names = [], []
                for rel in todo[start : start + _BATCH]:
                    try:
                        batch.append(load_picture(self.folder / rel, perceptor.input_size))
                        names.append(rel)
                    except Exception as e:  # noqa: BLE001 - one unreadable file never stops a search
                        bad.add(rel)
                        if self.warn is not None and k == 0:
                            msg = str(e) if isinstance(e, VecgenError) else f"unreadable ({type(e).__name__})"
                            self.warn(f"skipping {rel}: {msg}")
                if not batch:
                    continue
                with torch.no_grad():
                    emb = perceptor.encode_image(torch.cat(batch).to(perceptor.device)).cpu()
                for rel, row in zip(names, emb):
                    rows[rel] = row
            if k == 0:
                self.stats["embedded"] = len(todo) - len(bad)
                self.stats["skipped"] += len(bad)
            if self.cache:
                kept = dict(rows)
                if paths is not None:  # a partial refresh keeps the other files' rows while they are unchanged
                    for rel, (m, sz, row) in cached.items():
                        if rel not in kept and _unchanged(self.folder / rel, m, sz):
                            kept[rel] = row
                            keys.setdefault(rel, (m, sz))
                if todo and len(todo) > len(bad) or set(kept) != set(cached):
                    entries = [(rel, *keys[rel], kept[rel]) for rel in sorted(kept)]
                    _write_cache(cfile, spec, entries, self.warn)
                    changed = True
            per_model.append(rows)
        self.paths = [rel for rel in wanted if all(rel in rows for rows in per_model)]
        self.embeddings = [
            torch.stack([rows[p] for p in self.paths]) if self.paths else torch.zeros(0, 1) for rows in per_model
        ]
        self.cache_written = changed
        return self

    def _spec_name(self, k: int) -> str:
        from vecgen.options import parse_clip

        names = [n for n, _ in parse_clip(self.clip)]
        return getattr(self.perceptors[k][0], "name", None) or names[min(k, len(names) - 1)]

    def scores(self, query: str):
        """Cosine similarity of every indexed picture to ``query`` (perceptor weights applied) -> ``(N,)``."""
        import torch

        check_query(query)
        total = torch.zeros(len(self.paths))
        wsum = 0.0
        texts = text_embedding(self.perceptors, query)
        for (_, weight), emb, t in zip(self.perceptors, self.embeddings, texts):
            if len(self.paths):
                total += weight * (emb @ t)
            wsum += abs(weight)
        return total / (wsum or 1.0)

    def search(self, query: str, k: int | None = 10) -> list[Hit]:
        """The ``k`` best pictures for ``query`` (all when ``k`` is None), best first; ties by path."""
        if not self.paths:
            return []
        s = self.scores(query).tolist()
        order = sorted(range(len(self.paths)), key=lambda i: (-s[i], self.paths[i]))
        if k is not None:
            order = order[:k]
        return [Hit(rank=r + 1, score=float(s[i]), path=self.paths[i]) for r, i in enumerate(order)]


def search(
    folder: str | Path,
    query: str,
    k: int = 10,
    *,
    clip: str = "auto",
    device="cpu",
    perceptors=None,
    warn: Callable[[str], None] | None = None,
    cache: bool = True,
) -> list[Hit]:
    """Rank the pictures under ``folder`` by CLIP similarity to ``query``; see the module docstring."""
    if k is None or int(k) <= 0:
        raise VecgenError("-k must be > 0")
    check_query(query)
    index = ImageIndex(folder, clip, device=device, perceptors=perceptors, warn=warn, cache=cache)
    if not list_images(index.folder):
        raise VecgenError(f"{folder}: no pictures found ({', '.join(s.lstrip('.') for s in IMAGE_SUFFIXES)})")
    return index.refresh().search(query, int(k))
