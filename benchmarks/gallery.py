"""Gallery throughput: jobs per minute for a tiny spec, local executor vs Ray.

    python benchmarks/gallery.py                      # 20 jobs: local (1 worker) vs Ray (2 workers)
    python benchmarks/gallery.py --runs local:1,local:2,ray:2 --jobs 20 --json

Every job is a tiny ``draw`` (random-weight vecgen-tiny-vit, 2 steps, 4 strokes, 32 px, 2 cutouts),
so the numbers measure the executor's overhead (start-up, perceptor loads, dispatch, writing the
manifest after each job) more than the optimization. Columns:

- ``start s``: starting the executor (Ray: ``ray.init`` and the actors; local: the process pool);
- ``first s``: from the start until the first job is recorded (includes the perceptor loads);
- ``total s``: the whole ``run_gallery`` call, start-up included;
- ``jobs/min``: jobs / total, the rate a user sees;
- ``warm jobs/min``: the jobs after the first / the time after the first, once everything is loaded.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

PROMPTS = [
    "a red circle",
    "a blue square",
    "a green tree",
    "a yellow sun",
    "a boat on the sea",
    "a house",
    "a cat",
    "a mountain",
]


def make_spec(jobs: int, steps: int) -> str:
    seeds_per_prompt = 4
    n_prompts = -(-jobs // seeds_per_prompt)
    prompts = [PROMPTS[i % len(PROMPTS)] + ("" if i < len(PROMPTS) else f" #{i}") for i in range(n_prompts)]
    lines = [
        'title = "benchmark"',
        "",
        "[defaults]",
        'clip = "vecgen-tiny-vit@random"',
        f"steps = {steps}",
        "strokes = 4",
        "size = 32",
        "cutouts = 2",
        'device = "cpu"',
        "",
    ]
    left = jobs
    for p in prompts:
        k = min(seeds_per_prompt, left)
        left -= k
        lines += ["[[entry]]", f"prompt = {json.dumps(p)}", f"seeds = {list(range(k))}", ""]
    return "\n".join(lines)


def bench(kind: str, workers: int, spec_path: Path, out: Path) -> dict:
    from vecgen import gallery

    marks: dict[str, float] = {}
    ex = gallery.make_executor(kind, workers)
    start, run_map = ex.start, ex.map

    def timed_start():
        t = time.perf_counter()
        start()
        marks["start_s"] = time.perf_counter() - t

    def timed_map(payloads):
        for outcome in run_map(payloads):
            marks.setdefault("first", time.perf_counter())
            yield outcome
        marks["last"] = time.perf_counter()

    ex.start, ex.map = timed_start, timed_map
    t0 = time.perf_counter()
    summary = gallery.run_gallery(spec_path, out, executor=ex, progress=False, build=False)
    total = time.perf_counter() - t0
    n = summary.ran
    first = marks.get("first", t0) - t0
    warm = marks.get("last", t0) - marks.get("first", t0)
    return {
        "executor": kind,
        "workers": workers,
        "jobs": n,
        "failed": summary.failed,
        "start_s": round(marks.get("start_s", 0.0), 2),
        "first_s": round(first, 2),
        "total_s": round(total, 2),
        "jobs_per_min": round(60 * n / total, 1) if total > 0 else None,
        "warm_jobs_per_min": round(60 * (n - 1) / warm, 1) if n > 1 and warm > 0 else None,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=20, help="jobs in the spec (default 20)")
    ap.add_argument("--steps", type=int, default=2, help="optimization steps per job (default 2)")
    ap.add_argument("--runs", default="local:1,ray:2", help="EXECUTOR:WORKERS,... (default local:1,ray:2)")
    ap.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = ap.parse_args(argv)

    runs = []
    for part in args.runs.split(","):
        kind, _, w = part.strip().partition(":")
        runs.append((kind, int(w or 1)))
    import torch

    results = []
    with tempfile.TemporaryDirectory(prefix="vecgen-bench-") as tmp:
        spec = Path(tmp) / "bench.toml"
        spec.write_text(make_spec(args.jobs, args.steps), encoding="utf-8")
        for kind, workers in runs:
            if kind == "ray":
                try:
                    import ray  # noqa: F401
                except ImportError:
                    results.append({"executor": kind, "workers": workers, "skipped": "ray is not installed"})
                    continue
            results.append(bench(kind, workers, spec, Path(tmp) / f"site-{kind}-{workers}"))
    info = {
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "load_avg": [round(x, 2) for x in os.getloadavg()],
    }
    if args.json:
        print(json.dumps({"machine": info, "jobs": args.jobs, "steps": args.steps, "results": results}, indent=1))
        return 0
    head = ["executor", "workers", "jobs", "start s", "first s", "total s", "jobs/min", "warm jobs/min"]
    keys = ["executor", "workers", "jobs", "start_s", "first_s", "total_s", "jobs_per_min", "warm_jobs_per_min"]
    rows = [
        [
            str(r.get(k, ""))
            if "skipped" not in r or k in ("executor", "workers")
            else (r["skipped"] if k == "jobs" else "")
            for k in keys
        ]
        for r in results
    ]
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(head)]
    print(
        f"# {args.jobs} tiny draw jobs, {args.steps} steps; {info['cpus']} CPUs, torch {info['torch']} "
        f"({info['torch_threads']} threads), load average {info['load_avg'][0]}"
    )
    print("| " + " | ".join(h.ljust(w) for h, w in zip(head, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
