"""The docs site builds with ``--strict`` and the README stays a short introduction.

The site's build is slow-tier (a few seconds of MkDocs plus mkdocstrings); the
README checks and the table hook's own checks are cheap and run by default.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
QUICK_START = (
    'pip install -c constraints.txt -e . && vecgen draw "a red circle above a blue square" -o drawing.svg',
    'pip install -c constraints.txt -e ".[test]" && python -m pytest -q',
)


def test_readme_is_short_and_keeps_the_quick_start():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 200
    block = re.search(r"## Quick start\n\n```bash\n(.*?)```", text, re.S)
    assert block is not None, "README has no Quick start shell block"
    assert block.group(1).splitlines() == list(QUICK_START)


def test_readme_links_to_docs_pages_that_exist():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    links = set(re.findall(r"\]\((docs/[^)#]+)(?:#[^)]*)?\)", text))
    assert {"docs/draw.md", "docs/limits.md", "docs/api.md"} <= links
    missing = sorted(link for link in links if not (ROOT / link).is_file())
    assert not missing, missing


# A docstring gives a shape when it has a ``Shape:`` section or a shape tuple such as ``(B, 3, H, W)``.
SHAPE = re.compile(r"Shape|\([A-Z0-9]+,|\(\w+, \w+")


def _missing_shapes(package: Path) -> tuple[int, list[str]]:
    """Public functions and methods under ``package`` whose signature mentions ``Tensor``: how many, and
    those (``path:line name``) whose docstring gives no shape. Public: no leading underscore (``__call__``
    counts) and not inside a private class; nested functions are not walked. No import of torch."""
    total, missing = 0, []

    def walk(node: ast.AST, path: Path, prefix: str = "") -> None:
        nonlocal total
        for n in ast.iter_child_nodes(node):
            if isinstance(n, ast.ClassDef) and not n.name.startswith("_"):
                walk(n, path, f"{prefix}{n.name}.")
            elif isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)):
                if n.name.startswith("_") and n.name != "__call__":
                    continue
                signature = ast.unparse(n.args) + " " + (ast.unparse(n.returns) if n.returns else "")
                if "Tensor" not in signature:
                    continue
                total += 1
                if not SHAPE.search(ast.get_docstring(n) or ""):
                    missing.append(f"{path.relative_to(package.parent).as_posix()}:{n.lineno} {prefix}{n.name}")

    for path in sorted(package.rglob("*.py")):
        walk(ast.parse(path.read_text(encoding="utf-8")), path)
    return total, missing


def test_public_tensor_functions_give_shapes():
    total, missing = _missing_shapes(ROOT / "vecgen")
    assert total > 100, f"only {total} public functions take or return a Tensor: the walk is broken"
    assert not missing, "docstrings with no tensor shape (add a `Shape:` section):\n" + "\n".join(missing)


def test_shape_check_flags_functions_without_one(tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "m.py").write_text(
        "from torch import Tensor\n"
        "def bare(x: Tensor) -> Tensor:\n"
        '    """No shape here."""\n'
        "def shaped(x: Tensor) -> Tensor:\n"
        '    """Shape:\n\n    - x: ``(B, 3, H, W)``\n    """\n'
        "def _private(x: Tensor) -> Tensor: ...\n"
        "def plain(x: int) -> int: ...\n"
        "class _Hidden:\n"
        "    def f(self, x: Tensor) -> Tensor: ...\n"
        "class Open:\n"
        "    def __call__(self, x: Tensor) -> Tensor: ...\n",
        encoding="utf-8",
    )
    assert _missing_shapes(pkg) == (3, ["pkg/m.py:2 bare", "pkg/m.py:14 Open.__call__"])


def _hooks():
    pytest.importorskip("mkdocs")
    sys.path.insert(0, str(ROOT / "docs"))
    try:
        import hooks
    finally:
        sys.path.remove(str(ROOT / "docs"))
    return hooks


def test_hook_includes_data_tables_and_refuses_bad_markers(tmp_path):
    from_hooks = _hooks()
    from mkdocs.exceptions import PluginError

    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "t.csv").write_text('case,ms\n"a, b",1.5\n`x|y` or z|w,2\n', encoding="utf-8")
    (tmp_path / "data" / "t.json").write_text('[{"case": "c", "ms": 3}]', encoding="utf-8")
    page = "before\n{{ table(\"data/t.csv\") }}\nafter {{table('data/t.json')}}"
    out = from_hooks.expand(page, tmp_path, "p.md")
    assert out.splitlines() == [
        "before",
        "| case | ms |",
        "| --- | --- |",
        "| a, b | 1.5 |",
        "| `x|y` or z\\|w | 2 |",
        "after | case | ms |",
        "| --- | --- |",
        "| c | 3 |",
    ]
    (tmp_path / "data" / "bad.csv").write_text("a,b\n1\n", encoding="utf-8")
    for marker, needle in [
        ('{{ table("data/bad.csv") }}', "row 1 has 1 cells"),
        ('{{ table("data/none.csv") }}', "no such file"),
        ('{{ table("../hooks.py") }}', "no such file"),
        ('{{ options("no-such-verb") }}', "no subcommand"),
        ("{{ limits(3) }}", "bad marker"),
    ]:
        with pytest.raises(PluginError, match=needle):
            from_hooks.expand(marker, tmp_path, "p.md")


def test_option_tables_come_from_the_code():
    hooks = _hooks()
    draw = hooks.options_table("draw")
    assert draw.startswith("| ") and "--strokes" in draw and "--segments" in draw and "--output" in draw
    assert "--workers" in hooks.options_table("gallery run")  # a tool's flags, from its parser
    from vecgen.options import LIMITS

    limits = hooks.limits_table()
    for name, top in LIMITS.items():  # each bound as the code holds it, with or without thousands commas
        assert f"--{name.replace('_', '-')}" in limits and (f"{top:,}" in limits or f"| {top} " in limits), name


@pytest.mark.slow
def test_mkdocs_build_strict(tmp_path):
    pytest.importorskip("mkdocs")
    pytest.importorskip("material")
    pytest.importorskip("mkdocstrings")
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml"), "-d", str(site)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    draw = (site / "draw" / "index.html").read_text(encoding="utf-8")
    assert "<code>--strokes</code>" in draw and "<table>" in draw
    perception = (site / "models" / "index.html").read_text(encoding="utf-8")
    assert "0.733" in perception  # a measured row from docs/data/perception.csv
    assert "vecgen.api.result.Result" in (site / "api" / "index.html").read_text(encoding="utf-8")
    left = [p.relative_to(site) for p in site.rglob("*.html") if "{{ " in p.read_text(encoding="utf-8")]
    assert not left, f"markers left unexpanded in {left}"
    assert not (site / "hooks.py").exists()
