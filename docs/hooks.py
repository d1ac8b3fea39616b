"""MkDocs hook: tables that the docs pages include instead of restating.

A page writes one of these markers, alone or inside a line (two curly braces
on each side), and the hook replaces it with a Markdown table before MkDocs
renders the page:

* ``table("data/NAME.csv")`` or ``table("data/NAME.json")``: measured results
  kept as data under ``docs/``. A CSV's first row is the header; a JSON file is
  a list of objects (the first object's keys are the columns) or
  ``{"columns": [...], "rows": [[...], ...]}``. Cells are Markdown, copied as
  they are (``|`` is escaped).
* ``options("draw")``: the options of a verb. With :mod:`vecgen.config`
  present, ``vecgen.config.markdown_table(VERBS[name].config)``; before it,
  a table read from the verb's ``vecgen NAME`` argparse parser, with the API's
  defaults. A tool that is not a verb (``render``, ``gallery run``, ...) always
  gets the argparse table.
* ``limits()``: every size-like option's hard bound
  (``vecgen.config.limits_table()``, or before it :data:`vecgen.options.LIMITS`).

An unknown marker, a missing data file or a ragged row stops the build with
one line naming the page. Nothing here imports torch (``vecgen.api`` and the
CLI parser load it lazily).
"""
from __future__ import annotations

import argparse
import ast
import csv
import importlib
import json
import re
import sys
from pathlib import Path
from typing import Any

from mkdocs.exceptions import PluginError

MARKER = re.compile(r"\{\{\s*(table|options|limits)\s*\((.*?)\)\s*\}\}")
ROOT = Path(__file__).resolve().parents[1]


def _vecgen():
    """Import vecgen from this checkout (not whatever copy is installed)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    return importlib.import_module("vecgen")


CODE_SPAN = re.compile(r"(`+)(.+?)\1")


def _cell(value: Any) -> str:
    """One cell: a pipe outside code spans is escaped (Python-Markdown keeps pipes inside them)."""
    text = "" if value is None else str(value).replace("\n", " ")
    out, last = [], 0
    for m in CODE_SPAN.finditer(text):
        out += [text[last:m.start()].replace("|", "\\|"), m.group(0)]
        last = m.end()
    return "".join(out) + text[last:].replace("|", "\\|")


def markdown(header: list[str], rows: list[list[Any]], where: str) -> str:
    """A Markdown table; every row must have as many cells as the header."""
    for i, row in enumerate(rows, 1):
        if len(row) != len(header):
            raise PluginError(f"{where}: row {i} has {len(row)} cells, the header {len(header)}")
    lines = ["| " + " | ".join(_cell(h) for h in header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def plain_brackets(table: str) -> str:
    """Square brackets outside code spans escaped: help text such as ``MODEL[@TAG][:WEIGHT]`` is not a link."""
    out, last = [], 0
    for m in CODE_SPAN.finditer(table):
        out += [re.sub(r"(?<!\\)([\[\]])", r"\\\1", table[last:m.start()]), m.group(0)]
        last = m.end()
    return "".join(out) + re.sub(r"(?<!\\)([\[\]])", r"\\\1", table[last:])


def data_table(docs_dir: Path, name: str) -> str:
    """The Markdown table of one data file under ``docs/`` (CSV or JSON)."""
    path = (docs_dir / name).resolve()
    if docs_dir.resolve() not in path.parents or not path.is_file():
        raise PluginError(f"table({name!r}): no such file under {docs_dir}")
    if path.suffix == ".csv":
        with path.open(encoding="utf-8", newline="") as f:
            rows = [r for r in csv.reader(f) if r]
        if not rows:
            raise PluginError(f"table({name!r}): empty file")
        return markdown(rows[0], rows[1:], name)
    if path.suffix == ".json":
        data = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(data, dict):
            return markdown(list(data["columns"]), [list(r) for r in data["rows"]], name)
        if isinstance(data, list) and data and all(isinstance(r, dict) for r in data):
            header = list(data[0])
            return markdown(header, [[r.get(h) for h in header] for r in data], name)
        raise PluginError(f"table({name!r}): expected a list of objects or {{columns, rows}}")
    raise PluginError(f"table({name!r}): only .csv and .json are read")


def _config():
    """:mod:`vecgen.config` of this checkout, or None before it exists.

    Only a module inside this checkout counts: an editable install of another
    checkout may otherwise answer for a module this one lacks.
    """
    _vecgen()
    try:
        config = importlib.import_module("vecgen.config")
    except ModuleNotFoundError as e:
        if e.name != "vecgen.config":
            raise
        return None
    return config if Path(config.__file__).resolve().parent == ROOT / "vecgen" else None


# ----------------------------------------------------------------------------- options
def _subparser(parser: argparse.ArgumentParser, path: list[str]) -> argparse.ArgumentParser:
    for word in path:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs or word not in subs[0].choices:
            raise PluginError(f"options: no subcommand {word!r} in `{parser.prog}`")
        parser = subs[0].choices[word]
    return parser


def _type_of(action: argparse.Action) -> str:
    if action.nargs == 0:
        return "flag"
    if action.choices:
        return " | ".join(f"`{c}`" for c in action.choices)
    kind = getattr(action.type, "__name__", None) or "text"
    kind = {"str": "text", "int": "int", "float": "number"}.get(kind, kind)
    return f"{kind} (repeatable)" if isinstance(action, argparse._AppendAction) else kind


def _default_of(action: argparse.Action, defaults: dict[str, Any]) -> str:
    value = defaults.get(action.dest, action.default)
    if action.nargs == 0 and not value:
        return ""
    if value is None or value is argparse.SUPPRESS:  # None: the verb decides (its help says how)
        return ""
    if isinstance(value, (tuple, list)):
        value = ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
    return f"`{value}`"


def argparse_table(command: str) -> str:
    """The flags of ``vecgen COMMAND`` (e.g. ``draw``, ``gallery run``) as flag | type | default | help."""
    _vecgen()
    from vecgen.api import VERBS
    from vecgen.cli import build_parser

    path = command.split()
    parser = _subparser(build_parser(), path)
    verb = VERBS.get(path[0]) if len(path) == 1 else None
    defaults = {**verb.defaults(), "output": verb.default_output} if verb is not None else {}
    rows = []
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)) or action.help == argparse.SUPPRESS:
            continue
        flag = ", ".join(f"`{s}`" for s in action.option_strings) or f"`{action.dest}`"
        help_text = (action.help or "") % {"default": action.default, "prog": parser.prog}
        help_text = re.sub(r"([\[\]*_])", r"\\\1", help_text).replace("<", "&lt;")  # plain text, not Markdown
        rows.append([flag, _type_of(action), _default_of(action, defaults), help_text])
    return markdown(["flag", "type", "default", "help"], rows, f"options({command!r})")


def options_table(command: str) -> str:
    """A verb's table from its config (:mod:`vecgen.config`), else from its argparse flags."""
    _vecgen()
    from vecgen.api import VERBS

    verb = VERBS.get(command)
    config = _config()
    if verb is not None and config is not None and hasattr(config, "markdown_table") \
            and getattr(verb, "config", None) is not None:
        return plain_brackets(config.markdown_table(verb.config, verb.outputs, verb.default_output))
    return argparse_table(command)


def limits_table() -> str:
    """Every size-like option's bound: ``vecgen.config.limits_table()``, else :data:`vecgen.options.LIMITS`."""
    config = _config()
    if config is not None and hasattr(config, "limits_table"):
        from vecgen.api import VERBS

        return plain_brackets(config.limits_table({n: v.config for n, v in VERBS.items() if v.config is not None}))
    from vecgen.options import LIMITS, MAX_SIDE

    rows = [[f"`--{name.replace('_', '-')}`", f"{top:,}"] for name, top in LIMITS.items()]
    rows.append(["`--size`", f"{MAX_SIDE:,} px a side"])
    return markdown(["option", "at most"], rows, "limits()")


# ----------------------------------------------------------------------------- the hook
def _args(text: str, where: str) -> list[Any]:
    try:
        value = ast.literal_eval(f"({text},)") if text.strip() else ()
    except (SyntaxError, ValueError):
        raise PluginError(f"{where}: marker arguments must be literals, got ({text})") from None
    return list(value)


def expand(text: str, docs_dir: Path, where: str) -> str:
    """``text`` with every marker replaced by its table."""
    def one(match: re.Match) -> str:
        kind, args = match.group(1), _args(match.group(2), where)
        try:
            if kind == "table" and len(args) == 1:
                return data_table(docs_dir, args[0])
            if kind == "options" and len(args) == 1:
                return options_table(args[0])
            if kind == "limits" and not args:
                return limits_table()
        except PluginError as e:
            raise PluginError(f"{where}: {e}") from None
        raise PluginError(f"{where}: bad marker {match.group(0)}")

    return MARKER.sub(one, text)


def on_page_markdown(markdown_text: str, page, config, files) -> str:  # noqa: ARG001 (MkDocs' hook signature)
    return expand(markdown_text, Path(config["docs_dir"]), page.file.src_path)
