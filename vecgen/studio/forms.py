"""A verb's form, made from its config: fields, the options a filled form stands for, and its command line.

No Gradio and no torch here. Each field is one option of the verb's config
(:mod:`vecgen.config`): its kind decides the widget (file kinds become uploads,
by kind), its bounds the widget's limits, its section where it sits. A filled
form becomes the keyword options the studio passes to the verb's function, and
the same options written as ``vecgen VERB ...`` (the "copy as CLI command"
line), with each option's flag from :meth:`vecgen.config.Option.flag_name`.
"""

from __future__ import annotations

import math
import re
import shlex
from dataclasses import dataclass
from typing import Any

from vecgen.api import VERBS, Verb
from vecgen.config import IMAGE_SUFFIXES, MESH_SUFFIXES, Option, default_text
from vecgen.errors import VecgenError

#: Options the studio never shows: ``quiet`` it sets itself; ``every`` only paces snapshots and ``resume`` only
#: reads checkpoints, neither of which the studio writes (``output`` options: see :func:`verb_fields`).
NOT_SHOWN = frozenset({"quiet", "every", "resume"})
#: Kinds of option that take an input file, and what an upload of each may be (suffixes; the content is
#: checked too, see :mod:`vecgen.studio.safety`). ``folder``: several files, copied into one folder of the run.
UPLOAD_KINDS: dict[str, tuple[str, ...]] = {
    "image": IMAGE_SUFFIXES,
    "svg": (".svg",),
    "mesh": MESH_SUFFIXES,
    "file": (),
    "folder": (),
}
#: Kinds whose values are model or generator specs (``mini-vit``, ``taef2``, ``RN50@openai:0.5``): names the
#: studio lets the verb resolve, never paths on the server (also any option whose metavar is ``SPEC``).
SPEC_KINDS = frozenset({"clip", "object"})
_SECTIONS = {"main": 0, "options": 1, "advanced": 2}


@dataclass(frozen=True)
class Field:
    """One input of a verb's form: one option of its config.

    ``kind``: the widget: ``text``, ``int``, ``float``, ``bool``, ``choice``,
    ``upload`` (one file), ``uploads`` (several files, a repeatable option),
    ``folder`` (several files copied into one folder) or ``lines`` (a repeatable
    text option, one value a line). ``accept``: the upload kind (a key of
    :data:`UPLOAD_KINDS`). ``meta``: the config's :class:`~vecgen.config.Option`.
    """

    name: str
    meta: Option
    default: Any
    kind: str
    accept: str | None = None

    @property
    def positional(self) -> bool:
        return self.meta.positional

    @property
    def required(self) -> bool:
        return self.meta.required

    @property
    def flag(self) -> str | None:
        return None if self.meta.positional else self.meta.flag_name(self.name)

    @property
    def label(self) -> str:
        return self.flag or (self.meta.metavar or self.name).upper()

    @property
    def section(self) -> str:
        return "main" if self.positional or self.required else self.meta.section

    @property
    def help(self) -> str:
        """The option's help, with its default as the CLI's help adds it."""
        meta = self.meta
        if meta.kind == "bool" or "default" in meta.help or (self.default is None and not meta.default_text):
            return meta.help
        return f"{meta.help} (default {default_text(meta, self.default)})"

    @property
    def spec(self) -> bool:
        """A model/generator spec: names only, never server paths (:func:`check_spec`)."""
        return self.meta.kind in SPEC_KINDS or self.meta.metavar == "SPEC"

    def default_text(self) -> str:
        """The default as a text box shows it ("" for None: the verb decides)."""
        return "" if self.default is None else default_text(self.meta, self.default)


def studio_verbs() -> dict[str, Verb]:
    """The verbs the studio has a tab for: every verb of the registry that has a config, in registry order."""
    return {name: verb for name, verb in VERBS.items() if verb.config is not None}


def _field(name: str, meta: Option, default: Any) -> Field | None:
    kind = meta.kind
    if not meta.cli or name in NOT_SHOWN or kind == "output":
        return None  # Python-only values; files the run writes are named by the studio, inside the run's folder
    if kind == "folder":
        return Field(name, meta, default, "folder", "folder")
    if kind in UPLOAD_KINDS:
        return Field(name, meta, default, "uploads" if meta.multiple else "upload", kind)
    if meta.multiple:
        return Field(name, meta, default, "lines")
    if kind in ("int", "float", "bool"):
        return Field(name, meta, default, kind)
    if kind == "choice" or meta.choices:
        return Field(name, meta, default, "choice")
    return Field(name, meta, default, "text")  # size, width, colour, clip, device, specs, text


def verb_fields(verb: Verb) -> list[Field]:
    """The form of ``verb`` from its config: the positionals, the other required options, ``section="main"``
    options, then the verb's options, then the advanced ones; declaration order within each. Raises
    :class:`VecgenError` for a verb without a config."""
    if verb.config is None:
        raise VecgenError(f"{verb.name}: no config, so no studio form")
    fields = [f for f in (_field(n, m, d) for n, m, d in verb.config.options()) if f is not None]
    # positionals first (required ones first, as the command line takes them); sorted() keeps declaration order
    return sorted(fields, key=lambda f: (not f.positional, not f.required, _SECTIONS.get(f.section, 1)))


# ----------------------------------------------------------------------------- form -> options
def _number(field: Field, value: Any) -> int | float:
    """A widget's number (a Number's float, or a text box's text) as the option's type; one line if not."""
    try:
        x = float(value.strip()) if isinstance(value, str) else float(value)
    except (TypeError, ValueError, OverflowError):
        raise VecgenError(f"{field.label} must be a number, got {str(value)[:40]!r}") from None
    if not math.isfinite(x):
        raise VecgenError(f"{field.label} must be finite, got {str(value)[:40]!r}")
    if field.kind == "int":
        if not x.is_integer():
            raise VecgenError(f"{field.label} must be a whole number, got {value}")
        return int(x)
    return x


def _blank(value: Any) -> bool:
    return (
        value is None
        or (isinstance(value, str) and not value.strip())
        or (isinstance(value, (list, tuple)) and not value)
    )


def _is_default(field: Field, value: Any) -> bool:
    d = field.default
    if field.kind in ("int", "float"):
        return isinstance(d, (int, float)) and not isinstance(d, bool) and float(value) == float(d)
    if field.kind == "bool":
        return bool(value) == bool(d)
    if field.kind == "choice":
        return d is not None and value == str(d)
    if field.kind == "text":
        return d is not None and value == field.default_text()
    return False


_PATHLIKE = re.compile(r"[/\\~\x00]|^\.(?!\d)|\.[A-Za-z_][A-Za-z0-9_]{0,11}$")
_AFTER_COLON = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?|\d+x\d+")


def check_spec(field: Field, value: str) -> str:
    """``value`` if it names models only; a one-line refusal for anything that could be a server path.

    A spec's parts (split at ``,``, ``|``, ``@`` and ``:``) must be names: no path
    separator, no leading ``.`` or ``~``, no file suffix; after a ``:`` only a number
    (a weight) or ``WxH``. So ``mini-vit``, ``taef2``, ``RN50@openai:0.5`` and
    ``chair,table`` pass; ``stylegan2:ffhq.pkl``, ``taef2:weights``,
    ``ViT-B-32@/models/x.pt`` do not.
    """
    for item in re.split(r"[,|]", value):
        head, *after = (part.strip() for part in item.split(":"))
        names = [part.strip() for part in head.split("@")]
        if any(_PATHLIKE.search(p) for p in [*names, *after]) or any(
            p and not _AFTER_COLON.fullmatch(p) for p in after
        ):
            raise VecgenError(
                f"{field.label} {value.strip()[:60]!r}: the studio takes model names "
                f"(e.g. mini-vit, taef2), not paths on the server"
            )
    return value


def form_options(fields: list[Field], values: dict[str, Any]) -> dict[str, Any]:
    """The keyword options a filled form stands for, typed as the command line types them.

    ``values``: field name -> widget value (uploads already resolved to paths on
    the server). Blank fields and values equal to the default are left out (the
    verb's function fills them in); a blank required field is refused in one line.
    """
    for f in fields:  # first: no server path reaches anything, whatever else the form lacks
        v = values.get(f.name)
        if f.spec and not _blank(v):
            for item in v if isinstance(v, (list, tuple)) else str(v).splitlines() or [""]:
                check_spec(f, str(item))
    out: dict[str, Any] = {}
    for f in fields:
        v = values.get(f.name)
        if f.kind == "lines" and isinstance(v, str):
            v = [x.strip() for x in v.splitlines() if x.strip()]
        if _blank(v):
            if f.required:
                raise VecgenError(f"{f.label} is required")
            continue
        if f.kind in ("int", "float"):
            v = _number(f, v)
        elif f.kind == "bool":
            v = bool(v)
        elif f.kind in ("text", "choice"):
            v = str(v) if f.kind == "choice" or f.positional else str(v).strip()
        elif f.kind == "lines":
            v = [str(x) for x in (v if isinstance(v, (list, tuple)) else [v])]
        elif f.kind == "uploads" and not isinstance(v, (list, tuple)):
            v = [v]
        if (
            not f.required
            and not f.positional
            and f.kind not in ("upload", "uploads", "folder", "lines")
            and (_is_default(f, v))
        ):
            continue
        out[f.name] = list(v) if isinstance(v, tuple) else v
    return out


def _flag_value(value: Any) -> str:
    if isinstance(value, float):
        return repr(value)  # round-trips exactly through argparse's float()
    return str(value)


def cli_argv(fields: list[Field], options: dict[str, Any], output: str) -> list[str]:
    """The ``vecgen VERB`` argv of ``options`` (as :func:`form_options` gives them), writing ``output``.

    Flags in form order, then ``-o``, then the positionals (required ones first,
    as the command line takes them), after ``--`` when one starts with ``-``.
    """
    argv: list[str] = []
    for f in fields:
        if f.positional or f.name not in options:
            continue
        v = options[f.name]
        if f.kind == "bool":
            if v:
                argv.append(f.meta.flag_name(f.name))
            continue
        for item in v if isinstance(v, list) else [v]:
            argv += [f.meta.flag_name(f.name), _flag_value(item)]
    argv += ["-o", output]
    positionals: list[str] = []
    for f in sorted((f for f in fields if f.positional), key=lambda f: not f.required):
        v = options.get(f.name)
        if v is not None:
            positionals.extend(_flag_value(x) for x in (v if isinstance(v, list) else [v]))
    if any(p.startswith("-") for p in positionals):
        return [*argv, "--", *positionals]
    return argv + positionals


def command_line(verb_name: str, argv: list[str]) -> str:
    """The shell line ``vecgen VERB ARGV...`` (quoted for a POSIX shell)."""
    return shlex.join(["vecgen", verb_name, *argv])
