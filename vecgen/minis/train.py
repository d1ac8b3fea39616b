"""Train a ``mini-*`` CLIP on procedurally drawn captioned scenes (CPU friendly).

    python -m vecgen.minis.train --arch vit --seed 0 --steps 900 \\
        --out vecgen/backends/perceptors/weights

Standard symmetric contrastive (CLIP) loss, plus hard-negative captions: each image
brings ``--negatives`` captions that change exactly one attribute of its true caption
(colour, shape, size, position, count, relation, ...), appended as extra text columns
of the image-to-text softmax. AdamW, linear warm-up then cosine decay. Everything is
seeded: the same arguments and thread count give the same weights.

Images are pre-rendered once with vecgen's rasterizer into a cache under /tmp (uint8,
reused across runs and models); captions are drawn afresh for every batch.
Writes ``OUT/<name>.safetensors`` (fp16 state dict, what vecgen ships) and merges the
run's metrics (time, steps, parameters, probe accuracies measured on the fp16 weights)
into ``OUT/metrics.json`` under ``<name>``.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import platform
import random
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from vecgen.backends.perceptors.clip import ClipPerceptor, _load_safetensors, _register_configs
from vecgen.io import atomic_write, torch_bytes
from vecgen.minis import shapes3d
from vecgen.minis.captions import PARTIAL_ATTRIBUTES, caption_scene, negatives, partial_captions
from vecgen.minis.objectives import (  # noqa: F401 - re-exported: the kit's tools import them from here
    AttributeHeads,
    adversarial,
    attribute_labels,
    attribute_loss,
    contrastive_loss,
    encode_text_trimmed,
)
from vecgen.minis.probes import run_probes
from vecgen.minis.scenes import GENERATOR_VERSION, render_batch, sample_scene
from vecgen.training import fit, warmup_cosine

ARCHS = {"vit": ("mini-vit", "a"), "rn": ("mini-rn", "b")}  # arch -> (model config, caption template set)
PARTIAL_WEIGHTS = {"shape": 1.0, "position": 1.0, "colour": 0.5, "size": 0.5, "count": 1.0, "solid": 1.0}  # loss
DEFAULT_MIX = {"single": 0.55, "count": 0.2, "relation": 0.15, "list": 0.1}
DEFAULT_CACHE = Path(os.environ.get("TMPDIR", "/tmp")) / "vecgen-scenes"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def scene_cache(seed0: int, count: int, size: int, cache_dir: Path | None) -> tuple[torch.Tensor, list[dict]]:
    """Scenes ``seed0 .. seed0+count-1`` as (uint8 images ``(N, 3, S, S)``, attributes); cached on disk."""
    path = None
    if cache_dir is not None:
        path = Path(cache_dir) / f"scenes-v{GENERATOR_VERSION}-{seed0}-{count}-{size}.pt"
        if path.exists():
            data = torch.load(path, weights_only=False)
            return data["images"], data["attrs"]
    t0 = time.time()
    attrs = [sample_scene(random.Random(seed0 + i)) for i in range(count)]
    images = torch.empty(count, 3, size, size, dtype=torch.uint8)
    chunk = 512
    for start in range(0, count, chunk):
        imgs = render_batch(attrs[start : start + chunk], size, per_row=16)
        images[start : start + imgs.shape[0]] = (imgs * 255).round().to(torch.uint8)
        if start and start % (chunk * 20) == 0:
            log(f"  rendered {start}/{count} scenes ({time.time() - t0:.0f}s)")
    log(f"rendered {count} scenes in {time.time() - t0:.0f}s")
    if path is not None:  # in memory once more while written (~0.7 GB at the default 60k scenes)
        atomic_write(path, torch_bytes({"images": images, "attrs": attrs}), mkdir=True)
    return images, attrs


def build_model(name: str):
    """A randomly initialised open_clip model for one of vecgen's registered configs."""
    import open_clip

    _register_configs()
    logger = logging.getLogger()
    level = logger.level
    logger.setLevel(logging.ERROR)  # open_clip warns about random init, which is the point here
    try:
        model = open_clip.create_model(name, pretrained=None, device="cpu")
    finally:
        logger.setLevel(level)
    tokenizer = open_clip.get_tokenizer(name)
    return model, tokenizer


def param_groups(model: torch.nn.Module, weight_decay: float, scale_lr_mult: float = 10.0):
    """AdamW groups: matrices decay; biases, norms, embeddings don't; the temperature learns faster."""
    decay, no_decay, scale = [], [], []
    for n, p in model.named_parameters():
        if n == "logit_scale":
            scale.append(p)
        elif p.ndim < 2 or "embedding" in n or n.endswith(("bias", "positional_embedding")):
            no_decay.append(p)
        else:
            decay.append(p)
    return [
        {"params": decay, "weight_decay": weight_decay, "lr_mult": 1.0},
        {"params": no_decay, "weight_decay": 0.0, "lr_mult": 1.0},
        {"params": scale, "weight_decay": 0.0, "lr_mult": scale_lr_mult},
    ]


def add_noise(x: torch.Tensor, amount: float, gen: torch.Generator) -> torch.Tensor:
    """Gaussian noise of a random std up to ``amount`` on about half the images ``(B, 3, H, W)``."""
    if amount <= 0:
        return x
    sigma = torch.rand(x.shape[0], 1, 1, 1, generator=gen) * amount
    sigma = sigma * (torch.rand(x.shape[0], 1, 1, 1, generator=gen) < 0.5)
    return (x + sigma * torch.randn(x.shape, generator=gen)).clamp(0, 1)


@torch.no_grad()
def recalibrate_bn(
    visual: torch.nn.Module, images: torch.Tensor, mean, std, batches: int = 40, batch: int = 128, seed: int = 0
) -> None:
    """Re-estimate BatchNorm running statistics of the final weights (exact averages, not EMA).

    The EMA stats lag behind weights that moved fast, which makes eval-mode outputs differ
    from train-mode ones; a pass over fresh batches fixes that at no training cost.

    Shape:

    - ``images``: uint8 ``(N, 3, S, S)``; ``mean``, ``std``: ``(1, 3, 1, 1)``
    """
    bns = [m for m in visual.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return
    g = torch.Generator().manual_seed(seed)
    was = visual.training
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    visual.train()
    for _ in range(batches):
        idx = torch.randint(len(images), (batch,), generator=g)
        visual((images[idx].float() / 255.0 - mean) / std)
    visual.train(was)
    for m in bns:
        m.momentum = 0.1


def pretrain_visual(
    model,
    heads: AttributeHeads,
    images: torch.Tensor,
    labels: dict[str, torch.Tensor],
    kind_weights: torch.Tensor,
    args,
    mean,
    std,
    gen: torch.Generator,
    bgs: torch.Tensor | None = None,
    pool: torch.Tensor | None = None,
) -> float:
    """Phase 1: the image tower alone, on the attribute heads (no text, so steps are cheap); returns its seconds.

    Shape:

    - ``images``: uint8 ``(N, 3, S, S)``; ``labels``: as :func:`~vecgen.minis.objectives.attribute_labels`
    - ``kind_weights``: ``(N,)`` sampling weights; ``mean``, ``std``: ``(1, 3, 1, 1)``
    - ``bgs``: ``(N, 3)`` background colours; ``pool``: ``(P, 4, S, S)`` clutter layers (see :func:`add_clutter`)
    """
    params = list(model.visual.parameters()) + list(heads.parameters())

    def data(step: int) -> torch.Tensor:
        return torch.multinomial(kind_weights, args.batch, replacement=False, generator=gen)

    def loss(idx: torch.Tensor, step: int):
        x = (load_batch(images, idx, args.clutter, bgs, pool, gen) - mean) / std
        return heads.loss(model.encode_image(x), {k: v[idx] for k, v in labels.items()})

    done = fit(
        {"visual": model.visual, "heads": heads},
        loss,
        data,
        args.pretrain_steps,
        lr=args.lr,
        groups=[{"params": params}],
        betas=(0.9, 0.98),
        eps=1e-6,
        weight_decay=0.05,
        schedule=warmup_cosine(args.warmup),
        clip_grad=1.0,
        log=log,
        log_every=args.log_every,
        label="pretrain",
    )
    log(f"pretrained the image tower in {done.elapsed:.0f}s")
    return done.elapsed


def clutter_pool(n: int, size: int, seed: int) -> torch.Tensor:
    """``(n, 4, S, S)`` premultiplied layers of faint random blobs, like an unfinished ``vecgen draw``."""
    from vecgen.params.strokes import Strokes

    gen = torch.Generator().manual_seed(seed)
    layers = []
    with torch.no_grad():
        for k in range(n):
            count = int(torch.randint(3, 25, (), generator=gen))
            param = Strokes((size, size), strokes=count, shapes="blobs", seed=seed * 100_003 + k)
            rgba = param.rasterizer.render(param.scene(), (size, size))
            layers.append(rgba * (0.1 + 0.4 * torch.rand((), generator=gen)))  # premultiplied: scale all 4; faint
    return torch.stack(layers)


def add_clutter(x: torch.Tensor, bg: torch.Tensor, pool: torch.Tensor, p: float, gen: torch.Generator) -> torch.Tensor:
    """Composite a pool layer *behind* the objects of a fraction ``p`` of ``x`` ``(B, 3, S, S)`` in [0, 1].

    ``bg``: ``(B, 3)`` background colours; only pixels of that colour take clutter, so
    the objects (and so every caption) stay true. Teaches the towers to look past the
    faint leftovers that drawings have and training scenes do not.
    """
    b = x.shape[0]
    pick = torch.randint(0, pool.shape[0], (b,), generator=gen)
    use = (torch.rand(b, generator=gen) < p).view(b, 1, 1, 1)
    layer = pool[pick]
    over = layer[:, :3] + (1 - layer[:, 3:4]) * x
    is_bg = ((x - bg.view(b, 3, 1, 1)).abs() < 0.02).all(1, keepdim=True)
    return torch.where(use & is_bg, over, x)


def load_batch(
    images: torch.Tensor, idx: torch.Tensor, clutter: float, bgs, pool, gen: torch.Generator
) -> torch.Tensor:
    """uint8 scenes ``images[idx]`` -> float ``(B, 3, S, S)`` in [0, 1], with clutter when asked."""
    x = images[idx].float() / 255.0
    return add_clutter(x, bgs[idx], pool, clutter, gen) if clutter > 0 else x


def save_fp16(model: torch.nn.Module, path: Path) -> None:
    """The fp16 state dict as safetensors (what vecgen ships), with the umask's permissions (0644 under 022)."""
    from vecgen.io import safetensors_bytes

    state = {
        k: (v.detach().half() if v.is_floating_point() else v.detach()).contiguous()
        for k, v in model.state_dict().items()
    }
    atomic_write(path, safetensors_bytes(state, {"format": "pt"}), mkdir=True)


def train(args: argparse.Namespace) -> dict:
    config, default_templates = ARCHS[args.arch]
    config = args.config or config
    if args.config_file:  # an experimental architecture: registered under the file's stem
        import open_clip

        _register_configs()
        open_clip.add_model_config(args.config_file)
        config = Path(args.config_file).stem
    name = args.name or config
    templates = args.templates or default_templates
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed * 1_000_003 + 17)
    gen = torch.Generator().manual_seed(args.seed)

    cache_dir = None if args.cache_dir in ("", "none") else Path(args.cache_dir)
    images, attrs = scene_cache(args.data_seed0, args.scenes, args.size, cache_dir)
    images, attrs = shapes3d.mix_in(images, attrs, args.data_seed0, args.scenes3d, args.size, cache_dir)

    bgs = pool = None
    if args.clutter > 0:
        bgs = torch.tensor([a["bg_rgb"] for a in attrs], dtype=torch.float32)
        pool = clutter_pool(256, args.size, args.seed)
    model, tokenizer = build_model(config)
    if args.init:  # continue training earlier weights (a fresh optimizer and schedule)
        _load_safetensors(model, args.init)
    n_params = sum(p.numel() for p in model.parameters())
    img_size = model.visual.image_size
    img_size = int(img_size[0] if isinstance(img_size, (tuple, list)) else img_size)
    if img_size != args.size:
        raise SystemExit(f"--size {args.size} differs from the model's input size {img_size}")
    import open_clip

    mean = torch.tensor(open_clip.OPENAI_DATASET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(open_clip.OPENAI_DATASET_STD).view(1, 3, 1, 1)
    log(
        f"{name}: {n_params / 1e6:.2f} M parameters, {args.pretrain_steps} + {args.steps} steps x {args.batch}, "
        f"{args.negatives} hard negatives per image, templates {templates!r}, {args.threads} threads"
    )

    # Sampling weights per scene kind: the attribute probes live mostly in single-object scenes.
    mix = {
        **DEFAULT_MIX,
        **(shapes3d.DEFAULT_MIX if args.scenes3d else {}),
        **{k: float(v) for k, v in (kv.split("=") for kv in args.mix.split(",") if kv)},
    }
    counts = {k: sum(a["kind"] == k for a in attrs) for k in mix}
    kind_weights = torch.tensor([mix[a["kind"]] / max(1, counts[a["kind"]]) for a in attrs])
    heads = labels = None
    extra: list[dict] = []
    if args.aux > 0 or args.pretrain_steps > 0:
        labels = attribute_labels(attrs)
        heads = AttributeHeads(int(model.text_projection.shape[1]), solids=bool(args.scenes3d))
        if args.scenes3d:  # the solid head = frozen text of "point cloud depth map of a X.": cheap zero-shot steps
            solid = heads.heads["solid"]
            assert isinstance(solid, torch.nn.Linear)
            shapes3d.anchor_head(solid, model, tokenizer, images, mean, std)
        extra = [{"params": list(heads.parameters()), "weight_decay": 0.0, "lr_mult": 1.0}]
    out = Path(args.out)
    ckpt = out / f"{name}.ckpt.pt"
    modules = {"model": model, **({"heads": heads} if heads is not None else {})}
    elapsed = 0.0
    if not (args.resume and ckpt.exists()) and args.pretrain_steps > 0 and heads is not None and labels is not None:
        elapsed = pretrain_visual(model, heads, images, labels, kind_weights, args, mean, std, gen, bgs, pool)

    def data(step: int) -> dict:
        idx = torch.multinomial(kind_weights, args.batch, replacement=False, generator=gen)
        x = add_noise(load_batch(images, idx, args.clutter, bgs, pool, gen), args.noise, gen)
        caps, negs = [], []
        for i in idx.tolist():
            cap, plan = caption_scene(attrs[i], rng, templates)
            caps.append(cap)
            if args.negatives:
                negs += negatives(attrs[i], plan, rng, args.negatives)
        groups: dict[str, list] = {}
        partial: dict[str, int] = {}
        if args.partial > 0:
            for b, i in enumerate(idx.tolist()):
                for att in PARTIAL_ATTRIBUTES.get(attrs[i]["kind"], ()):
                    if rng.random() < args.partial:
                        texts = partial_captions(attrs[i], att, rng)
                        groups.setdefault(att, []).append((b, [partial.setdefault(t, len(partial)) for t in texts]))
        return {
            "idx": idx,
            "x": x,
            "caps": caps,
            "tokens": tokenizer(caps + negs),
            "groups": groups,
            "partial": partial,
        }

    def loss_fn(b: dict, step: int):
        x, caps = b["x"], b["caps"]
        ft = F.normalize(encode_text_trimmed(model, b["tokens"]), dim=-1)
        if args.adv > 0:  # half the batch attacked: robust gradients without forgetting clean scenes
            h, fixed = x.shape[0] // 2, ft.detach()
            x = torch.cat(
                [
                    adversarial(
                        model, x[:h], fixed[:h], fixed[len(caps) :], caps[:h], mean, std, args.adv, args.adv_steps, gen
                    ),
                    x[h:],
                ]
            )
        emb = model.encode_image((x - mean) / std)
        fi = F.normalize(emb, dim=-1)
        loss, acc = contrastive_loss(fi, ft[: len(caps)], ft[len(caps) :], caps, model.logit_scale)
        if b["groups"]:
            fp = F.normalize(encode_text_trimmed(model, tokenizer(list(b["partial"]))), dim=-1)
            for att, grp in b["groups"].items():
                loss = loss + args.partial_weight * PARTIAL_WEIGHTS[att] * attribute_loss(
                    fi, grp, fp, model.logit_scale
                )
        if args.aux > 0 and heads is not None and labels is not None:
            loss = loss + args.aux * heads.loss(emb, {k: v[b["idx"]] for k, v in labels.items()})[0]
        return loss, {"acc": acc, "scale": float(model.logit_scale.detach().exp())}

    def after_step(step: int) -> None:
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))
        if args.probe_every and (step + 1) % args.probe_every == 0 and step + 1 < args.steps:
            quick_probe(model, tokenizer, name, config, args.probe_every_n)

    done = fit(
        modules,
        loss_fn,
        data,
        args.steps,
        lr=args.lr,
        groups=param_groups(model, args.wd) + extra,
        betas=(0.9, 0.98),
        eps=1e-6,
        schedule=warmup_cosine(args.warmup),
        clip_grad=1.0,
        clip_params=list(model.parameters()),
        after_step=after_step,
        rngs={"rng": rng, "gen": gen},
        checkpoint=ckpt,
        checkpoint_every=args.ckpt_every,
        resume=args.resume,
        log=log,
        log_every=args.log_every,
        elapsed=elapsed,
    )
    hist = done.history
    t0 = time.time() - done.elapsed
    recalibrate_bn(model.visual, images, mean, std, seed=args.seed)
    train_s = time.time() - t0
    model.eval()

    weights = out / f"{name}.safetensors"
    save_fp16(model, weights)
    if ckpt.exists():
        ckpt.unlink()
    metrics = {
        "model": name,
        "arch": args.arch,
        "config": config,
        "seed": args.seed,
        "steps": args.steps,
        "init": args.init,
        "batch": args.batch,
        "hard_negatives": args.negatives,
        "partial": args.partial,
        "partial_weight": args.partial_weight,
        "pretrain_steps": args.pretrain_steps,
        "aux_weight": args.aux,
        "clutter": args.clutter,
        "adv": args.adv,
        "adv_steps": args.adv_steps,
        "lr": args.lr,
        "weight_decay": args.wd,
        "templates": templates,
        "scenes": args.scenes,
        "kind_mix": mix,
        **({"scenes3d": args.scenes3d} if args.scenes3d else {}),
        "scene_seeds": [args.data_seed0, args.data_seed0 + args.scenes],
        "image_size": args.size,
        "params": n_params,
        "train_seconds": round(train_s, 1),
        "threads": args.threads,
        "final_loss": round(sum(h["loss"] for h in hist[-20:]) / max(1, len(hist[-20:])), 4),
        "final_batch_acc": round(sum(h["acc"] for h in hist[-20:]) / max(1, len(hist[-20:])), 4),
        "file_bytes": weights.stat().st_size,
        "torch": torch.__version__,
        "cpu": platform.processor() or platform.machine(),
        "command": "python -m vecgen.minis.train " + " ".join(args.argv),
    }
    if args.probe_n > 0:
        t1 = time.time()
        perceptor = load_trained(name, weights, config)
        metrics["probes"] = run_probes(perceptor, n=args.probe_n)
        metrics["probe_scenes"] = args.probe_n
        if args.scenes3d:  # zero-shot solids on held-out depth maps ("point cloud depth map of a cone.")
            metrics["probe3d"] = shapes3d.probe3d(perceptor, n=300)
        log(
            f"probes ({args.probe_n} held-out scenes each, {time.time() - t1:.0f}s): "
            + ", ".join(f"{k} {v['accuracy']:.3f}" for k, v in metrics["probes"].items())
        )
    mpath = out / "metrics.json"
    allm = json.loads(mpath.read_text()) if mpath.exists() else {}
    allm[name] = metrics
    atomic_write(mpath, (json.dumps(allm, indent=2, sort_keys=True) + "\n").encode("utf-8"))
    log(f"wrote {weights} ({weights.stat().st_size / 1e6:.1f} MB) and {mpath}")
    return metrics


def quick_probe(model, tokenizer, name: str, config: str, n: int) -> None:
    """Log probe accuracies of the model being trained (on a few held-out scenes)."""
    import open_clip

    was_training = model.training
    model.eval()
    flags = {p: p.requires_grad for p in model.parameters()}
    perceptor = ClipPerceptor(model, tokenizer, name, open_clip.OPENAI_DATASET_MEAN, open_clip.OPENAI_DATASET_STD)
    res = run_probes(perceptor, n=n, attributes=("colour", "shape", "position", "size", "count"))
    for p, f in flags.items():
        p.requires_grad_(f)
    model.train(was_training)
    log("  probe: " + ", ".join(f"{k} {v['accuracy']:.2f}" for k, v in res.items()))


def load_trained(name: str, weights: Path, config: str | None = None):
    """A ClipPerceptor over fp16 weights written by this script (as vecgen will load them)."""
    import open_clip

    cfg = config or name
    model, _ = build_model(cfg)
    _load_safetensors(model, str(weights))
    return ClipPerceptor(
        model, open_clip.get_tokenizer(cfg), name, open_clip.OPENAI_DATASET_MEAN, open_clip.OPENAI_DATASET_STD
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m vecgen.minis.train", description=__doc__.split("\n\n")[0])
    p.add_argument("--arch", choices=sorted(ARCHS), required=True, help="vit -> mini-vit, rn -> mini-rn")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=900)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--negatives", type=int, default=8, help="hard-negative captions per image")
    p.add_argument(
        "--partial",
        type=float,
        default=1.0,
        help="probability, per attribute, that a single/count scene also gets that attribute-caption task",
    )
    p.add_argument("--partial-weight", type=float, default=1.0, help="weight of the attribute-caption loss")
    p.add_argument("--lr", type=float, default=None, help="peak learning rate (default 1e-3 vit, 2e-3 rn)")
    p.add_argument("--wd", type=float, default=0.1)
    p.add_argument(
        "--pretrain-steps", type=int, default=0, help="first train the image tower alone on attribute heads for N steps"
    )
    p.add_argument("--aux", type=float, default=0.0, help="weight of the attribute-head loss during CLIP training")
    p.add_argument("--warmup", type=int, default=50)
    p.add_argument(
        "--clutter",
        type=float,
        default=0.0,
        help="fraction of images that get faint random blobs behind their objects (drawing-like)",
    )
    p.add_argument(
        "--adv", type=float, default=0.0, help="L2 radius of PGD adversarial training on half of each batch (0 = off)"
    )
    p.add_argument("--adv-steps", type=int, default=2, help="PGD steps per batch with --adv")
    p.add_argument("--noise", type=float, default=0.04, help="max std of Gaussian noise on half the images")
    p.add_argument("--scenes", type=int, default=60_000, help="distinct training scenes (pre-rendered once)")
    p.add_argument("--scenes3d", type=int, default=0, help="3-D primitive scenes mixed in (depth maps, shaded views)")
    p.add_argument("--data-seed0", type=int, default=0, help="first scene seed (probes use seeds >= 10**9)")
    p.add_argument("--size", type=int, default=64)
    p.add_argument(
        "--mix",
        default="",
        help="batch share per scene kind, e.g. single=0.55,count=0.2 "
        f"(default {','.join(f'{k}={v}' for k, v in DEFAULT_MIX.items())})",
    )
    p.add_argument(
        "--templates", default=None, help="caption template set: a, b, common or all (default: a for vit, b for rn)"
    )
    p.add_argument("--name", default=None, help="output name (default mini-ARCH)")
    p.add_argument("--config", default=None, help="model config to train (default: mini-ARCH)")
    p.add_argument("--config-file", default=None, help="train an open_clip JSON config from a file instead")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--cache-dir", default=str(DEFAULT_CACHE), help="pre-rendered scenes cache ('none' = off)")
    p.add_argument("--probe-n", type=int, default=1000, help="held-out scenes per probe after training (0 = skip)")
    p.add_argument("--log-every", type=int, default=25)
    p.add_argument("--probe-every", type=int, default=0, help="log quick probes every N steps (0 = off)")
    p.add_argument("--probe-every-n", type=int, default=100, help="held-out scenes per quick probe")
    p.add_argument("--init", default=None, help="start from these weights (.safetensors) instead of random")
    p.add_argument("--ckpt-every", type=int, default=200, help="write OUT/NAME.ckpt.pt every N steps (0 = never)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/NAME.ckpt.pt if it exists")
    p.add_argument("--out", required=True, help="output folder")
    args = p.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if args.lr is None:
        args.lr = {"vit": 1e-3, "rn": 2e-3}[args.arch]
    if args.scenes < args.batch:
        p.error("--scenes must be >= --batch")
    return args


def main(argv: list[str] | None = None) -> int:
    train(parse_args(argv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
