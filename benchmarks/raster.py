"""Native rasterizer speed and memory on the conformance scenes, next to CLIP's cost.

    python benchmarks/raster.py [--json] [--device cpu]

Prints forward and forward+backward ms for strokes_thin, blobs and dense_512,
the forward+backward time of CLIP ViT-B-32 (random weights) on 4 cutouts of
224x224, and ratio = strokes_thin fwd+bwd / CLIP (target <= 0.2).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
import tempfile

import torch

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1]))
from benchmarks._common import SHARED, clip_fwd_bwd, peak_rss_mb, time_ms  # noqa: E402
from vecgen.backends.perceptors import load_perceptor  # noqa: E402
from vecgen.backends.raster.native import composite, rasterize  # noqa: E402
from vecgen.svg import read_svg  # noqa: E402

SCENES = ("strokes_thin", "blobs", "dense_512")


def bench_scene(name: str, device: str, repeat: int) -> dict:
    scene = read_svg(SHARED / "conformance" / f"{name}.svg", device=device)
    leaves = []
    for p in scene.paths:
        p.points.requires_grad_(True)
        leaves.append(p.points)
        for c in (p.stroke, p.fill):
            if c is not None:
                c.requires_grad_(True)
    bg = torch.ones(3, device=device)

    def fwd():
        with torch.no_grad():
            composite(rasterize(scene), bg)

    def fwd_bwd():
        composite(rasterize(scene), bg).sum().backward()

    out = {"fwd_ms": time_ms(fwd, repeat), "fwd_bwd_ms": time_ms(fwd_bwd, repeat)}
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
        fwd_bwd()
        out["peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
    else:
        out["peak_mb"] = _cpu_peak_mb(fwd_bwd)
    return out


# Kineto, the profiler's C++ core, logs every start and stop ("USDT: ... profiler_start") and, on a
# machine without a GPU, its CUDA probe failing ("ERROR: ... gpuGetDeviceCount failed with code 35")
# straight to file descriptor 2, whatever Python's warning or logging settings: these lines only.
_KINETO_NOISE = re.compile(r"\] (profiler_start|profiler_stop)$|\] gpuGetDeviceCount failed")


@contextlib.contextmanager
def _quiet_kineto():
    """Catch fd 2 while profiling; pass on every line but kineto's start/stop and CUDA-probe noise."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            for line in caught.read().decode("utf-8", "replace").splitlines():
                if not _KINETO_NOISE.search(line):
                    print(line, file=sys.stderr)


def _cpu_peak_mb(fn) -> float:
    """Peak extra memory of ``fn`` measured by the CPU allocator's profiler."""
    from torch.profiler import ProfilerActivity, profile

    with _quiet_kineto():
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            fn()
        events = [e for e in prof.events() if e.cpu_memory_usage]
    cur = peak = 0
    events = sorted(events, key=lambda e: e.time_range.start)
    for e in events:
        cur += e.cpu_memory_usage
        peak = max(peak, cur)
    return peak / 2**20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if not (SHARED / "conformance").is_dir():
        sys.exit("benchmarks/raster.py needs ../shared/conformance beside the repo")
    scenes = {name: bench_scene(name, args.device, args.repeat) for name in SCENES}
    clip = load_perceptor("ViT-B-32@random", args.device)
    clip_ms = time_ms(clip_fwd_bwd(clip, 4), args.repeat, warmup=1)
    ratio = scenes["strokes_thin"]["fwd_bwd_ms"] / clip_ms
    result = {
        "scenes": scenes,
        "clip_fwd_bwd_ms": clip_ms,
        "ratio": ratio,
        "device": args.device,
        "threads": torch.get_num_threads(),
        "peak_rss_mb": peak_rss_mb(),
    }
    if args.json:
        print(json.dumps(result, indent=1))
        return
    print(f"native rasterizer on {args.device} ({torch.get_num_threads()} threads)")
    print(f"{'scene':14s} {'fwd ms':>9s} {'fwd+bwd ms':>11s} {'peak MB':>9s}")
    for name, r in scenes.items():
        print(f"{name:14s} {r['fwd_ms']:9.1f} {r['fwd_bwd_ms']:11.1f} {r['peak_mb']:9.1f}")
    print(f"CLIP ViT-B-32 (random) fwd+bwd, 4 cutouts 224: {clip_ms:.1f} ms")
    print(f"ratio strokes_thin fwd+bwd / CLIP = {ratio:.3f}  (target <= 0.2)")


if __name__ == "__main__":
    main()
