"""Option values of gallery jobs, checked by the verb's config before any job runs (no torch, no models).

A spec is refused on its first bad value in one line naming the table and option
(:func:`check_options`), so a typo is never found as a batch of failed jobs. The
checks are the verb's own (:mod:`vecgen.config`): the gallery restates none.
"""
from __future__ import annotations

from typing import Any, Callable

from vecgen.config import OptionError
from vecgen.errors import VecgenError


class _BadOption(VecgenError):
    """A bad option value: ``key`` names the option, ``message`` says what is wrong (one line)."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key
        self.message = message


def check_options(function: str, fn: Callable, options: dict[str, Any], order: list[str] | None = None) -> None:
    """Check a job's options as ``function`` (the API ``fn``) would, without running it or loading a model.

    Each value must have the exact type its option takes (whole numbers are ints, never bools or floats;
    numbers are finite; a list option takes a list) and pass the option's own check (bounds, sizes, colours,
    choices) and the config's checks across options. Raises a one-line VecgenError (with ``.key``, the
    option) for the first bad one, in ``order`` (default: ``options``' own). A function registered without
    a config (a test's stand-in) is not checked.
    """
    config = getattr(fn, "config", None)
    if config is None:
        return
    try:
        config.check_values(options, strict=True, order=order)
    except OptionError as e:
        raise _BadOption(e.option, e.named(e.option)) from None
