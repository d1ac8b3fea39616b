"""The package layout holds: layers (import-linter), no import cycles, small modules, one verb registry."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

import vecgen
from vecgen.api import VERBS

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "vecgen"


def test_layering_contract_is_kept():
    """The .importlinter contract: every layer imports only from the layers below it (function-level too)."""
    cli = pytest.importorskip("importlinter.cli")
    assert cli.lint_imports(config_filename=str(ROOT / ".importlinter"), no_cache=True, no_logo=True) == 0


def _cycles(graph) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    m = stack.pop()
                    on.discard(m)
                    comp.append(m)
                    if m == node:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def test_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles_between_modules():
    """Module-level cycles, function-level imports included (a package counts as its __init__)."""
    grimp = pytest.importorskip("grimp")
    g = grimp.build_graph("vecgen")
    graph = {m: set(g.find_modules_directly_imported_by(m)) & g.modules for m in g.modules}
    assert _cycles(graph) == []


def test_no_module_over_600_lines():
    sizes = {str(p.relative_to(ROOT)): len(p.read_text(encoding="utf-8").splitlines()) for p in PACKAGE.rglob("*.py")}
    assert {k: v for k, v in sizes.items() if v > 600} == {}


def test_every_verb_has_api_cli_and_public_name():
    """One registry: each verb is vecgen.NAME, vecgen.api.NAME, a CLI subcommand with the API's defaults."""
    import argparse
    import importlib

    from vecgen import api
    from vecgen.cli import build_parser
    from vecgen.cli._common import merge_options

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, verb in VERBS.items():
        py = api.python_name(name)
        assert getattr(vecgen, py) is verb.function is getattr(api, py)
        assert py in vecgen.__all__ and py in api.__all__
        assert name in sub.choices
        # the CLI is made from the config; a verb keeps a cli module only for old spellings of its modes
        assert verb.config is not None or callable(importlib.import_module(f"vecgen.cli.{py}").add_arguments)
        # with no flags given, the CLI passes exactly the API's own defaults for every flag it has
        p = sub.choices[name]
        required = [a.dest for a in p._actions if a.required and a.dest != "help"]
        args = p.parse_args(["x" for _ in required])
        merged = merge_options(args, verb, set(required))
        defaults = verb.defaults()
        assert merged.pop("output") == verb.default_output
        assert merged == {k: defaults[k] for k in merged}
        assert verb.default_output.endswith(verb.outputs)


def test_public_face_is_accurate():
    for name in vecgen.__all__:
        assert getattr(vecgen, name) is not None
    for name in __import__("vecgen.api", fromlist=["x"]).__all__:
        assert hasattr(__import__("vecgen.api", fromlist=["x"]), name), name
    assert "adapt" not in __import__("vecgen.gallery", fromlist=["x"]).available_functions()


def test_a_new_verb_reaches_the_gallery_and_the_package(monkeypatch):
    """Registering a verb is all it takes for vecgen.NAME and gallery specs to find it."""
    import dataclasses

    from vecgen import gallery

    def sketch(prompt: str, *, seed: int = 0, steps: int = 5):
        return prompt

    verb = dataclasses.replace(VERBS["draw"], name="sketch", function=sketch)
    monkeypatch.setitem(VERBS, "sketch", verb)
    assert vecgen.sketch is sketch
    assert "sketch" in gallery.available_functions()
    assert gallery.resolve_function("sketch") is sketch
    assert inspect.signature(verb.function).parameters["steps"].default == verb.defaults()["steps"] == 5


def test_choice_lists_match_what_implements_them():
    """The CLI's choices (vecgen.options, torch-free) are the names the implementations accept."""
    from vecgen import options
    from vecgen.augment import VIEWS
    from vecgen.backends.raster import get_rasterizer
    from vecgen.errors import VecgenError

    assert tuple(VIEWS) == options.VIEWS
    assert get_rasterizer("native") is not None
    with pytest.raises(VecgenError):
        get_rasterizer("no-such-rasterizer")
    from vecgen.params.latent import _check_space

    assert tuple(_check_space(s) for s in options.SPACES) == options.SPACES


def test_cli_parser_and_registry_load_without_torch():
    """`vecgen --help` and `import vecgen.api` stay fast: torch loads only when a verb runs."""
    import subprocess
    import sys

    code = "import sys, vecgen.cli, vecgen.api; vecgen.cli.build_parser(); sys.exit(1 if 'torch' in sys.modules else 0)"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT, timeout=60).returncode == 0
    # `from vecgen import <submodule>` imports that submodule only (it once loaded the whole API first)
    code = (
        "import sys; from vecgen import interrupts, io, errors; "
        "sys.exit(1 if 'vecgen.api' in sys.modules or 'torch' in sys.modules else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT, timeout=60).returncode == 0
