"""Hostile and odd input: every one is refused in one line with exit code 2 (never an internal error, a
traceback or a raw library warning), and the fixes around it keep good input working."""

import importlib.util
import io
import os
import warnings
from pathlib import Path

import pytest
import torch
from PIL import Image

from conftest import TINY
from vecgen import svg, svg_read
from vecgen.cli import main

ROOT = Path(__file__).resolve().parents[1]
SVG_HEAD = '<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}"{extra}>'


def run_cli(capsys, *argv):
    """Run the CLI; return (exit code, stdout, stderr, warnings raised while it ran)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err, caught


def assert_refused(code, err, needle, caught=()):
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1, err
    assert lines[0].startswith("vecgen: error: "), err
    assert "internal error" not in err and "Traceback" not in err
    assert needle in lines[0], err
    raw = [f"{w.category.__name__}: {w.message}" for w in caught]
    assert not raw, raw
    return lines[0]


def write_svg(path, body, w="10", h="10", extra=""):
    path.write_text(SVG_HEAD.format(w=w, h=h, extra=extra) + body + "</svg>")
    return path


# ----------------------------------------------------------------------------- 1. non-finite SVG numbers
@pytest.mark.parametrize(
    "width,needle",
    [
        ("NaN", "not finite"),
        ("inf", "not finite"),
        ("1e999", "not finite"),
        ("-5", "not positive"),
    ],
)
def test_render_refuses_bad_svg_width(tmp_path, capsys, width, needle):
    f = write_svg(tmp_path / "w.svg", '<rect width="5" height="5"/>', w=width)
    code, _, err, caught = run_cli(capsys, "render", f, "-o", tmp_path / "w.png")
    line = assert_refused(code, err, needle, caught)
    assert "width" in line
    assert not (tmp_path / "w.png").exists()


@pytest.mark.parametrize("view_box", ["0 0 NaN 10", "0 0 10 inf", "0 0 1e999 10", "0 0 1.2.3 4", "0 0 10"])
def test_render_refuses_bad_view_box(tmp_path, capsys, view_box):
    f = tmp_path / "vb.svg"
    f.write_text(f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="{view_box}"><rect width="5" height="5"/></svg>')
    code, _, err, caught = run_cli(capsys, "render", f, "-o", tmp_path / "vb.png")
    assert_refused(code, err, "viewBox", caught)


@pytest.mark.parametrize(
    "body,needle",
    [
        ('<path d="M 1,2 L 3,1e999"/>', "number 1e999 out of range"),
        ('<circle cx="5" cy="5" r="nan"/>', "not finite"),
        ('<g transform="rotate(1e999)"><rect width="5" height="5"/></g>', "transform"),
        (
            '<g transform="scale(1e300)"><g transform="scale(1e300)"><rect width="5" height="5"/></g></g>',
            "out of range after transforms",
        ),
        ('<rect x="1e308" width="1.7e308" height="5"/>', "out of range"),
        ('<rect width="5" height="5" fill="rgb(1.2.3,0,0)"/>', "bad SVG colour"),
        ('<rect width="5" height="5" opacity="inf"/>', "not finite"),
        ('<polyline points="1 2 3 4 5"/>', "odd number of coordinates"),
        ('<polygon points="1 2 3 4 nan 6 1e999 8"/>', "not finite"),
    ],
)
def test_render_refuses_bad_numbers_inside(tmp_path, capsys, body, needle):
    f = write_svg(tmp_path / "n.svg", body)
    code, _, err, caught = run_cli(capsys, "render", f, "-o", tmp_path / "n.png")
    assert_refused(code, err, needle, caught)


# ----------------------------------------------------------------------------- 2. deep and huge SVGs
def test_render_refuses_100000_nested_groups(tmp_path, capsys):
    n = 100_000
    f = write_svg(tmp_path / "deep.svg", "<g>" * n + '<rect width="5" height="5"/>' + "</g>" * n)
    code, _, err, caught = run_cli(capsys, "render", f, "-o", tmp_path / "deep.png")
    assert_refused(code, err, f"deeper than {svg.MAX_SVG_DEPTH} levels", caught)


def test_nesting_up_to_the_limit_renders(tmp_path, capsys):
    n = svg.MAX_SVG_DEPTH - 2  # <svg>, the groups, then the <rect>: exactly MAX_SVG_DEPTH levels
    f = write_svg(tmp_path / "ok.svg", '<g fill="red">' + "<g>" * (n - 1) + '<rect width="5" height="5"/>' + "</g>" * n)
    scene = svg.read_svg(f)
    assert len(scene.paths) == 1 and scene.paths[0].fill[:3].tolist() == [1.0, 0.0, 0.0]
    assert main(["render", str(f), "-o", str(tmp_path / "ok.png")]) == 0
    write_svg(f, "<g>" * (n + 1) + '<rect width="5" height="5"/>' + "</g>" * (n + 1))
    with pytest.raises(svg.VecgenError, match="deeper than"):
        svg.read_svg(f)


def test_walk_keeps_document_order_and_inherited_paint(tmp_path):
    f = write_svg(
        tmp_path / "order.svg",
        '<g fill="red"><rect width="1" height="1"/><g transform="translate(2,0)"><rect width="1" height="1"/>'
        '</g><rect y="2" width="1" height="1" fill="blue"/></g><rect y="4" width="1" height="1"/>',
    )
    scene = svg.read_svg(f)
    assert [p.points[0].tolist() for p in scene.paths] == [[0, 0], [2, 0], [0, 2], [0, 4]]
    assert [p.fill[:3].tolist() for p in scene.paths] == [[1, 0, 0], [1, 0, 0], [0, 0, 1], [0, 0, 0]]


@pytest.mark.parametrize(
    "limit,value,body,needle",
    [
        ("MAX_SVG_PATHS", 10, '<rect width="1" height="1"/>' * 11, "more than 10 paths"),
        ("MAX_SVG_PATHS", 10, '<path d="' + "M 0 0 L 1 1 " * 11 + '"/>', "more than 10 paths"),
        ("MAX_SVG_ELEMENTS", 50, "<g/>" * 50, "more than 50 elements"),
        ("MAX_SVG_POINTS", 100, '<path d="M 0 0' + " L 1 1" * 40 + '"/>', "more than 100 control points"),
    ],
)
def test_render_refuses_too_many_elements_paths_points(tmp_path, capsys, monkeypatch, limit, value, body, needle):
    monkeypatch.setattr(svg_read, limit, value)  # the reader reads its limits from its own module
    f = write_svg(tmp_path / "many.svg", body)
    code, _, err, caught = run_cli(capsys, "render", f, "-o", tmp_path / "many.png")
    assert_refused(code, err, needle, caught)


def test_limits_leave_room_for_what_vecgen_writes():
    assert svg.MAX_SVG_DEPTH == 256 and svg.MAX_SVG_PATHS >= 256 * 256 and svg.MAX_SVG_ELEMENTS > svg.MAX_SVG_PATHS


# ----------------------------------------------------------------------------- 5. path errors quote the file
@pytest.mark.parametrize(
    "d,quoted",
    [
        ("M 1,2 L 3,4 C 1 2 3,4 Z", "2 3,4 Z"),  # C needs 6 numbers: the text around the Z, commas and all
        ("M 1,2 L 3,4   C\n 1,2", "C 1,2"),  # runs out at the end of the data
        ("10,20 L 5 5", "10,20 L"),  # numbers before any command
    ],
)
def test_path_errors_quote_the_original_text(tmp_path, capsys, d, quoted):
    f = write_svg(tmp_path / "d.svg", f'<path d="{d}"/>')
    code, _, err, caught = run_cli(capsys, "render", f, "-o", tmp_path / "d.png")
    line = assert_refused(code, err, "malformed SVG path data", caught)
    shown = line.split(" near ", 1)[1].split("'")[1]
    assert shown == quoted
    assert shown in " ".join(d.split())  # text of the file (whitespace runs shown as one space)


def test_read_then_write_keeps_the_bytes(tmp_path):
    scene = svg.svg_to_scene(
        write_svg(
            tmp_path / "a.svg",
            '<path d="M 1 2 C 3 4 5 6 7 8" stroke="red" fill="none"/><circle cx="5" cy="5" r="3" fill="#00f"/>',
        ).read_text()
    )
    text = svg.scene_to_svg(scene)
    assert svg.scene_to_svg(svg.svg_to_scene(text)) == text


# ----------------------------------------------------------------------------- 3. config files
@pytest.mark.parametrize(
    "body,needle",
    [
        ('steps = "many"\n', "--steps must be a whole number, got 'many'"),
        ("steps = 2.5\n", "--steps must be a whole number"),
        ("steps = true\n", "--steps must be a whole number"),
        ('cutouts = "4"\n', "--cutouts must be a whole number"),
        ('quiet = "yes"\n', "--quiet must be true or false"),
        ("clip = 3\n", "--clip must be a string"),
        ('views = "sideways"\n', "--views must be one of auto, crops, zoom"),
        ("snapshots = 3\n", "--snapshots must be a string"),
        ("image-prompt = 3\n", "--image-prompt must be a list of strings"),
        ("size = {w = 3}\n", "--size must be a number, a list of numbers or a string, got a table"),
        ("size = nan\n", "--size must be finite"),
        ("steps = 1979-05-27\n", "--steps must be a whole number"),
    ],
)
def test_config_values_of_the_wrong_type(tmp_path, capsys, body, needle):
    cfg = tmp_path / "c.toml"
    cfg.write_text(body)
    code, _, err, caught = run_cli(capsys, "draw", "a cat", "--config", cfg, "--clip", TINY, "-o", tmp_path / "o.svg")
    assert_refused(code, err, needle, caught)


@pytest.mark.parametrize(
    "verb,body,needle",
    [
        ("paint", "lr = inf\n", "--lr must be finite"),
        ("paint", 'decay = "smooth"\n', "--decay must be a number"),
        ("paint", 'palette = "x"\n', "--palette must be a whole number"),
        ("paint", "contrast = true\n", "--contrast must be a number"),
        ("generate", "truncation = [1]\n", "--truncation must be a number"),
        ("generate", 'init = "nowhere"\n', "--init must be one of random, mean, fusedream"),
    ],
)
def test_config_types_in_other_verbs(tmp_path, capsys, verb, body, needle):
    cfg = tmp_path / "c.toml"
    cfg.write_text(body)
    extra = ["--generator", "taef2"] if verb == "generate" else []
    code, _, err, caught = run_cli(
        capsys, verb, "a cat", "--config", cfg, "--clip", TINY, *extra, "-o", tmp_path / "o.png"
    )
    assert_refused(code, err, needle, caught)


def _png_bytes():
    buf = io.BytesIO()
    Image.new("RGB", (4, 4), "red").save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize(
    "content,needle",
    [
        (bytes(range(256)) * 4, "not a TOML text file"),  # random-looking bytes
        (None, "not a TOML text file"),  # a PNG renamed .toml
        ('clip = "caf\xe9"\n'.encode("latin-1"), "byte 11 is not UTF-8"),
        (b"steps = \x00\n", "Invalid"),  # UTF-8, but not TOML
        (b"a = " + b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b"# " + b"x" * (2 * 1024 * 1024) + b"\n", "not an options file"),
    ],
)
def test_binary_or_broken_config_files(tmp_path, capsys, content, needle):
    cfg = tmp_path / "c.toml"
    cfg.write_bytes(_png_bytes() if content is None else content)
    code, _, err, caught = run_cli(capsys, "draw", "a cat", "--config", cfg, "--clip", TINY, "-o", tmp_path / "o.svg")
    line = assert_refused(code, err, needle, caught)
    assert line.startswith(f"vecgen: error: config {cfg}")


def test_config_of_good_types_still_loads(tmp_path):
    from vecgen.api import VERBS
    from vecgen.cli._common import load_config, option_kinds

    cfg = tmp_path / "ok.toml"
    cfg.write_text(
        'steps = 3\nsize = "40x24"\nwidth = [1, 8]\nquiet = true\nimage-prompt = "a.png"\n'
        'views = "zoom"\nseed = 7\nclip = "x"\n'
    )
    names = {"steps", "size", "width", "quiet", "image_prompt", "views", "seed", "clip"}
    opts = load_config(cfg, names, option_kinds(VERBS["draw"], names))
    assert opts == {
        "steps": 3,
        "size": "40x24",
        "width": [1, 8],
        "quiet": True,
        "image_prompt": ["a.png"],
        "views": "zoom",
        "seed": 7,
        "clip": "x",
    }
    cfg.write_text("size = 32\ncontrast = 2\n")  # an int where the API takes a number or text
    assert load_config(cfg, {"size", "contrast"}, option_kinds(VERBS["paint"], {"size", "contrast"})) == {
        "size": 32,
        "contrast": 2,
    }


# ----------------------------------------------------------------------------- 4. no raw warnings
@pytest.fixture(scope="module")
def big_png(tmp_path_factory):
    """9500x9500 (90 megapixels: over PIL's warning threshold) in about 11 KB."""
    path = tmp_path_factory.mktemp("big") / "big.png"
    Image.new("1", (9500, 9500)).save(path)
    return path


@pytest.mark.parametrize("flag", ["--image-prompt", "--init"])
def test_huge_image_refused_without_pil_warning(tmp_path, capsys, big_png, flag):
    from vecgen.io import MAX_IMAGE_PIXELS

    code, _, err, caught = run_cli(
        capsys,
        "paint",
        "a cat",
        flag,
        big_png,
        "--clip",
        TINY,
        "--steps",
        "1",
        "--size",
        "16",
        "--cutouts",
        "0",
        "-q",
        "-o",
        tmp_path / "o.png",
    )
    line = assert_refused(code, err, "is too large: 9500x9500 = 90.2 megapixels", caught)
    assert f"{MAX_IMAGE_PIXELS / 1e6:.1f} megapixels" in line and "DecompressionBomb" not in err


def test_image_over_twice_pil_limit_is_refused_too(tmp_path):
    from vecgen.errors import VecgenError
    from vecgen.io import open_image

    path = tmp_path / "huge.png"
    Image.new("1", (20000, 10000)).save(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(VecgenError, match="too large: 200.0 megapixels"):
            open_image(path, "init image")


def test_palette_transparency_image_prompt_loads_without_warning(tmp_path):
    from vecgen.io import load_image

    path = tmp_path / "p.png"
    im = Image.new("P", (4, 4), 1)
    im.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    im.save(path, transparency=bytes([0, 128] + [255] * 254))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        x = load_image(path)
    assert x.shape == (1, 3, 4, 4) and x[0, :, 0, 0].tolist() == [0.0, 1.0, 0.0]


def test_pickle_protocol_warning_silenced_on_generator_checkpoint(tmp_path, capsys):
    ckpt = tmp_path / "p3.pt"
    torch.save({"x": torch.zeros(1)}, ckpt, pickle_protocol=3)
    code, _, err, caught = run_cli(
        capsys,
        "generate",
        "x",
        "--generator",
        f"stylegan2:{ckpt}",
        "--clip",
        TINY,
        "--steps",
        "1",
        "-q",
        "-o",
        tmp_path / "o.png",
    )
    assert_refused(code, err, "missing key 'conv1.conv.modulation.weight'", caught)


def test_pickle_protocol_warning_silenced_on_clip_checkpoint(tmp_path):
    import open_clip

    from vecgen.backends.perceptors import load_perceptor
    from vecgen.backends.perceptors.clip import _register_configs

    _register_configs()
    model = open_clip.create_model("vecgen-tiny-vit", pretrained=None)
    ckpt = tmp_path / "tiny.pt"
    torch.save(model.state_dict(), ckpt, pickle_protocol=3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        perceptor = load_perceptor(f"vecgen-tiny-vit@{ckpt}")
    assert not [w for w in caught if "pickle protocol" in str(w.message)]
    assert torch.equal(perceptor.model.positional_embedding, model.positional_embedding)


def test_only_the_protocol_warning_is_silenced(tmp_path):
    """The filter names torch's message: another warning during the load still shows."""
    from vecgen.backends.generators import base

    ckpt = tmp_path / "p3.pt"
    torch.save({"x": torch.zeros(1)}, ckpt, pickle_protocol=3)
    real_load = torch.load

    def noisy_load(*args, **kwargs):
        warnings.warn("something else", UserWarning, stacklevel=2)
        return real_load(*args, **kwargs)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.load = noisy_load
        try:
            base.read_checkpoint(ckpt)
        finally:
            torch.load = real_load
    assert [str(w.message) for w in caught] == ["something else"]


def _load_raster_benchmark():
    spec = importlib.util.spec_from_file_location("raster_bench", ROOT / "benchmarks" / "raster.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_raster_benchmark_profiler_is_quiet(capfd):
    bench = _load_raster_benchmark()
    peak = bench._cpu_peak_mb(lambda: torch.ones(256, 256).sum())
    assert peak >= 0
    with bench._quiet_kineto():  # kineto's lines are dropped, anything else passes
        os.write(2, b"USDT:2026-01-01 00:00:00 1:1 SyncActivityProfilerHandler.cpp:39] profiler_start\n")
        os.write(2, b"ERROR:2026-01-01 00:00:00 1:1 DeviceProperties.cpp:56] gpuGetDeviceCount failed with code 35\n")
        os.write(2, b"a real error\n")
    err = capfd.readouterr().err
    assert "gpuGetDeviceCount" not in err and "profiler_start" not in err and "profiler_stop" not in err
    assert err.strip().splitlines() == ["a real error"]


# ----------------------------------------------------------------------------- 5. messages that say what is wrong
class _NotATensor:  # pickled by reference: torch's weights-only loader refuses it
    pass


def test_generator_file_that_is_not_a_checkpoint(tmp_path, capsys):
    passwd = tmp_path / "passwd"
    passwd.write_text("root:x:0:0:root:/root:/bin/bash\n")
    code, _, err, caught = run_cli(
        capsys,
        "generate",
        "x",
        "--generator",
        f"stylegan2:{passwd}",
        "--clip",
        TINY,
        "--steps",
        "1",
        "-q",
        "-o",
        tmp_path / "o.png",
    )
    line = assert_refused(code, err, "is not a StyleGAN2 checkpoint", caught)
    assert "IndexError" not in line


def test_refused_pickle_says_why_and_how_to_convert(tmp_path, capsys):
    ckpt = tmp_path / "evil.pt"
    torch.save({"g_ema": {"a": torch.zeros(1)}, "obj": _NotATensor()}, ckpt)
    code, _, err, caught = run_cli(
        capsys,
        "generate",
        "x",
        "--generator",
        f"stylegan2:{ckpt}",
        "--clip",
        TINY,
        "--steps",
        "1",
        "-q",
        "-o",
        tmp_path / "o.png",
    )
    line = assert_refused(code, err, "refused for safety", caught)
    assert "_NotATensor" in line and "safetensors" in line and "state_dict" in line
    assert "weights_only" not in line and "False" not in line


@pytest.mark.parametrize(
    "kind,content,needle",
    [
        ("script", b"not a zip", "is not a TorchScript generator"),
        ("script", None, "is a torch.save checkpoint, not a TorchScript module"),
        ("stylegan2", b"", "the file is empty"),
        ("taef2", b"PK\x03\x04truncated", "damaged or truncated"),
    ],
)
def test_generator_file_messages(tmp_path, kind, content, needle):
    from vecgen.backends.generators import load_generator
    from vecgen.errors import VecgenError

    path = tmp_path / "g.pt"
    if content is None:
        torch.save({"x": torch.zeros(1)}, path)
    else:
        path.write_bytes(content)
    with pytest.raises(VecgenError) as exc:
        load_generator(f"{kind}:{path}" + (":4" if kind == "script" else ""))
    assert needle in str(exc.value) and "\n" not in str(exc.value)


def test_generator_safetensors_state_dict_loads(tmp_path):
    from safetensors.torch import save_file

    from vecgen.backends.generators import TAEF2Decoder, load_generator

    dec = TAEF2Decoder()
    path = tmp_path / "dec.safetensors"
    save_file({k: v.contiguous() for k, v in dec.state_dict().items()}, str(path))
    gen = load_generator(f"taef2:{path}:16")
    assert torch.equal(gen.decoder[1].weight, dec[1].weight)


@pytest.fixture(scope="module")
def clip_files(tmp_path_factory):
    import open_clip
    from safetensors.torch import save_file

    from vecgen.backends.perceptors.clip import _register_configs

    _register_configs()
    folder = tmp_path_factory.mktemp("clip")
    save_file({"wrong.key": torch.zeros(2)}, str(folder / "wrong.safetensors"))
    other = open_clip.create_model("vecgen-tiny-vit", pretrained=None)  # another model's checkpoint
    torch.save(other.state_dict(), folder / "other.pt")
    return folder


@pytest.mark.parametrize(
    "name,needle",
    [
        ("wrong.safetensors", "unexpected key 'wrong.key'"),
        ("wrong.safetensors", "missing key 'positional_embedding'"),
        ("other.pt", "does not match mini-vit (missing key 'visual.transformer.resblocks.1.ln_1.weight'"),
        ("other.pt", "shape mismatch for 'positional_embedding'"),
    ],
)
def test_mismatched_clip_weights_name_the_first_bad_key(tmp_path, capsys, clip_files, name, needle):
    code, _, err, caught = run_cli(
        capsys,
        "draw",
        "a cat",
        "--clip",
        f"mini-vit@{clip_files / name}",
        "--steps",
        "1",
        "-q",
        "-o",
        tmp_path / "o.svg",
    )
    line = assert_refused(code, err, needle, caught)
    assert not line.rstrip().endswith(":")


def test_unknown_clip_tag_lists_tags_and_the_bare_name(tmp_path, capsys):
    code, _, err, caught = run_cli(
        capsys, "draw", "a cat", "--clip", "mini-vit@nosuchtag", "--steps", "1", "-q", "-o", tmp_path / "o.svg"
    )
    line = assert_refused(code, err, "unknown pretrained tag 'nosuchtag' for mini-vit", caught)
    assert "known: none" not in line and "bare name" in line and "mini-vit@random" in line


def test_unknown_clip_tag_of_a_model_with_tags():
    from vecgen.backends.perceptors.clip import _unknown_tag

    msg = _unknown_tag("ViT-B-32", "nosuch", ["openai", "laion2b_s34b_b79k"])
    assert "known tags: openai, laion2b_s34b_b79k" in msg and "bare name" not in msg


@pytest.mark.parametrize("query", ["", "   ", " | "])
def test_search_empty_query(tmp_path, capsys, query):
    Image.new("RGB", (8, 8), "red").save(tmp_path / "a.png")
    code, _, err, caught = run_cli(capsys, "search", tmp_path, query, "--clip", TINY)
    line = assert_refused(code, err, "empty query", caught)
    assert "vecgen draw" not in line and "vecgen search" in line


# ----------------------------------------------------------------------------- 6. WxH everywhere
@pytest.fixture(scope="module")
def taef2_file(tmp_path_factory):
    from vecgen.backends.generators import TAEF2Decoder

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("taef2") / "taef2_decoder.pth"
    torch.save(TAEF2Decoder().state_dict(), path)
    return path


def test_taef2_spec_size_is_width_by_height(taef2_file):
    from vecgen.backends.generators import load_generator

    gen = load_generator(f"taef2:{taef2_file}:384x512")
    assert gen.image_size == (512, 384)  # (H, W): 384 wide, 512 tall
    assert gen.latent_shape == (32, 64, 48)
    small = load_generator(f"taef2:{taef2_file}:32X16")
    with torch.no_grad():
        assert small(small.sample_latent(1, 0)).shape == (1, 3, 16, 32)
    assert load_generator(f"taef2:{taef2_file}:24").latent_shape == (32, 3, 3)


def test_taef2_spec_size_through_the_cli(tmp_path, capsys, taef2_file):
    out = tmp_path / "t.png"
    code, _, err, _ = run_cli(
        capsys,
        "generate",
        "a red square",
        "--generator",
        f"taef2:{taef2_file}:32x16",
        "--clip",
        TINY,
        "--steps",
        "1",
        "--cutouts",
        "0",
        "-q",
        "-o",
        out,
    )
    assert code == 0, err
    with Image.open(out) as im:
        assert im.size == (32, 16)  # the same WxH as --size 32x16 gives


@pytest.mark.parametrize("suffix,needle", [("99999x8", "above the limit of 4096"), ("20x16", "multiples of 8")])
def test_taef2_spec_size_limits(tmp_path, capsys, taef2_file, suffix, needle):
    code, _, err, caught = run_cli(
        capsys,
        "generate",
        "x",
        "--generator",
        f"taef2:{taef2_file}:{suffix}",
        "--clip",
        TINY,
        "--steps",
        "1",
        "-q",
        "-o",
        tmp_path / "o.png",
    )
    assert_refused(code, err, needle, caught)


def test_generator_help_says_wxh():
    from vecgen.backends.generators import available_generators

    assert "WxH" in available_generators()["taef2"] and "HxW" not in available_generators()["taef2"]


def test_script_latent_shape_is_bounded(tmp_path):
    from vecgen.backends.generators.script import MAX_LATENT_NUMEL, _as_shape
    from vecgen.errors import VecgenError

    assert _as_shape([4, 8, 8], "t") == (4, 8, 8)
    with pytest.raises(VecgenError, match="entries"):
        _as_shape([4, 8, MAX_LATENT_NUMEL], "t")
