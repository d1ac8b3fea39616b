"""A gallery site's manifest (``manifest.json``), its output files, and the lock one run holds on it.

The manifest records every job of the spec last run into the site: its
settings, status (``pending``, ``done`` or ``failed``), time, final loss and
files (relative to the site, under :data:`FILES_DIR`). It is rewritten
atomically after each job, and every output file is written to a temp file and
renamed, so an interrupted run keeps all it finished.
"""
from __future__ import annotations

import json
import os
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from vecgen.errors import VecgenError
from vecgen.gallery.spec import Job
from vecgen.io import atomic_write

MANIFEST = "manifest.json"
FILES_DIR = "files"
LOCK = ".vecgen-gallery.lock"
FORMAT = "vecgen-gallery"
FORMAT_VERSION = 1


def utc_now() -> str:
    """The time as the manifest records it (UTC, ISO 8601, whole seconds)."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def read_manifest(out: str | Path, *, required: bool = False) -> dict[str, Any]:
    """The manifest of site folder ``out``; an empty one if there is none (a VecgenError if ``required``)."""
    path = Path(out) / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        if required:
            raise VecgenError(f"{out}: no {MANIFEST} (run `vecgen gallery run SPEC --out {out}` first)") from None
        return {"format": FORMAT, "version": FORMAT_VERSION, "title": "", "spec": None, "order": [], "jobs": {}}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise VecgenError(f"{path}: unreadable manifest ({type(e).__name__}); move it away to start over") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("jobs"), dict):
        raise VecgenError(f"{path}: not a vecgen gallery manifest")
    if int(data.get("version", 0)) > FORMAT_VERSION:
        raise VecgenError(f"{path}: written by a newer vecgen (manifest version {data.get('version')})")
    data.setdefault("order", [])
    return data


def write_manifest(out: str | Path, data: dict[str, Any]) -> None:
    """Stamp ``data["updated"]`` and write it atomically as ``out``'s manifest."""
    data["updated"] = utc_now()
    atomic_write(Path(out) / MANIFEST, (json.dumps(data, indent=1, ensure_ascii=False, default=str) + "\n")
                 .encode("utf-8"))


def _slug(text: str, n: int = 40) -> str:
    s = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:n].strip("-")
    return s or "job"


def output_stem(job: Job) -> str:
    """The file name, without suffix, of a job's pictures under :data:`FILES_DIR`."""
    return f"{_slug(job.prompt)}-s{job.seed}-{job.id[:10]}"


def is_finished(record: dict[str, Any] | None, out: Path) -> bool:
    """Whether a manifest record is done and every file it names is still in the site."""
    if not record or record.get("status") != "done":
        return False
    files = record.get("files") or {}
    return bool(files) and all(isinstance(f, str) and (out / f).is_file() for f in files.values())


def record_outcome(out: Path, job: Job, rec: dict[str, Any], outcome: dict[str, Any], executor: str) -> None:
    """Write a job's files (atomically) and fill in its manifest record from an executor's outcome."""
    rec["runs"] = int(rec.get("runs", 0)) + 1
    rec.update(time_s=outcome.get("time_s"), finished_at=utc_now(), executor=executor, worker=outcome.get("worker"),
               perceptor_loads=outcome.get("perceptor_loads"))
    if outcome.get("status") != "done":
        rec.update(status="failed", error=outcome.get("error") or "unknown error", loss=None, losses=None,
                   files={})
        return
    stem = output_stem(job)
    files = {}
    if outcome.get("svg") is not None:
        atomic_write(out / FILES_DIR / f"{stem}.svg", outcome["svg"].encode("utf-8"))
        files["svg"] = f"{FILES_DIR}/{stem}.svg"
    atomic_write(out / FILES_DIR / f"{stem}.png", outcome["png"])
    files["png"] = f"{FILES_DIR}/{stem}.png"
    rec.update(status="done", error=None, loss=outcome.get("loss"), losses=outcome.get("losses"),
               steps=outcome.get("steps"), files=files)


class SiteLock:
    """An exclusive lock on a site folder, so two runs never write the same manifest."""

    def __init__(self, out: Path) -> None:
        self.path = out / LOCK
        self.fd: int | None = None

    def __enter__(self) -> "SiteLock":
        try:
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise VecgenError(f"{self.path.parent}: cannot write the site's lock file "
                              f"({e.strerror or type(e).__name__})") from None
        try:
            import fcntl

            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except ImportError:  # pragma: no cover - not POSIX
            pass
        except OSError:
            os.close(self.fd)
            self.fd = None
            raise VecgenError(f"{self.path.parent}: another `vecgen gallery run` is writing this site") from None
        return self

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
