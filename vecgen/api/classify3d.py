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
(:mod:`vecgen.api.classify3d_fit`).
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vecgen.api.result import Result
from vecgen.api.verb import Verb
from vecgen.errors import VecgenError
from vecgen.options import as_int, check_limit, check_seed, parse_clip, resolve_device

if TYPE_CHECKING:
    from torch import Tensor

DEFAULT_TEMPLATE = "point cloud depth map of a {}."
OUTPUTS = (".json", ".safetensors", ".png")


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


# ----------------------------------------------------------------------------- the verb
def classify3d(points: Any = None, *, labels: Any = None, labels_file: str | Path | None = None,
               template: str = DEFAULT_TEMPLATE, views: Any = 6, view_weights: Any = None,
               search_weights: bool = False, clip: str = "auto", size: int | None = None, splat: float = 1.5,
               keep_outliers: bool | None = None, mesh_points: int = 1024, adapter: str | Path | None = None,
               eval: str | Path | None = None,
               fit: str | Path | None = None, shots: int = 16, epochs: int = 300, ratio: float = 0.6,
               batch: int = 32, seed: int = 0, device: str | None = "auto", quiet: bool = False,
               perceptors=None, warn: Callable[[str], None] | None = None) -> Result:
    """Zero-shot (or adapted few-shot) classification of point clouds among ``labels``.

    points: a file (PLY/XYZ/TXT/NPY or a mesh), an ``(N, 3)`` array, or a list of
    either. ``eval``: a labelled set (ModelNet40 ``.h5`` or a folder per class) to
    score instead; ``fit``: a labelled set to train the inter-view adapter on
    (``shots`` per class, ``ratio`` residual). Isolated stray points are dropped before
    projection unless ``keep_outliers`` (default: off, or the adapter's setting).
    The result: ``res.scores`` ``(B, L)`` probabilities, ``res.ranked`` per cloud
    ``[(label, prob), ...]``, ``res.report`` (eval/fit: accuracy, per-class accuracy,
    confusion matrix), ``res.image`` the depth maps of the first cloud;
    ``res.save("x.json")`` writes scores/report, ``res.save("a.safetensors")`` the fitted adapter.
    """
    import torch

    from vecgen.api import classify3d_fit as fitting
    from vecgen.api.classify3d_fit import LOGIT_SCALE, Encoder, grid_image, view_logits
    from vecgen.backends.mesh.points import view_angles

    t_start = time.perf_counter()
    label_list = parse_labels(labels, labels_file)
    template = check_template(template)
    seed = check_seed(seed)
    batch = check_limit("batch", as_int("--batch", batch, minimum=1))
    shots = as_int("--shots", shots, minimum=1)
    epochs = _at_most("--epochs", as_int("--epochs", epochs, minimum=1), 100_000)
    mesh_points = _at_most("--mesh-points", as_int("--mesh-points", mesh_points, minimum=2), 1_000_000)
    if size is not None:
        size = as_int("--size", size, minimum=16)
        if size > 1024:
            raise VecgenError(f"--size {size}: depth maps are at most 1024 px")
    if not (isinstance(splat, (int, float)) and math.isfinite(splat) and 0 <= splat <= 10):
        raise VecgenError(f"--splat must be a number from 0 to 10, got {splat!r}")
    if not (isinstance(ratio, (int, float)) and 0 <= ratio <= 1):
        raise VecgenError(f"--ratio must be from 0 to 1, got {ratio!r}")
    modes = [m for m, v in (("files", points), ("--eval", eval), ("--fit", fit))
             if v is not None and not (isinstance(v, (list, tuple)) and not v)]
    if not modes:
        raise VecgenError("nothing to classify: give point-cloud files, --eval SET or --fit SET")
    if len(modes) > 1:
        raise VecgenError(f"give one of point-cloud files, --eval or --fit (got {' and '.join(modes)})")
    if fit is not None and adapter is not None:
        raise VecgenError("--fit trains a new adapter; leave out --adapter")
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
            raise VecgenError(f"{adapter}: the adapter was trained for other labels ({len(theirs)}: "
                              f"{', '.join(theirs[:4])}{', ...' if len(theirs) > 4 else ''}); give the same labels")
        if ad.views != n_views or ad_settings.get("views") not in (None, _views_text(views)):
            raise VecgenError(f"{adapter}: the adapter was trained with views {ad_settings.get('views')!r}, "
                              f"not {_views_text(views)!r}")
        template = ad_settings.get("template", template)
        if keep_outliers is None:
            keep_outliers = bool(ad_settings.get("keep_outliers", False))
        if view_weights is None and ad_settings.get("view_weights") is not None:
            view_weights = ad_settings["view_weights"]
    if label_list is None:
        raise VecgenError("give the class names: --labels a,b,c or --labels-file FILE")
    weights = parse_view_weights(view_weights, n_views)
    keep_outliers = bool(keep_outliers)
    dev = resolve_device(device)

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
    text = enc.text(texts_for(label_list, template))
    if ad is not None and ad.dim != text.shape[-1]:
        raise VecgenError(f"{adapter}: the adapter was trained on {ad.dim}-d features of --clip "
                          f"{ad_settings.get('clip')!r}; --clip {clip} gives {text.shape[-1]}-d ones")
    settings: dict[str, Any] = {"function": "classify3d", "labels": label_list, "template": template,
                                "views": _views_text(views), "view_weights": weights.tolist(), "clip": str(clip),
                                "size": enc.size, "splat": float(splat), "keep_outliers": keep_outliers,
                                "seed": seed}
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
        payload = {"labels": label_list, "results": [
            {"file": n, "prediction": r[0][0], "scores": {lab: round(p, 6) for lab, p in r}}
            for n, r in zip(names, ranked)]}
    else:
        target = torch.as_tensor(data.labels)
        first = data.clouds[0]
        if fit is not None:
            pick, short = fitting.pick_shots(data.labels, shots, len(label_list), seed)
            if short and warn:
                warn(f"{len(short)} class(es) have fewer than {shots} examples in {fit} "
                     f"(e.g. {label_list[short[0]]!r}); using what there is")
            t0 = time.perf_counter()
            feats = enc.features([data.clouds[i] for i in pick], batch)
            tgt = target[pick]
            if search_weights:
                weights, _ = fitting.search_view_weights(view_logits(feats, text), tgt)
                settings["view_weights"] = weights.tolist()
            ad = fitting.train_adapter(feats, tgt, text, weights, LOGIT_SCALE, ratio=float(ratio), epochs=epochs,
                                       seed=seed)
            settings.update(shots=shots, ratio=float(ratio), epochs=epochs, train_set=str(fit),
                            train_clouds=int(len(pick)))
            pred = fitting.combine(view_logits(feats, text, ad), weights).argmax(-1)
            rep = fitting.report(pred, tgt, label_list)
            rep["fit_seconds"] = time.perf_counter() - t0
            meta = {k: settings[k] for k in ("labels", "template", "views", "view_weights", "clip", "size", "splat",
                                             "keep_outliers", "shots", "ratio", "epochs", "seed", "train_set")}
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
            rep.update(seconds=secs, clouds_per_s=len(data.clouds) / max(secs, 1e-9),
                       ms_per_cloud=1000 * secs / len(data.clouds))
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
    return Result(image=image, settings=settings, writers=writers, extras=extras, headline=("labels",))


def _at_most(flag: str, value: int, top: int) -> int:
    if value > top:
        raise VecgenError(f"{flag} {value} is above the limit of {top:,}")
    return value


def _views_text(views: Any) -> str:
    if isinstance(views, (list, tuple)):
        return ",".join(f"{float(a):g}:{float(e):g}" for a, e in views)
    return str(views)


VERB = Verb("classify3d", classify3d, "classify point clouds from their depth maps (PointCLIP)",
            outputs=OUTPUTS, default_output="classify3d.json", gallery=False)
