"""Fuzz every option of every verb, driven by the registry and the configs (issue 29).

Each numeric option (int, float, size, grid, width kinds, and object options with a
number default such as classify3d's ``--views``) at 0, -1, NaN, inf and 1e30 (and
whole-number ones at 10**30); each path option (image, svg, mesh, file, folder and
output kinds, and ``-o``) at a folder, a missing file, a read-only place (an output
under /proc, where nobody can create files; an input copied into a folder without
write permission) and a file of another kind (a PNG where a mesh or an SVG goes,
text where a picture, a model or a checkpoint goes, an existing file where a folder
or a cache goes). Each case is the verb's cheapest valid command line (:func:`_base`,
plus ``--snapshots`` into the case's folder) with the one hostile value, run through
the real CLI; ``render`` (a tool) is fuzzed from its parser. A new option of a config
is fuzzed without a change here; a new verb needs its line in :func:`_base` (a test
says so), and an option that applies only with others its line in :func:`_context`.

Every case must end in exit 0, 2 or 130; exit 2 is one ``vecgen: error:`` line
(warnings aside) and leaves every file as it was; no case writes beside its
inputs or over a file of another kind given to a cache or state option; each is
bounded in time (:data:`CASE_LIMIT_S`) and memory (an address-space limit
while the fuzz runs, and the peak resident size).
"""

from __future__ import annotations

import os
import resource
import shutil
import stat
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import TINY, small_stylegan2
from vecgen.api import VERBS
from vecgen.cli import main

#: Numbers every numeric option is given (whole-number options also 10**30 in digits, which their parser
#: reads: it reaches the option's own limit, where "1e30" stops at the parser).
NUMBERS = ("0", "-1", "nan", "inf", "1e30")
HUGE = "1" + "0" * 30
#: What a path option is given instead of a good file.
PLACES = ("folder", "missing", "read-only", "other-kind")
NUMERIC_KINDS = frozenset({"int", "float", "size", "grid", "width"})
INPUT_KINDS = frozenset({"image", "svg", "mesh", "file", "folder"})
#: A case that takes longer is a bug (a refusal is milliseconds; the base runs take about a second).
CASE_LIMIT_S = 60.0
#: Extra address space the fuzz may take over what the process holds when it starts.
EXTRA_AS = 6 * 2**30
#: A place nobody can create files in (not even root): /proc refuses new entries.
READ_ONLY = Path("/proc/vecgen-fuzz")
#: Output options that hold a cache or resumable state: a file of another kind there is never touched.
KEEP_FOREIGN = frozenset({"checkpoint", "global_cache", "snapshots", "save_latent"})
#: The suffix each output option writes (``-o`` is the verb's first output suffix).
OUT_SUFFIX = {"checkpoint": ".pt", "save_latent": ".pt", "global_cache": ".safetensors", "turntable": ".gif"}


# ----------------------------------------------------------------------------- inputs
def _inputs(root: Path) -> dict[str, str]:
    """The good input files every base command line reads."""
    root.mkdir()
    yy, xx = np.mgrid[0:32, 0:32]
    pic = np.stack([xx * 8, yy * 8, (xx + yy) * 4], -1).astype(np.uint8)
    Image.fromarray(pic).save(root / "photo.png")
    (root / "photos").mkdir()
    Image.fromarray(pic[::-1]).save(root / "photos" / "a.png")
    (root / "tet.obj").write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nv 0 0 1\nf 1 3 2\nf 1 2 4\nf 2 3 4\nf 1 4 3\n")
    rng = np.random.default_rng(0)
    np.savetxt(root / "cloud.xyz", rng.uniform(-1, 1, (64, 3)))
    small_stylegan2().save(root / "sg2.pt")
    files = {
        "photo": str(root / "photo.png"),
        "photos": str(root / "photos"),
        "mesh": str(root / "tet.obj"),
        "cloud": str(root / "cloud.xyz"),
        "sg2": f"stylegan2:{root / 'sg2.pt'}",
    }
    try:
        import h5py

        with h5py.File(root / "set.h5", "w") as f:
            f["data"] = rng.uniform(-1, 1, (4, 32, 3)).astype(np.float32)
            f["label"] = np.array([[0], [1], [0], [1]], dtype=np.int64)
        (root / "labels.txt").write_text("cube\nsphere\n")
        files.update(h5=str(root / "set.h5"), labels=str(root / "labels.txt"))
    except ImportError:
        pass
    return files


def _base(f: dict[str, str]) -> dict[str, tuple[list[tuple[str, str]], dict[str, str]]]:
    """Each verb's cheapest valid command line: ``([(positional, value)...], {option: value})``."""
    run = {"clip": TINY, "steps": "1", "cutouts": "1", "device": "cpu"}
    return {
        "draw": ([("prompt", "a red circle")], {**run, "size": "32", "strokes": "2"}),
        "paint": ([("prompt", "a red circle")], {**run, "size": "32", "grid": "8"}),
        "generate": ([("prompt", "a red circle")], {**run, "generator": f["sg2"], "samples": "2"}),
        "adapt": (
            [],
            {
                "source": "photo",
                "target": "sketch",
                "generator": f["sg2"],
                "clip": TINY,
                "steps": "1",
                "batch": "1",
                "grid_samples": "1",
                "device": "cpu",
            },
        ),
        "edit": (
            [("photo", f["photo"]), ("prompt", "a red circle")],
            {**run, "generator": f["sg2"], "invert_steps": "1"},
        ),
        "edit-mapper": (
            [("target", "a red circle")],
            {**run, "images": f["photos"], "generator": f["sg2"], "invert_steps": "1", "batch": "1", "hidden": "8"},
        ),
        "style": (
            [("image", f["photo"]), ("prompt", "chain mail")],
            {"clip": TINY, "content_model": TINY, "steps": "1", "work_size": "32", "crops": "1", "crop_size": "16"},
        ),
        "style-train": (
            [("folder", f["photos"]), ("prompt", "chain mail")],
            {
                "clip": TINY,
                "content_model": TINY,
                "steps": "1",
                "batch": "1",
                "crop": "16",
                "work_size": "32",
                "crops": "1",
                "crop_size": "16",
            },
        ),
        "classify3d": (
            [("points", f["cloud"])],
            {"labels": "cube,sphere", "clip": TINY, "size": "16", "views": "1", "mesh_points": "16", "batch": "1"},
        ),
        "classify3d-fit": (
            [("fit", f.get("h5", ""))],
            {
                "labels_file": f.get("labels", ""),
                "clip": TINY,
                "size": "16",
                "views": "1",
                "shots": "1",
                "epochs": "1",
                "batch": "1",
            },
        ),
        "mesh": (
            [("path", f["mesh"]), ("prompt", "a red circle")],
            {**run, "size": "32", "views": "1", "width": "8", "depth": "1"},
        ),
        "vectorize": ([("image", f["photo"])], {"paths": "1", "steps": "1", "work_size": "16", "device": "cpu"}),
        "sketch": ([("image", f["photo"])], {**run, "strokes": "1", "work_size": "16"}),
        "render": ([("input", f["mesh"])], {"size": "32"}),
    }


def _context(f: dict[str, str], case: Path) -> dict[tuple[str, str], dict[str, str | None]]:
    """Options that apply only with other settings, and how the base changes for them (None drops a value):
    without this an option would only ever meet the refusal of its mix with the base."""
    global_method: dict[str, str | None] = {"method": "global", "steps": None, "global_samples": "1"}
    return {
        ("edit", "mapper"): {"prompt": None, "steps": None, "cutouts": None},
        ("edit", "alpha"): global_method,
        ("edit", "beta"): global_method,
        ("edit", "global_samples"): {**global_method, "global_samples": "1"},
        ("edit", "global_cache"): global_method,
        ("style", "model"): dict.fromkeys(("prompt", "content_model", "crops", "crop_size", "steps", "work_size")),
        ("classify3d", "labels_file"): {"labels": None},
        ("classify3d", "eval"): {"points": None},
        ("classify3d", "fit"): {"points": None, "output": str(case / "out.safetensors")},
        ("mesh", "frames"): {"turntable": str(case / "turn.gif")},
    }


# ----------------------------------------------------------------------------- the cases
def _render_options() -> list[tuple[str, str]]:
    """``render`` is a tool, not a verb: its options come from its parser (numbers, and its input)."""
    from vecgen.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    out = []
    for a in sub.choices["render"]._actions:
        if a.dest == "input":
            out.append((a.dest, "mesh"))
        elif a.type in (int, float) or a.dest == "size":
            out.append((a.dest, "int" if a.type is int else "float"))
    return out


def options_of(verb: str) -> list[tuple[str, str]]:
    """``(option, kind)`` of every option of ``verb`` the fuzz varies (numbers and paths), and ``-o``."""
    if verb == "render":
        return [*_render_options(), ("output", "output")]
    out = []
    for name, meta, default in VERBS[verb].config.options():
        if not meta.cli:
            continue
        if meta.kind in NUMERIC_KINDS or meta.kind == "object" and isinstance(default, (int, float)):
            out.append((name, "float" if meta.kind == "float" else meta.kind))
        elif meta.kind in INPUT_KINDS or meta.kind == "output":
            out.append((name, meta.kind))
    return [*out, ("output", "output")]


def cases() -> list[tuple[str, str, str, str]]:
    """Every ``(verb, option, kind, value)``."""
    out = []
    for verb in [*VERBS, "render"]:
        for name, kind in options_of(verb):
            values = PLACES if kind in INPUT_KINDS or kind == "output" else NUMBERS
            values += (HUGE,) if kind in ("int", "size", "grid", "object") else ()
            out += [(verb, name, kind, v) for v in values]
    return out


def _flag(verb: str, name: str) -> str:
    if verb == "render":
        return "--" + name.replace("_", "-")
    meta = VERBS[verb].config.option_of(name)
    return meta.flag_name(name) if meta is not None else "--" + name.replace("_", "-")


def _suffix(verb: str, name: str, kind: str) -> str:
    if name == "output":
        return ".png" if verb == "render" else VERBS[verb].outputs[0]
    if name == "snapshots" or kind == "folder":
        return ""
    if kind == "output":
        return OUT_SUFFIX.get(name, ".png")
    return {"image": ".png", "svg": ".svg", "mesh": ".obj"}.get(kind, ".txt" if "labels" in name else ".safetensors")


def hostile_path(case: Path, verb: str, name: str, kind: str, place: str, good: str | None) -> tuple[str, Path | None]:
    """The hostile path for ``place`` (made inside ``case``) and the file of another kind it made, if any."""
    suffix = _suffix(verb, name, kind)
    if place == "folder":
        (case / "a-folder").mkdir()
        return str(case / "a-folder"), None
    if place == "missing":
        return str(case / ("no-folder" if kind == "output" else "") / f"missing{suffix}"), None
    if place == "read-only":
        if kind == "output":
            return str(READ_ONLY / f"x{suffix}"), None
        ro = case / "read-only"
        ro.mkdir()
        src = Path(good) if good else None
        target = ro / (src.name if src else f"x{suffix}")
        if src is not None and src.is_dir():
            shutil.copytree(src, target)
        elif src is not None and src.exists():
            shutil.copy(src, target)
        else:
            target.write_text("x\n")
        for p in [*target.rglob("*"), target] if target.is_dir() else [target]:
            p.chmod(stat.S_IREAD | (stat.S_IEXEC if p.is_dir() else 0))
        ro.chmod(stat.S_IREAD | stat.S_IEXEC)
        return str(target), None
    # a file of another kind
    other = case / f"precious{suffix or '.txt'}"
    if kind == "mesh" or kind == "svg" or (kind == "file" and "labels" in name):
        Image.new("RGB", (8, 8), (200, 30, 30)).save(other, format="PNG")  # a picture where text or a mesh goes
    else:
        other.write_text("someone's own file, not vecgen's\n")
    return str(other), other


def argv_for(files: dict[str, str], case: Path, verb: str, name: str, kind: str, value: str):
    """The command line of one case, and the file of another kind it hands over (if any)."""
    positionals, flags = _base(files)[verb]
    positionals, flags = list(positionals), dict(flags)
    foreign = None
    out = str(case / f"out{_suffix(verb, 'output', 'output')}")
    if verb != "render" and VERBS[verb].config.option_of("snapshots") is not None:
        flags["snapshots"] = str(case / "snaps")  # so that a refusal after the folder was made shows
    for key, v in _context(files, case).get((verb, name), {}).items():
        if key == "output":
            out = str(v)
        elif key in dict(positionals):
            positionals = [(n, x) for n, x in positionals if n != key]
        elif v is None:
            flags.pop(key, None)
        else:
            flags[key] = v
    if value in PLACES:
        good = dict(positionals).get(name, flags.get(name))
        value, foreign = hostile_path(case, verb, name, kind, value, good)
    if name == "output":
        out = value
    elif name in dict(positionals):
        positionals = [(n, value if n == name else v) for n, v in positionals]
    else:
        flags[name] = value
    argv = [verb, *(v for _, v in positionals)]
    for n, v in flags.items():
        argv += [_flag(verb, n), v] if not v.startswith("-") else [f"{_flag(verb, n)}={v}"]
    if verb != "render" and VERBS[verb].config.option_of("quiet") is not None:
        argv.append("-q")
    return [*argv, "-o", out], foreign


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.lstat().st_size, p.lstat().st_mtime_ns) for p in root.rglob("*")}


def _unlock(root: Path) -> None:
    for p in [root, *root.rglob("*")]:
        if p.is_dir() and not p.is_symlink():
            p.chmod(0o755)


# ----------------------------------------------------------------------------- the test
def test_every_verb_has_a_base_command_line():
    """A new verb must say how it runs cheaply; its options are then fuzzed from its config."""
    missing = set(VERBS) - set(_base({k: "x" for k in ("photo", "photos", "mesh", "cloud", "sg2")}))
    assert not missing, f"add the cheapest command line of {sorted(missing)} to BASE in {__file__}"
    names = {(verb, name) for verb, name, _, _ in cases()}
    assert ("mesh", "frames") in names and ("edit", "global_cache") in names and ("render", "frames") in names
    assert ("style", "crop_size") in names and ("classify3d", "views") in names  # object options with numbers


@pytest.mark.slow  # about 1,000 cases; a few minutes on one core
def test_every_option_of_every_verb_at_hostile_values(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("VECGEN_CACHE", str(tmp_path / "cache"))  # edit --method global's default cache
    files = _inputs(tmp_path / "inputs")
    inputs_before = _tree(tmp_path / "inputs")
    all_cases = [c for c in cases() if c[0] != "classify3d-fit" or "h5" in files]
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    vm = int(next(ln.split()[1] for ln in open("/proc/self/status") if ln.startswith("VmSize:"))) * 1024
    resource.setrlimit(resource.RLIMIT_AS, (vm + EXTRA_AS, hard))
    failures, slowest, codes = [], [], {0: 0, 2: 0, 130: 0}
    try:
        for i, (verb, name, kind, value) in enumerate(all_cases):
            case = tmp_path / "cases" / str(i)
            case.mkdir(parents=True)
            argv, foreign = argv_for(files, case, verb, name, kind, value)
            kept = foreign.read_bytes() if foreign is not None else None
            before = _tree(case)
            t0 = time.perf_counter()
            code = main(argv)
            took = time.perf_counter() - t0
            err = capsys.readouterr().err
            slowest.append((took, verb, name, value))
            where = f"vecgen {' '.join(argv)} -> exit {code}: {err.strip()[:300]}"
            lines = [ln for ln in err.strip().splitlines() if not ln.startswith("vecgen: warning:")]
            if code not in codes:
                failures.append(where)
            elif "internal error" in err or "Traceback" in err:
                failures.append(where)
            elif code == 2 and (len(lines) != 1 or not lines[0].startswith("vecgen: error: ")):
                failures.append(f"not one line: {where}")
            elif code == 2 and _tree(case) != before:
                failures.append(f"wrote after refusing: {where}")
            elif kept is not None and name in KEEP_FOREIGN and foreign.read_bytes() != kept:
                failures.append(f"overwrote a file of another kind: {where}")
            elif took > CASE_LIMIT_S:
                failures.append(f"took {took:.0f} s: {where}")
            elif _tree(tmp_path / "inputs") != inputs_before:
                failures.append(f"wrote beside the inputs: {where}")
                inputs_before = _tree(tmp_path / "inputs")
            codes[code] = codes.get(code, 0) + 1
            _unlock(case)
            shutil.rmtree(case)
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    slowest.sort(reverse=True)
    summary = f"{len(all_cases)} cases, exits {codes}, slowest {[(round(t, 1), *r) for t, *r in slowest[:5]]}"
    summary += f", peak RSS {peak / 2**30:.2f} GiB, total {sum(t for t, *_ in slowest):.0f} s"
    print(summary)
    assert not failures, f"{len(failures)} of {summary}:\n" + "\n".join(failures)
    assert codes[2] > len(all_cases) // 3 and codes[0] > 10  # the fuzz reached both refusals and real runs
    assert peak < vm + EXTRA_AS


if os.environ.get("VECGEN_FUZZ_ONLY"):  # VECGEN_FUZZ_ONLY=mesh: fuzz one verb (while fixing it)
    _all = cases

    def cases() -> list[tuple[str, str, str, str]]:  # type: ignore[no-redef]
        only = set(os.environ["VECGEN_FUZZ_ONLY"].split(","))
        return [c for c in _all() if c[0] in only]
