"""What every subcommand shares: the one-line-error parser, shared flags, TOML configs, defaults from the API.

Flags default to None; :func:`merge_options` fills in the API function's own
signature defaults, so the CLI never restates a default the API holds.
"""

from __future__ import annotations

import argparse
import inspect
import math
import sys
from collections.abc import Set
from pathlib import Path
from typing import Any, NoReturn

from vecgen.api import Verb
from vecgen.config import Option, check_value
from vecgen.config import default_text as _config_default_text
from vecgen.errors import VecgenError
from vecgen.io import one_line
from vecgen.options import check_suffix, check_writable


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, no usage dump
        raise VecgenError(f"{self.prog}: {message}")


def warn(msg: str) -> None:
    print(f"vecgen: warning: {msg}", file=sys.stderr)


#: What the CLI itself puts in a verb's parsed arguments (never options of the verb).
INTERNAL_KEYS = frozenset({"func", "command", "config", "interrupted", "flag_actions"})


# ----------------------------------------------------------------------------- config files
#: Largest config file read: an options file is a few lines (this refuses ``--config /dev/zero`` too).
MAX_CONFIG_BYTES = 1024 * 1024

#: Text flags whose option the API also takes as numbers, so a config may give either:
#: ``size = 224``, ``size = [320, 192]`` or ``size = "320x192"``; ``grid = 32`` or ``"32x24"``;
#: ``width = 4``, ``[1, 8]`` or ``"1,8"``.
NUMBER_OR_TEXT = frozenset({"size", "grid", "width"})

#: What each kind of option takes in a config file, as the error says it.
_EXPECTED = {
    "bool": "true or false",
    "int": "a whole number",
    "number": "a number",
    "text": "a string",
    "list": "a list of strings",
    "number-or-text": "a number, a list of numbers or a string",
}


def _kind_of_action(action: argparse.Action) -> str | tuple[str, ...]:
    """The kind of value a flag gives its option: what the same option must be in a config file."""
    if action.nargs == 0:  # store_true
        return "bool"
    if isinstance(action, argparse._AppendAction):
        return "list"
    if action.type is int:
        return "int"
    if action.type is float:
        return "number"
    if action.choices:
        return tuple(str(c) for c in action.choices)
    return "number-or-text" if action.dest in NUMBER_OR_TEXT else "text"


def option_kinds(verb: Verb, names: set[str], actions: list[argparse.Action] | None = None) -> dict[str, Any]:
    if verb.config is not None:  # the config declares each option's kind
        return {name: meta for name, meta, _ in verb.config.options() if name in names}
    return _kinds_from_flags(verb, names, actions)


def _kinds_from_flags(verb: Verb, names: set[str], actions: list[argparse.Action] | None = None) -> dict[str, Any]:
    """``{option: kind}`` for a config of ``verb``, read from its command-line flags.

    ``actions``: the flags of the parser that parsed the command line (default:
    built again from ``vecgen/cli/NAME.py``). A kind is ``"bool"``, ``"int"``,
    ``"number"``, ``"text"``, ``"list"`` (of strings), ``"number-or-text"``
    (:data:`NUMBER_OR_TEXT`) or a tuple of choices.
    """
    if actions is None:
        import importlib

        parser = Parser(prog=f"vecgen {verb.name}")
        importlib.import_module(f"vecgen.cli.{verb.name}").add_arguments(parser, verb)
        actions = parser._actions
    return {a.dest: _kind_of_action(a) for a in actions if a.dest in names}


def _shown(value: Any) -> str:
    if isinstance(value, dict):
        return "a table"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_config_value(path: str | Path, key: str, value: Any, kind: Option | str | tuple[str, ...] | None) -> Any:
    """``value`` if a config may give it to an option of ``kind`` (a lone string for a list becomes one item).

    Numbers must be finite (TOML has ``nan`` and ``inf``); anything else raises
    a one-line :class:`VecgenError` naming the file, the option and what it takes.
    """
    name = "--" + key.replace("_", "-")  # named as its flag, as the API's own messages do
    meta = kind if isinstance(kind, Option) else None
    if isinstance(kind, Option):
        kind = _legacy_kind(kind)
    numbers = value if isinstance(value, list) else [value]
    if any(isinstance(v, float) and not math.isfinite(v) for v in numbers):
        raise VecgenError(f"config {path}: {name} must be finite, got {_shown(value)}")
    if kind is None:
        return value
    if isinstance(kind, tuple):
        if isinstance(value, str) and value in kind:
            return value
        raise VecgenError(f"config {path}: {name} must be one of {', '.join(kind)}, got {_shown(value)}")
    if kind == "list" and isinstance(value, str):
        return [value]
    ok = {
        "bool": lambda v: isinstance(v, bool),
        "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "number": _is_number,
        "text": lambda v: isinstance(v, str),
        "list": lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
        "number-or-text": lambda v: (
            isinstance(v, str) or _is_number(v) or (isinstance(v, list) and bool(v) and all(_is_number(x) for x in v))
        ),
    }[kind](value)
    if not ok:
        raise VecgenError(f"config {path}: {name} must be {_EXPECTED[kind]}, got {_shown(value)}")
    if meta is not None:  # then what the option itself allows (bounds, syntax), as the API checks it
        try:
            return check_value(key.replace("-", "_"), meta, value, strict=True)
        except VecgenError as e:
            raise VecgenError(f"config {path}: {e}") from None
    return value


def _legacy_kind(meta: Option) -> str | tuple[str, ...]:
    """The coarse kind of value a config file must give an option (checked first, for a plain message)."""
    if meta.multiple:
        return "list"
    if meta.kind == "choice":
        return meta.choices
    if meta.kind in ("size", "grid", "width", "colour"):
        return "number-or-text"
    return {"int": "int", "float": "number", "bool": "bool"}.get(meta.kind, "text")


def load_config(path: str | Path, allowed: set[str], types: dict[str, Any] | None = None) -> dict[str, Any]:
    """TOML file of options (dash or underscore names); unknown keys are errors.

    ``types`` (``{option: kind}``, see :func:`option_kinds`) checks each value's
    type too. A file that is not TOML text (binary, not UTF-8, over
    :data:`MAX_CONFIG_BYTES`) is refused in one line.
    """
    import tomllib

    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise VecgenError(f"config {path}: no such file") from None
    except OSError as e:
        raise VecgenError(f"config {path}: cannot read ({e.strerror or type(e).__name__})") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise VecgenError(f"config {path}: larger than {MAX_CONFIG_BYTES // 1024} KB; not an options file")
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise VecgenError(f"config {path}: not a TOML text file (byte {e.start} is not UTF-8)") from None
    except tomllib.TOMLDecodeError as e:
        raise VecgenError(f"config {path}: {one_line(e)}") from None
    except RecursionError:
        raise VecgenError(f"config {path}: values nested too deeply") from None
    out = {}
    for key, value in data.items():
        k = key.replace("-", "_")
        if k not in allowed:
            raise VecgenError(f"config {path}: unknown option {key!r}")
        out[k] = check_config_value(path, key, value, types.get(k)) if types is not None else value
    return out


def merge_options(args: argparse.Namespace, verb: Verb, skip: Set[str] = frozenset()) -> dict[str, Any]:
    """API defaults < config file < command-line flags, for the flags this subcommand has.

    ``output`` defaults to the verb's ``default_output``. Returns keyword
    options for the verb's function (positional arguments such as the prompt
    are in ``skip``). Config values must have the type the flag takes
    (:func:`option_kinds`): ``steps = "many"`` is refused here, in one line.
    """
    skip = set(skip) | INTERNAL_KEYS
    flags = {k: v for k, v in vars(args).items() if k not in skip}
    api = verb.defaults()
    opts = {k: api[k] for k in flags if k in api}
    opts["output"] = verb.default_output
    if getattr(args, "config", None):
        kinds = option_kinds(verb, set(flags), getattr(args, "flag_actions", None))
        opts.update(load_config(args.config, set(flags), kinds))
    opts.update({k: v for k, v in flags.items() if v is not None})
    return opts


# ----------------------------------------------------------------------------- flags from a config
def _flag_help(meta: Option, default: Any) -> str:
    text = meta.help
    if meta.kind != "bool" and "default" not in text and (default is not None or meta.default_text):
        text += f" (default {_config_default_text(meta, default)})"
    return text.replace("%", "%%")


def add_options(p: argparse.ArgumentParser, verb: Verb, skip: frozenset[str] | set[str] = frozenset()) -> None:
    """Every option of ``verb``'s config (but ``skip``) as a positional or a flag, then ``-o`` (flags default
    to None: :func:`merge_options` fills in the config's defaults)."""
    config = verb.config
    import dataclasses

    shared = {f.name for base in config.__mro__[1:] if dataclasses.is_dataclass(base) for f in dataclasses.fields(base)}
    options = [o for o in config.options() if o[1].cli and o[0] not in skip]
    # positionals, then the verb's own options, then the shared ones (as `vecgen VERB --help` lists them)
    options.sort(key=lambda o: 0 if o[1].cli_positional else 2 if o[0] in shared else 1)
    p.add_argument("-o", "--output", help=f"output file ({' or '.join(verb.outputs)}; default {verb.default_output})")
    for name, meta, default in options:
        text = _flag_help(meta, default)
        if meta.cli_positional:
            p.add_argument(
                name,
                nargs=None if meta.required else "?",
                default=None,
                help=text,
                metavar=meta.metavar or name.upper() if not meta.required else meta.metavar,
            )
            continue
        flags = [f for f in (meta.short, meta.flag_name(name)) if f]
        kw: dict[str, Any] = {"dest": name, "default": None, "help": text}
        if meta.kind == "bool":
            kw["action"] = "store_true"
        elif meta.multiple:
            kw["action"] = "append"
        elif meta.kind == "choice":
            kw["choices"] = meta.choices
        elif meta.kind in ("int", "float"):
            kw["type"] = int if meta.kind == "int" else float
        if meta.metavar and meta.kind != "bool":
            kw["metavar"] = meta.metavar
        p.add_argument(*flags, **kw)
    p.add_argument("--config", metavar="FILE", help="TOML file with any of these options; flags override")


def positional_names(verb: Verb) -> set[str]:
    return {name for name, meta, _ in verb.config.options() if meta.cli_positional} if verb.config else set()


def run_verb(args: argparse.Namespace, verb: Verb) -> int:
    """The CLI of a verb made from its config: merge options, check every output, call the API, save."""
    opts = merge_options(args, verb)
    out = str(opts.pop("output"))
    # a required flag not given: None, which the config's checks refuse naming it (``--generator is required``)
    opts.update({name: None for name, meta, _ in verb.config.options() if meta.required and name not in opts})
    files = verb.files(out, opts)
    check_suffix(out, verb.outputs, f"{verb.name}'s output")
    for path in files:
        check_writable(path)
    return finish(call(verb, None, opts), out)


def check_output(out: str, verb: Verb) -> None:
    """Refuse an output the verb cannot write, before any work starts."""
    check_suffix(out, verb.outputs, f"{verb.name}'s output")
    check_writable(out)


def finish(result, output: str) -> int:
    """Save the result (and every file that goes with it); say where; exit 130 if the run was interrupted
    (the files are still written)."""
    *extra, path = result.save_all(output)
    for p in extra:
        print(str(p))
    if result.interrupted:
        print(f"vecgen: interrupted after {len(result.history)} steps; saved {path}", file=sys.stderr)
        return 130
    print(str(path))
    return 0


def call(verb: Verb, prompt: Any, opts: dict[str, Any]):
    """Call the verb's function with the merged options it accepts (and the CLI's warning printer)."""
    params = inspect.signature(verb.function).parameters
    extra = {"warn": warn} if "warn" in params else {}
    return verb.function(prompt, **extra, **opts) if prompt is not None else verb.function(**extra, **opts)
