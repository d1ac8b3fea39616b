"""``classify3d``: PointCLIP, point clouds classified by a CLIP ensemble looking at their depth maps.

    >>> from vecgen.api import classify3d
    >>> res = classify3d("chair.ply", labels="chair,table,lamp,airplane")
    >>> res.ranked[0]            # [("chair", 0.71), ("table", 0.18), ...]
    >>> res.scores               # (B, L) probabilities
    >>> classify3d(eval="test.h5", labels_file="modelnet40.txt").report["accuracy"]
    >>> classify3d(fit="train.h5", labels_file="classes.txt", shots=16).save("adapter.safetensors")

Each cloud is normalised and projected to ``views`` depth maps
(:func:`vecgen.backends.mesh.points.depth_maps`); every perceptor of ``clip``
encodes every map, and each view's logits against ``template`` (one text per
label) are summed with ``view_weights``. With ``adapter`` (trained by ``fit``)
the view features pass PointCLIP's inter-view adapter first
(:mod:`vecgen.api.classify3d_adapter`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vecgen.api.result import Result
from vecgen.api.run_options import RunConfig
from vecgen.api.verb import Verb
from vecgen.config import OptionError, VerbConfig, like, option, verb_function
from vecgen.errors import VecgenError
from vecgen.options import BYTES_PER_VIEW_PIXEL, LIMITS, available_memory, parse_clip, resolve_device

if TYPE_CHECKING:
    from torch import Tensor

DEFAULT_TEMPLATE = "point cloud depth map of a {}."
OUTPUTS = (".json", ".safetensors", ".png")
#: Largest depth map side, most points sampled from a mesh, most shots per class and adapter epochs.
MAX_SIZE, MAX_MESH_POINTS, MAX_SHOTS, MAX_EPOCHS = 1024, 1_000_000, 10_000, 100_000
#: Bytes a view costs a perceptor per input pixel when it only encodes (no graph kept): a quarter of the
#: forward + backward figure measured for optimization (:data:`vecgen.options.BYTES_PER_VIEW_PIXEL`), an
#: estimate, not a measurement.
ENCODE_BYTES_PER_VIEW_PIXEL = BYTES_PER_VIEW_PIXEL // 4
#: Bytes per (view, point, disc pixel) of the z-buffered splat: column, row, key and flat index (int64),
#: the mask, and the masked key and index (measured: ~4.4 GB at 1024 px x 12 views, before it finished).
SPLAT_BYTES = 50


# ----------------------------------------------------------------------------- options
def parse_labels(labels: Any = None, labels_file: str | Path | None = None) -> list[str] | None:
    """``"a,b,c"``, a list, or a file with one label per line -> labels; refuses blanks and duplicates."""
    if labels is not None and labels_file is not None:
        raise VecgenError("give --labels or --labels-file, not both")
    if labels_file is not None:
        p = Path(labels_file)
        try:
            text = p.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise VecgenError(f"{p}: cannot read the label file ({type(e).__name__})") from None
        out = text.splitlines()
        for k, line in enumerate(out, 1):
            if not line.strip():
                raise VecgenError(f"{p}: line {k} is blank (one label per line, no blank lines)")
        out = [line.strip() for line in out]
        where = str(p)
    elif labels is None:
        return None
    else:
        out = [s.strip() for s in labels.split(",")] if isinstance(labels, str) else [str(s).strip() for s in labels]
        if any(not s for s in out):
            raise VecgenError("--labels: an empty label (write them as a,b,c)")
        where = "--labels"
    if len(out) < 2:
        raise VecgenError(f"{where}: need at least two labels to choose between, got {len(out)}")
    seen = set()
    for s in out:
        if s in seen:
            raise VecgenError(f"{where}: label {s!r} appears twice")
        seen.add(s)
    if len(out) > 1000:
        raise VecgenError(f"{where}: at most 1000 labels, got {len(out)}")
    return out


def check_template(template: Any) -> str:
    t = str(template or "")
    if t.count("{}") + t.count("{label}") != 1:
        raise VecgenError(f"--template must hold exactly one {{}} for the label, got {t!r}")
    return t


def texts_for(labels: list[str], template: str) -> list[str]:
    return [template.replace("{label}", "{}").replace("{}", lab, 1) for lab in labels]


def parse_view_weights(spec: Any, views: int) -> "Tensor":
    """``None`` (equal), ``"1,1,1,1,0.5,0.5"`` or a sequence -> ``(V,)`` non-negative weights."""
    import torch

    if spec is None:
        return torch.ones(views)
    parts = spec.split(",") if isinstance(spec, str) else list(spec)
    try:
        w = [float(x) for x in parts]
    except (TypeError, ValueError):
        raise VecgenError(f"--view-weights: not numbers: {spec!r}") from None
    if len(w) != views:
        raise VecgenError(f"--view-weights: {len(w)} weights for {views} views")
    if any(not math.isfinite(x) or x < 0 for x in w) or sum(w) <= 0:
        raise VecgenError("--view-weights: weights must be finite, >= 0, and not all 0")
    return torch.tensor(w)


def load_clouds(points: Any, mesh_points: int = 1024) -> tuple[list, list[str]]:
    """A path, an ``(N, 3)`` array, or a list of either -> checked float32 ``(N, 3)`` clouds and their names."""
    import numpy as np
    from torch import Tensor

    from vecgen.backends.mesh.points import check_points, load_points

    if points is None:
        return [], []
    if isinstance(points, (str, Path)):
        points = [points]
    elif isinstance(points, (np.ndarray, Tensor)) and points.ndim == 2:
        points = [points]
    clouds, names = [], []
    for k, item in enumerate(points):
        if isinstance(item, (str, Path)):
            clouds.append(load_points(item, mesh_points=mesh_points))
            names.append(str(item))
        else:
            clouds.append(check_points(item, f"cloud {k}"))
            names.append(f"cloud {k}")
    return clouds, names


# ----------------------------------------------------------------------------- configs
@dataclass(frozen=True)
class PointsConfig(VerbConfig):
    """The options :func:`classify3d` and :func:`classify3d_fit` share (see :mod:`vecgen.config`)."""

    labels: Any = option(None, "class names, comma-separated: chair,table,lamp", "object", section="main")
    labels_file: str | Path | None = option(None, "class names, one per line", "file", metavar="FILE", section="main")
    template: str = option(DEFAULT_TEMPLATE, "caption per label, {} = the label")
    views: Any = option(6, "view count (1-10, 12) or AZ:EL,AZ:EL,... in degrees", "object")
    view_weights: Any = option(None, "one weight per view (default equal)", "object", metavar="W,W,...")
    search_weights: bool = option(False, "grid-search the view weights on the --eval / --fit set")
    clip: str = like(RunConfig, "clip", help="auto, or MODEL[@PRETRAINED|@PATH][:WEIGHT],... (the ensemble)")
    size: int | None = option(
        None, "depth-map side in pixels (default: the perceptors' input size)", "int", minimum=16, maximum=MAX_SIZE
    )
    splat: float = option(1.5, "point splat size, x the point spacing", "float", above=0, maximum=10)
    keep_outliers: bool | None = option(None, "project every point (default: drop isolated stray points first)", "bool")
    mesh_points: int = option(1024, "points sampled from a mesh file", "int", minimum=2, maximum=MAX_MESH_POINTS)
    batch: int = option(32, "clouds encoded at once", "int", minimum=1, maximum=LIMITS["batch"])
    seed: int = like(RunConfig, "seed", help="seed of the shot selection and adapter training")
    device: str | None = like(RunConfig, "device")
    quiet: bool = like(RunConfig, "quiet", help="no progress output")


def _given(value: Any) -> bool:
    return value is not None and not (isinstance(value, (list, tuple)) and not value)


def _modes(values: dict[str, Any]) -> None:
    """One of files, ``--eval`` and ``--fit``; ``--search-weights`` needs a labelled set; ``--fit`` makes its
    own adapter."""
    modes = [m for m, k in (("files", "points"), ("--eval", "eval"), ("--fit", "fit")) if _given(values.get(k))]
    if len(modes) > 1:
        raise OptionError(
            values.get("fit") is not None and "fit" or "eval",
            f"give one of point-cloud files, --eval or --fit (got {' and '.join(modes)})",
        )
    if values.get("search_weights") and not (_given(values.get("eval")) or _given(values.get("fit"))):
        raise OptionError("search_weights", "{label} needs a labelled set to search on: --eval SET or --fit SET")
    if values.get("fit") is not None and values.get("adapter") is not None:
        raise OptionError("adapter", "--fit trains a new adapter; leave out {label}")
    if values.get("fit") is None:  # training settings apply to --fit only: refuse rather than ignore them
        defaults = Classify3dConfig.defaults()
        for name in ("shots", "epochs", "ratio"):
            if values.get(name) is not None and values[name] != defaults[name]:
                raise OptionError(name, "{label} applies to --fit only (training an adapter)")


@dataclass(frozen=True)
class Classify3dConfig(PointsConfig):
    """Every option of :func:`classify3d`."""

    cross_checks = (_modes,)

    points: Any = option(
        None,
        "point clouds or meshes to classify",
        "mesh",
        positional=True,
        multiple=True,
        metavar="FILE",
        section="main",
    )
    adapter: str | Path | None = option(None, "few-shot adapter from --fit", "file", metavar="FILE")
    eval: str | Path | None = option(
        None, "labelled set to score: accuracy, per class, confusion matrix", "file", metavar="SET"
    )
    fit: str | Path | None = option(
        None, "labelled set to train the adapter on (write it with -o; vecgen classify3d-fit)", "file", metavar="SET"
    )
    shots: int = option(16, "examples per class for --fit", "int", minimum=1, maximum=MAX_SHOTS)
    epochs: int = option(300, "adapter training epochs", "int", minimum=1, maximum=MAX_EPOCHS)
    ratio: float = option(0.6, "adapter residual ratio", "float", minimum=0, maximum=1)


@dataclass(frozen=True)
class Classify3dFitConfig(PointsConfig):
    """Every option of :func:`classify3d_fit`."""

    fit: str | Path | None = option(
        None,
        "labelled set to train the adapter on: ModelNet40 .h5, or a folder per class",
        "file",
        positional=True,
        required=True,
        metavar="SET",
        section="main",
    )
    shots: int = like(Classify3dConfig, "shots", help="examples per class")
    epochs: int = like(Classify3dConfig, "epochs")
    ratio: float = like(Classify3dConfig, "ratio")
    search_weights: bool = like(PointsConfig, "search_weights", help="grid-search the view weights on the set")


def check_encode_memory(
    clouds: int, batch: int, views: int, size: int, inputs: list[int], device, points: int = 0, splat: float = 0.0
) -> None:
    """Refuse, before the first depth map, an encoding whose batches cannot fit in the free memory.

    Estimate per batch of ``min(batch, clouds)`` clouds: their ``views`` depth maps
    ``(b, V, 3, size, size)`` float32 twice (stacked, then on the device), plus each
    perceptor's encoding of every view (:data:`ENCODE_BYTES_PER_VIEW_PIXEL` per input pixel),
    plus the splatting of one cloud of ``points`` (the largest): a few int64 values per
    (view, point, disc pixel) (:data:`SPLAT_BYTES`; ``--size 1024 --views 12`` splats about 4 GiB).
    """
    from vecgen.backends.mesh.points import splat_radius

    b = max(1, min(batch, clouds))
    need = b * views * (2 * 3 * 4 * size * size + ENCODE_BYTES_PER_VIEW_PIXEL * sum(s * s for s in inputs))
    r = splat_radius(points, size, splat) if points else 0
    need += SPLAT_BYTES * views * points * (4 * (r * r + r) + 1)  # the disc's pixels: at most its square
    free = available_memory(device)
    if free is not None and need > free:
        raise VecgenError(
            f"--batch {batch} x {views} views of {size} px need about {need / 2**30:.1f} GiB, but "
            f"{free / 2**30:.1f} GiB is free on {device}; lower --batch, --size, --views or --splat "
            f"(README, Limits)"
        )


# ----------------------------------------------------------------------------- the verb
@verb_function(Classify3dConfig, perceptors=None, warn=None)
def classify3d(cfg: Classify3dConfig, *, perceptors=None, warn: Callable[[str], None] | None = None) -> Result:
    """Zero-shot (or adapted few-shot) classification of point clouds among ``labels``.

    points: a file (PLY/XYZ/TXT/NPY or a mesh), an ``(N, 3)`` array, or a list of
    either. ``eval``: a labelled set (ModelNet40 ``.h5`` or a folder per class) to
    score instead; ``fit``: a labelled set to train the inter-view adapter on
    (``shots`` per class, ``ratio`` residual). Isolated stray points are dropped before
    projection unless ``keep_outliers`` (default: off, or the adapter's setting).
    The result: ``res.scores`` ``(B, L)`` probabilities, ``res.ranked`` per cloud
    ``[(label, prob), ...]``, ``res.report`` (eval/fit: accuracy, per-class accuracy,
    confusion matrix), ``res.image`` the depth maps of the first cloud;
    ``res.save("x.json")`` writes scores/report, ``res.save("a.safetensors")`` the fitted adapter;
    ``res.text`` is the same as text (ranked labels per cloud, or the report). Every option:
    :class:`Classify3dConfig`; ``fit`` is also its own verb, :func:`classify3d_fit`.
    """
    return _classify(cfg.asdict(), perceptors, warn)


def _classify(o: dict[str, Any], perceptors, warn: Callable[[str], None] | None) -> Result:
    """The run of :func:`classify3d` / :func:`classify3d_fit` from their checked options ``o``."""
    import torch

    from vecgen.api import classify3d_adapter as fitting
    from vecgen.api.classify3d_adapter import LOGIT_SCALE, Encoder, grid_image, view_logits
    from vecgen.backends.mesh.points import view_angles

    t_start = time.perf_counter()
    points, eval, fit, adapter = o.get("points"), o.get("eval"), o.get("fit"), o.get("adapter")
    views, view_weights, keep_outliers, clip = o["views"], o["view_weights"], o["keep_outliers"], o["clip"]
    batch, shots, epochs, mesh_points = int(o["batch"]), int(o["shots"]), int(o["epochs"]), int(o["mesh_points"])
    seed, size, splat, ratio, search_weights = int(o["seed"]), o["size"], o["splat"], o["ratio"], o["search_weights"]
    label_list = parse_labels(o["labels"], o["labels_file"])
    template = check_template(o["template"])
    if not any(_given(v) for v in (points, eval, fit)):
        raise VecgenError("nothing to classify: give point-cloud files, --eval SET or --fit SET")
    parse_clip(str(clip))
    az, _ = view_angles(views)
    n_views = len(az)
    ad = None
    ad_settings: dict[str, Any] = {}
    if adapter is not None:
        ad, ad_settings = fitting.load_adapter(adapter)
        if label_list is None:
            label_list = list(ad_settings.get("labels") or [])
        elif label_list != ad_settings.get("labels"):
            theirs = ad_settings.get("labels") or []
            raise VecgenError(
                f"{adapter}: the adapter was trained for other labels ({len(theirs)}: "
                f"{', '.join(theirs[:4])}{', ...' if len(theirs) > 4 else ''}); give the same labels"
            )
        if ad.views != n_views or ad_settings.get("views") not in (None, _views_text(views)):
            raise VecgenError(
                f"{adapter}: the adapter was trained with views {ad_settings.get('views')!r}, "
                f"not {_views_text(views)!r}"
            )
        template = ad_settings.get("template", template)
        if keep_outliers is None:
            keep_outliers = bool(ad_settings.get("keep_outliers", False))
        if view_weights is None and ad_settings.get("view_weights") is not None:
            view_weights = ad_settings["view_weights"]
    if label_list is None:
        raise VecgenError("give the class names: --labels a,b,c or --labels-file FILE")
    weights = parse_view_weights(view_weights, n_views)
    keep_outliers = bool(keep_outliers)
    dev = resolve_device(o["device"])

    clouds, names = load_clouds(points, mesh_points)
    data = None
    labelled = eval if eval is not None else fit
    if labelled is not None:
        data = fitting.load_labelled(labelled, label_list, mesh_points)
        if data.names is not None and data.names != label_list:  # class folders: map into label_list
            label_list = data.names
    if perceptors is None:
        from vecgen.api._run import load_perceptors
        from vecgen.backends.perceptors.clip import FALLBACK_3D

        perceptors = load_perceptors(str(clip), dev, warn, FALLBACK_3D)
    enc = Encoder(perceptors, views, size, float(splat), clean=not keep_outliers)
    check_encode_memory(
        len(clouds) if data is None else len(data.clouds),
        batch,
        n_views,
        enc.size,
        [int(p.input_size) for p, _ in perceptors],
        dev,
        max((len(c) for c in (clouds if data is None else data.clouds)), default=0),
        float(splat),
    )
    text = enc.text(texts_for(label_list, template))
    if ad is not None and ad.dim != text.shape[-1]:
        raise VecgenError(
            f"{adapter}: the adapter was trained on {ad.dim}-d features of --clip "
            f"{ad_settings.get('clip')!r}; --clip {clip} gives {text.shape[-1]}-d ones"
        )
    settings: dict[str, Any] = {
        "function": "classify3d",
        "labels": label_list,
        "template": template,
        "views": _views_text(views),
        "view_weights": weights.tolist(),
        "clip": str(clip),
        "size": enc.size,
        "splat": float(splat),
        "keep_outliers": keep_outliers,
        "seed": seed,
    }
    if adapter is not None:
        settings["adapter"] = str(adapter)
    extras: dict[str, Any] = {}
    writers: dict[str, Callable] = {}
    first = None

    if data is None:
        first = clouds[0]
        feats = enc.features(clouds, batch)
        logits = fitting.combine(view_logits(feats, text, ad), weights) / max(float(weights.sum()), 1e-12)
        scores = logits.softmax(-1)
        order = scores.argsort(-1, descending=True)
        ranked = [[(label_list[int(j)], float(scores[b, j])) for j in order[b]] for b in range(len(clouds))]
        extras.update(scores=scores, ranked=ranked, names=names, labels=label_list)
        payload = {
            "labels": label_list,
            "results": [
                {"file": n, "prediction": r[0][0], "scores": {lab: round(p, 6) for lab, p in r}}
                for n, r in zip(names, ranked)
            ],
        }
    else:
        target = torch.as_tensor(data.labels)
        first = data.clouds[0]
        if fit is not None:
            pick, short = fitting.pick_shots(data.labels, shots, len(label_list), seed)
            if short and warn:
                warn(
                    f"{len(short)} class(es) have fewer than {shots} examples in {fit} "
                    f"(e.g. {label_list[short[0]]!r}); using what there is"
                )
            t0 = time.perf_counter()
            feats = enc.features([data.clouds[i] for i in pick], batch)
            tgt = target[pick]
            if search_weights:
                weights, _ = fitting.search_view_weights(view_logits(feats, text), tgt)
                settings["view_weights"] = weights.tolist()
            ad = fitting.train_adapter(
                feats, tgt, text, weights, LOGIT_SCALE, ratio=float(ratio), epochs=epochs, seed=seed
            )
            settings.update(
                shots=shots, ratio=float(ratio), epochs=epochs, train_set=str(fit), train_clouds=int(len(pick))
            )
            pred = fitting.combine(view_logits(feats, text, ad), weights).argmax(-1)
            rep = fitting.report(pred, tgt, label_list)
            rep["fit_seconds"] = time.perf_counter() - t0
            meta = {
                k: settings[k]
                for k in (
                    "labels",
                    "template",
                    "views",
                    "view_weights",
                    "clip",
                    "size",
                    "splat",
                    "keep_outliers",
                    "shots",
                    "ratio",
                    "epochs",
                    "seed",
                    "train_set",
                )
            }
            writers[".safetensors"] = lambda path, ad=ad, meta=meta: fitting.save_adapter(ad, path, meta)
            extras["adapter"] = ad
        else:
            t0 = time.perf_counter()
            feats = enc.features(data.clouds, batch)
            per_view = view_logits(feats, text, ad)
            secs = time.perf_counter() - t0
            if search_weights:  # on the set being scored: an upper bound, as in the paper
                zero_acc = float((fitting.combine(per_view, weights).argmax(-1) == target).float().mean())
                weights, _ = fitting.search_view_weights(per_view, target)
                settings["view_weights"] = weights.tolist()
            pred = fitting.combine(per_view, weights).argmax(-1)
            rep = fitting.report(pred, target, label_list)
            rep.update(
                seconds=secs,
                clouds_per_s=len(data.clouds) / max(secs, 1e-9),
                ms_per_cloud=1000 * secs / len(data.clouds),
            )
            if search_weights:
                rep["accuracy_equal_weights"] = zero_acc
        rep["view_weights"] = settings["view_weights"]
        extras["report"] = rep
        payload = {"settings": settings, **rep}
    settings["seconds"] = round(time.perf_counter() - t_start, 3)
    image = grid_image(enc.maps(first))

    def write_json(path: Path) -> None:
        import json

        from vecgen.io import atomic_write

        atomic_write(path, (json.dumps(payload, indent=1, default=float) + "\n").encode("utf-8"))

    writers[".json"] = write_json
    extras["payload"] = payload
    extras["text"] = (
        fitting.format_report(extras["report"])
        if "report" in extras
        else "\n".join(ranked_line(n, r) for n, r in zip(names, extras["ranked"]))
    )
    return Result(image=image, settings=settings, writers=writers, extras=extras, headline=("labels",))


def ranked_line(name: str, ranked: list, top: int = 5) -> str:
    """``file: chair 0.710, table 0.180, ...``: one cloud's ``top`` labels."""
    return f"{name}: " + ", ".join(f"{lab} {p:.3f}" for lab, p in ranked[:top])


@verb_function(Classify3dFitConfig, perceptors=None, warn=None)
def classify3d_fit(cfg: Classify3dFitConfig, *, perceptors=None, warn: Callable[[str], None] | None = None) -> Result:
    """Train PointCLIP's few-shot inter-view adapter on the labelled set ``fit``; returns a :class:`Result`.

    The same run as ``classify3d(fit=...)``: ``res.save("a.safetensors")`` writes the adapter
    (``classify3d(..., adapter="a.safetensors")`` uses it), ``res.report`` is its accuracy on
    the training shots, ``res.text`` that report as text. Every option: :class:`Classify3dFitConfig`.
    """
    return _classify(cfg.asdict(), perceptors, warn)


def _views_text(views: Any) -> str:
    if isinstance(views, (list, tuple)):
        return ",".join(f"{float(a):g}:{float(e):g}" for a, e in views)
    return str(views)


VERB = Verb(
    "classify3d",
    classify3d,
    "classify point clouds from their depth maps (PointCLIP)",
    outputs=OUTPUTS,
    default_output="classify3d.json",
    gallery=False,
    config=Classify3dConfig,
    description="Classify point clouds (PLY, XYZ/TXT, NPY, or meshes sampled to points) by projecting "
    "each to depth maps and scoring every view with CLIP against one caption per label "
    "(PointCLIP). --eval scores a labelled set (ModelNet40 .h5, or a folder per class); --fit "
    "(or vecgen classify3d-fit) trains the few-shot inter-view adapter (-o "
    "adapter.safetensors), which --adapter then uses.",
)
FIT_VERB = Verb(
    "classify3d-fit",
    classify3d_fit,
    "train PointCLIP's few-shot adapter on a labelled set; writes safetensors",
    outputs=(".safetensors",),
    default_output="adapter.safetensors",
    gallery=False,
    config=Classify3dFitConfig,
    description="Train PointCLIP's few-shot inter-view adapter on a labelled set of point clouds "
    "(ModelNet40 .h5, or a folder with one sub-folder per class): --shots per class, "
    "--epochs, --ratio; -o adapter.safetensors, then vecgen classify3d FILES --adapter "
    "adapter.safetensors.",
)
