"""Byte identity: one tiny run of every verb through the CLI, and the sha256 of every file it writes.

Run before and after a refactor that must change no output byte, and compare::

    python benchmarks/identity.py --json before.json
    python benchmarks/identity.py --json after.json --compare before.json

Needs ../shared (the TAEF2 weights and a mesh); a verb whose input is missing is skipped.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
TINY = ["--clip", "vecgen-tiny-vit@random", "--seed", "3"]
TAEF2 = f"taef2:{SHARED / 'weights/taef2/taef2_decoder.pth'}"
ENC = f"taef2:{SHARED / 'weights/taef2/taef2_encoder.pth'}"


#: Settings that measure the run (wall-clock seconds), not what it made: left out of the hash.
TIMING = ("seconds", "inversion_s")


def _drop_timing(value):
    if isinstance(value, dict):
        return {k: _drop_timing(v) for k, v in value.items() if k not in TIMING}
    if isinstance(value, list):
        return [_drop_timing(v) for v in value]
    return value


def digest(path: Path) -> str:
    """sha256 of a file's bytes; for PNG and JSON files with a wall-clock ``seconds`` inside, of the file
    with that one value removed (pixels and every other metadata byte still count)."""
    data = path.read_bytes()
    if path.suffix == ".json":
        data = json.dumps(_drop_timing(json.loads(data)), sort_keys=True).encode()
    elif path.suffix == ".png" and b"seconds" in data:
        from PIL import Image

        with Image.open(path) as im:
            text = {k: v for k, v in im.text.items()}
            if "settings" in text:
                text["settings"] = json.dumps(_drop_timing(json.loads(text["settings"])), sort_keys=True)
            data = im.tobytes() + json.dumps(text, sort_keys=True).encode()
    return hashlib.sha256(data).hexdigest()[:16]


def cases(tmp: Path) -> dict[str, list[str]]:
    from PIL import Image

    photo = tmp / "photo.png"
    Image.new("RGB", (80, 64), (200, 120, 40)).save(photo)
    (tmp / "cloud.xyz").write_text("".join(f"{i % 7 / 7:.3f} {i % 5 / 5:.3f} {i % 3 / 3:.3f}\n" for i in range(200)))
    mesh = SHARED / "meshes" / "teapot.obj"
    return {
        "draw": ["draw", "a red circle", "--steps", "3", "--size", "64", "--strokes", "4", *TINY, "-o", "o.svg"],
        "draw-png": ["draw", "a red circle", "--steps", "3", "--size", "64", "--strokes", "4", *TINY, "-o", "o.png"],
        "paint": ["paint", "a sunset", "--steps", "3", "--size", "64", *TINY, "-o", "o.png"],
        "paint-pixels": [
            "paint",
            "a mushroom",
            "--param",
            "pixels",
            "--grid",
            "8x8",
            "--palette",
            "4",
            "--steps",
            "3",
            "--size",
            "64",
            *TINY,
            "-o",
            "o.png",
        ],
        "generate": ["generate", "an apple", "--generator", TAEF2, "--steps", "3", *TINY, "-o", "o.png"],
        "adapt": [
            "adapt",
            "--generator",
            TAEF2,
            "--source",
            "photo",
            "--target",
            "sketch",
            "--steps",
            "2",
            *TINY,
            "-o",
            "o.pt",
        ],
        "edit": [
            "edit",
            str(photo),
            "leopard",
            "--generator",
            TAEF2,
            "--encoder",
            ENC,
            "--steps",
            "2",
            "--invert-steps",
            "2",
            *TINY,
            "-o",
            "o.png",
        ],
        "style": ["style", str(photo), "chain mail", "--steps", "2", "--quality", "draft", *TINY, "-o", "o.png"],
        "mesh": [
            "mesh",
            str(mesh),
            "a red teapot",
            "--steps",
            "2",
            "--size",
            "64",
            "--views",
            "1",
            "--cutouts",
            "1",
            *TINY,
            "-o",
            "o.ply",
        ],
        "classify3d": [
            "classify3d",
            str(tmp / "cloud.xyz"),
            "--labels",
            "cube,sphere",
            "--size",
            "64",
            "--clip",
            "vecgen-tiny-vit@random",
            "--json",
            "-o",
            "o.json",
        ],
        "render": ["render", str(mesh), "-o", "o.png", "--size", "64x64"],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", help="write {case: {file: sha256}} here")
    ap.add_argument("--compare", help="a --json file of an earlier run: exit 1 if any hash differs")
    ap.add_argument("--only", nargs="*", help="case names")
    a = ap.parse_args()
    out: dict[str, dict[str, str]] = {}
    # one fixed folder: input paths are recorded in the settings, so a random temp name would change bytes
    tmp = Path(tempfile.gettempdir()) / "vecgen-identity"
    import fcntl

    lock = open(str(tmp) + ".lock", "w")  # one run at a time uses the folder
    fcntl.flock(lock, fcntl.LOCK_EX)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    if True:
        for name, argv in cases(tmp).items():
            if a.only and name not in a.only:
                continue
            work = tmp / name
            work.mkdir()
            r = subprocess.run(
                [sys.executable, "-m", "vecgen", *argv, "-q"]
                if argv[0] not in ("render", "classify3d")
                else [sys.executable, "-m", "vecgen", *argv],
                cwd=work,
                capture_output=True,
                text=True,
                timeout=600,
            )
            files = {p.name: digest(p) for p in sorted(work.rglob("*")) if p.is_file()}
            out[name] = {"rc": str(r.returncode), **files}
            if r.returncode:
                out[name]["stderr"] = r.stderr.strip().splitlines()[-1] if r.stderr.strip() else ""
            print(
                f"{name:14s} rc={r.returncode} "
                + " ".join(f"{k}={v}" for k, v in files.items())
                + (f"  ({out[name].get('stderr', '')})" if r.returncode else ""),
                flush=True,
            )
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1, sort_keys=True))
    if a.compare:
        before = json.loads(Path(a.compare).read_text())
        bad = [k for k in out if before.get(k) != out[k]]
        print("identical" if not bad else f"DIFFERENT: {', '.join(bad)}")
        return 1 if bad else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
