"""Teach a trained ``mini-*`` CLIP the 3-D primitives without losing what it knows of 2-D scenes.

    python -m vecgen.minis.finetune3d --init vecgen/backends/perceptors/weights/mini-vit.safetensors \\
        --steps 1500 --distill 10 --kl 2 --batch2 64 --out DIR     # the shipped mini-vit (39 min, 1 thread)

Only the image tower learns; the text tower is frozen, so every caption keeps the
embedding it had. Each step has two halves:

- 3-D scenes of :mod:`vecgen.minis.shapes3d` (depth maps and shaded views): the
  image must pick its caption ("point cloud depth map of a cone.") among the same
  caption with every other solid (and, for shaded views, other colours) -- the
  zero-shot task itself, cross-entropy at the model's own temperature;
- 2-D training scenes (with the trainer's clutter and noise): the image embedding
  must stay where the frozen original put it (cosine distillation), and its
  softmax over the scene's caption and that caption's one-attribute hard negatives
  must stay the original's (KL), so the 2-D probes and what ``vecgen draw`` descends
  do not move.

``--drawings K`` adds K random blob pictures per step (what ``draw`` shows a
mini model), held to ``--teacher`` (default: the init) by the same cosine term.

Writes ``OUT/<name>.safetensors`` (fp16, what vecgen ships) and merges into
``OUT/metrics.json`` under ``<name>``: ``finetune3d`` (settings, time, command) and
the written file's ``probes`` and ``probe3d`` (an earlier record's probes move to
``probes_before_finetune3d``).
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import platform
import random
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from vecgen.backends.perceptors.clip import WEIGHTS_DIR, _load_safetensors
from vecgen.io import atomic_write
from vecgen.minis import shapes3d
from vecgen.minis.captions import caption_scene, negatives
from vecgen.minis.probes import run_probes
from vecgen.minis.train import (
    DEFAULT_CACHE,
    add_clutter,
    add_noise,
    build_model,
    clutter_pool,
    load_trained,
    log,
    save_fp16,
    scene_cache,
)
from vecgen.training import fit, warmup_cosine


class TextBank:
    """Frozen, normalised text embeddings, computed once per caption."""

    def __init__(self, model, tokenizer):
        self.model, self.tokenizer, self.cache = model, tokenizer, {}

    @torch.no_grad()
    def __call__(self, texts: list[str]) -> torch.Tensor:
        """The embeddings of ``texts``, in order (repeats included).

        Shape:

        - returns: ``(len(texts), D)`` float32, unit-norm rows
        """
        new = [t for t in dict.fromkeys(texts) if t not in self.cache]
        if new:
            emb = F.normalize(self.model.encode_text(self.tokenizer(new)).float(), dim=-1)
            self.cache.update(zip(new, emb))
        return torch.stack([self.cache[t] for t in texts])


def candidates(attrs: dict, rng: random.Random, colours: int = 5) -> list[str]:
    """The scene's caption first, then the same caption for every other solid (shaded: and other colours)."""
    cap, plan = shapes3d.caption3d(attrs, rng)
    out = [cap] + [shapes3d.render3d(dict(attrs, solid=s), plan) for s in shapes3d.SOLIDS if s != attrs["solid"]]
    if attrs["kind"] == "shaded":
        others = [c for c in shapes3d.COLOURS if c != attrs["colour"]]
        out += [shapes3d.render3d(dict(attrs, colour=c), plan) for c in rng.sample(others, colours)]
    return out


def solid_loss(
    emb: torch.Tensor, attrs: list[dict], bank: TextBank, rng: random.Random, scale: float
) -> tuple[torch.Tensor, float]:
    """Cross-entropy of ``(B, D)`` image embeddings over each scene's candidate captions (true = 0)."""
    logits = group_logits(emb, *padded([candidates(a, rng) for a in attrs], bank), scale)
    target = torch.zeros(len(attrs), dtype=torch.long)
    return F.cross_entropy(logits, target), float((logits.argmax(1) == 0).float().mean())


def padded(groups: list[list[str]], bank: TextBank) -> tuple[torch.Tensor, torch.Tensor]:
    """Caption groups -> text ``(B, K, D)`` (short groups padded with their first caption) and a mask ``(B, K)``."""
    width = max(len(g) for g in groups)
    text = bank([t for g in groups for t in g + [g[0]] * (width - len(g))]).view(len(groups), width, -1)
    return text, torch.tensor([[j < len(g) for j in range(width)] for g in groups])


def group_logits(emb: torch.Tensor, text: torch.Tensor, valid: torch.Tensor, scale: float) -> torch.Tensor:
    """``(B, D)`` image embeddings against their own ``(B, K, D)`` caption groups -> ``(B, K)``, padding at -inf."""
    logits = scale * torch.einsum("bd,bkd->bk", F.normalize(emb, dim=-1), text)
    return logits.masked_fill(~valid, float("-inf"))


def caption_kl(
    student: torch.Tensor,
    teacher: torch.Tensor,
    attrs: list[dict],
    bank: TextBank,
    rng: random.Random,
    scale: float,
    templates: str,
    k: int = 8,
) -> torch.Tensor:
    """KL(teacher || student) of the softmax over each 2-D scene's caption and ``k`` hard negatives.

    Shape:

    - ``student``, ``teacher``: ``(B, D)`` image embeddings (normalised here), ``B = len(attrs)``
    - returns: ``()``, the batch mean
    """
    groups = []
    for a in attrs:
        cap, plan = caption_scene(a, rng, templates)
        groups.append(list(dict.fromkeys([cap, *negatives(a, plan, rng, k)])))
    text, valid = padded(groups, bank)
    ls, lt = (group_logits(e, text, valid, scale).log_softmax(-1) for e in (student, teacher))
    return (lt.exp() * (lt - ls)).masked_fill(~valid, 0.0).sum(-1).mean()


def drawing_bank(n: int, size: int, seed: int) -> torch.Tensor:
    """``(n, 3, size, size)`` uint8 renders of random blob and stroke pictures: what ``vecgen draw`` shows
    a mini model (filled blobs on white), at 1-3x the init's blob size."""
    from vecgen.params.strokes import Strokes

    g = torch.Generator().manual_seed(seed)
    out = torch.empty(n, 3, size, size, dtype=torch.uint8)
    with torch.no_grad():
        for i in range(n):
            k = int(torch.randint(4, 65, (), generator=g))
            shapes = "blobs" if torch.rand((), generator=g) < 0.7 else "mixed"
            art = Strokes((size, size), strokes=k, shapes=shapes, seed=seed * 100_003 + i)
            start = 0
            for c in art.counts:  # grow each path about its centre
                pts = art.points.data[start : start + c]
                pts.copy_(pts.mean(0) + (pts - pts.mean(0)) * (1 + 2 * torch.rand((), generator=g)))
                start += c
            out[i] = (art.render()[0].clamp(0, 1) * 255).round().to(torch.uint8)
    return out


def finetune(args: argparse.Namespace) -> dict:
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed * 1_000_003 + 29)
    gen = torch.Generator().manual_seed(args.seed)
    cache = None if args.cache_dir in ("", "none") else Path(args.cache_dir)
    im2, at2 = scene_cache(args.data_seed0, args.scenes, args.size, cache)
    im3, at3 = shapes3d.scene_cache3d(args.data_seed0, args.scenes3d, args.size, cache)
    bgs = torch.tensor([a["bg_rgb"] for a in at2], dtype=torch.float32)
    pool = clutter_pool(256, args.size, args.seed) if args.clutter > 0 else None

    model, tokenizer = build_model(args.config)
    _load_safetensors(model, args.init)
    teacher = copy.deepcopy(model).eval().requires_grad_(False)
    if args.teacher:  # e.g. a second stage: start from the 3-D weights, anchor 2-D to the original
        _load_safetensors(teacher, args.teacher)
    draws = drawing_bank(args.bank, args.size, args.seed + 7) if args.drawings > 0 else None
    model.requires_grad_(False)
    model.visual.requires_grad_(True)
    bank = TextBank(teacher, tokenizer)
    scale = float(teacher.logit_scale.exp().clamp(max=100))
    import open_clip

    mean = torch.tensor(open_clip.OPENAI_DATASET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(open_clip.OPENAI_DATASET_STD).view(1, 3, 1, 1)
    params = list(model.visual.parameters())
    # 3-D batches: depth maps are what classify3d scores; shaded views serve mesh prompts
    w3 = torch.tensor([args.depth_share if a["kind"] == "depth" else 1 - args.depth_share for a in at3])
    log(
        f"{args.name}: fine-tuning the image tower ({sum(p.numel() for p in params) / 1e6:.2f} M parameters), "
        f"{args.steps} steps x ({args.batch3} 3-D + {args.batch2} 2-D), {args.threads} threads"
    )

    def data(step: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        i3 = torch.multinomial(w3, args.batch3, replacement=False, generator=gen)
        i2 = torch.randint(len(im2), (args.batch2,), generator=gen)
        x2 = im2[i2].float() / 255.0
        if pool is not None:
            x2 = add_clutter(x2, bgs[i2], pool, args.clutter, gen)
        parts = [im3[i3].float() / 255.0, x2]
        if draws is not None:
            parts.append(draws[torch.randint(len(draws), (args.drawings,), generator=gen)].float() / 255.0)
        x = add_noise(torch.cat(parts), args.noise, gen)  # as the trainer: Gaussian noise on half the images
        return (x - mean) / std, i3, i2

    def loss_fn(batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor], step: int):
        x, i3, i2 = batch
        emb = model.encode_image(x)
        l3, acc3 = solid_loss(emb[: args.batch3], [at3[i] for i in i3.tolist()], bank, rng, scale)
        with torch.no_grad():
            ref = teacher.encode_image(x[args.batch3 :])
        cos = (F.normalize(emb[args.batch3 :], dim=-1) * F.normalize(ref, dim=-1)).sum(-1)
        l2 = (1 - cos[: args.batch2]).mean()
        ld = (1 - cos[args.batch2 :]).mean() if draws is not None else torch.zeros(())
        lkl = torch.zeros(())
        if args.kl > 0:
            lkl = caption_kl(
                emb[args.batch3 : args.batch3 + args.batch2],
                ref[: args.batch2],
                [at2[i] for i in i2.tolist()],
                bank,
                rng,
                scale,
                args.templates,
            )
        loss = l3 + args.distill * (l2 + args.drawing_weight * ld) + args.kl * lkl
        return loss, {"loss3d": l3.item(), "acc3d": acc3, "drift2d": l2.item(), "kl": lkl.item(), "drawings": ld.item()}

    done = fit(
        {"model": model},
        loss_fn,
        data,
        args.steps,
        lr=args.lr,
        groups=[{"params": params}],
        betas=(0.9, 0.98),
        eps=1e-6,
        weight_decay=args.wd,
        schedule=warmup_cosine(args.warmup),
        clip_grad=1.0,
        log=log,
        log_every=args.log_every,
    )
    hist = [(h["loss3d"], h["acc3d"], h["drift2d"], h["kl"], h["drawings"]) for h in done.history]
    t0 = time.time() - done.elapsed
    train_s = time.time() - t0
    model.eval()
    out = Path(args.out)
    weights = out / f"{args.name}.safetensors"
    save_fp16(model, weights)
    metrics = {
        "model": args.name,
        "config": args.config,
        "init": str(args.init),
        "seed": args.seed,
        "steps": args.steps,
        "batch": [args.batch3, args.batch2],
        "lr": args.lr,
        "weight_decay": args.wd,
        "distill": args.distill,
        "kl": args.kl,
        "teacher": args.teacher,
        "drawings": args.drawings,
        "drawing_weight": args.drawing_weight,
        "bank": args.bank,
        "depth_share": args.depth_share,
        "clutter": args.clutter,
        "noise": args.noise,
        "scenes": args.scenes,
        "scenes3d": args.scenes3d,
        "shapes3d_version": shapes3d.GENERATOR_VERSION,
        "train_seconds": round(train_s, 1),
        "threads": args.threads,
        "torch": torch.__version__,
        "final_3d_acc": round(sum(h[1] for h in hist[-20:]) / max(1, len(hist[-20:])), 4),
        "final_2d_drift": round(sum(h[2] for h in hist[-20:]) / max(1, len(hist[-20:])), 5),
        "final_2d_kl": round(sum(h[3] for h in hist[-20:]) / max(1, len(hist[-20:])), 5),
        "file_bytes": weights.stat().st_size,
        "cpu": platform.processor() or platform.machine(),
        "command": "python -m vecgen.minis.finetune3d " + " ".join(args.argv),
    }
    if args.probe_n > 0:
        perceptor = load_trained(args.name, weights, args.config)
        metrics["probes"] = run_probes(perceptor, n=args.probe_n)
        metrics["probe_scenes"] = args.probe_n
        metrics["probe3d"] = shapes3d.probe3d(perceptor, n=300)
        log(
            "probes: "
            + ", ".join(f"{k} {v['accuracy']:.3f}" for k, v in metrics["probes"].items())
            + f"; 3-D zero-shot {metrics['probe3d']['accuracy']:.3f}"
        )
    mpath = out / "metrics.json"
    allm = json.loads(mpath.read_text()) if mpath.exists() else {}
    rec = dict(allm.get(args.name, {}))
    if "probes" in metrics:  # the record describes the file written: its probes are the fine-tuned ones
        if "probes" in rec and "finetune3d" not in rec:
            rec["probes_before_finetune3d"] = rec["probes"]
        rec.update(probes=metrics["probes"], probe3d=metrics["probe3d"])
    rec["finetune3d"] = {k: v for k, v in metrics.items() if k not in ("probes", "probe3d")}
    allm[args.name] = rec
    atomic_write(mpath, (json.dumps(allm, indent=2, sort_keys=True) + "\n").encode("utf-8"))
    log(f"wrote {weights} and {mpath}")
    return metrics


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m vecgen.minis.finetune3d", description=__doc__.split("\n\n")[0])
    p.add_argument("--init", default=str(WEIGHTS_DIR / "mini-vit.safetensors"), help="weights to start from")
    p.add_argument("--config", default="mini-vit", help="their model config")
    p.add_argument("--name", default=None, help="output name (default: the config)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--batch3", type=int, default=48, help="3-D scenes per step")
    p.add_argument("--batch2", type=int, default=64, help="2-D scenes per step (distilled)")
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--wd", type=float, default=0.05)
    p.add_argument("--warmup", type=int, default=30)
    p.add_argument("--distill", type=float, default=10.0, help="weight of the 2-D cosine distillation")
    p.add_argument(
        "--kl", type=float, default=2.0, help="weight of the KL term on each 2-D scene's caption vs its hard negatives"
    )
    p.add_argument("--teacher", default=None, help="weights the 2-D terms hold to (default: --init)")
    p.add_argument("--drawings", type=int, default=0, help="random blob pictures per step, distilled to the teacher")
    p.add_argument("--drawing-weight", type=float, default=1.0, help="their distillation weight (x --distill)")
    p.add_argument("--bank", type=int, default=4000, help="blob pictures rendered once for --drawings")
    p.add_argument("--templates", default="a", help="caption template set of the 2-D captions (a: mini-vit's)")
    p.add_argument("--depth-share", type=float, default=0.75, help="share of depth maps among the 3-D scenes")
    p.add_argument("--clutter", type=float, default=0.3, help="fraction of 2-D scenes with faint blobs behind")
    p.add_argument("--noise", type=float, default=0.04, help="max std of Gaussian noise on half the images")
    p.add_argument("--scenes", type=int, default=60_000, help="2-D scenes (the trainer's cache)")
    p.add_argument("--scenes3d", type=int, default=12_000, help="3-D scenes (pre-rendered once, cached)")
    p.add_argument("--data-seed0", type=int, default=0)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--cache-dir", default=str(DEFAULT_CACHE), help="pre-rendered scenes cache ('none' = off)")
    p.add_argument("--probe-n", type=int, default=1000, help="held-out scenes per probe after training (0 = skip)")
    p.add_argument("--log-every", type=int, default=25)
    p.add_argument("--out", required=True, help="output folder")
    args = p.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    args.name = args.name or args.config
    if min(args.batch2, args.batch3) < 1 or args.steps < 1:
        p.error("--steps, --batch2 and --batch3 must be >= 1")
    if not math.isfinite(args.lr) or args.lr <= 0:
        p.error("--lr must be > 0")
    return args


def main(argv: list[str] | None = None) -> int:
    finetune(parse_args(argv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
