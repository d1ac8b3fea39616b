"""Running a spec into a site folder: what is left to do (:func:`plan`), and doing it (:func:`run_gallery`)."""
from __future__ import annotations

import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from vecgen.errors import VecgenError
from vecgen.gallery.executors import Executor, make_executor
from vecgen.gallery.manifest import (FILES_DIR, MANIFEST, SiteLock, is_finished, read_manifest, record_outcome,
                                     utc_now, write_manifest)
from vecgen.gallery.site import build_site
from vecgen.gallery.spec import Job, Spec, accepts_option, function_options, load_spec, resolve_function

#: How much of a failed job's error :meth:`RunSummary.failures` shows (the manifest keeps all of it).
ERROR_CHARS = 300


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

    def failures(self) -> list[str]:
        """One line per failed job (its id, prompt, seed and the first line of its error), then one line saying
        where the full errors are; ``[]`` when none failed."""
        import json

        lines = []
        for r in self.jobs:
            if r.get("status") != "failed":
                continue
            error = str(r.get("error") or "unknown error").strip()
            first = error.splitlines()[0] if error else "unknown error"
            if len(first) > ERROR_CHARS or first != error:
                first = first[:ERROR_CHARS].rstrip() + " …"
            lines.append(f"job {r.get('id')} failed ({r.get('function')} "
                         f"{json.dumps(str(r.get('prompt', '')), ensure_ascii=False)}, seed {r.get('seed')}): {first}")
        if lines:
            lines.append(f"{len(lines)} of {self.total} job(s) failed; the full errors are in {self.out / MANIFEST} "
                         f"(each failed job's \"error\"); a re-run retries them")
        return lines


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

    Before the first job it refuses, in one line and with nothing written, a site folder it cannot write
    (:func:`check_writable_site`) and, when the jobs run on this machine (any executor but Ray at an
    ``address``), devices it lacks and CLIP models it cannot load (:func:`check_devices`,
    :func:`check_models`). ``warn`` hears each distinct warning once per run.
    """
    if not isinstance(spec, Spec):
        spec = load_spec(spec)
    warn = _once(warn)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise VecgenError(f"--out {out}: exists and is not a folder")
    if not out.exists() and not out.parent.is_dir():
        raise VecgenError(f"--out {out}: folder {out.parent} does not exist")
    check_writable_site(out)
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
        if todo and not getattr(ex, "address", None):  # the jobs run on this machine: check it can run them
            check_devices(todo)
            check_models(todo, spec.path)
        if todo:
            ex.start()  # may fail (no Ray, unreachable cluster) before anything is written
            started = True
        try:
            out.mkdir(parents=False, exist_ok=True)
            (out / FILES_DIR).mkdir(exist_ok=True)
        except OSError as e:
            raise VecgenError(f"--out {out}: cannot write there ({e.strerror or type(e).__name__})") from None
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


def _once(warn: Callable[[str], None] | None) -> Callable[[str], None] | None:
    """``warn`` that says each distinct message once (a run's jobs, workers and page all warn alike)."""
    if warn is None or getattr(warn, "_vecgen_once", False):
        return warn
    said: set[str] = set()

    def once(msg: str) -> None:
        if msg not in said:
            said.add(msg)
            warn(msg)

    once._vecgen_once = True  # type: ignore[attr-defined]
    return once


def check_writable_site(out: str | Path) -> None:
    """Refuse, in one line, a site folder this process cannot write (read-only file system, no permission).

    Tries what a run does, a file in the folder and in its files folder (made and removed again: a folder
    that did not exist does not exist afterwards), so it holds for root and read-only mounts alike.
    """
    out = Path(out)

    def probe(folder: Path) -> None:
        fd, tmp = tempfile.mkstemp(prefix=".vecgen-write-check.", dir=folder)
        os.close(fd)
        os.unlink(tmp)

    made, folder, doing = False, out, "create the folder"
    try:
        if not out.exists():
            out.mkdir()
            made = True
        doing = "write in the folder"
        probe(out)
        if (out / FILES_DIR).is_dir():
            folder = out / FILES_DIR
            probe(folder)
    except OSError as e:
        where = f" {folder}" if folder != out else ""
        raise VecgenError(f"--out {out}: cannot {doing}{where} ({e.strerror or type(e).__name__}); "
                          f"choose a writable --out") from None
    finally:
        if made:
            try:
                out.rmdir()
            except OSError:
                pass


def check_devices(jobs: list[Job]) -> None:
    """Refuse jobs whose ``device`` this machine lacks (e.g. ``cuda`` without a GPU) before any runs."""
    from vecgen.options import resolve_device

    for device in dict.fromkeys(str(_option(job, "device", "auto")) for job in jobs):
        resolve_device(device)


def check_models(jobs: list[Job], spec_path: str = "spec") -> None:
    """Refuse jobs whose CLIP models cannot load here: an unknown model, a missing checkpoint, or weights
    neither cached nor downloadable (offline). ``auto`` always loads (the built-in mini-vit offline)."""
    from vecgen.options import parse_clip

    checked: set[str] = set()
    for job in jobs:
        clip = _option(job, "clip", None)
        if clip is None:
            continue
        for name, _ in parse_clip(str(clip)):
            if name in checked or name == "auto":
                continue
            checked.add(name)
            from vecgen.backends.perceptors import check_spec

            try:
                check_spec(name)
            except VecgenError as e:
                raise VecgenError(f"spec {spec_path}: [[entry]] #{job.entry + 1}: clip {name!r}: {e}") from None


def _option(job: Job, name: str, default):
    """A job's option ``name`` as its function will see it (the API default when the spec leaves it out);
    ``default`` when the function takes no such option."""
    fn = resolve_function(job.function)
    if name in job.options:
        return job.options[name]
    names, defaults = function_options(fn)
    return defaults.get(name, default) if accepts_option(fn, name) else default


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
