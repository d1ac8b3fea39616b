"""The contracts between parts: the Perceptor protocol, the step context and end-of-step hook the engine
drives, the objective's chunked backward, the parameterization registry, and the shared fit() loop."""

from __future__ import annotations

import ast
import importlib
import random
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import Tensor, nn

from conftest import TINY
from vecgen.engine import optimize
from vecgen.objective import Context, Objective
from vecgen.params import REGISTRY, Parameterization, StepAware, StepContext

pytestmark = pytest.mark.usefixtures("one_thread")
ROOT = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------- Perceptor
def _tiny_classifier():
    from vecgen.backends.perceptors.classifier import ClassifierPerceptor

    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 1000)
    )
    return ClassifierPerceptor(net, "toy-classifier", 32, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25), {"conv": "0"}, ("conv",))


@pytest.mark.parametrize("which", ["clip", "mini", "classifier"])
def test_every_perceptor_satisfies_the_protocol(which):
    from vecgen.backends.perceptors import Perceptor, load_perceptor

    if which == "classifier":
        p, texts = _tiny_classifier(), ["tabby cat", "goldfish", "tabby cat"]
    else:
        p = load_perceptor(TINY if which == "clip" else "mini-vit")
        texts = ["a red circle", "a blue square", "a red circle"]
    assert isinstance(p, Perceptor)
    x = torch.rand(2, 3, 40, 48)
    img = p.encode_image(x)
    assert img.shape[0] == 2 and img.dim() == 2
    txt = p.encode_text(texts)
    assert txt.shape == (3, img.shape[1])
    assert torch.allclose(txt[0], txt[2]) and not torch.allclose(txt[0], txt[1])
    feats = p.features(x, p.content_layers)
    assert set(feats) == set(p.content_layers) and all(f.shape[0] == 2 for f in feats.values())
    assert not isinstance(object(), Perceptor)


# ----------------------------------------------------------------------------- step context
class Counter:
    """A toy parameterization: one tensor, a reference published each step, steps told by end_step."""

    kind = "raster"

    def __init__(self) -> None:
        self.x = torch.zeros(1, 3, 8, 8, requires_grad=True)
        self.seen: list[tuple[int, int]] = []
        self.ended: list[int] = []
        self.projected = 0

    def param_groups(self) -> list[dict[str, Any]]:
        return [{"params": [self.x], "lr": 0.1, "name": "x"}]

    def render(self, ctx: StepContext | None = None) -> Tensor:
        if ctx is not None:
            self.seen.append((ctx.step, ctx.steps))
            assert isinstance(ctx.generator, torch.Generator)
            ctx.refs["reference"] = torch.full_like(self.x, 0.75)
        return torch.sigmoid(self.x)

    def project_(self) -> None:
        self.projected += 1

    def end_step(self, ctx: StepContext) -> None:
        self.ended.append(ctx.step)

    def export(self, path) -> None:  # pragma: no cover - not exported here
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        return {"x": self.x.detach().clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        with torch.no_grad():
            self.x.copy_(state["x"])


class ToReference:
    name, weight = "to_reference", 1.0

    def __call__(self, ctx: Context) -> Tensor:
        return (ctx.image - ctx.ref("reference")).pow(2).mean()


def test_engine_passes_the_step_context_and_calls_end_step():
    p = Counter()
    assert isinstance(p, Parameterization) and isinstance(p, StepAware)
    state = optimize(p, Objective([ToReference()]), 5, seed=1, progress=False)
    assert p.seen == [(i, 5) for i in range(5)]
    assert p.ended == [0, 1, 2, 3, 4] and p.projected == 5
    assert state.history[-1]["to_reference"] < state.history[0]["to_reference"]  # the term read the reference


def test_a_missing_reference_is_one_clear_error():
    from vecgen.errors import VecgenError

    with pytest.raises(VecgenError, match="'reference'"):
        ToReference()(Context(torch.zeros(1, 3, 4, 4), None, step=StepContext(0, 1)))


def test_nan_guard_restores_only_the_optimizer_tensors():
    class Flaky(ToReference):
        calls = 0

        def __call__(self, ctx: Context) -> Tensor:
            Flaky.calls += 1
            v = super().__call__(ctx)
            return v * float("nan") if Flaky.calls == 3 else v

    p = Counter()
    state = optimize(p, Objective([Flaky()]), 4, seed=0, progress=False)
    assert state.nan_events == 1 and state.step == 4 and torch.isfinite(p.x).all()
    assert p.ended == [0, 1, 2, 3]  # the failed try took no step


def test_stepaware_params_count_no_steps_in_project():
    """project_() only clamps/repairs: the params that follow the step do it in end_step(ctx)."""
    for name in ("GeneratorWeights", "Latent", "MapperTraining", "StyleField", "StyleNetBatches"):
        cls = getattr(importlib.import_module(REGISTRY[name]), name)
        assert issubclass(cls, StepAware) or hasattr(cls, "end_step"), name
        src = ast.unparse(
            next(
                n
                for n in ast.walk(ast.parse(Path(importlib.import_module(REGISTRY[name]).__file__).read_text()))
                if isinstance(n, ast.FunctionDef) and n.name == "project_"
            )
        )
        assert "step" not in src.split(":", 1)[1] and "_draw" not in src, name


def test_the_registry_lists_every_parameterization():
    found = set()
    for path in sorted((ROOT / "vecgen" / "params").glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in tree.body:
            if isinstance(node, ast.ClassDef):
                methods = {n.name for n in node.body if isinstance(n, ast.FunctionDef)}
                bases = {getattr(b, "id", "") for b in node.bases}
                if {"render", "param_groups"} <= methods or bases & set(REGISTRY):
                    found.add(node.name)
    found -= {"RasterParam", "Parameterization"}  # the shared base of FFTImage and DWTImage; the protocol
    assert found == set(REGISTRY)
    import vecgen.params as params

    for name in REGISTRY:
        assert isinstance(getattr(params, name), type)


# ----------------------------------------------------------------------------- chunked backward
def test_patch_term_chunked_backward_equals_one_pass():
    from vecgen.backends.perceptors import load_perceptor
    from vecgen.losses.patch import PatchDirectionTerm, StyleDirection

    tiny = load_perceptor(TINY)
    content = torch.rand(1, 3, 48, 48, generator=torch.Generator().manual_seed(0))
    term = PatchDirectionTerm(StyleDirection(tiny, "a photo", "chain mail"), crops=8, chunk=2, threshold=0.0)
    objective = Objective([term])
    assert objective.chunked
    grads, values = [], []
    for how in ("objective", "one pass"):
        image = content.clone().requires_grad_(True)
        ctx = StepContext(0, 1, torch.Generator().manual_seed(5), refs={"content": content})
        if how == "objective":
            loss, vals = objective(image, ctx)
        else:
            loss = term(Context(image, None, step=ctx))
            vals = {"total": float(loss.detach())}
        loss.backward()
        grads.append(image.grad)
        values.append(vals["total"])
    assert values[0] == pytest.approx(values[1], rel=1e-5)
    assert torch.allclose(grads[0], grads[1], atol=1e-6) and grads[0].abs().sum() > 0


def test_patch_crops_come_from_the_run_generator():
    from vecgen.backends.perceptors import load_perceptor
    from vecgen.losses.patch import PatchDirectionTerm, StyleDirection

    tiny = load_perceptor(TINY)
    content = torch.rand(1, 3, 48, 48, generator=torch.Generator().manual_seed(0))
    term = PatchDirectionTerm(StyleDirection(tiny, "a photo", "chain mail"), crops=4, threshold=0.0)

    def value(seed: int) -> float:
        ctx = StepContext(0, 1, torch.Generator().manual_seed(seed), refs={"content": content})
        with torch.no_grad():
            return Objective([term])(content * 0.5, ctx)[1]["total"]

    torch.manual_seed(123)
    a = value(1)
    torch.manual_seed(999)  # the global RNG plays no part
    assert value(1) == a and value(2) != a


# ----------------------------------------------------------------------------- fit()
def _problem(seed: int = 0):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.2), nn.Linear(8, 1))
    gen = torch.Generator().manual_seed(seed)
    rng = random.Random(seed)
    w = torch.tensor([[1.0], [-2.0], [0.5], [3.0]])

    def data(step: int) -> tuple[Tensor, Tensor]:
        x = torch.randn(16, 4, generator=gen) * (1 + rng.random())
        return x, x @ w

    def loss(batch: tuple[Tensor, Tensor], step: int) -> tuple[Tensor, dict[str, float]]:
        x, y = batch
        return (model(x) - y).pow(2).mean(), {"step": float(step)}

    return model, data, loss, {"gen": gen, "rng": rng}


def test_fit_learns_and_resume_equals_a_straight_run(tmp_path):
    from vecgen.training import fit, warmup_cosine

    kw: dict[str, Any] = dict(lr=0.05, schedule=warmup_cosine(2), clip_grad=1.0, weight_decay=0.01)
    model, data, loss, rngs = _problem()
    straight = fit({"m": model}, loss, data, 8, rngs=rngs, **kw)
    assert straight.step == 8 and straight.history[-1]["loss"] < straight.history[0]["loss"]

    ckpt = tmp_path / "run.ckpt.pt"
    model2, data2, loss2, rngs2 = _problem()

    def stops(step: int):
        if step == 5:
            raise KeyboardInterrupt
        return data2(step)

    with pytest.raises(KeyboardInterrupt):
        fit({"m": model2}, loss2, stops, 8, rngs=rngs2, checkpoint=ckpt, checkpoint_every=3, **kw)
    assert ckpt.exists()
    model3, data3, loss3, rngs3 = _problem(seed=7)  # other weights and random states: the checkpoint sets them
    resumed = fit({"m": model3}, loss3, data3, 8, rngs=rngs3, checkpoint=ckpt, checkpoint_every=3, resume=True, **kw)
    assert resumed.resumed_from == 3 and resumed.step == 8
    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in straight.history]
    for a, b in zip(model.state_dict().values(), model3.state_dict().values()):
        assert torch.equal(a, b)


def test_fit_checkpoint_loads_weights_only_and_refuses_others(tmp_path):
    from vecgen.errors import VecgenError
    from vecgen.training import load_fit_checkpoint

    model, data, loss, rngs = _problem()
    from vecgen.training import fit

    fit({"m": model}, loss, data, 4, lr=0.01, rngs=rngs, checkpoint=tmp_path / "c.pt", checkpoint_every=2)
    state = torch.load(tmp_path / "c.pt", weights_only=True)
    assert state["step"] == 2 and load_fit_checkpoint(tmp_path / "c.pt")["step"] == 2
    torch.save({"step": 1}, tmp_path / "other.pt")
    with pytest.raises(VecgenError, match="not a vecgen training checkpoint"):
        load_fit_checkpoint(tmp_path / "other.pt")
