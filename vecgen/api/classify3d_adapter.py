"""PointCLIP's few-shot side: labelled sets, the inter-view adapter, view-weight search, evaluation.

Labelled sets come in the ModelNet40 HDF5 layout (``data`` ``(N, P, 3)``, ``label``
``(N,)`` or ``(N, 1)``; one ``.h5`` file or a folder of them) or as a folder with one
sub-folder of cloud files per class. The adapter (:class:`InterViewAdapter`) is
trained on frozen view features of K shots per class and saved as safetensors with
its labels and settings in the metadata.
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vecgen.errors import VecgenError

ADAPTER_FORMAT = "vecgen-pointclip-adapter-1"
LOGIT_SCALE = 100.0  # CLIP's temperature: cosines x 100 before the softmax
H5_SUFFIXES = (".h5", ".hdf5")


# ----------------------------------------------------------------------------- labelled sets
@dataclass
class LabelledSet:
    """Clouds (each ``(P_i, 3)``), their class indices ``(N,)``, and class names when the set names them."""

    clouds: list
    labels: np.ndarray
    names: list[str] | None = None
    source: str = ""


def _read_h5(p: Path) -> tuple[list, np.ndarray]:
    try:
        import h5py
    except ImportError:
        raise VecgenError(f"{p}: reading HDF5 sets needs h5py (pip install 'vecgen[3d]')") from None
    try:
        f = h5py.File(p, "r")
    except Exception as e:
        raise VecgenError(f"{p}: not a readable HDF5 file ({type(e).__name__})") from None
    with f:
        missing = [k for k in ("data", "label") if k not in f]
        if missing:
            raise VecgenError(
                f"{p}: no {' and no '.join(repr(k) for k in missing)} dataset "
                f"(want ModelNet40's layout: data (N, P, 3), label (N,) or (N, 1); has "
                f"{', '.join(map(repr, f.keys())) or 'nothing'})"
            )
        data, label = np.asarray(f["data"]), np.asarray(f["label"])
    if data.ndim != 3 or data.shape[2] < 3:
        raise VecgenError(f"{p}: data has shape {data.shape}, want (N, P, 3)")
    if label.ndim == 2 and label.shape[1] == 1:
        label = label[:, 0]
    if label.ndim != 1 or len(label) != len(data):
        raise VecgenError(f"{p}: label has shape {label.shape}, want ({len(data)},) or ({len(data)}, 1)")
    if not np.issubdtype(label.dtype, np.number) or not np.all(np.isfinite(label)) or np.any(label != np.round(label)):
        raise VecgenError(f"{p}: labels must be whole numbers")
    return [d[:, :3] for d in data], label.astype(np.int64)


def load_labelled(path: str | Path, labels: list[str] | None = None, mesh_points: int = 1024) -> LabelledSet:
    """A labelled set from an ``.h5`` file, a folder of ``.h5`` files, or a folder per class.

    Class folders are matched to ``labels`` by name (a folder not in ``labels`` is an
    error); without ``labels`` the sorted folder names are the classes. HDF5 labels are
    indices into ``labels`` and must be in range.
    """
    from vecgen.backends.mesh.points import MESH_SUFFIXES, POINT_SUFFIXES, check_points, load_points

    p = Path(path)
    if not p.exists():
        raise VecgenError(f"{p}: no such file or folder")
    h5 = [p] if p.is_file() else sorted(q for q in p.iterdir() if q.suffix.lower() in H5_SUFFIXES)
    if p.is_file() and p.suffix.lower() not in H5_SUFFIXES:
        raise VecgenError(f"{p}: a labelled set is an .h5 file or a folder (one sub-folder per class)")
    if h5:
        clouds, idx = [], []
        for q in h5:
            c, lab = _read_h5(q)
            clouds += c
            idx.append(lab)
        lab = np.concatenate(idx)
        if labels is not None and len(lab) and (lab.min() < 0 or lab.max() >= len(labels)):
            bad = int(lab[(lab < 0) | (lab >= len(labels))][0])
            raise VecgenError(f"{p}: label {bad} is out of range for {len(labels)} class names (0..{len(labels) - 1})")
        for k, c in enumerate(clouds):
            check_points(c, f"{p}: cloud {k}")
        out = LabelledSet(clouds, lab, None, str(p))
    else:
        folders = sorted(q for q in p.iterdir() if q.is_dir() and not q.name.startswith("."))
        if not folders:
            raise VecgenError(f"{p}: holds no .h5 file and no class folders")
        names = [q.name for q in folders]
        if labels is not None:
            unknown = [n for n in names if n not in labels]
            if unknown:
                raise VecgenError(f"{p}: class folder {unknown[0]!r} is not one of the labels")
        classes = list(labels) if labels is not None else names
        clouds = []
        folder_labels: list[int] = []
        for q in folders:
            files = sorted(f for f in q.iterdir() if f.suffix.lower() in POINT_SUFFIXES + MESH_SUFFIXES)
            clouds += [load_points(f, mesh_points=mesh_points) for f in files]
            folder_labels += [classes.index(q.name)] * len(files)
        out = LabelledSet(clouds, np.asarray(folder_labels, dtype=np.int64), classes, str(p))
    if not out.clouds:
        raise VecgenError(f"{p}: the labelled set is empty")
    return out


def pick_shots(labels: np.ndarray, shots: int, n_classes: int, seed: int = 0) -> tuple[np.ndarray, list[int]]:
    """Indices of ``shots`` examples per class (fewer where a class has fewer), and the classes left short."""
    rng = np.random.default_rng(seed)
    keep, short = [], []
    for c in range(n_classes):
        idx = np.flatnonzero(labels == c)
        if len(idx) < shots:
            short.append(c)
        keep += list(rng.permutation(idx)[:shots])
    return np.asarray(sorted(keep), dtype=np.int64), short


# ----------------------------------------------------------------------------- view weights
def combine(view_logits: Tensor, weights: Tensor) -> Tensor:
    """``(B, V, L)`` per-view logits and ``(V,)`` weights -> ``(B, L)``."""
    return torch.einsum("bvl,v->bl", view_logits, weights.to(view_logits))


def search_view_weights(view_logits: Tensor, target: Tensor, grid=(0.25, 0.5, 0.75, 1.0)) -> tuple[Tensor, float]:
    """Grid search of view weights on a labelled set (PointCLIP's search): best ``(V,)`` weights and accuracy.

    With more than 6 views the grid shrinks to (0.5, 1.0) so the search stays small.
    Ties go to the combination nearest equal weights (the first in grid order that wins).
    """
    v = view_logits.shape[1]
    values = grid if v <= 6 else (0.5, 1.0)
    best_w, best_acc = torch.ones(v), -1.0
    combos = itertools.product(values, repeat=v)
    equal = torch.ones(1, v)
    for chunk in iter(lambda: list(itertools.islice(combos, 1024)), []):
        w = torch.cat([equal, torch.tensor(chunk, dtype=torch.float32)]) if best_acc < 0 else torch.tensor(chunk)
        pred = torch.einsum("bvl,cv->cbl", view_logits, w.to(view_logits)).argmax(-1)
        acc = (pred == target.view(1, -1)).float().mean(1)
        k = int(acc.argmax())
        if float(acc[k]) > best_acc + 1e-9:
            best_w, best_acc = w[k].clone(), float(acc[k])
    return best_w / best_w.max(), best_acc


# ----------------------------------------------------------------------------- the adapter
class InterViewAdapter(nn.Module):
    """PointCLIP's inter-view adapter: all views -> one global feature -> a residual per view.

    forward: view features ``(B, V, D)`` -> adapted features ``(B, V, D)``, each
    ``ratio * adapted + (1 - ratio) * original`` (the original is what zero-shot uses).
    """

    def __init__(self, views: int, dim: int, hidden: int = 256, ratio: float = 0.6, dropout: float = 0.5):
        super().__init__()
        self.views, self.dim, self.hidden, self.ratio = views, dim, hidden, float(ratio)
        self.fuse = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(views * dim, hidden),
            nn.LayerNorm(hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.LayerNorm(hidden),
            nn.ReLU(),
        )
        self.expand = nn.Linear(hidden, views * dim)

    def forward(self, f: Tensor) -> Tensor:
        """The adapted view features.

        Shape:

        - ``f``: ``(B, V, D)`` view features, ``V = views``, ``D = dim``
        - returns: ``(B, V, D)``
        """
        b = f.shape[0]
        g = self.fuse(f.reshape(b, -1))
        a = F.normalize(self.expand(g).view(b, self.views, self.dim), dim=-1) * f.norm(dim=-1, keepdim=True)
        return self.ratio * a + (1 - self.ratio) * f


def adapter_logits(adapter: InterViewAdapter, feats: Tensor, text: Tensor, scale: float) -> Tensor:
    """``(B, V, D)`` features, ``(L, D)`` text -> per-view logits ``(B, V, L)`` through the adapter."""
    return scale * adapter(feats) @ text.T


def train_adapter(
    feats: Tensor,
    target: Tensor,
    text: Tensor,
    view_weights: Tensor,
    scale: float,
    *,
    ratio: float = 0.6,
    hidden: int = 256,
    epochs: int = 300,
    lr: float = 1e-3,
    seed: int = 0,
    warn=None,
) -> InterViewAdapter:
    """Fit the adapter on frozen view features ``(N, V, D)`` and class indices ``(N,)`` (cross-entropy).

    :func:`vecgen.training.fit`: AdamW (weight decay 0.01), batches of up to 64
    of a fresh permutation each epoch (a batch of one is skipped: it adds
    nothing but noise), cosine annealing per epoch.
    """
    from vecgen.training import cosine_epochs, fit

    n = feats.shape[0]
    batch = min(n, 64)
    starts = [s for s in range(0, n, batch) if min(batch, n - s) >= 2]
    with torch.random.fork_rng(devices=[]):  # the init and the dropout draw from the seed, not the caller's RNG
        torch.manual_seed(seed)
        ad = InterViewAdapter(feats.shape[1], feats.shape[2], hidden, ratio).to(feats)
        if not starts:
            return ad.eval().requires_grad_(False)
        g = torch.Generator().manual_seed(seed)
        order: dict[str, Any] = {"epoch": -1, "perm": None}

        def data(step: int) -> Tensor:
            epoch, k = divmod(step, len(starts))
            if order["epoch"] > epoch:  # a step from an earlier epoch: draw the permutations again
                g.manual_seed(seed)
                order["epoch"] = -1
            while order["epoch"] < epoch:  # each epoch's permutation, in order (a resumed run replays them)
                order["perm"], order["epoch"] = torch.randperm(n, generator=g), order["epoch"] + 1
            return order["perm"][starts[k] : starts[k] + batch]

        def loss(idx: Tensor, step: int) -> tuple[Tensor, dict[str, float]]:
            return F.cross_entropy(combine(adapter_logits(ad, feats[idx], text, scale), view_weights), target[idx]), {}

        torch.manual_seed(seed)  # the dropout's stream
        fit(
            {"adapter": ad},
            loss,
            data,
            epochs * len(starts),
            lr=lr,
            weight_decay=1e-2,
            schedule=cosine_epochs(len(starts), epochs),
        )
    return ad.eval().requires_grad_(False)


def save_adapter(adapter: InterViewAdapter, path: str | Path, settings: dict) -> Path:
    """Write the adapter and ``settings`` (labels, views, template, clip, ...) as safetensors, atomically."""
    from vecgen.io import atomic_write, safetensors_bytes

    meta = {
        "format": ADAPTER_FORMAT,
        "settings": json.dumps(settings, sort_keys=True),
        "shape": json.dumps(
            {"views": adapter.views, "dim": adapter.dim, "hidden": adapter.hidden, "ratio": adapter.ratio}
        ),
    }
    return atomic_write(path, safetensors_bytes(adapter.state_dict(), meta))


def load_adapter(path: str | Path) -> tuple[InterViewAdapter, dict]:
    """An adapter written by :func:`save_adapter` -> ``(adapter, settings)``; one-line error otherwise."""
    from safetensors import safe_open

    p = Path(path)
    if not p.is_file():
        raise VecgenError(f"{p}: no such adapter file")
    try:
        with safe_open(str(p), framework="pt") as f:
            meta = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:
        raise VecgenError(f"{p}: not a safetensors file ({type(e).__name__})") from None
    if meta.get("format") != ADAPTER_FORMAT:
        raise VecgenError(f"{p}: not a vecgen classify3d adapter (no {ADAPTER_FORMAT!r} metadata)")
    try:
        shape, settings = json.loads(meta["shape"]), json.loads(meta["settings"])
        ad = InterViewAdapter(int(shape["views"]), int(shape["dim"]), int(shape["hidden"]), float(shape["ratio"]))
        ad.load_state_dict(state)
    except (KeyError, ValueError, TypeError, RuntimeError) as e:
        raise VecgenError(f"{p}: damaged adapter ({type(e).__name__}: {str(e).splitlines()[0][:100]})") from None
    return ad.eval().requires_grad_(False), settings


# ----------------------------------------------------------------------------- encoding views
class Encoder:
    """The perceptors of a ``--clip`` spec as one feature space.

    Each perceptor's unit features are scaled by the square root of its weight and
    concatenated, so one dot product is the weighted sum of the ensemble's cosines.
    """

    def __init__(self, perceptors: list, views, size: int | None, splat: float, clean: bool = True):
        self.perceptors = perceptors
        self.clean = clean
        self.views = views
        self.size = int(size or max(p.input_size for p, _ in perceptors))
        self.splat = splat
        total = sum(w for _, w in perceptors)
        self.scales = [math.sqrt(max(w, 0.0) / total) for _, w in perceptors]
        self.device = perceptors[0][0].device

    def maps(self, cloud) -> Tensor:
        """The depth maps of one point cloud (see :func:`vecgen.backends.mesh.points.depth_maps`).

        Shape:

        - ``cloud``: ``(N, 3)`` points
        - returns: ``(V, 3, size, size)`` in ``[0, 1]``
        """
        from vecgen.backends.mesh.points import depth_maps

        return depth_maps(cloud, self.views, self.size, splat_scale=self.splat, clean=self.clean)

    @torch.no_grad()
    def text(self, texts: list[str]) -> Tensor:
        """The ensemble's text features: each perceptor's unit features scaled by its weight's square root.

        Shape:

        - returns: ``(L, D)``, ``L = len(texts)``, ``D`` the perceptors' widths summed; unit-norm rows
        """
        return torch.cat([p.encode_text(texts).float() * s for (p, _), s in zip(self.perceptors, self.scales)], -1)

    @torch.no_grad()
    def features(self, clouds: list, batch: int = 32) -> Tensor:
        """``B`` clouds -> view features ``(B, V, D)``."""
        out = []
        for start in range(0, len(clouds), batch):
            x = torch.stack([self.maps(c) for c in clouds[start : start + batch]])  # (b, V, 3, S, S)
            b, v = x.shape[:2]
            flat = x.flatten(0, 1).to(self.device)
            f = torch.cat([p.encode_image(flat).float() * s for (p, _), s in zip(self.perceptors, self.scales)], -1)
            out.append(f.view(b, v, -1).cpu())
        return torch.cat(out) if out else torch.zeros(0, 0, 0)


def view_logits(feats: Tensor, text: Tensor, adapter=None) -> Tensor:
    """``(B, V, D)`` features and ``(L, D)`` text -> per-view logits ``(B, V, L)``."""
    if adapter is not None:
        return adapter_logits(adapter, feats, text, LOGIT_SCALE)
    return LOGIT_SCALE * feats @ text.T


def grid_image(maps: Tensor):
    """``(V, 3, S, S)`` depth maps -> one PIL strip with a 2 px gap (the picture of a classify3d result)."""
    from vecgen.io import tensor_to_pil

    v, _, s, _ = maps.shape
    strip = torch.full((3, s, v * (s + 2) - 2), 0.35)
    for k in range(v):
        strip[:, :, k * (s + 2) : k * (s + 2) + s] = maps[k]
    return tensor_to_pil(strip.unsqueeze(0))


# ----------------------------------------------------------------------------- evaluation
def report(pred: Tensor, target: Tensor, labels: list[str]) -> dict:
    """Accuracy, per-class accuracy and the confusion matrix (rows: true class, columns: predicted).

    Shape:

    - ``pred``, ``target``: ``(N,)`` class indices into ``labels``
    """
    n = len(labels)
    conf = torch.zeros(n, n, dtype=torch.long)
    conf.index_put_((target.long(), pred.long()), torch.ones(len(pred), dtype=torch.long), accumulate=True)
    per = {}
    for c, name in enumerate(labels):
        total = int(conf[c].sum())
        per[name] = {"accuracy": (int(conf[c, c]) / total) if total else None, "n": total}
    return {
        "accuracy": float((pred == target).float().mean()) if len(pred) else 0.0,
        "n": int(len(pred)),
        "per_class": per,
        "confusion": conf.tolist(),
        "labels": list(labels),
    }


def format_report(rep: dict) -> str:
    """The report as text: accuracy, then per-class accuracy, then the confusion matrix."""
    labels = rep["labels"]
    lines = [
        f"accuracy {rep['accuracy']:.4f} on {rep['n']} clouds"
        + (f" ({rep['clouds_per_s']:.1f} clouds/s)" if "clouds_per_s" in rep else "")
    ]
    if rep.get("view_weights") is not None:
        lines.append("view weights " + ", ".join(f"{w:g}" for w in rep["view_weights"]))
    width = max(len(x) for x in labels)
    lines.append("per class:")
    for name in labels:
        pc = rep["per_class"][name]
        acc = "-" if pc["accuracy"] is None else f"{pc['accuracy']:.3f}"
        lines.append(f"  {name:<{width}s} {acc:>6s}  (n={pc['n']})")
    if len(labels) <= 40:
        short = [x[:5] for x in labels]
        lines.append("confusion (rows: true, columns: predicted):")
        lines.append(" " * (width + 2) + " ".join(f"{s:>5s}" for s in short))
        for name, row in zip(labels, rep["confusion"]):
            lines.append(f"  {name:<{width}s}" + " ".join(f"{v:5d}" for v in row))
    return "\n".join(lines)
