"""Running a spec into a site folder: what is left to do (:func:`plan`), and doing it (:func:`run_gallery`)."""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from vecgen.errors import VecgenError
from vecgen.gallery.executors import Executor, make_executor
from vecgen.gallery.manifest import (FILES_DIR, MANIFEST, SiteLock, is_finished, read_manifest, record_outcome,
                                     utc_now, write_manifest)
from vecgen.gallery.site import build_site
from vecgen.gallery.spec import Job, Spec, load_spec


@dataclass
class RunSummary:
    out: Path
    total: int
    ran: int = 0
    skipped: int = 0
    done: int = 0
    failed: int = 0
    seconds: float = 0.0
    index: Path | None = None
    jobs: list[dict[str, Any]] = field(default_factory=list)

    def line(self) -> str:
        s = (f"{self.out}: {self.done}/{self.total} done ({self.ran} ran, {self.skipped} skipped), "
             f"{self.failed} failed in {self.seconds:.1f} s")
        return s + (f"; wrote {self.index}" if self.index else "")


def plan(spec: Spec, out: str | Path) -> list[tuple[Job, bool]]:
    """``[(job, finished already)]`` for a spec against a site folder (nothing is written)."""
    out = Path(out)
    manifest = read_manifest(out) if (out / MANIFEST).exists() else {"jobs": {}}
    return [(job, is_finished(manifest["jobs"].get(job.id), out)) for job in spec.jobs]


def run_gallery(spec: Spec | str | Path, out: str | Path = "site", *, executor: str | Executor = "local",
                workers: int | None = None, address: str | None = None, connect_timeout: float = 10.0,
                progress: bool = True, build: bool = True, warn: Callable[[str], None] | None = None,
                retry_failed: bool = True) -> RunSummary:
    """Run every unfinished job of ``spec`` into ``out``; see :mod:`vecgen.gallery`.

    ``executor`` is ``"local"`` or ``"ray"`` (made by :func:`make_executor` from ``workers``, ``address`` and
    ``connect_timeout``), or an executor object of one's own making, e.g.
    ``LocalExecutor(job_runner=my_runner)`` to run each job through ``my_runner(payload, cache)``; those three
    arguments are not used then. The run closes the executor when it ends.
    """
    if not isinstance(spec, Spec):
        spec = load_spec(spec)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise VecgenError(f"--out {out}: exists and is not a folder")
    if not out.exists() and not out.parent.is_dir():
        raise VecgenError(f"--out {out}: folder {out.parent} does not exist")
    manifest = read_manifest(out)
    ex = make_executor(executor, workers, address, connect_timeout) if isinstance(executor, str) else executor
    t0 = time.perf_counter()
    summary = RunSummary(out=out, total=len(spec.jobs))

    def finished(job: Job) -> bool:
        rec = manifest["jobs"].get(job.id)
        if not retry_failed and rec and rec.get("status") == "failed":
            return True
        return is_finished(rec, out)

    def unfinished() -> list[Job]:
        """The jobs to run, against the manifest as last read (sets ``summary.skipped`` to match)."""
        todo = [job for job in spec.jobs if not finished(job)]
        summary.skipped = len(spec.jobs) - len(todo)
        return todo

    todo = unfinished()
    started = False
    try:
        if todo:
            ex.start()  # may fail (no Ray, unreachable cluster) before anything is written
            started = True
        out.mkdir(parents=False, exist_ok=True)
        (out / FILES_DIR).mkdir(exist_ok=True)
        with SiteLock(out):
            manifest = read_manifest(out)  # again, now that no other run can write it
            manifest.update(title=spec.title, spec=str(spec.path), order=[j.id for j in spec.jobs])
            todo = unfinished()
            if todo and not started:  # another run changed the site between the two reads
                ex.start()
                started = True
            for job in spec.jobs:
                rec = manifest["jobs"].setdefault(job.id, {})
                rec.update(id=job.id, entry=job.entry, name=job.name, function=job.function, prompt=job.prompt,
                           seed=job.seed, options=job.options)
                rec.setdefault("status", "pending")
                rec.setdefault("runs", 0)
            run_info = {"started": utc_now(), "finished": None, "executor": ex.name, "workers": ex.workers,
                        "ran": 0, "skipped": summary.skipped, "failed": 0, "interrupted": False}
            manifest["last_run"] = run_info
            write_manifest(out, manifest)
            _run_jobs(ex, todo, out, manifest, run_info, summary, progress, warn)
    finally:
        ex.close()
    summary.seconds = time.perf_counter() - t0
    summary.jobs = [manifest["jobs"][j.id] for j in spec.jobs]
    summary.done = sum(1 for r in summary.jobs if r.get("status") == "done")
    summary.failed = sum(1 for r in summary.jobs if r.get("status") == "failed")
    if build:
        summary.index = build_site(out, warn=warn)
    return summary


def _run_jobs(ex: Executor, todo: list[Job], out: Path, manifest: dict[str, Any], run_info: dict[str, Any],
              summary: RunSummary, progress: bool, warn: Callable[[str], None] | None) -> None:
    """Run ``todo`` on a started executor, recording each outcome in the manifest as it comes in."""
    by_id = {job.id: job for job in todo}
    seen_warnings: set[str] = set()
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=summary.total, initial=summary.skipped, unit="job", desc="gallery",
                   dynamic_ncols=True, file=sys.stderr)
    try:
        for outcome in (ex.map([j.payload() for j in todo]) if todo else ()):
            job = by_id[outcome["id"]]
            rec = manifest["jobs"][job.id]
            record_outcome(out, job, rec, outcome, ex.name)
            summary.ran += 1
            run_info["ran"] = summary.ran
            if rec["status"] == "failed":
                summary.failed += 1
                run_info["failed"] = summary.failed
            write_manifest(out, manifest)
            for w in outcome.get("warnings") or []:
                if w not in seen_warnings and warn is not None:
                    seen_warnings.add(w)
                    if bar is not None:
                        with bar.external_write_mode(file=sys.stderr):
                            warn(w)
                    else:
                        warn(w)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(failed=summary.failed, refresh=False)
    except KeyboardInterrupt:
        run_info["interrupted"] = True
        raise
    finally:
        if bar is not None:
            bar.close()
        run_info["finished"] = utc_now()
        write_manifest(out, manifest)
