"""Gallery specs: the TOML format (see :mod:`vecgen.gallery`), its checks, and the jobs it expands to.

The functions a spec may name are the gallery verbs of :data:`vecgen.api.VERBS`
(``fn(prompt, *, seed, ...) -> Result``), looked up at run time so that
parsing a spec does not load torch before it has to.
"""
from __future__ import annotations

import hashlib
import inspect
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from vecgen.errors import VecgenError
from vecgen.gallery.checks import _BadOption, check_options

#: Options the gallery sets itself.
MANAGED_OPTIONS = {"prompt": "use prompt = \"...\" or prompts = [...]", "seed": "use seeds = [...]",
                   "perceptors": "the gallery loads perceptors once per worker", "warn": "set by the gallery",
                   "quiet": "the gallery shows one progress bar for the batch"}
#: Options that make no sense for a batch of jobs writing into one site.
UNSUPPORTED_OPTIONS = {"snapshots", "every", "checkpoint", "resume", "save_latent", "extra_terms"}
_ENTRY_KEYS = {"function", "prompt", "prompts", "seeds", "name"}
#: The largest seed a job may have (the engine seeds a 64-bit generator).
MAX_SEED = 2**63 - 1
_DEFAULT_KEYS = {"function", "seeds"}


# ============================================================================= functions
def resolve_function(name: str) -> Callable:
    """The API function a spec names (a gallery verb of :data:`vecgen.api.VERBS`); VecgenError if unknown."""
    from vecgen.api import VERBS

    verb = VERBS.get(name)
    if verb is None or not verb.gallery:
        raise VecgenError(f"unknown function {name!r} (available: {', '.join(available_functions())})")
    return verb.function


def available_functions() -> list[str]:
    """The verbs a gallery job can run."""
    from vecgen.api import VERBS

    return [name for name, verb in VERBS.items() if verb.gallery]


def required_options(fn: Callable) -> set[str]:
    """Keyword options of an API function that have no default (e.g. generate's ``generator``)."""
    params = list(inspect.signature(fn).parameters.values())[1:]
    return {p.name for p in params if p.kind == p.KEYWORD_ONLY and p.default is p.empty} - set(MANAGED_OPTIONS)


def function_options(fn: Callable) -> tuple[set[str] | None, dict[str, Any]]:
    """``(option names or None for "anything", defaults)`` of an API function, prompt excluded."""
    sig = inspect.signature(fn)
    params = list(sig.parameters.values())
    if params and params[0].kind in (params[0].POSITIONAL_ONLY, params[0].POSITIONAL_OR_KEYWORD):
        params = params[1:]  # the prompt
    names, defaults, anything = set(), {}, False
    for p in params:
        if p.kind == p.VAR_KEYWORD:
            anything = True
        elif p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD):
            names.add(p.name)
            if p.default is not p.empty:
                defaults[p.name] = p.default
    return (None if anything else names), defaults


def accepts_option(fn: Callable, name: str) -> bool:
    """Whether an API function takes the keyword option ``name`` (or any option, through ``**kwargs``)."""
    names, _ = function_options(fn)
    return names is None or name in names


# ============================================================================= jobs
@dataclass
class Job:
    """One picture to make: ``function(prompt, seed=seed, **options)``."""

    function: str
    prompt: str
    seed: int
    options: dict[str, Any]
    entry: int = 0
    name: str | None = None

    def settings(self) -> dict[str, Any]:
        return {"function": self.function, "prompt": self.prompt, "seed": self.seed, "options": self.options}

    @property
    def id(self) -> str:
        return job_hash(self.function, self.prompt, self.seed, self.options)

    def payload(self) -> dict[str, Any]:
        """What an executor needs (plain data, picklable)."""
        return {"id": self.id, "function": self.function, "prompt": self.prompt, "seed": self.seed,
                "options": dict(self.options)}


def job_hash(function: str, prompt: str, seed: int, options: dict[str, Any]) -> str:
    """Stable id of a job's resolved settings (16 hex digits of a SHA-256)."""
    data = json.dumps({"function": function, "prompt": prompt, "seed": seed, "options": options},
                      sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(data.encode("utf-8")).hexdigest()[:16]


@dataclass
class Spec:
    path: str
    title: str
    jobs: list[Job] = field(default_factory=list)
    duplicates: int = 0


# ============================================================================= parsing
class _Where:
    """Line numbers for messages about a parsed TOML document (tomllib keeps none)."""

    _HEADER = re.compile(r"^\s*\[(\[)?\s*([A-Za-z0-9_.\"' -]+?)\s*\]?\]\s*(#.*)?$")

    def __init__(self, name: str, text: str) -> None:
        self.name = name
        self.lines = text.splitlines()

    def _block(self, table: str | None, index: int | None) -> tuple[int, int]:
        """Line range (0-based, end exclusive) of ``[table]``, the ``index``-th ``[[table]]``, or the top."""
        start, seen = (0 if table is None else None), -1
        for i, line in enumerate(self.lines):
            m = self._HEADER.match(line)
            if not m:
                continue
            if start is not None:
                return start, i
            name = m.group(2).strip("\"' ")
            if name == table and (index is None) == (m.group(1) is None):
                seen += 1
                if index is None or seen == index:
                    start = i + 1
        return (start, len(self.lines)) if start is not None else (0, 0)

    def line(self, table: str | None = None, index: int | None = None, key: str | None = None) -> int | None:
        lo, hi = self._block(table, index)
        if key is None:
            return lo if hi > 0 and table is not None else None  # the header's 1-based number
        pat = re.compile(rf"^\s*(?:{re.escape(key)}|\"{re.escape(key)}\"|'{re.escape(key)}')\s*=")
        for i in range(lo, hi):
            if pat.match(self.lines[i]):
                return i + 1
        return None

    def error(self, msg: str, table: str | None = None, index: int | None = None, key: str | None = None):
        n = self.line(table, index, key)
        return VecgenError(f"spec {self.name}, line {n}: {msg}" if n else f"spec {self.name}: {msg}")


def load_spec(path: str | Path) -> Spec:
    """Read and validate a gallery spec file -> :class:`Spec` (every problem is a one-line VecgenError)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise VecgenError(f"spec {path}: no such file") from None
    except IsADirectoryError:
        raise VecgenError(f"spec {path}: is a folder, not a TOML file") from None
    except UnicodeDecodeError:
        raise VecgenError(f"spec {path}: not UTF-8 text") from None
    except OSError as e:
        raise VecgenError(f"spec {path}: cannot read ({e.strerror})") from None
    return parse_spec(text, str(path))


def _load_toml(text: str, name: str) -> dict[str, Any]:
    """``tomllib.loads`` with its errors as one-line VecgenErrors that name the line."""
    import tomllib

    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        msg = str(e)
        m = re.search(r"\s*\(at line (\d+), column (\d+)\)\s*$", msg)
        if m:
            raise VecgenError(f"spec {name}, line {m.group(1)}: invalid TOML: {msg[:m.start()]} "
                              f"(column {m.group(2)})") from None
        m = re.search(r"\(at end of document\)", msg)
        n = len(text.splitlines()) or 1
        raise VecgenError(f"spec {name}, line {n}: invalid TOML: {msg.replace(m.group(0), '').strip() if m else msg}") \
            from None


def parse_spec(text: str, name: str = "<spec>") -> Spec:
    """Parse and validate spec text; see :mod:`vecgen.gallery` for the format."""
    data = _load_toml(text, name)
    where = _Where(name, text)
    for key in data:
        if key not in ("title", "defaults", "entry"):
            raise where.error(f"unknown top-level key {key!r} (expected title, [defaults] and [[entry]] tables)",
                              key=key)
    title = data.get("title", Path(name).stem if name != "<spec>" else "vecgen gallery")
    if not isinstance(title, str):
        raise where.error("title must be a string", key="title")
    defaults = data.get("defaults", {})
    if not isinstance(defaults, dict):
        raise where.error("defaults must be a table: [defaults]", key="defaults")
    entries = data.get("entry", [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise where.error("entry must be a list of tables: [[entry]]", key="entry")
    if not entries:
        raise where.error("no [[entry]] tables: add at least one with a prompt")
    for key in ("prompt", "prompts"):
        if key in defaults:
            raise where.error(f"{key} belongs in [[entry]] tables, not [defaults]", "defaults", None, key)

    default_function = defaults.get("function", "draw")
    if not isinstance(default_function, str):
        raise where.error("function must be a string, e.g. \"draw\"", "defaults", None, "function")
    default_seeds = _seeds(defaults["seeds"], where, "defaults", None) if "seeds" in defaults else [0]

    # Resolve each entry's function first: [defaults] options must fit at least one of them.
    functions = []
    for i, entry in enumerate(entries):
        fname = entry.get("function", default_function)
        if not isinstance(fname, str):
            raise where.error("function must be a string, e.g. \"draw\"", "entry", i, "function")
        try:
            fn = resolve_function(fname)
        except VecgenError as e:
            raise where.error(f"[[entry]] #{i + 1}: {e}", "entry", i, "function" if "function" in entry else None) \
                from None
        functions.append((fname, fn))
    default_opts = {k: v for k, v in defaults.items() if k not in _DEFAULT_KEYS}
    for key in default_opts:
        _check_option_name(key, where, "defaults", None)
        if not any(accepts_option(fn, key) for _, fn in functions):
            names = sorted({f for f, _ in functions})
            raise where.error(f"[defaults]: unknown option {key!r} for {', '.join(names)}", "defaults", None, key)

    spec = Spec(path=name, title=title)
    seen: set[str] = set()
    several = len({f for f, _ in functions}) > 1
    for i, (entry, (fname, fn)) in enumerate(zip(entries, functions)):
        prompts = _prompts(entry, where, i)
        seeds = _seeds(entry["seeds"], where, "entry", i) if "seeds" in entry else default_seeds
        label = entry.get("name")
        if label is not None and not isinstance(label, str):
            raise where.error(f"[[entry]] #{i + 1}: name must be a string", "entry", i, "name")
        opts = _entry_options(entry, where, i, fname, fn, default_opts, several)
        for pr in prompts:
            for seed in seeds:
                job = Job(fname, pr, seed, opts, entry=i, name=label)
                if job.id in seen:
                    spec.duplicates += 1
                    continue
                seen.add(job.id)
                spec.jobs.append(job)
    return spec


def _prompts(entry: dict[str, Any], where: _Where, i: int) -> list[str]:
    """The checked prompts of the ``i``-th entry (``prompt = "..."`` or ``prompts = [...]``)."""
    from vecgen.prompts import parse_prompts

    if "prompt" in entry and "prompts" in entry:
        raise where.error(f"[[entry]] #{i + 1}: give prompt or prompts, not both", "entry", i, "prompts")
    if "prompt" in entry:
        prompts = [entry["prompt"]]
        pkey = "prompt"
    elif "prompts" in entry:
        prompts = entry["prompts"]
        pkey = "prompts"
        if not isinstance(prompts, list) or not prompts:
            raise where.error(f"[[entry]] #{i + 1}: prompts must be a non-empty list of strings", "entry", i,
                              "prompts")
    else:
        raise where.error(f"[[entry]] #{i + 1}: no prompt (add prompt = \"...\" or prompts = [...])", "entry", i)
    for pr in prompts:
        if not isinstance(pr, str):
            raise where.error(f"[[entry]] #{i + 1}: prompts must be strings, got {pr!r}", "entry", i, pkey)
        try:
            parse_prompts(pr)
        except VecgenError as e:
            raise where.error(f"[[entry]] #{i + 1}: {e}", "entry", i, pkey) from None
    return prompts


def _entry_options(entry: dict[str, Any], where: _Where, i: int, fname: str, fn: Callable,
                   default_opts: dict[str, Any], several_functions: bool = False) -> dict[str, Any]:
    """The ``i``-th entry's options for ``fn``: the [defaults] it takes, then the entry's own, sorted by name.

    Every value is checked as the API would check it (:func:`check_options`), so a bad value is a spec
    error naming its line, not a failed job."""
    names, _ = function_options(fn)
    opts = {k: v for k, v in default_opts.items() if names is None or k in names}
    for key, value in entry.items():
        if key in _ENTRY_KEYS:
            continue
        _check_option_name(key, where, "entry", i)
        if names is not None and key not in names:
            raise where.error(f"[[entry]] #{i + 1}: unknown option {key!r} for {fname} "
                              f"(options: {', '.join(sorted(names - set(MANAGED_OPTIONS) - UNSUPPORTED_OPTIONS))})",
                              "entry", i, key)
        opts[key] = value
    missing = sorted(required_options(fn) - set(opts))
    if missing:
        raise where.error(f"[[entry]] #{i + 1}: {fname} needs option {missing[0]!r}", "entry", i)
    # File order: the [defaults] this entry inherits, then its own options.
    order = [k for k in default_opts if k in opts and k not in entry] + [k for k in entry if k in opts]
    try:
        check_options(fname, fn, opts, order)
    except _BadOption as bad:
        if bad.key in entry:
            raise where.error(f"[[entry]] #{i + 1}: {bad.message}", "entry", i, bad.key) from None
        where_used = f" (for {fname} in [[entry]] #{i + 1})" if several_functions else ""
        raise where.error(f"[defaults]: {bad.message}{where_used}", "defaults", None, bad.key) from None
    return dict(sorted(opts.items()))


def _label(table: str, index: int | None) -> str:
    """How messages name a table: ``[defaults]`` or ``[[entry]] #N``."""
    return "[defaults]" if table == "defaults" else f"[[entry]] #{(index or 0) + 1}"


def _check_option_name(key: str, where: _Where, table: str, index: int | None) -> None:
    label = _label(table, index)
    if key in MANAGED_OPTIONS:
        raise where.error(f"{label}: option {key!r} is not allowed here ({MANAGED_OPTIONS[key]})", table, index, key)
    if key in UNSUPPORTED_OPTIONS:
        raise where.error(f"{label}: option {key!r} is not supported in a gallery (each job writes only its "
                          f"final picture)", table, index, key)


def _seeds(value: Any, where: _Where, table: str, index: int | None) -> list[int]:
    vals = value if isinstance(value, list) else [value]
    bad = [v for v in vals if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= MAX_SEED]
    if not vals or bad:
        got = f", got {bad[0]!r}" if bad else ""
        raise where.error(f"{_label(table, index)}: seeds must be a non-empty list of whole numbers from 0 to "
                          f"2**63-1, e.g. seeds = [0, 1]{got}", table, index, "seeds")
    return list(dict.fromkeys(vals))
