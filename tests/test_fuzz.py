"""Fuzz: random option values and random bytes as SVG/TOML/PNG/checkpoint files, fed to every command.

Each command must end in exit code 0, 2 or 130 with no "internal error" and no
traceback, whatever it is given. The run is bounded in time and reproducible
(a fixed seed); a failure prints the command line that caused it.
"""

from __future__ import annotations

import random
import struct
import time
import zlib
from pathlib import Path

import pytest

from conftest import TINY
from vecgen.cli import main

BUDGET_S = 90.0
SHARED = Path(__file__).resolve().parents[2] / "shared"


def _png(w: int, h: int, payload: bytes = b"") -> bytes:
    """A minimal PNG (optionally corrupted by ``payload`` inside the data)."""
    raw = b"".join(b"\x00" + bytes([(x * 7 + y) % 256 for x in range(w * 3)]) for y in range(h))

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw) + payload)
        + chunk(b"IEND", b"")
    )


def _files(tmp: Path, rng: random.Random) -> dict[str, list[str]]:
    """Hostile files of every kind a command reads, plus a few good ones."""

    def write(name: str, data: bytes) -> str:
        p = tmp / name
        p.write_bytes(data)
        return str(p)

    junk = lambda n: bytes(rng.randrange(256) for _ in range(n))  # noqa: E731
    good_svg = (
        '<svg xmlns="http://www.w3.org/2000/svg" width="32" height="32"><path d="M 1 1 L 30 30" stroke="red"/></svg>'
    )
    out = {
        "svg": [
            write("junk.svg", junk(300)),
            write("good.svg", good_svg.encode()),
            write("nan.svg", good_svg.replace('width="32"', 'width="NaN"').encode()),
            write(
                "deep.svg",
                (
                    b"<svg xmlns='http://www.w3.org/2000/svg' width='9' height='9'>"
                    + b"<g>" * 3000
                    + b"</g>" * 3000
                    + b"</svg>"
                ),
            ),
            write("entity.svg", b'<?xml version="1.0"?><!DOCTYPE s [<!ENTITY a "aaaa">]><svg>&a;</svg>'),
            write("badpath.svg", good_svg.replace("M 1 1 L 30 30", "M 1 x C 3").encode()),
            str(tmp / "missing.svg"),
            str(tmp),
        ],
        "toml": [
            write("junk.toml", junk(200)),
            write("types.toml", b'steps = "many"\ncutouts = true\n'),
            write("unknown.toml", b"nosuch = 1\n"),
            write("png.toml", _png(4, 4)),
            write("good.toml", b"steps = 1\n"),
            write("utf.toml", b"\xff\xfe\x00s = 1"),
        ],
        "png": [
            write("junk.png", junk(500)),
            write("good.png", _png(16, 12)),
            write("broken.png", _png(16, 12, junk(40))),
            write("empty.png", b""),
            str(tmp / "missing.png"),
        ],
        "pt": [
            write("junk.pt", junk(400)),
            write("empty.pt", b""),
            write("zip.pt", b"PK\x03\x04" + junk(100)),
            str(tmp / "missing.pt"),
            "/etc/passwd",
        ],
    }
    return out


def _value(rng: random.Random, kind: str, files: dict[str, list[str]]) -> str:
    pools = {
        "int": ["0", "1", "2", "-1", "-7", "3.5", "1e3", "abc", "", "99999999999999999999999", "nan", "true"],
        "float": ["0", "0.5", "-1", "nan", "inf", "-inf", "1e308", "abc", "", "2", "0x10"],
        "size": ["32", "48x32", "0", "-5", "abc", "32x", "x32", "99999", "4097x2", "1e2", ""],
        "text": ["a red circle", "", " ", "a:1 | b:-1", "x:0", "|||", "é€😀", "a:abc:1", "a:-1", "<b>&amp;"],
        "clip": [
            TINY,
            f"{TINY}:0.5",
            "",
            "nosuch",
            "mini-vit:abc",
            "mini-vit:0",
            f"{TINY}@x",
            ",",
            "@",
            f"mini-vit@{files['pt'][0]}",
        ],
        "device": ["cpu", "auto", "cuda", "mps", "tpu", "cuda:99", ""],
        "choice": ["auto", "crops", "zoom", "blobs", "strokes", "fft", "dwt", "pixels", "nosuch", ""],
        "grid": ["8", "8x6", "0", "-2", "abc", "9999", "4x0"],
        "colour": ["white", "#ff0000", "#12", "red", "", "black"],
        "width": ["1,8", "8,1", "-1,2", "a,b", "3", ""],
        "generator": [
            f"taef2:{files['pt'][0]}",
            "stylegan2:/etc/passwd",
            f"script:{files['pt'][1]}",
            "nosuch:x",
            "taef2:" + str(SHARED / "weights/taef2/taef2_decoder.pth") + ":32x32",
            "",
        ],
    }
    if kind in files:
        return rng.choice(files[kind])
    return rng.choice(pools[kind])


# command -> (fixed leading arguments, {flag: kind})
COMMON = {
    "--steps": "int",
    "--size": "size",
    "--cutouts": "int",
    "--seed": "int",
    "--device": "device",
    "--views": "choice",
    "--clip": "clip",
    "--config": "toml",
    "--image-prompt": "png",
    "--resume": "pt",
    "--every": "int",
}
COMMANDS = {
    "draw": (
        ["draw"],
        {
            **COMMON,
            "--strokes": "int",
            "--segments": "int",
            "--width": "width",
            "--shapes": "choice",
            "--init": "svg",
            "--background": "colour",
        },
    ),
    "paint": (
        ["paint"],
        {
            **COMMON,
            "--param": "choice",
            "--grid": "grid",
            "--palette": "int",
            "--lr": "float",
            "--decay": "float",
            "--levels": "int",
            "--init": "png",
            "--contrast": "float",
        },
    ),
    "generate": (
        ["generate"],
        {
            **COMMON,
            "--generator": "generator",
            "--space": "choice",
            "--l2": "float",
            "--truncation": "float",
            "--lr": "float",
            "--samples": "int",
            "--top": "int",
        },
    ),
    "adapt": (
        ["adapt", "--source", "photo", "--target", "sketch"],
        {
            "--generator": "generator",
            "--steps": "int",
            "--lr": "float",
            "--batch": "int",
            "--seed": "int",
            "--layers-k": "int",
            "--clip": "clip",
            "--grid-samples": "int",
            "--config": "toml",
        },
    ),
    "render": (["render"], {"--size": "size"}),
    "search": (["search"], {"-k": "int", "--clip": "clip"}),
}
SAFE = {
    "--steps": "1",
    "--size": "32",
    "--cutouts": "1",
    "--clip": TINY,
    "--device": "cpu",
    "--strokes": "4",
    "--batch": "1",
    "--samples": "2",
    "--top": "1",
    "--grid-samples": "1",
}


def _argv(rng: random.Random, name: str, tmp: Path, files) -> list[str]:
    lead, flags = COMMANDS[name]
    argv = list(lead)
    if name in ("draw", "paint", "generate"):
        argv.append(_value(rng, "text", files))
    if name == "render":
        argv.append(_value(rng, "svg", files))
    if name == "search":
        argv += [str(tmp), _value(rng, "text", files)]
    chosen = rng.sample(sorted(flags), k=min(len(flags), rng.randint(1, 4)))
    for flag in flags:  # keep the run cheap where the fuzz leaves a flag alone
        if flag in chosen:
            argv += [flag, _value(rng, flags[flag], files)]
        elif flag in SAFE:
            argv += [flag, SAFE[flag]]
    suffix = {"adapt": ".pt", "draw": ".svg"}.get(name, ".png")
    if name not in ("search",):
        argv += ["-o", str(tmp / f"out{suffix}")]
    if name in ("draw", "paint", "generate", "adapt"):
        argv.append("-q")
    return argv


@pytest.mark.slow  # time-boxed fuzzing (up to BUDGET_S = 90 s in all)
@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_fuzzed_commands_end_in_0_2_or_130(name, tmp_path, capsys):
    rng = random.Random(f"vecgen-fuzz-{name}")
    files = _files(tmp_path, rng)
    t0 = time.perf_counter()
    runs = 0
    while time.perf_counter() - t0 < BUDGET_S / len(COMMANDS) and runs < 40:
        argv = _argv(rng, name, tmp_path, files)
        code = main(argv)
        err = capsys.readouterr().err
        runs += 1
        where = "vecgen " + " ".join(repr(a) for a in argv)
        assert code in (0, 2, 130), f"{where} -> exit {code}: {err}"
        assert "internal error" not in err and "Traceback" not in err, f"{where}: {err}"
        if code == 2:
            lines = [ln for ln in err.strip().splitlines() if not ln.startswith("vecgen: warning:")]
            assert len(lines) == 1 and lines[0].startswith("vecgen: error: "), f"{where}: {err}"
    assert runs >= 5
