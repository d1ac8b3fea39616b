"""Option values of gallery jobs, checked as the API checks them, before any job runs (no torch, no models).

A spec is refused on its first bad value in one line naming the table and option
(:func:`check_options`), so a typo is never found as a batch of failed jobs.
"""
from __future__ import annotations

import inspect
import re
from typing import Any, Callable

from vecgen.errors import VecgenError
from vecgen.options import LIMITS, check_limit

class _BadOption(VecgenError):
    """A bad option value: ``key`` names the option, ``message`` says what is wrong (one line)."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key
        self.message = message


#: What the words of an API annotation (``int | None``, ``str | Path``...) allow a TOML value to be.
_ANNOTATION_TYPES: dict[str, tuple[type, ...]] = {"int": (int,), "float": (int, float), "str": (str,),
                                                  "Path": (str,), "bool": (bool,), "None": ()}
_TYPE_NAMES = {bool: "true or false", int: "a whole number", float: "a number", str: "a string"}
_DEVICE = re.compile(r"auto|cpu|cuda(:\d+)?|mps", re.I)


def option_types(param: inspect.Parameter) -> tuple[type, ...] | None:
    """The value types an API keyword option takes, from its annotation, else its default; None: not known."""
    ann = param.annotation
    if ann is not param.empty:
        text = ann if isinstance(ann, str) else getattr(ann, "__name__", str(ann))
        types: list[type] = []
        for word in text.split("|"):
            allowed = _ANNOTATION_TYPES.get(word.strip())
            if allowed is None:  # Any, Callable[...], a class: the API checks it itself
                return None
            types += allowed
        return tuple(dict.fromkeys(types)) or None
    d = param.default
    for t in (bool, int, float, str):
        if isinstance(d, t):
            return (int, float) if t is float else (t,)
    return None


def _has_type(value: Any, types: tuple[type, ...]) -> bool:
    """Whether ``value`` is one of ``types``, with bools never ints and ints never floats' opposite."""
    if isinstance(value, bool):
        return bool in types
    if isinstance(value, int):
        return int in types
    if isinstance(value, float):
        return float in types
    return any(isinstance(value, t) for t in types if t not in (bool, int, float))


def _type_text(types: tuple[type, ...]) -> str:
    names = [_TYPE_NAMES.get(t, t.__name__) for t in types if not (t is int and float in types)]
    return " or ".join(names)


def _whole(minimum: int | None = None) -> Callable:
    def check(key: str, value: Any, opts: dict[str, Any]) -> None:
        if not isinstance(value, int) or isinstance(value, bool):
            raise VecgenError(f"{key} must be a whole number, got {value!r}")
        from vecgen.options import as_int

        as_int(key, value, minimum=minimum)
    return check


def _number(**limits: Any) -> Callable:
    def check(key: str, value: Any, opts: dict[str, Any]) -> None:
        from vecgen.options import check_number

        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise VecgenError(f"{key} must be a number, got {value!r}")
        check_number(key, value, **limits)
    return check


def _choice(choices: tuple[str, ...], *, fold: bool = False) -> Callable:
    """One of ``choices`` (``fold``: as the API reads it, stripped and lower-cased)."""
    def check(key: str, value: Any, opts: dict[str, Any]) -> None:
        name = value.strip().lower() if fold and isinstance(value, str) else value
        if not isinstance(value, str) or name not in choices:
            raise VecgenError(f"unknown {key} {value!r} (choose {', '.join(choices)})")
    return check


def _text(what: str) -> Callable:
    def check(key: str, value: Any, opts: dict[str, Any]) -> None:
        if not isinstance(value, str) or not value.strip():
            raise VecgenError(f"{key} must be {what}, got {value!r}")
    return check


def _check_size(key: str, value: Any, opts: dict[str, Any]) -> None:
    from vecgen.options import parse_size

    if isinstance(value, list):
        if len(value) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            raise VecgenError(f"bad {key} {value!r}: use W, \"WxH\" or [W, H] in whole pixels")
    elif isinstance(value, bool) or not isinstance(value, (int, str)):
        raise VecgenError(f"bad {key} {value!r}: use W or WxH, e.g. 224 or \"320x192\"")
    parse_size(value)


def _check_width(key: str, value: Any, opts: dict[str, Any]) -> None:
    from vecgen.options import parse_width

    items = value if isinstance(value, list) else [value]
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in items) and not (
            isinstance(value, str)):
        raise VecgenError(f"bad {key} {value!r}: use [MIN, MAX] stroke widths, e.g. [1.0, 8.0]")
    parse_width(value)


def _check_colour(key: str, value: Any, opts: dict[str, Any]) -> None:
    from vecgen.options import parse_colour

    if isinstance(value, list):
        if len(value) != 3 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
            raise VecgenError(f"bad colour {value!r}: use white, black, gray, #rrggbb or [R, G, B] in 0..1")
    elif not isinstance(value, str):
        raise VecgenError(f"bad colour {value!r}: use white, black, gray or #rrggbb")
    parse_colour(value)


def _check_clip(key: str, value: Any, opts: dict[str, Any]) -> None:
    from vecgen.options import parse_clip

    if not isinstance(value, str):
        raise VecgenError(f"{key} must be a string such as \"auto\" or \"mini-vit\", got {value!r}")
    if not value.replace(",", "").strip():
        raise VecgenError(f"{key} needs at least one model, e.g. {key} = \"auto\" or {key} = \"mini-vit\"")
    for name, _weight in parse_clip(value):
        if not name.partition("@")[0].strip():
            raise VecgenError(f"empty CLIP model name in {value!r}")


def _check_device(key: str, value: Any, opts: dict[str, Any]) -> None:
    from vecgen.options import DEVICES

    if not isinstance(value, str) or not _DEVICE.fullmatch(value.strip()):
        raise VecgenError(f"unknown device {value!r} (use {', '.join(DEVICES)})")


def _check_files(key: str, value: Any, opts: dict[str, Any]) -> None:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise VecgenError(f"{key} must be a list of image files, e.g. {key} = [\"cat.png\", \"dog.png:0.5\"]")


def _check_strokes(key: str, value: Any, opts: dict[str, Any]) -> None:
    _whole(0)(key, value, opts)
    if value == 0 and opts.get("init") is None:
        raise VecgenError(f"{key} must be > 0 (0 only with an init SVG)")


def _value_checks(function: str) -> dict[str, Callable[[str, Any, dict[str, Any]], None]]:
    """``{option: check(key, value, options)}``: the API's checks of ``function``'s options, none of which loads
    a model (or torch). Each raises a one-line VecgenError."""
    from vecgen.options import RASTERIZERS, SHAPES, VIEWS

    checks: dict[str, Callable] = {
        "steps": _whole(1), "cutouts": _whole(0), "views": _choice(("auto", *VIEWS)), "clip": _check_clip,
        "device": _check_device, "size": _check_size, "image_prompt": _check_files,
    }
    if function == "draw":
        checks.update(strokes=_check_strokes, segments=_whole(1), width=_check_width,
                      shapes=_choice(("auto", *SHAPES)), background=_check_colour, rasterizer=_choice(RASTERIZERS),
                      init=_text("the path of an SVG file"))
    return checks


def check_options(function: str, fn: Callable, options: dict[str, Any], order: list[str] | None = None) -> None:
    """Check a job's options as ``function`` (the API ``fn``) would, without running it or loading a model.

    Each value must have the type the API signature gives (whole numbers are ints, never bools or floats;
    numbers are finite; strings are strings) and pass the API's own check of it (``steps >= 1``,
    ``cutouts >= 0``, sizes, colours, widths, choices...). Raises a one-line VecgenError (with ``.key``, the
    option) for the first bad one, in ``order`` (default: ``options``' own).
    """
    config = getattr(fn, "config", None)
    if config is not None:  # the verb's config declares and checks every option (vecgen.config)
        from vecgen.config import OptionError

        try:
            config.check_values(options, strict=True, order=order)
        except OptionError as e:
            raise _BadOption(e.option, e.named(e.option)) from None
        return
    params = {p.name: p for p in inspect.signature(fn).parameters.values()}
    checks = _value_checks(function)
    for key in order if order is not None else list(options):
        value = options[key]
        try:
            types = option_types(params[key]) if key in params else None
            if types and not _has_type(value, types):
                raise VecgenError(f"{key} must be {_type_text(types)}, got {value!r}")
            if key in checks:
                checks[key](key, value, options)
            if key in LIMITS and isinstance(value, int) and not isinstance(value, bool):
                check_limit(key, value)  # the API's hard bounds (docs: Limits)
            elif isinstance(value, float):
                _number()(key, value, options)  # no inf or nan where the API takes a number
        except _BadOption:
            raise
        except VecgenError as e:
            raise _BadOption(key, str(e)) from None
        except (TypeError, ValueError, OverflowError) as e:  # a validator's own surprise: still one line
            raise _BadOption(key, f"bad {key} {value!r} ({type(e).__name__})") from None
