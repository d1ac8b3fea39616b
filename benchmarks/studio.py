"""`vecgen studio`: start-up to a page, time to the first preview frame, idle server memory.

    python benchmarks/studio.py                       # 1 thread, 3 start-ups, one default draw
    python benchmarks/studio.py --repeat 5 --threads 2 --json

Each start-up runs ``python -m vecgen studio`` in a fresh process (empty share folder) and times:

- ``page s``: from starting the process until ``GET /`` answers 200 (the page loads from there);
- ``idle RSS MB``: the server's resident memory 3 s after it answered, before any run (Gradio and the
  CLI parser loaded; torch and the models not yet);

and, on the first start-up only, a default draw through ``gradio_client`` (``/draw`` with only the
prompt: ``--clip auto``, offline that is mini-vit; 224 px, 300 steps):

- ``first frame s``: from submitting the job until its first preview picture arrives (the first
  draw also imports torch and loads the model: what a user waits for after pressing Run);
- ``next first frame s``: the same for a second draw (torch imported, weights read again);
- ``RSS after a run MB``: the server's memory once the run is stopped (torch and the model stay);
- ``stop s``: from the Stop call until the job's result arrives;
- ``exit s``: from SIGINT until the process has exited.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def start(threads: int, folder: Path) -> tuple[subprocess.Popen, str, float]:
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1")}
    t = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "vecgen", "studio", "--port", str(port), "--share-dir", str(folder)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    while not answers(url):
        if proc.poll() is not None:
            raise SystemExit(f"the studio exited with {proc.returncode}")
        time.sleep(0.05)
    return proc, url, time.perf_counter() - t


def stop(proc: subprocess.Popen) -> float:
    t = time.perf_counter()
    proc.send_signal(signal.SIGINT)
    proc.wait(120)
    return time.perf_counter() - t


def draw_until_first_frame(client) -> tuple[float | None, float]:
    """Seconds from submitting a default draw to its first preview picture; then Stop, and seconds to the result."""
    t = time.perf_counter()
    job = client.submit(prompt="a red circle", api_name="/draw")
    frame_s = None
    while frame_s is None and not job.done():
        if any(out[0] for out in job.outputs()):
            frame_s = time.perf_counter() - t
        time.sleep(0.02)
    t_stop = time.perf_counter()
    client.predict(api_name="/stop_draw")
    job.result(timeout=120)
    return frame_s, time.perf_counter() - t_stop


def first_frame(url: str, pid: int) -> dict:
    from gradio_client import Client

    client = Client(url, verbose=False, download_files=tempfile.mkdtemp(prefix="vecgen-bench-dl-"))
    cold, stop_s = draw_until_first_frame(client)
    warm, _ = draw_until_first_frame(client)
    time.sleep(3)
    return {"first_frame_s": cold, "warm_first_frame_s": warm, "stop_s": stop_s, "rss_after_run_mb": rss_mb(pid)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3, help="start-ups to time (default 3)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads of the server (default 1)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args(argv)
    pages, idles, exits, run = [], [], [], {}
    for i in range(args.repeat):
        with tempfile.TemporaryDirectory(prefix="vecgen-bench-studio-") as tmp:
            proc, url, page_s = start(args.threads, Path(tmp) / "share")
            try:
                time.sleep(3)
                pages.append(page_s)
                idles.append(rss_mb(proc.pid))
                if i == 0:
                    run = first_frame(url, proc.pid)
            finally:
                exits.append(stop(proc))
    out = {
        "machine": f"{platform.machine()} {os.cpu_count()} cpus",
        "threads": args.threads,
        "repeat": args.repeat,
        "page_s": pages,
        "idle_rss_mb": idles,
        "exit_s": exits,
        **run,
    }
    if args.json:
        print(json.dumps(out, indent=1))
        return 0
    med = statistics.median
    print(f"`python benchmarks/studio.py --threads {args.threads} --repeat {args.repeat}` ({out['machine']}):\n")
    print("| measure | value |")
    print("| --- | --- |")
    print(
        f"| start-up to the page answering (median of {len(pages)}) | {med(pages):.1f} s "
        f"(min {min(pages):.1f}, max {max(pages):.1f}) |"
    )
    print(f"| idle server RSS (median) | {med(idles):.0f} MB |")
    if run:
        ff = run["first_frame_s"]
        print(
            f"| first preview frame of a default draw (first run: imports torch, loads the model) | "
            f"{'none' if ff is None else f'{ff:.1f} s'} |"
        )
        wf = run["warm_first_frame_s"]
        print(
            f"| first preview frame of the next default draw (torch and the model loaded) | "
            f"{'none' if wf is None else f'{wf:.1f} s'} |"
        )
        print(f"| Stop to result | {run['stop_s']:.2f} s |")
        print(f"| server RSS after a run | {run['rss_after_run_mb']:.0f} MB |")
    print(f"| SIGINT to exit (median) | {med(exits):.1f} s |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
