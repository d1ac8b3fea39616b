"""Galleries: run a TOML spec of prompts x seeds, keep a resumable manifest, build a static page.

A spec::

    title = "Shapes"                       # optional

    [defaults]                             # options for every entry (function default: draw)
    clip = "ViT-B-32"
    steps = 200
    seeds = [0, 1]

    [[entry]]
    prompt = "a red circle"                # or prompts = ["...", "..."]
    strokes = 64                           # any option of the entry's function

    [[entry]]
    function = "paint"
    prompts = ["a lighthouse", "a forest"]
    seeds = [7]

expands to one job per prompt x seed. A job is identified by a hash of its
resolved settings (function, every option given in the spec, prompt, seed), so
a re-run skips finished jobs and re-runs exactly the ones whose settings
changed. ``site/manifest.json`` records every job's status, time, final loss
and files; it is rewritten atomically after each job, and every output file is
written to a temp file and renamed, so an interrupted run keeps all it finished.
"""
from __future__ import annotations

import hashlib
import html
import inspect
import json
import os
import re
import socket
import sys
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

from vecgen.errors import VecgenError
from vecgen.io import atomic_write

MANIFEST = "manifest.json"
FILES_DIR = "files"
INDEX = "index.html"
LOCK = ".vecgen-gallery.lock"
FORMAT = "vecgen-gallery"
FORMAT_VERSION = 1

#: Functions a spec may name (``fn(prompt, *, seed, ...) -> Result``), looked up on :mod:`vecgen.api` at run time.
#: Options the gallery sets itself.
MANAGED_OPTIONS = {"prompt": "use prompt = \"...\" or prompts = [...]", "seed": "use seeds = [...]",
                   "perceptors": "the gallery loads perceptors once per worker", "warn": "set by the gallery",
                   "quiet": "the gallery shows one progress bar for the batch"}
#: Options that make no sense for a batch of jobs writing into one site.
UNSUPPORTED_OPTIONS = {"snapshots", "every", "checkpoint", "resume", "save_latent", "extra_terms"}
_ENTRY_KEYS = {"function", "prompt", "prompts", "seeds", "name"}
_DEFAULT_KEYS = {"function", "seeds"}


# ============================================================================= functions
def resolve_function(name: str) -> Callable:
    """The API function a spec names (a gallery verb of :data:`vecgen.api.VERBS`); VecgenError if unknown."""
    from vecgen.api import VERBS

    verb = VERBS.get(name)
    if verb is None or not verb.gallery:
        raise VecgenError(f"unknown function {name!r} (available: {', '.join(available_functions())})")
    return verb.function


def available_functions() -> list[str]:
    """The verbs a gallery job can run."""
    from vecgen.api import VERBS

    return [name for name, verb in VERBS.items() if verb.gallery]


def required_options(fn: Callable) -> set[str]:
    """Keyword options of an API function that have no default (e.g. generate's ``generator``)."""
    params = list(inspect.signature(fn).parameters.values())[1:]
    return {p.name for p in params if p.kind == p.KEYWORD_ONLY and p.default is p.empty} - set(MANAGED_OPTIONS)


def function_options(fn: Callable) -> tuple[set[str] | None, dict[str, Any]]:
    """``(option names or None for "anything", defaults)`` of an API function, prompt excluded."""
    sig = inspect.signature(fn)
    params = list(sig.parameters.values())
    if params and params[0].kind in (params[0].POSITIONAL_ONLY, params[0].POSITIONAL_OR_KEYWORD):
        params = params[1:]  # the prompt
    names, defaults, anything = set(), {}, False
    for p in params:
        if p.kind == p.VAR_KEYWORD:
            anything = True
        elif p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD):
            names.add(p.name)
            if p.default is not p.empty:
                defaults[p.name] = p.default
    return (None if anything else names), defaults


def _accepts(fn: Callable, name: str) -> bool:
    names, _ = function_options(fn)
    return names is None or name in names


# ============================================================================= spec
@dataclass
class Job:
    """One picture to make: ``function(prompt, seed=seed, **options)``."""

    function: str
    prompt: str
    seed: int
    options: dict[str, Any]
    entry: int = 0
    name: str | None = None

    def settings(self) -> dict[str, Any]:
        return {"function": self.function, "prompt": self.prompt, "seed": self.seed, "options": self.options}

    @property
    def id(self) -> str:
        return job_hash(self.function, self.prompt, self.seed, self.options)

    def payload(self) -> dict[str, Any]:
        """What an executor needs (plain data, picklable)."""
        return {"id": self.id, "function": self.function, "prompt": self.prompt, "seed": self.seed,
                "options": dict(self.options)}


def job_hash(function: str, prompt: str, seed: int, options: dict[str, Any]) -> str:
    """Stable id of a job's resolved settings (16 hex digits of a SHA-256)."""
    data = json.dumps({"function": function, "prompt": prompt, "seed": seed, "options": options},
                      sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(data.encode("utf-8")).hexdigest()[:16]


@dataclass
class Spec:
    path: str
    title: str
    jobs: list[Job] = field(default_factory=list)
    duplicates: int = 0


class _Where:
    """Line numbers for messages about a parsed TOML document (tomllib keeps none)."""

    _HEADER = re.compile(r"^\s*\[(\[)?\s*([A-Za-z0-9_.\"' -]+?)\s*\]?\]\s*(#.*)?$")

    def __init__(self, name: str, text: str) -> None:
        self.name = name
        self.lines = text.splitlines()

    def _block(self, table: str | None, index: int | None) -> tuple[int, int]:
        """Line range (0-based, end exclusive) of ``[table]``, the ``index``-th ``[[table]]``, or the top."""
        start, seen = (0 if table is None else None), -1
        for i, line in enumerate(self.lines):
            m = self._HEADER.match(line)
            if not m:
                continue
            if start is not None:
                return start, i
            name = m.group(2).strip("\"' ")
            if name == table and (index is None) == (m.group(1) is None):
                seen += 1
                if index is None or seen == index:
                    start = i + 1
        return (start, len(self.lines)) if start is not None else (0, 0)

    def line(self, table: str | None = None, index: int | None = None, key: str | None = None) -> int | None:
        lo, hi = self._block(table, index)
        if key is None:
            return lo if hi > 0 and table is not None else None  # the header's 1-based number
        pat = re.compile(rf"^\s*(?:{re.escape(key)}|\"{re.escape(key)}\"|'{re.escape(key)}')\s*=")
        for i in range(lo, hi):
            if pat.match(self.lines[i]):
                return i + 1
        return None

    def error(self, msg: str, table: str | None = None, index: int | None = None, key: str | None = None):
        n = self.line(table, index, key)
        return VecgenError(f"spec {self.name}, line {n}: {msg}" if n else f"spec {self.name}: {msg}")


def load_spec(path: str | Path) -> Spec:
    """Read and validate a gallery spec file -> :class:`Spec` (every problem is a one-line VecgenError)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise VecgenError(f"spec {path}: no such file") from None
    except IsADirectoryError:
        raise VecgenError(f"spec {path}: is a folder, not a TOML file") from None
    except UnicodeDecodeError:
        raise VecgenError(f"spec {path}: not UTF-8 text") from None
    except OSError as e:
        raise VecgenError(f"spec {path}: cannot read ({e.strerror})") from None
    return parse_spec(text, str(path))


def parse_spec(text: str, name: str = "<spec>") -> Spec:
    """Parse and validate spec text; see the module docstring for the format."""
    import tomllib

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        msg = str(e)
        m = re.search(r"\s*\(at line (\d+), column (\d+)\)\s*$", msg)
        if m:
            raise VecgenError(f"spec {name}, line {m.group(1)}: invalid TOML: {msg[:m.start()]} "
                              f"(column {m.group(2)})") from None
        m = re.search(r"\(at end of document\)", msg)
        n = len(text.splitlines()) or 1
        raise VecgenError(f"spec {name}, line {n}: invalid TOML: {msg.replace(m.group(0), '').strip() if m else msg}") \
            from None
    where = _Where(name, text)
    for key in data:
        if key not in ("title", "defaults", "entry"):
            raise where.error(f"unknown top-level key {key!r} (expected title, [defaults] and [[entry]] tables)",
                              key=key)
    title = data.get("title", Path(name).stem if name != "<spec>" else "vecgen gallery")
    if not isinstance(title, str):
        raise where.error("title must be a string", key="title")
    defaults = data.get("defaults", {})
    if not isinstance(defaults, dict):
        raise where.error("defaults must be a table: [defaults]", key="defaults")
    entries = data.get("entry", [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise where.error("entry must be a list of tables: [[entry]]", key="entry")
    if not entries:
        raise where.error("no [[entry]] tables: add at least one with a prompt")
    for key in ("prompt", "prompts"):
        if key in defaults:
            raise where.error(f"{key} belongs in [[entry]] tables, not [defaults]", "defaults", None, key)

    default_function = defaults.get("function", "draw")
    if not isinstance(default_function, str):
        raise where.error("function must be a string, e.g. \"draw\"", "defaults", None, "function")
    default_seeds = _seeds(defaults["seeds"], where, "defaults", None) if "seeds" in defaults else [0]

    # Resolve each entry's function first: [defaults] options must fit at least one of them.
    functions = []
    for i, entry in enumerate(entries):
        fname = entry.get("function", default_function)
        if not isinstance(fname, str):
            raise where.error("function must be a string, e.g. \"draw\"", "entry", i, "function")
        try:
            fn = resolve_function(fname)
        except VecgenError as e:
            raise where.error(f"[[entry]] #{i + 1}: {e}", "entry", i, "function" if "function" in entry else None) \
                from None
        functions.append((fname, fn))
    default_opts = {k: v for k, v in defaults.items() if k not in _DEFAULT_KEYS}
    for key in default_opts:
        _check_option_name(key, where, "defaults", None)
        if not any(_accepts(fn, key) for _, fn in functions):
            names = sorted({f for f, _ in functions})
            raise where.error(f"[defaults]: unknown option {key!r} for {', '.join(names)}", "defaults", None, key)

    spec = Spec(path=name, title=title)
    seen: set[str] = set()
    for i, (entry, (fname, fn)) in enumerate(zip(entries, functions)):
        if "prompt" in entry and "prompts" in entry:
            raise where.error(f"[[entry]] #{i + 1}: give prompt or prompts, not both", "entry", i, "prompts")
        if "prompt" in entry:
            prompts = [entry["prompt"]]
            pkey = "prompt"
        elif "prompts" in entry:
            prompts = entry["prompts"]
            pkey = "prompts"
            if not isinstance(prompts, list) or not prompts:
                raise where.error(f"[[entry]] #{i + 1}: prompts must be a non-empty list of strings", "entry", i,
                                  "prompts")
        else:
            raise where.error(f"[[entry]] #{i + 1}: no prompt (add prompt = \"...\" or prompts = [...])", "entry", i)
        from vecgen.prompts import parse_prompts

        for pr in prompts:
            if not isinstance(pr, str):
                raise where.error(f"[[entry]] #{i + 1}: prompts must be strings, got {pr!r}", "entry", i, pkey)
            try:
                parse_prompts(pr)
            except VecgenError as e:
                raise where.error(f"[[entry]] #{i + 1}: {e}", "entry", i, pkey) from None
        seeds = _seeds(entry["seeds"], where, "entry", i) if "seeds" in entry else default_seeds
        label = entry.get("name")
        if label is not None and not isinstance(label, str):
            raise where.error(f"[[entry]] #{i + 1}: name must be a string", "entry", i, "name")
        names, _ = function_options(fn)
        opts = {k: v for k, v in default_opts.items() if names is None or k in names}
        for key, value in entry.items():
            if key in _ENTRY_KEYS:
                continue
            _check_option_name(key, where, "entry", i)
            if names is not None and key not in names:
                raise where.error(f"[[entry]] #{i + 1}: unknown option {key!r} for {fname} "
                                  f"(options: {', '.join(sorted(names - set(MANAGED_OPTIONS) - UNSUPPORTED_OPTIONS))})",
                                  "entry", i, key)
            opts[key] = value
        missing = sorted(required_options(fn) - set(opts))
        if missing:
            raise where.error(f"[[entry]] #{i + 1}: {fname} needs option {missing[0]!r}", "entry", i)
        opts = dict(sorted(opts.items()))
        for pr in prompts:
            for seed in seeds:
                job = Job(fname, pr, seed, opts, entry=i, name=label)
                if job.id in seen:
                    spec.duplicates += 1
                    continue
                seen.add(job.id)
                spec.jobs.append(job)
    return spec


def _check_option_name(key: str, where: _Where, table: str, index: int | None) -> None:
    label = "[defaults]" if table == "defaults" else f"[[entry]] #{(index or 0) + 1}"
    if key in MANAGED_OPTIONS:
        raise where.error(f"{label}: option {key!r} is not allowed here ({MANAGED_OPTIONS[key]})", table, index, key)
    if key in UNSUPPORTED_OPTIONS:
        raise where.error(f"{label}: option {key!r} is not supported in a gallery (each job writes only its "
                          f"final picture)", table, index, key)


def _seeds(value: Any, where: _Where, table: str, index: int | None) -> list[int]:
    label = "[defaults]" if table == "defaults" else f"[[entry]] #{(index or 0) + 1}"
    vals = value if isinstance(value, list) else [value]
    if not vals or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in vals):
        raise where.error(f"{label}: seeds must be a non-empty list of integers >= 0, e.g. seeds = [0, 1]",
                          table, index, "seeds")
    return list(dict.fromkeys(vals))


# ============================================================================= running one job
class PerceptorCache:
    """Perceptors loaded once per process (or Ray worker) and reused by every job that names them."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, str], list] = {}
        self.loads = 0

    def get(self, clip: str, device, warn: Callable[[str], None] | None = None):
        key = (str(clip), str(device))
        if key not in self._cache:
            from vecgen.search import load_perceptors_seeded

            self._cache[key] = load_perceptors_seeded(clip, device, warn)
            self.loads += 1
        return self._cache[key]


def execute_job(payload: dict[str, Any], cache: PerceptorCache | None = None) -> dict[str, Any]:
    """Run one job -> outcome dict (plain data). Failures are caught and returned, Ctrl-C is not."""
    from vecgen.options import resolve_device

    cache = cache if cache is not None else PerceptorCache()
    warnings: list[str] = []
    t0 = time.perf_counter()
    out: dict[str, Any] = {"id": payload["id"], "worker": f"{socket.gethostname()}:{os.getpid()}",
                           "warnings": warnings}
    try:
        fn = resolve_function(payload["function"])
        _, defaults = function_options(fn)
        kwargs = dict(payload["options"])
        if _accepts(fn, "quiet"):
            kwargs["quiet"] = True
        if _accepts(fn, "warn"):
            kwargs["warn"] = warnings.append
        if _accepts(fn, "perceptors") and _accepts(fn, "clip"):
            device = resolve_device(kwargs.get("device", defaults.get("device", "auto")))
            kwargs["perceptors"] = cache.get(kwargs.get("clip", defaults.get("clip", "auto")), device,
                                             warnings.append)
        result = fn(payload["prompt"], seed=payload["seed"], **kwargs)
        if getattr(result, "interrupted", False):
            raise KeyboardInterrupt
        last = dict(result.history[-1]) if getattr(result, "history", None) else {}
        out.update(status="done", svg=result.svg, png=result.png_bytes(),
                   loss=float(last["total"]) if "total" in last else None,
                   losses={k: float(v) for k, v in last.items()}, steps=len(result.history or []))
    except KeyboardInterrupt:
        raise
    except VecgenError as e:
        out.update(status="failed", error=str(e))
    except Exception as e:  # a bug in a backend: record it, keep the batch going
        first = str(e).splitlines()[0] if str(e) else ""
        out.update(status="failed", error=f"{type(e).__name__}: {first}"[:500])
    out["time_s"] = round(time.perf_counter() - t0, 3)
    out["perceptor_loads"] = cache.loads
    return out


# ============================================================================= executors
class LocalExecutor:
    """Jobs in this process (``workers=1``) or in a pool of spawned processes, each with its perceptor cache."""

    name = "local"

    def __init__(self, workers: int | None = 1) -> None:
        self.workers = max(1, int(workers or 1))
        self.cache = PerceptorCache()
        self._pool = None

    def start(self) -> None:
        if self.workers > 1:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            threads = max(1, (os.cpu_count() or 1) // self.workers)
            self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_pool_init, initargs=(threads,))

    def map(self, payloads: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        if self._pool is None:
            for p in payloads:
                yield execute_job(p, self.cache)
            return
        from concurrent.futures import FIRST_COMPLETED, wait
        from concurrent.futures.process import BrokenProcessPool

        futures = {self._pool.submit(_pool_run, p): p for p in payloads}
        while futures:
            done, _ = wait(futures, return_when=FIRST_COMPLETED)
            for f in done:
                p = futures.pop(f)
                try:
                    yield f.result()
                except BrokenProcessPool as e:
                    raise VecgenError(f"a local worker process died ({e}); finished jobs are kept, run again") \
                        from None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


_POOL_CACHE: PerceptorCache | None = None


def _pool_init(threads: int) -> None:
    import torch

    global _POOL_CACHE
    torch.set_num_threads(threads)
    _POOL_CACHE = PerceptorCache()


def _pool_run(payload: dict[str, Any]) -> dict[str, Any]:
    return execute_job(payload, _POOL_CACHE)


class _RayWorker:
    """A Ray actor: one perceptor cache for every job it is given."""

    def __init__(self, threads: int = 1) -> None:
        import torch

        torch.set_num_threads(max(1, int(threads)))
        self.cache = PerceptorCache()

    def run(self, payload: dict[str, Any]) -> dict[str, Any]:
        return execute_job(payload, self.cache)


def _parse_address(address: str) -> tuple[str, int]:
    a = address.strip()
    default_port = 6379
    if a.startswith("ray://"):
        a, default_port = a[len("ray://"):], 10001
    a = a.rstrip("/")
    if a.startswith("["):  # [ipv6]:port
        host, _, rest = a[1:].partition("]")
        port = rest.lstrip(":")
    elif a.count(":") == 1:
        host, port = a.split(":")
    else:
        host, port = a, ""
    if not host:
        raise VecgenError(f"bad --address {address!r}: use HOST:PORT, ray://HOST:PORT or auto")
    try:
        return host, int(port) if port else default_port
    except ValueError:
        raise VecgenError(f"bad --address {address!r}: the port must be a number") from None


def _auto_address() -> str:
    addr = os.environ.get("RAY_ADDRESS", "")
    if addr and addr != "auto":
        return addr
    for f in (Path("/tmp/ray/ray_current_cluster"),):
        try:
            text = f.read_text().strip()
        except OSError:
            continue
        if text:
            return text
    raise VecgenError("--address auto: no running Ray cluster found on this machine (start one with `ray start "
                      "--head`, or give HOST:PORT)")


class RayExecutor:
    """Jobs as Ray actor tasks: a local Ray started on demand, or an existing cluster at ``address``."""

    name = "ray"

    def __init__(self, workers: int | None = None, address: str | None = None, connect_timeout: float = 10.0) -> None:
        self.workers = workers
        self.address = address
        self.connect_timeout = float(connect_timeout)
        self._ray = None
        self._started = False
        self._actors: list = []
        self.gpus_per_worker = 0.0

    def start(self) -> None:
        try:
            import ray
        except ImportError:
            raise VecgenError("--executor ray needs Ray: pip install 'vecgen[ray]' (or pip install ray)") from None
        import logging

        self._ray = ray
        common = dict(include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False,
                      configure_logging=True)
        if ray.is_initialized():
            pass  # a caller's own Ray session: use it, leave it running
        elif self.address:
            address = _auto_address() if self.address == "auto" else self.address
            host, port = _parse_address(address)
            try:
                with socket.create_connection((host, port), timeout=self.connect_timeout):
                    pass
            except OSError as e:
                reason = e.strerror or type(e).__name__
                if isinstance(e, socket.timeout):
                    reason = f"no answer in {self.connect_timeout:g} s"
                raise VecgenError(f"cannot reach the Ray cluster at {address} ({reason})") from None
            self._init_bounded(address, {k: v for k, v in common.items() if k != "include_dashboard"})
            self._started = True
        else:
            import torch

            cpus = self.workers or os.cpu_count() or 1
            gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
            ray.init(num_cpus=cpus, num_gpus=gpus, object_store_memory=128 * 1024 ** 2, **common)
            self._started = True
        res = ray.cluster_resources()
        if not self.workers:
            self.workers = max(1, int(res.get("CPU", 1)))
        gpus = float(res.get("GPU", 0))
        self.gpus_per_worker = min(1.0, gpus / self.workers) if gpus > 0 else 0.0
        self._actor_cls = ray.remote(_RayWorker)
        self._actors = [self._new_actor() for _ in range(self.workers)]

    def _init_bounded(self, address: str, kwargs: dict[str, Any]) -> None:
        import threading

        box: dict[str, Any] = {}

        def connect() -> None:
            try:
                self._ray.init(address=address, **kwargs)
            except BaseException as e:  # noqa: BLE001 - reported below
                box["error"] = e

        limit = max(3 * self.connect_timeout, 15.0)
        t = threading.Thread(target=connect, daemon=True, name="vecgen-ray-connect")
        # Ray's C++ client logs every failed retry to fd 2; keep the CLI's one-line errors one line.
        saved, sink = os.dup(2), os.open(os.devnull, os.O_WRONLY)
        os.dup2(sink, 2)
        try:
            t.start()
            t.join(limit)
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            os.close(sink)
        if t.is_alive():
            raise VecgenError(f"the Ray cluster at {address} accepts connections but did not answer as Ray "
                              f"within {limit:g} s")
        if "error" in box:
            e = box["error"]
            first = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise VecgenError(f"cannot connect to the Ray cluster at {address}: {first[:300]}")

    def _new_actor(self):
        opts: dict[str, Any] = {"num_cpus": 1}
        if self.gpus_per_worker:
            opts["num_gpus"] = self.gpus_per_worker
        return self._actor_cls.options(**opts).remote(1)

    def map(self, payloads: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        ray = self._ray
        queue = deque(payloads)
        pending: dict[Any, tuple[int, dict[str, Any]]] = {}

        def submit(slot: int) -> None:
            if queue:
                p = queue.popleft()
                pending[self._actors[slot].run.remote(p)] = (slot, p)

        for slot in range(len(self._actors)):
            submit(slot)
        try:
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                ref = done[0]
                slot, p = pending.pop(ref)
                try:
                    out = ray.get(ref)
                except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError) as e:
                    first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                    out = {"id": p["id"], "status": "failed", "error": f"Ray worker died: {first[:300]}",
                           "time_s": None, "warnings": []}
                    self._actors[slot] = self._new_actor()
                except ray.exceptions.RayTaskError as e:
                    first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                    out = {"id": p["id"], "status": "failed", "error": first[:500], "time_s": None, "warnings": []}
                yield out
                submit(slot)
        finally:
            for ref in pending:
                try:
                    ray.cancel(ref, force=True)
                except Exception:  # noqa: BLE001 - best effort on the way out
                    pass

    def close(self) -> None:
        if self._ray is None:
            return
        for a in self._actors:
            try:
                self._ray.kill(a)
            except Exception:  # noqa: BLE001
                pass
        self._actors = []
        if self._started:
            self._ray.shutdown()
            self._started = False


def make_executor(kind: str = "local", workers: int | None = None, address: str | None = None,
                  connect_timeout: float = 10.0):
    if workers is not None and int(workers) < 1:
        raise VecgenError("--workers must be >= 1")
    if kind == "local":
        if address:
            raise VecgenError("--address needs --executor ray")
        return LocalExecutor(workers or 1)
    if kind == "ray":
        if connect_timeout <= 0:
            raise VecgenError("--connect-timeout must be > 0")
        return RayExecutor(workers, address, connect_timeout)
    raise VecgenError(f"unknown executor {kind!r} (use local or ray)")


# ============================================================================= manifest
def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def read_manifest(out: str | Path, *, required: bool = False) -> dict[str, Any]:
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
    data["updated"] = _now()
    atomic_write(Path(out) / MANIFEST, (json.dumps(data, indent=1, ensure_ascii=False, default=str) + "\n")
                 .encode("utf-8"))


def _slug(text: str, n: int = 40) -> str:
    s = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:n].strip("-")
    return s or "job"


def output_stem(job: Job) -> str:
    return f"{_slug(job.prompt)}-s{job.seed}-{job.id[:10]}"


def is_finished(record: dict[str, Any] | None, out: Path) -> bool:
    if not record or record.get("status") != "done":
        return False
    files = record.get("files") or {}
    return bool(files) and all(isinstance(f, str) and (out / f).is_file() for f in files.values())


class _Lock:
    """An exclusive lock on a site folder, so two runs never write the same manifest."""

    def __init__(self, out: Path) -> None:
        self.path = out / LOCK
        self.fd: int | None = None

    def __enter__(self) -> "_Lock":
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
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


# ============================================================================= running a spec
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


def run_gallery(spec: Spec | str | Path, out: str | Path = "site", *, executor: str = "local",
                workers: int | None = None, address: str | None = None, connect_timeout: float = 10.0,
                progress: bool = True, build: bool = True, warn: Callable[[str], None] | None = None,
                retry_failed: bool = True) -> RunSummary:
    """Run every unfinished job of ``spec`` into ``out``; see the module docstring."""
    if not isinstance(spec, Spec):
        spec = load_spec(spec)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise VecgenError(f"--out {out}: exists and is not a folder")
    if not out.exists() and not out.parent.is_dir():
        raise VecgenError(f"--out {out}: folder {out.parent} does not exist")
    manifest = read_manifest(out)
    ex = make_executor(executor, workers, address, connect_timeout)
    t0 = time.perf_counter()
    summary = RunSummary(out=out, total=len(spec.jobs))

    def finished(job: Job) -> bool:
        rec = manifest["jobs"].get(job.id)
        if not retry_failed and rec and rec.get("status") == "failed":
            return True
        return is_finished(rec, out)

    todo = [job for job in spec.jobs if not finished(job)]
    summary.skipped = len(spec.jobs) - len(todo)
    started = False
    try:
        if todo:
            ex.start()  # may fail (no Ray, unreachable cluster) before anything is written
            started = True
        out.mkdir(parents=False, exist_ok=True)
        (out / FILES_DIR).mkdir(exist_ok=True)
        with _Lock(out):
            manifest = read_manifest(out)  # again, now that no other run can write it
            manifest.update(title=spec.title, spec=str(spec.path), order=[j.id for j in spec.jobs])
            todo = [job for job in spec.jobs if not finished(job)]
            summary.skipped = len(spec.jobs) - len(todo)
            if todo and not started:  # another run changed the site between the two reads
                ex.start()
                started = True
            for job in spec.jobs:
                rec = manifest["jobs"].setdefault(job.id, {})
                rec.update(id=job.id, entry=job.entry, name=job.name, function=job.function, prompt=job.prompt,
                           seed=job.seed, options=job.options)
                rec.setdefault("status", "pending")
                rec.setdefault("runs", 0)
            run_info = {"started": _now(), "finished": None, "executor": ex.name, "workers": ex.workers,
                        "ran": 0, "skipped": summary.skipped, "failed": 0, "interrupted": False}
            manifest["last_run"] = run_info
            write_manifest(out, manifest)
            by_id = {job.id: job for job in todo}
            seen_warnings: set[str] = set()
            bar = None
            if progress:
                from tqdm.auto import tqdm

                bar = tqdm(total=len(spec.jobs), initial=summary.skipped, unit="job", desc="gallery",
                           dynamic_ncols=True, file=sys.stderr)
            try:
                for outcome in (ex.map([j.payload() for j in todo]) if todo else ()):
                    job = by_id[outcome["id"]]
                    rec = manifest["jobs"][job.id]
                    _record(out, job, rec, outcome, ex.name)
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
                run_info["finished"] = _now()
                write_manifest(out, manifest)
    finally:
        ex.close()
    summary.seconds = time.perf_counter() - t0
    summary.jobs = [manifest["jobs"][j.id] for j in spec.jobs]
    summary.done = sum(1 for r in summary.jobs if r.get("status") == "done")
    summary.failed = sum(1 for r in summary.jobs if r.get("status") == "failed")
    if build:
        summary.index = build_site(out, warn=warn)
    return summary


def _record(out: Path, job: Job, rec: dict[str, Any], outcome: dict[str, Any], executor: str) -> None:
    """Write a job's files (atomically) and fill in its manifest record."""
    rec["runs"] = int(rec.get("runs", 0)) + 1
    rec.update(time_s=outcome.get("time_s"), finished_at=_now(), executor=executor, worker=outcome.get("worker"),
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


# ============================================================================= the page
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
    page = render_page(title or manifest.get("title") or "vecgen gallery", records, ranking, manifest)
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
    text[j.id] = [j.prompt, j.name || "", j.function, "seed " + j.seed, j.status,
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
    import base64

    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii") + "'"


def render_page(title: str, records: list[dict[str, Any]], ranking: dict[str, Any] | None,
                manifest: dict[str, Any] | None = None) -> str:
    """The gallery page as one self-contained HTML string (every user string escaped)."""
    from vecgen import __version__

    e = html.escape
    ranks = (ranking or {}).get("ranks", {})
    n_done = sum(1 for r in records if r.get("status") == "done")
    n_failed = sum(1 for r in records if r.get("status") == "failed")
    n_pending = len(records) - n_done - n_failed
    cards = []
    by_id = {r.get("id"): r for r in records}
    for r in records:
        jid = str(r.get("id", ""))
        files = r.get("files") or {}
        status = r.get("status", "pending")
        thumb_src = _href(files.get("svg")) or _href(files.get("png"))
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
        cards.append("".join(parts))

    best_html = ""
    if ranking and ranking.get("best"):
        rows = []
        for prompt, matches in ranking["best"].items():
            items = []
            for i, (jid, score) in enumerate(matches):
                rec = by_id.get(jid) or {}
                files = rec.get("files") or {}
                src = _href(files.get("svg")) or _href(files.get("png"))
                if not src:
                    continue
                own = " (own)" if rec.get("prompt") == prompt else ""
                items.append(f'<a class="match" href="#job-{e(str(jid))}" title="{e(str(rec.get("prompt", "")))}">'
                             f'<img src="{e(src)}" alt="{e(str(rec.get("prompt", "")))}">'
                             f'#{i + 1} · {score:.3f}{own}</a>')
            rows.append(f'<div class="row" data-prompt="{e(prompt)}"><h3>{e(prompt)}</h3>{"".join(items)}</div>')
        best_html = (f'<section class="best"><details open><summary><h2>Best matches per prompt</h2></summary>'
                     f'<p class="meta">CLIP retrieval over all {ranking.get("count", 0)} pictures with '
                     f'{e(str(ranking.get("clip")))}</p>{"".join(rows)}</details></section>')

    data = {"title": title, "jobs": [{"id": r.get("id"), "prompt": r.get("prompt"), "name": r.get("name"),
                                      "function": r.get("function"), "seed": r.get("seed"), "status": r.get("status"),
                                      "options": r.get("options") or {}, "loss": r.get("loss"),
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
        f"<p id=\"empty\" hidden>No picture matches the filter.</p>\n{best_html}\n</main>\n"
        f"<script type=\"application/json\" id=\"gallery-data\">{_json_for_script(data)}</script>\n"
        f"<script>{_JS}</script>\n</body>\n</html>\n"
    )
