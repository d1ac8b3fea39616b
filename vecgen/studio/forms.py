"""A verb's form, read from its command-line parser: fields, and the argv a filled form stands for.

No Gradio and no torch here. The studio never restates an option: each field is
one flag of ``vecgen VERB`` (same name, default, choices and help), and a filled
form becomes the argv that ``vecgen VERB`` itself would parse, so the run and
its "copy as CLI command" line are the same thing.
"""
from __future__ import annotations

import argparse
import re
import shlex
from dataclasses import dataclass
from typing import Any

from vecgen.api import Verb
from vecgen.errors import VecgenError

#: Flags the studio sets itself (where files go, no progress bar) or that name paths on the server.
MANAGED = frozenset({"help", "output", "snapshots", "every", "checkpoint", "resume", "config", "quiet"})
#: The shared flags shown first, above the verb's own options.
BASIC = ("steps", "size", "clip", "seed")
#: The shared flags that go in the collapsed "advanced" section.
ADVANCED = ("cutouts", "views", "device", "image_prompt")

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif")
MESH_SUFFIXES = (".obj", ".ply", ".off", ".stl", ".glb", ".gltf", ".xyz", ".pts", ".txt", ".csv", ".npy")  # + clouds
#: What an upload of each kind may be (suffixes; content is checked too, see :mod:`vecgen.studio.safety`).
UPLOAD_KINDS = {"image": IMAGE_SUFFIXES, "svg": (".svg",), "mesh": MESH_SUFFIXES, "file": ()}

_FILE_META = re.compile(r"FILE|IMG|IMAGE|MESH|SVG|PHOTO|PICTURE|\.[a-z]{2,11}$", re.I)
_FILE_DEST = re.compile(r"^(image|img|picture|photo|svg|mesh|file|path|content|style)s?$", re.I)
_FILE_WORDS = re.compile(r"\b(this|these|from an?|an?)\s+(svg|image|img|picture|photo|mesh|file)s?\b|"
                         r"\.(svg|png|jpe?g|obj|ply|pt|safetensors)\b", re.I)
_OUTPUT_WORDS = re.compile(r"^\s*(also\s+)?(write|save)\b|\bsave\b.*\bhere\b|\bOUTPUT\b")


@dataclass(frozen=True)
class Field:
    """One input of a verb's form: a flag (or positional) of its parser.

    ``kind``: ``text``, ``int``, ``float``, ``bool``, ``choice``, ``upload``
    (one file), ``uploads`` (a repeatable file flag) or ``lines`` (a repeatable
    text flag, one value a line). ``default``: the API's default (what the CLI
    passes when the flag is absent). ``accept``: upload kind (:data:`UPLOAD_KINDS`).
    ``section``: ``main``, ``options`` (the verb's own) or ``advanced``.
    """

    name: str
    flag: str | None  # None: a positional
    kind: str
    default: Any
    help: str
    choices: tuple[str, ...] = ()
    accept: str | None = None
    section: str = "options"

    @property
    def label(self) -> str:
        return self.flag or self.name

    def default_text(self) -> str:
        """The default as the CLI's help shows it (``1,8``; ``auto`` for None)."""
        v = self.default
        if isinstance(v, (tuple, list)):
            return ",".join(f"{x:g}" if isinstance(x, float) else str(x) for x in v)
        return "auto" if v is None else str(v)


def _help(action: argparse.Action) -> str:
    text = action.help or ""
    if text == argparse.SUPPRESS:
        return ""
    try:
        return text % {"default": action.default, "prog": "vecgen", "metavar": action.metavar}
    except (KeyError, TypeError, ValueError):
        return text.replace("%%", "%")


def _file_role(action: argparse.Action) -> str | None:
    """``input`` or ``output`` for a flag that names a file, None for any other flag.

    A metavar decides when there is one (``IMG``, ``FILE.png``; ``SPEC`` is text
    even when its help mentions files); else the help (``this SVG``). A file the
    help says is written (``also write``, ``default: OUTPUT with .png``) is an output.
    """
    if action.choices or action.nargs == 0 or action.type in (int, float):
        return None
    meta = action.metavar if isinstance(action.metavar, str) else ""
    text = re.sub(r'"[^"]*"', "", _help(action))  # quoted examples ("a photo") are values, not what the flag takes
    if not (_FILE_META.search(meta) if meta else (_FILE_DEST.match(action.dest) or _FILE_WORDS.search(text))):
        return None
    return "output" if action.option_strings and _OUTPUT_WORDS.search(text) else "input"


def _upload_kind(action: argparse.Action, verb: Verb) -> str | None:
    """The kind of file an input flag takes (:data:`UPLOAD_KINDS`), or None: not an input file."""
    declared = dict(getattr(verb, "uploads", None) or {})
    if action.dest in declared:
        return declared[action.dest] if declared[action.dest] in UPLOAD_KINDS else None  # "text": not a file
    if _file_role(action) != "input":
        return None
    # the metavar names the kind when it can (``IMG``, ``FILE.safetensors``), else the dest and help
    meta = action.metavar if isinstance(action.metavar, str) else ""
    for text in (meta, f"{action.dest} {_help(action)}"):
        low = text.lower()
        if re.search(r"\.(safetensors|pt|pth|json|toml)\b", low):
            return "file"
        if "svg" in low:
            return "svg"
        if re.search(r"\b(mesh|meshes|point clouds?)\b", low) or re.search(r"\.(obj|ply|off|stl)\b", low):
            return "mesh"
        if re.search(r"\b(image|img|picture|photo)s?\b", low):
            return "image"
    return "file"


def verb_fields(verb: Verb, parser: argparse.ArgumentParser) -> list[Field]:
    """The form of ``verb``, in the parser's order: positionals, basic, verb options, advanced.

    ``parser``: the verb's subparser (``vecgen VERB``), whose actions hold the
    flag names, choices and help; defaults come from the API (``verb.defaults()``),
    as the CLI's own ``merge_options`` fills them in.
    """
    api = verb.defaults()
    required = set(verb.required())
    fields = []
    for a in parser._actions:
        if a.dest in MANAGED or a.help == argparse.SUPPRESS or isinstance(a, argparse._SubParsersAction):
            continue
        flag = max(a.option_strings, key=len) if a.option_strings else None
        default = api.get(a.dest, None if a.default is argparse.SUPPRESS else a.default)
        accept = _upload_kind(a, verb)
        append = isinstance(a, argparse._AppendAction) or a.nargs in ("*", "+")
        if accept is not None:
            kind = "uploads" if append else "upload"
        elif append:
            kind = "lines"
        elif a.nargs == 0:
            kind = "bool"
        elif a.choices:
            kind = "choice"
        elif a.type is int:
            kind = "int"
        elif a.type is float:
            kind = "float"
        elif _file_role(a) == "output":
            continue  # a second output file (adapt's --grid, generate's --save-latent): the studio names it
        else:
            kind = "text"
        if flag is None or a.dest in BASIC or a.dest in required:
            section = "main"
        elif a.dest in ADVANCED:
            section = "advanced"
        else:
            section = "options"
        fields.append(Field(a.dest, flag, kind, default, _help(a), tuple(str(c) for c in a.choices or ()),
                            accept, section))
    order = {"main": 0, "options": 1, "advanced": 2}
    return sorted(fields, key=lambda f: order[f.section])  # sorted() is stable: parser order within a section


# ----------------------------------------------------------------------------- form -> argv
def _number_text(value: float) -> str:
    return repr(float(value))  # round-trips exactly through argparse's float()


def _number(field: Field, value: Any, kind: type) -> int | float:
    """A widget's number (a Number's float, or a text box's text) as the flag's type; one-line error if not."""
    try:
        x = float(str(value).strip()) if isinstance(value, str) else float(value)
    except (TypeError, ValueError):
        raise VecgenError(f"{field.flag} must be a number, got {str(value)[:40]!r}") from None
    if kind is int:
        if not x.is_integer():
            raise VecgenError(f"{field.flag} must be a whole number, got {value}")
        return int(x)
    return x


def _is_default(field: Field, value: Any) -> bool:
    d = field.default
    if field.kind == "text":
        return value.strip() == ("" if d is None else field.default_text())
    if field.kind in ("int", "float"):
        try:
            return isinstance(d, (int, float)) and not isinstance(d, bool) and float(value) == float(d)
        except (TypeError, ValueError):
            return False
    if field.kind == "choice":
        return value == (None if d is None else str(d))
    if field.kind == "bool":
        return bool(value) == bool(d)
    return False


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or (isinstance(value, (list, tuple))
                                                                              and not value)


def form_argv(fields: list[Field], values: dict[str, Any], output: str) -> list[str]:
    """The ``vecgen VERB`` argv a filled form stands for (options equal to their default are left out).

    ``values``: field name -> widget value (uploads: local file paths);
    ``output``: the ``-o`` file. Positionals go last, after ``--`` when one
    starts with ``-`` (so a prompt such as ``-a cat`` stays a prompt).
    """
    opts: list[str] = []
    positionals: list[str] = []
    for f in fields:
        v = values.get(f.name)
        if f.flag is None:
            if isinstance(v, (list, tuple)):  # nargs="*" / "+"
                positionals.extend(str(x) for x in v)
            else:
                positionals.append("" if v is None else str(v))
            continue
        if _empty(v) or (f.kind not in ("upload", "uploads", "lines") and _is_default(f, v)):
            continue
        if f.kind == "bool":
            if v:
                opts.append(f.flag)
        elif f.kind == "int":
            opts += [f.flag, str(_number(f, v, int))]
        elif f.kind == "float":
            opts += [f.flag, _number_text(_number(f, v, float))]
        elif f.kind in ("uploads", "lines"):
            items = v if isinstance(v, (list, tuple)) else [x for x in str(v).splitlines() if x.strip()]
            for item in items:
                opts += [f.flag, str(item).strip() if f.kind == "lines" else str(item)]
        else:
            opts += [f.flag, str(v).strip() if f.kind == "text" else str(v)]
    opts += ["-o", output]
    if any(p.startswith("-") for p in positionals):
        return opts + ["--", *positionals]
    return opts + positionals


def command_line(verb_name: str, argv: list[str]) -> str:
    """The shell line ``vecgen VERB ARGV...`` (quoted for a POSIX shell)."""
    return shlex.join(["vecgen", verb_name, *argv])
