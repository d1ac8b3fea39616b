"""One declarative config per verb: every option declared once, with its type, default, kind, bounds and help.

A verb's config is a frozen dataclass whose fields are made by :func:`option`.
From it come the verb function's signature, the CLI's flags and help, TOML
checking (configs and gallery specs), the studio's widgets, the docs' option
tables and the limits table. Checking runs once, in :meth:`VerbConfig.check`,
and names the option. No torch here: the CLI and the gallery check options
before any model loads.

    @dataclass(frozen=True)
    class DrawConfig(VerbConfig):
        prompt: str | None = option(None, 'e.g. "a lighthouse"', positional=True, required=True)
        strokes: int | None = option(None, "number of paths", kind="int", minimum=0, maximum=10_000)
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar, TypeVar

from vecgen.errors import VecgenError

#: Suffixes read as pictures everywhere (style and edit training folders, search, studio uploads).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")
#: Suffixes read as meshes or point clouds.
MESH_SUFFIXES = (".obj", ".ply", ".off", ".stl", ".glb", ".gltf", ".xyz", ".pts", ".txt", ".csv", ".npy")
#: Frames of a mesh turntable GIF unless asked otherwise.
TURNTABLE_FRAMES = 24

#: Kinds of option. Numbers: ``int``, ``float``; ``bool``; ``text``; ``choice`` (one of ``choices``);
#: values with a syntax of their own: ``size`` (W or WxH), ``grid`` (COLS or COLSxROWS cells), ``width`` (MIN,MAX), ``colour``, ``clip``
#: (a perceptor spec), ``device``; files: ``image``, ``svg``, ``mesh``, ``file`` (any other input file),
#: ``folder`` (an input folder), ``output`` (a file the run writes); ``object``: Python-only values.
KINDS = (
    "int",
    "float",
    "bool",
    "text",
    "choice",
    "size",
    "grid",
    "width",
    "colour",
    "clip",
    "device",
    "image",
    "svg",
    "mesh",
    "file",
    "folder",
    "output",
    "object",
)
FILE_KINDS = frozenset({"image", "svg", "mesh", "file", "folder", "output"})
_DEVICE = re.compile(r"auto|cpu|cuda(:\d+)?|mps", re.I)
META = "vecgen"
T = TypeVar("T")


class OptionError(VecgenError):
    """A bad option value. ``option`` names the option; ``template`` is the message with ``{label}`` where
    the option is named: the API and the CLI show it as its flag (``--steps``), a gallery spec by its key."""

    def __init__(self, option: str, template: str, flag: str | None = None) -> None:
        self.option, self.template = option, template
        self.flag = flag or "--" + option.replace("_", "-")
        super().__init__(self.named(self.flag))

    def named(self, label: str) -> str:
        return self.template.replace("{label}", label)


@dataclass(frozen=True)
class Option:
    """What a config field declares besides its default (see :func:`option`)."""

    help: str
    kind: str = "text"
    positional: bool = False
    required: bool = False
    choices: tuple[str, ...] = ()
    fold: bool = False
    minimum: float | None = None
    maximum: float | None = None
    above: float | None = None
    multiple: bool = False
    flag: str | None = None
    short: str | None = None
    metavar: str | None = None
    cli: bool = True
    section: str = "options"
    default_text: str | None = None

    def flag_name(self, name: str) -> str:
        return self.flag or "--" + name.replace("_", "-")

    @property
    def cli_positional(self) -> bool:
        """A positional on the command line (a Python positional with a ``flag`` is a flag there)."""
        return self.positional and self.flag is None


def option(default: Any, help: str, kind: str | None = None, **meta: Any) -> Any:
    """A config field: ``default``, one line of ``help``, its ``kind`` (see :data:`KINDS`) and bounds.

    ``kind`` defaults from the default's type (bool, int, float, else text).
    ``minimum`` / ``maximum``: inclusive bounds (``maximum`` of a size-like option
    is its documented limit); ``above``: a strict lower bound (a learning rate
    ``above=0``). ``positional``: a positional argument (of the function, and on the command line unless
    it has a ``flag``: adapt's ``--source``); ``required``: must be given, no default in the signature (it
    may still be None where the verb allows; the CLI passes None for a required flag not given, so the
    config's cross checks name it). ``multiple``: a repeatable flag (a list).
    ``cli=False``: Python only. ``section``: ``main``, ``options`` or ``advanced``
    (the studio's grouping). ``default_text``: what help shows as the default.
    """
    if kind is None:
        kind = (
            "bool"
            if isinstance(default, bool)
            else "int"
            if isinstance(default, int)
            else "float"
            if isinstance(default, float)
            else "choice"
            if meta.get("choices")
            else "text"
        )
    if kind not in KINDS:
        raise ValueError(f"unknown option kind {kind!r}")
    if "choices" in meta:
        meta["choices"] = tuple(meta["choices"])
    return dataclasses.field(default=default, metadata={META: Option(help=help, kind=kind, **meta)})


def like(config: type, name: str, default: Any = dataclasses.MISSING, **changes: Any) -> Any:
    """The option ``name`` of ``config`` again, with another default (and ``changes`` to its Option).

    For a verb whose shared option (``steps``, ``size``...) has its own default:
    the help and bounds stay declared once, in the shared config.
    """
    field = {f.name: f for f in dataclasses.fields(config)}[name]
    meta = dataclasses.replace(field.metadata[META], **changes)
    return dataclasses.field(
        default=field.default if default is dataclasses.MISSING else default, metadata={META: meta}
    )


# ----------------------------------------------------------------------------- checking values
def _label(name: str, meta: Option) -> str:
    return "{label}"  # filled in by OptionError: the flag, or the key of a gallery spec


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _check_number(name: str, label: str, meta: Option, value: Any, strict: bool) -> None:
    if isinstance(value, bool):
        raise OptionError(
            name, f"{label} must be {'a whole number' if meta.kind == 'int' else 'a number'}, got {value!r}"
        )
    if meta.kind == "int":
        ok = isinstance(value, int) or (
            not strict and (isinstance(value, float) and value.is_integer() or isinstance(value, str))
        )
        try:
            number: float = int(value) if ok else math.nan
            if isinstance(value, str) and not re.fullmatch(r"\s*[-+]?\d+\s*", value):
                ok = False
        except (TypeError, ValueError, OverflowError):
            ok = False
        if not ok:
            raise OptionError(name, f"{label} must be a whole number, got {_show(value)}")
    else:
        ok = isinstance(value, (int, float)) or (not strict and isinstance(value, str))
        try:
            number = float(value) if ok else math.nan
        except (TypeError, ValueError, OverflowError):
            ok = False
        if not ok:
            raise OptionError(name, f"{label} must be a number, got {_show(value)}")
        if not math.isfinite(number):
            raise OptionError(name, f"{label} must be finite, got {_show(value)}")
    if meta.above is not None and not number > meta.above:
        raise OptionError(name, f"{label} must be > {meta.above:g}, got {_show(value)}")
    if (
        meta.minimum is not None
        and meta.maximum is not None
        and not meta.minimum <= number <= meta.maximum
        and (meta.maximum > 2**53)
    ):  # a range, not a limit (the seed)
        raise OptionError(name, f"{label} must be between {meta.minimum:g} and {int(meta.maximum)}, got {_show(value)}")
    if meta.minimum is not None and number < meta.minimum:
        raise OptionError(name, f"{label} must be >= {meta.minimum:g}, got {_show(value)}")
    if meta.maximum is not None and number > meta.maximum:
        raise OptionError(
            name,
            f"{meta.flag_name(name)} {_show(value)} is above the limit of {_number_text(meta.maximum)} (docs: Limits)",
        )


def _check_one(name: str, meta: Option, value: Any, strict: bool) -> None:
    """Raise :class:`OptionError` if ``value`` is not a value of ``meta``'s kind (one item of a list)."""
    from vecgen import options as o

    label = _label(name, meta)
    kind = meta.kind
    try:
        if kind in ("int", "float"):
            _check_number(name, label, meta, value, strict)
        elif kind == "bool":
            if not isinstance(value, bool):
                raise OptionError(name, f"{label} must be true or false, got {_show(value)}")
        elif kind == "choice":
            word = value.strip().lower() if meta.fold and isinstance(value, str) else value
            if not isinstance(value, str) or word not in meta.choices:
                raise OptionError(name, f"unknown {label} {_show(value)} (choose {', '.join(meta.choices)})")
        elif kind == "size":
            if (
                isinstance(value, bool)
                or isinstance(value, (list, tuple))
                and (len(value) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in value))
                or (strict and not isinstance(value, (int, str, list)))
            ):
                raise OptionError(name, f'bad {label} {_show(value)}: use W, "WxH" or [W, H] in whole pixels')
            o.parse_size(value)
        elif kind == "grid":
            if isinstance(value, bool) or strict and not isinstance(value, (int, str, list)):
                raise OptionError(name, f'bad {label} {_show(value)}: use COLSxROWS (e.g. "32x32") or COLS')
            o.parse_grid_spec(value)
        elif kind == "width":
            items = value if isinstance(value, (list, tuple)) else [value]
            if not isinstance(value, str) and not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in items
            ):
                raise OptionError(name, f"bad {label} {_show(value)}: use [MIN, MAX] stroke widths, e.g. [1.0, 8.0]")
            o.parse_width(value)
        elif kind == "colour":
            o.parse_colour(value)
        elif kind == "clip":
            if not isinstance(value, str) or not value.replace(",", "").strip():
                raise OptionError(
                    name, f'{label} needs at least one model, e.g. "auto" or "mini-vit", got {_show(value)}'
                )
            o.parse_clip(value)
        elif kind == "device":
            if not isinstance(value, str) or not _DEVICE.fullmatch(value.strip()):
                raise OptionError(name, f"unknown device {_show(value)} (use {', '.join(o.DEVICES)})")
        elif kind in FILE_KINDS:
            if (
                strict
                and not isinstance(value, str)
                or not strict
                and not isinstance(value, (str, Path))
                and (kind not in ("image", "mesh", "file"))
            ):
                raise OptionError(name, f"{label} must be a path, got {_show(value)}")
            if isinstance(value, str) and not value.strip():
                raise OptionError(name, f"{label} must not be empty")
        elif kind == "text":
            if not isinstance(value, str):
                raise OptionError(name, f"{label} must be text, got {type(value).__name__}")
    except OptionError:
        raise
    except VecgenError as e:  # a parser's own message (options.parse_size...): it names the option itself
        raise OptionError(name, str(e).replace("{", "(").replace("}", ")")) from None


def check_value(name: str, meta: Option, value: Any, *, strict: bool = False) -> Any:
    """``value`` if it fits ``meta`` (``None`` always does: it means "not given" / auto).

    ``strict`` (TOML files, gallery specs): exact types, a whole number is an
    int, never a float or a string. A lone value of a ``multiple`` option
    becomes a one-item list. Raises :class:`OptionError` naming the option.
    """
    try:
        return _check(name, meta, value, strict)
    except OptionError as e:
        if meta.positional or meta.flag:
            e.flag = name if meta.cli_positional else meta.flag_name(name)
            e.args = (e.named(e.flag),)
        raise


def _check(name: str, meta: Option, value: Any, strict: bool) -> Any:
    if value is None or meta.kind == "object":
        return value
    if meta.multiple:
        if strict and not isinstance(value, list):
            raise OptionError(name, f'{_label(name, meta)} must be a list, e.g. ["a", "b"], got {_show(value)}')
        items = [value] if isinstance(value, (str, Path)) else value
        if not isinstance(items, (list, tuple)):
            raise OptionError(name, f"{_label(name, meta)} must be a list, got {_show(value)}")
        for item in items:
            _check_one(name, meta, item, strict)
        return list(items) if isinstance(value, (str, Path)) else value
    _check_one(name, meta, value, strict)
    return value


# ----------------------------------------------------------------------------- the config base
@dataclass(frozen=True)
class VerbConfig:
    """Base of every verb's config: fields from :func:`option`, checked when made."""

    #: Checks across options (``f(values)`` on a dict of every option, raising OptionError) run after the
    #: per-option ones, by the API and by the gallery's spec check alike.
    cross_checks: ClassVar[tuple[Callable[[dict[str, Any]], None], ...]] = ()

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        for f in dataclasses.fields(self):
            meta = f.metadata.get(META)
            if meta is None:
                continue
            value = getattr(self, f.name)
            check_value(f.name, meta, value)
        for cross in type(self).cross_checks:
            cross(self.asdict())

    @classmethod
    def options(cls) -> list[tuple[str, Option, Any]]:
        """``(name, Option, default)`` of every option, in declaration order."""
        return [(f.name, f.metadata[META], f.default) for f in dataclasses.fields(cls) if META in f.metadata]

    @classmethod
    def option_of(cls, name: str) -> Option | None:
        for n, meta, _ in cls.options():
            if n == name:
                return meta
        return None

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        return {n: d for n, _, d in cls.options()}

    @classmethod
    def check_values(
        cls, values: dict[str, Any], *, strict: bool = True, order: list[str] | None = None, source: str = ""
    ) -> dict[str, Any]:
        """Check ``values`` (a TOML table, a gallery job) without making a config; unknown names are errors.

        Returns the values (lone items of list options as lists). Raises OptionError naming the first bad one.
        """
        known = {n: m for n, m, _ in cls.options()}
        out = {}
        for key in order if order is not None else list(values):
            name = key.replace("-", "_")
            if name not in known:
                raise OptionError(name, f"{source}unknown option {key!r}")
            out[name] = check_value(name, known[name], values[key], strict=strict)
        for cross in cls.cross_checks:
            cross({**cls.defaults(), **out})
        return out

    def asdict(self) -> dict[str, Any]:
        return {n: getattr(self, n) for n, _, _ in self.options()}


C = TypeVar("C", bound=VerbConfig)


def signature(config: type[VerbConfig], runtime: dict[str, Any]) -> inspect.Signature:
    """The verb function's signature: positional options first, then keyword options, then ``runtime``."""
    params = []
    for name, meta, default in config.options():
        kind = inspect.Parameter.POSITIONAL_OR_KEYWORD if meta.positional else inspect.Parameter.KEYWORD_ONLY
        d = inspect.Parameter.empty if meta.required else default
        params.append(inspect.Parameter(name, kind, default=d))
    positional = [p for p in params if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]
    # a positional with a default may not precede one without: such positionals become keyword-only
    seen_default = False
    for i, p in enumerate(positional):
        if p.default is not inspect.Parameter.empty:
            seen_default = True
        elif seen_default:
            positional[i] = p.replace(kind=inspect.Parameter.KEYWORD_ONLY)
    keywords = [p for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY]
    keywords += [p for p in positional if p.kind is inspect.Parameter.KEYWORD_ONLY]
    positional = [p for p in positional if p.kind is not inspect.Parameter.KEYWORD_ONLY]
    extra = [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=d) for n, d in runtime.items()]
    return inspect.Signature(positional + keywords + extra)


def verb_function(config: type[C], **runtime: Any) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Make a verb's public function from ``impl(config_instance, **runtime)``.

    The public function takes the config's options as arguments (positionals
    first, as declared), makes the config (which checks every value once), and
    calls ``impl``. ``runtime``: Python-only arguments and their defaults
    (``perceptors``, ``warn``, ``callbacks``...), passed through unchecked.
    """

    def wrap(impl: Callable[..., T]) -> Callable[..., T]:
        sig = signature(config, runtime)

        @functools.wraps(impl)
        def verb(*args: Any, **kwargs: Any) -> T:
            try:
                bound = sig.bind(*args, **kwargs)
            except TypeError as e:
                raise TypeError(f"{impl.__name__}(): {e}") from None
            given = bound.arguments
            run = {k: given.pop(k) for k in list(given) if k in runtime}
            cfg = config(**given)
            return impl(cfg, **run)

        verb.__signature__ = sig  # type: ignore[attr-defined]
        verb.config = config  # type: ignore[attr-defined]
        return verb

    return wrap


# ----------------------------------------------------------------------------- docs
def default_text(meta: Option, default: Any) -> str:
    """A default as help and docs show it (``1,8``; ``auto`` for None)."""
    if meta.default_text is not None:
        return meta.default_text
    if isinstance(default, (tuple, list)):
        return ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in default)
    if isinstance(default, float):
        return f"{default:g}"
    return "auto" if default is None else str(default)


def _number_text(x: float) -> str:
    return f"{int(x):,}" if float(x).is_integer() else f"{x:g}"


def _type_text(meta: Option) -> str:
    if meta.kind == "choice":
        return " | ".join(meta.choices)
    text = {
        "int": "integer",
        "float": "number",
        "bool": "flag",
        "size": "W or WxH",
        "grid": "COLS or COLSxROWS",
        "width": "MIN,MAX",
        "clip": "model spec",
        "output": "output file",
        "text": "text",
    }.get(meta.kind, meta.kind)
    bounds = []
    if meta.above is not None:
        bounds.append(f"> {meta.above:g}")
    if meta.minimum is not None:
        bounds.append(f">= {_number_text(meta.minimum)}")
    if meta.maximum is not None:
        bounds.append(f"<= {_number_text(meta.maximum)}")
    return text + (f" ({', '.join(bounds)})" if bounds else "") + (", repeatable" if meta.multiple else "")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(config: type[VerbConfig], outputs: tuple[str, ...] = (), default_output: str = "") -> str:
    """The options of a verb as a Markdown table: option | type | default | help (``-o`` first, given the
    verb's ``outputs`` suffixes and ``default_output``)."""
    rows = ["| option | type | default | what it does |", "| --- | --- | --- | --- |"]
    if outputs:
        rows.append(f"| `-o`, `--output` | output file | `{default_output}` | {' or '.join(outputs)} |")
    for name, meta, default in config.options():
        if not meta.cli:
            continue
        shown = name.upper() if meta.cli_positional else meta.flag_name(name)
        dflt = "required" if meta.required else default_text(meta, default)
        rows.append(f"| `{shown}` | {_cell(_type_text(meta))} | `{_cell(dflt)}` | {_cell(meta.help)} |")
    return "\n".join(rows)


def limits_table(configs: dict[str, type[VerbConfig]]) -> str:
    """Every bounded option of every verb (``{verb: config}``, e.g. from the registry): verb | option | allowed."""
    rows = ["| verb | option | allowed |", "| --- | --- | --- |"]
    for verb, config in configs.items():
        for name, meta, _ in config.options():
            if meta.cli and (meta.maximum is not None or meta.minimum is not None or meta.above is not None):
                rows.append(f"| {verb} | `{meta.flag_name(name)}` | {_cell(_type_text(meta))} |")
    return "\n".join(rows)
