"""Running gallery jobs: one job (:func:`execute_job`), and executors that run a batch of them.

An executor has a ``name`` and a ``workers`` count (both recorded in the
manifest), ``start()`` (which may fail before anything is written),
``map(payloads)`` yielding one outcome dict per :meth:`Job.payload` as each
finishes (in any order), and ``close()``. :class:`LocalExecutor` runs jobs in
this process or a pool of spawned processes, :class:`RayExecutor` as Ray actor
tasks. Each worker keeps one :class:`PerceptorCache`, so a batch loads each
CLIP model once per worker.

Both take ``job_runner``, the function a worker calls for each job,
``job_runner(payload, cache) -> outcome``; it defaults to :func:`execute_job`.
A substitute must be importable by name (a module-level function) for a process
pool, and picklable by Ray for the Ray executor; ``workers=1`` in-process takes
any callable, e.g. a test's wrapper.
"""
from __future__ import annotations

import os
import socket
import time
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Protocol

from vecgen.errors import VecgenError
from vecgen.gallery.spec import accepts_option, function_options, resolve_function

if TYPE_CHECKING:
    from concurrent.futures import ProcessPoolExecutor


class PerceptorCache:
    """Perceptors loaded once per process (or Ray worker) and reused by every job that names them."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, str], list] = {}
        self.loads = 0

    def get(self, clip: str, device, warn: Callable[[str], None] | None = None):
        key = (str(clip), str(device))
        if key not in self._cache:
            from vecgen.api import load_perceptors

            self._cache[key] = load_perceptors(clip, device, warn)
            self.loads += 1
        return self._cache[key]


#: ``job_runner(payload, cache) -> outcome``: what a worker calls for each job (:func:`execute_job` by default).
JobRunner = Callable[[dict[str, Any], PerceptorCache], dict[str, Any]]


class Executor(Protocol):
    """What :func:`vecgen.gallery.run_gallery` needs of an executor (see the module docstring)."""

    name: str

    @property
    def workers(self) -> int | None: ...

    def start(self) -> None: ...

    def map(self, payloads: list[dict[str, Any]]) -> Iterator[dict[str, Any]]: ...

    def close(self) -> None: ...


def _first_line(text: str) -> str:
    return text.splitlines()[0] if text else ""


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
        if accepts_option(fn, "quiet"):
            kwargs["quiet"] = True
        if accepts_option(fn, "warn"):
            kwargs["warn"] = warnings.append
        if accepts_option(fn, "perceptors") and accepts_option(fn, "clip"):
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
        out.update(status="failed", error=f"{type(e).__name__}: {_first_line(str(e))}"[:500])
    out["time_s"] = round(time.perf_counter() - t0, 3)
    out["perceptor_loads"] = cache.loads
    return out


# ============================================================================= local
class LocalExecutor:
    """Jobs in this process (``workers=1``) or in a pool of spawned processes, each with its perceptor cache."""

    name = "local"

    def __init__(self, workers: int | None = 1, *, job_runner: JobRunner = execute_job) -> None:
        self.workers = max(1, int(workers or 1))
        self.job_runner = job_runner
        self.cache = PerceptorCache()
        self._pool: ProcessPoolExecutor | None = None

    def start(self) -> None:
        if self.workers > 1:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            threads = max(1, (os.cpu_count() or 1) // self.workers)
            self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_pool_init, initargs=(threads, self.job_runner))

    def map(self, payloads: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        if self._pool is None:
            for p in payloads:
                yield self.job_runner(p, self.cache)
            return
        from concurrent.futures import FIRST_COMPLETED, wait
        from concurrent.futures.process import BrokenProcessPool

        futures = {self._pool.submit(_pool_run, p): p for p in payloads}
        while futures:
            done, _ = wait(futures, return_when=FIRST_COMPLETED)
            for f in done:
                futures.pop(f)
                try:
                    yield f.result()
                except BrokenProcessPool as e:
                    raise VecgenError(f"a local worker process died ({e}); finished jobs are kept, run again") \
                        from None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


#: A pool process's job runner and perceptor cache (set by :func:`_pool_init`).
_POOL_WORKER: tuple[JobRunner, PerceptorCache] | None = None


def _pool_init(threads: int, job_runner: JobRunner) -> None:
    import torch

    global _POOL_WORKER
    torch.set_num_threads(threads)
    _POOL_WORKER = (job_runner, PerceptorCache())


def _pool_run(payload: dict[str, Any]) -> dict[str, Any]:
    if _POOL_WORKER is None:
        raise RuntimeError("_pool_run runs only in a pool worker (after _pool_init)")
    job_runner, cache = _POOL_WORKER
    return job_runner(payload, cache)


# ============================================================================= Ray
class _RayWorker:
    """A Ray actor: one perceptor cache for every job it is given."""

    def __init__(self, threads: int = 1, job_runner: JobRunner = execute_job) -> None:
        import torch

        torch.set_num_threads(max(1, int(threads)))
        self.job_runner = job_runner
        self.cache = PerceptorCache()

    def run(self, payload: dict[str, Any]) -> dict[str, Any]:
        return self.job_runner(payload, self.cache)


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
    try:
        text = Path("/tmp/ray/ray_current_cluster").read_text().strip()
    except OSError:
        text = ""
    if text:
        return text
    raise VecgenError("--address auto: no running Ray cluster found on this machine (start one with `ray start "
                      "--head`, or give HOST:PORT)")


class RayExecutor:
    """Jobs as Ray actor tasks: a local Ray started on demand, or an existing cluster at ``address``."""

    name = "ray"

    def __init__(self, workers: int | None = None, address: str | None = None, connect_timeout: float = 10.0, *,
                 job_runner: JobRunner = execute_job) -> None:
        self.workers = workers
        self.address = address
        self.connect_timeout = float(connect_timeout)
        self.job_runner = job_runner
        self._ray: Any = None  # the ray module, once start() imported it
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
        common: dict[str, Any] = dict(include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False,
                      configure_logging=True)
        if ray.is_initialized():
            pass  # a caller's own Ray session: use it, leave it running
        elif self.address:
            address = _auto_address() if self.address == "auto" else self.address
            host, port = _parse_address(address)
            # One deadline for the whole wait: the TCP connection, then Ray's own handshake.
            t0 = time.monotonic()
            deadline = t0 + self.connect_timeout
            try:
                with socket.create_connection((host, port), timeout=self.connect_timeout):
                    pass
            except OSError as e:
                reason = e.strerror or type(e).__name__
                if isinstance(e, socket.timeout):
                    reason = f"no answer in {time.monotonic() - t0:.1f} s"
                raise VecgenError(f"cannot reach the Ray cluster at {address} ({reason})") from None
            self._init_bounded(address, {k: v for k, v in common.items() if k != "include_dashboard"}, t0,
                               deadline)
            self._started = True
        else:
            import torch

            cpus = self.workers or os.cpu_count() or 1
            n_gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
            ray.init(num_cpus=cpus, num_gpus=n_gpus, object_store_memory=128 * 1024 ** 2, **common)
            self._started = True
        res = ray.cluster_resources()
        if not self.workers:
            self.workers = max(1, int(res.get("CPU", 1)))
        gpus = float(res.get("GPU", 0))
        self.gpus_per_worker = min(1.0, gpus / self.workers) if gpus > 0 else 0.0
        self._actor_cls = ray.remote(_RayWorker)
        self._actors = [self._new_actor() for _ in range(self.workers)]

    def _init_bounded(self, address: str, kwargs: dict[str, Any], t0: float, deadline: float) -> None:
        """``ray.init(address)`` in a thread, waited on until ``deadline`` (``time.monotonic()``) at most."""
        import threading

        box: dict[str, Any] = {}
        lock = threading.Lock()

        def connect() -> None:
            try:
                self._ray.init(address=address, **kwargs)
            except BaseException as e:  # noqa: BLE001 - reported below
                box["error"] = e
                return
            with lock:
                if box.get("abandoned"):  # connected after the run gave up: leave no Ray session behind
                    try:
                        self._ray.shutdown()
                    except Exception:  # noqa: BLE001 - best effort
                        pass
                else:
                    box["connected"] = True

        t = threading.Thread(target=connect, daemon=True, name="vecgen-ray-connect")
        # Ray's C++ client logs every failed retry to fd 2; keep the CLI's one-line errors one line.
        saved, sink = os.dup(2), os.open(os.devnull, os.O_WRONLY)
        os.dup2(sink, 2)
        try:
            t.start()
            t.join(max(0.0, deadline - time.monotonic()))
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            os.close(sink)
        with lock:
            if "connected" not in box and "error" not in box:
                box["abandoned"] = True
        if box.get("abandoned"):
            raise VecgenError(f"the Ray cluster at {address} accepts connections but did not answer as Ray "
                              f"within {time.monotonic() - t0:.1f} s (--connect-timeout {self.connect_timeout:g})")
        if "error" in box:
            e = box["error"]
            first = _first_line(str(e)) if str(e) else type(e).__name__
            raise VecgenError(f"cannot connect to the Ray cluster at {address}: {first[:300]}")

    def _new_actor(self) -> Any:  # a Ray actor handle
        opts: dict[str, Any] = {"num_cpus": 1}
        if self.gpus_per_worker:
            opts["num_gpus"] = self.gpus_per_worker
        return self._actor_cls.options(**opts).remote(1, self.job_runner)

    def map(self, payloads: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        ray = self._ray
        died = (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError)
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
                except (*died, ray.exceptions.RayTaskError) as e:
                    first = _first_line(str(e).strip()) or type(e).__name__
                    if isinstance(e, died):  # the actor is gone: a new one takes its slot
                        error = f"Ray worker died: {first[:300]}"
                        self._actors[slot] = self._new_actor()
                    else:
                        error = first[:500]
                    out = {"id": p["id"], "status": "failed", "error": error, "time_s": None, "warnings": []}
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
                  connect_timeout: float = 10.0, *, job_runner: JobRunner = execute_job) -> Executor:
    """The executor ``kind`` (``local`` or ``ray``), its arguments checked (a VecgenError names the bad flag)."""
    if workers is not None and int(workers) < 1:
        raise VecgenError("--workers must be >= 1")
    if kind == "local":
        if address:
            raise VecgenError("--address needs --executor ray")
        return LocalExecutor(workers or 1, job_runner=job_runner)
    if kind == "ray":
        if connect_timeout <= 0:
            raise VecgenError("--connect-timeout must be > 0")
        return RayExecutor(workers, address, connect_timeout, job_runner=job_runner)
    raise VecgenError(f"unknown executor {kind!r} (use local or ray)")
