"""Files in and out: the one atomic write, PNGs with text chunks, image loading, tensor <-> PIL.

Every file vecgen writes goes through :func:`atomic_write` (a temp file in the
same folder, then a rename), so a reader or a killed run never sees half a file.
"""

from __future__ import annotations

import io
import os
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Union

from vecgen.errors import VecgenError

if TYPE_CHECKING:  # torch and PIL load on first use: `vecgen --help` stays fast
    import torch
    from PIL import Image

InitSource = Union[str, os.PathLike, "Image.Image", "torch.Tensor", None]
FITS: tuple[str, ...] = ("cover", "stretch")


def one_line(err: BaseException) -> str:
    """An exception's message as one line (its type name when it has none)."""
    text = str(err) or type(err).__name__
    return " ".join(text.split())


# ----------------------------------------------------------------------------- writing
def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(path: str | os.PathLike, data: bytes, *, mkdir: bool = False) -> Path:
    """Write ``data`` to ``path`` via a temp file in the same folder and a rename.

    The file gets the umask's usual permissions (mkstemp makes 0600, and a web
    server must be able to read a gallery). ``mkdir`` creates missing folders.
    OS errors become one-line :class:`VecgenError`; the temp file never stays.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    try:
        if mkdir:
            folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as e:
        raise VecgenError(f"cannot write {path}: {one_line(e)}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException as e:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(e, OSError):
            raise VecgenError(f"cannot write {path}: {one_line(e)}") from None
        raise
    return path


def torch_bytes(obj: Any) -> bytes:
    """``torch.save`` into bytes (for :func:`atomic_write`); plain tensors/containers load with weights_only."""
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def safetensors_bytes(tensors: dict[str, "torch.Tensor"], metadata: dict[str, str] | None = None) -> bytes:
    """A safetensors file as bytes, the same for the same tensors and metadata in any process.

    ``safetensors.torch.save`` writes its ``__metadata__`` in a hash order that changes from
    one process to the next; here the JSON header is rewritten with every key sorted and
    the usual space padding to 8 bytes (the tensor data is untouched, its offsets are
    relative to the data), so a seed gives the same file byte for byte.

    Shape:

    - ``tensors``: name -> a tensor of any shape, stored as it is (detached, on the CPU, contiguous)
    """
    import json
    import struct

    from safetensors.torch import save

    raw = save(
        {k: v.detach().cpu().contiguous() for k, v in tensors.items()},
        metadata={str(k): str(v) for k, v in (metadata or {}).items()} or None,
    )
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8 : 8 + n])
    text = json.dumps(header, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + raw[8 + n :]


def safetensors_metadata(path: str | os.PathLike) -> dict[str, str] | None:
    """The ``__metadata__`` of a safetensors file (``{}`` when it has none); None when ``path`` is not one.

    Reads the header only (bounded by the file's size), never the tensors.
    """
    import json
    import struct

    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            head = f.read(8)
            if len(head) < 8:
                return None
            n = struct.unpack("<Q", head)[0]
            if n < 2 or n > min(size - 8, 100 << 20):
                return None
            header = json.loads(f.read(n))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    if not isinstance(header, dict):
        return None
    meta = header.get("__metadata__") or {}
    return {str(k): str(v) for k, v in meta.items()} if isinstance(meta, dict) else None


def refuse_foreign(
    path: str | os.PathLike,
    kind: str,
    option: str,
    *,
    legacy: tuple[str, ...] = (),
    ours: Callable[[Path], bool] | None = None,
) -> None:
    """Refuse (one line) to replace ``path`` unless it is absent or a file vecgen wrote as ``kind``.

    Our caches are safetensors files carrying ``{"vecgen": kind}`` in their metadata;
    ``legacy``: metadata keys that, all present, mark a file of that kind written before
    the marker existed. ``ours``: how files of ``kind`` are recognised instead, for files
    that are not safetensors (checkpoints: :func:`is_checkpoint`). A folder, or a file of
    any other kind (a user's model, a picture), is never overwritten.
    """
    p = Path(path)
    if not os.path.lexists(p):
        return
    if p.is_dir():
        raise VecgenError(f"{option} {p}: is a folder, not a file")
    if ours is not None:
        if ours(p):
            return
    else:
        meta = safetensors_metadata(p)
        if meta is not None and (meta.get("vecgen") == kind or (legacy and all(k in meta for k in legacy))):
            return
    raise VecgenError(
        f"{option} {p}: the file is not a vecgen {kind} file, and it is left untouched; give another path"
    )


#: Keys of every checkpoint :func:`vecgen.engine.save_checkpoint` writes.
CHECKPOINT_KEYS = frozenset({"param", "optimizer", "step", "history", "meta"})
#: Keys of every latent file ``generate --save-latent`` writes.
LATENT_KEYS = frozenset({"space", "latent", "w_plus", "truncation"})


def is_checkpoint(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a checkpoint vecgen's engine wrote (see :func:`holds_keys`)."""
    return holds_keys(path, CHECKPOINT_KEYS)


def is_latent_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a latent ``generate --save-latent`` wrote (see :func:`holds_keys`)."""
    return holds_keys(path, LATENT_KEYS)


def holds_keys(path: str | os.PathLike, wanted: frozenset[str]) -> bool:
    """Whether ``path`` is a torch.save zip whose pickle names every key of ``wanted`` (vecgen's own files).

    Reads the pickle's opcodes only, never runs it and never reads the tensors, so a large
    file of someone else's costs a header read. No torch.
    """
    import pickletools
    import zipfile

    try:
        with zipfile.ZipFile(path) as z:
            pkl = [i for i in z.infolist() if i.filename.endswith("/data.pkl") and i.filename.count("/") == 1]
            if len(pkl) != 1 or pkl[0].file_size > 256 << 20:
                return False
            data = z.read(pkl[0])
        keys = set()
        for _, arg, _ in pickletools.genops(data):
            if isinstance(arg, str) and arg in wanted:
                keys.add(arg)
            if keys == wanted:
                return True
    except Exception:  # noqa: BLE001 - not a zip, a damaged one, a pickle that does not parse: not ours
        return False
    return False


def png_bytes(image: "Image.Image", text: dict[str, str] | None = None) -> bytes:
    """PNG bytes of ``image``, carrying ``text`` as tEXt chunks (prompt, seed, settings, version)."""
    from PIL.PngImagePlugin import PngInfo

    info = None
    if text:
        info = PngInfo()
        for k, v in text.items():
            info.add_text(k, v)
    buf = io.BytesIO()
    image.save(buf, format="PNG", pnginfo=info)
    return buf.getvalue()


def save_png(
    image: "Image.Image | torch.Tensor",
    path: str | os.PathLike,
    text: dict[str, str] | None = None,
    *,
    mkdir: bool = False,
) -> Path:
    """Write an image (PIL, or a ``(1, 3, H, W)`` tensor in ``[0, 1]``) as PNG, atomically."""
    from PIL import Image

    pil = image if isinstance(image, Image.Image) else tensor_to_pil(image)
    return atomic_write(path, png_bytes(pil, text), mkdir=mkdir)


# ----------------------------------------------------------------------------- tensors <-> PIL
def pil_to_tensor(image: "Image.Image") -> "torch.Tensor":
    """PIL image -> ``(1, 3, H, W)`` float32 in ``[0, 1]``."""
    import torch

    im = image.convert("RGB")
    data = torch.frombuffer(bytearray(im.tobytes()), dtype=torch.uint8).view(im.height, im.width, 3)
    return data.permute(2, 0, 1).float().div(255).unsqueeze(0)


def tensor_to_pil(image: "torch.Tensor") -> "Image.Image":
    """``(1, 3, H, W)`` or ``(3, H, W)`` in ``[0, 1]`` -> 8-bit RGB PIL image (NaN -> 0)."""
    import torch
    from PIL import Image

    x = image.detach().to("cpu", torch.float32)
    if x.dim() == 4:
        if x.shape[0] != 1:
            raise VecgenError(f"can only save one image at a time, got batch {x.shape[0]}")
        x = x[0]
    if x.dim() != 3 or x.shape[0] != 3:
        raise VecgenError(f"expected a (3, H, W) image, got shape {tuple(image.shape)}")
    arr = (x.nan_to_num(0.0).clamp(0.0, 1.0) * 255.0).round().to(torch.uint8)
    return Image.fromarray(arr.permute(1, 2, 0).contiguous().numpy(), "RGB")


# ----------------------------------------------------------------------------- reading images
#: Largest image vecgen opens (an image prompt, an init image, a picture to search): 8192x8192,
#: 67 megapixels (about 200 MB as RGB). Bigger files are refused in one line before they are
#: decoded: downscale them first. PIL's own decompression-bomb limit (89 megapixels, a warning;
#: twice that, an error) lies above, so its warning never reaches the user.
MAX_IMAGE_PIXELS = 8192 * 8192


def _too_large(what: str, p: Path, size: tuple[int, int] | None = None, pixels: int | None = None) -> VecgenError:
    if size:
        got = f"{size[0]}x{size[1]} = {size[0] * size[1] / 1e6:.1f} megapixels"
    else:
        got = f"{pixels / 1e6:.1f} megapixels" if pixels else "its size"
    return VecgenError(
        f"{what} {p} is too large: {got} is over vecgen's limit of "
        f"{MAX_IMAGE_PIXELS / 1e6:.1f} megapixels (8192x8192); downscale it first"
    )


def open_image(path: str | os.PathLike, what: str = "image") -> "Image.Image":
    """Open an image file fully (EXIF rotation applied); one-line error for anything unreadable.

    Images over :data:`MAX_IMAGE_PIXELS` are refused from their header, before decoding.
    """
    import warnings

    from PIL import Image, ImageOps, UnidentifiedImageError

    p = Path(path)
    if not p.exists():
        raise VecgenError(f"{what} not found: {p}")
    if p.is_dir():
        raise VecgenError(f"{what} is a directory, not an image file: {p}")
    try:
        with warnings.catch_warnings():  # PIL warns from the header; the limit below is lower
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(p)
        with img:
            if img.width * img.height > MAX_IMAGE_PIXELS:
                raise _too_large(what, p, img.size)
            img.load()
            return ImageOps.exif_transpose(img).copy()
    except UnidentifiedImageError:
        raise VecgenError(f"cannot read {what} {p}: not a recognised image file") from None
    except Image.DecompressionBombError as err:  # over twice PIL's limit: refused by Image.open itself
        import re

        m = re.search(r"\((\d+) pixels\)", str(err))
        raise _too_large(what, p, pixels=int(m.group(1)) if m else None) from None
    except (OSError, ValueError, SyntaxError) as err:
        raise VecgenError(f"cannot read {what} {p}: {one_line(err)}") from None


def load_image(path: str | os.PathLike, size: tuple[int, int] | None = None) -> "torch.Tensor":
    """Image file -> ``(1, 3, H, W)`` float32 in ``[0, 1]`` (EXIF rotation applied; bicubic to ``size=(W, H)``)."""
    from PIL import Image

    im = open_image(path)
    if im.mode == "P" and "transparency" in im.info:
        # The same colours as convert("RGB") gives, without PIL's warning about palette transparency.
        im = im.convert("RGBA")
    im = im.convert("RGB")
    if size is not None:
        im = im.resize(size, Image.Resampling.BICUBIC)
    return pil_to_tensor(im)


def _pil_to_rgb_array(img: "Image.Image"):
    """Any PIL image -> float64 ``(H, W, 3)`` array in ``[0, 1]``; alpha is composited onto white."""
    import numpy as np

    if img.mode in ("I", "I;16", "I;16L", "I;16B", "I;16N", "F"):
        grey = np.asarray(img, dtype=np.float64)
        top = grey.max() if grey.size else 1.0
        grey = grey / (65535.0 if top > 255 else 255.0 if top > 1 else 1.0)
        return np.repeat(grey.clip(0, 1)[..., None], 3, axis=2)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = np.asarray(img.convert("RGBA"), dtype=np.float64) / 255.0
        alpha = rgba[..., 3:4]
        return rgba[..., :3] * alpha + (1.0 - alpha)
    return np.asarray(img.convert("RGB"), dtype=np.float64) / 255.0


def _tensor_to_nchw(image: "torch.Tensor") -> "torch.Tensor":
    """Accept ``(H, W)``, ``(C, H, W)`` or ``(1, C, H, W)`` with C in 1/3/4 -> float64 ``(1, 3, H, W)``."""
    import torch

    if image.is_complex() or image.dtype == torch.bool:
        raise VecgenError(f"init tensor has unsupported dtype {image.dtype}")
    x = image.detach().to("cpu")
    if x.dim() == 2:
        x = x[None, None]
    elif x.dim() == 3:
        x = x[None]
    if x.dim() != 4 or x.shape[0] != 1 or x.shape[1] not in (1, 3, 4):
        raise VecgenError(
            f"init tensor must be (H, W), (C, H, W) or (1, C, H, W) with C in 1/3/4, got shape {tuple(image.shape)}"
        )
    if x.shape[-1] == 0 or x.shape[-2] == 0:
        raise VecgenError(f"init tensor is empty: shape {tuple(image.shape)}")
    if x.dtype == torch.uint8:
        x = x.to(torch.float64) / 255.0
    else:
        x = x.to(torch.float64)
        if not torch.isfinite(x).all():
            raise VecgenError("init tensor contains NaN or infinite values")
        lo, hi = float(x.min()), float(x.max())
        if lo < -1e-3 or hi > 1.0 + 1e-3:
            raise VecgenError(f"init tensor values must lie in [0, 1], got [{lo:.4g}, {hi:.4g}]")
        x = x.clamp(0.0, 1.0)
    if x.shape[1] == 1:
        x = x.expand(1, 3, *x.shape[-2:])
    elif x.shape[1] == 4:
        alpha = x[:, 3:4]
        x = x[:, :3] * alpha + (1.0 - alpha)
    return x.contiguous()


def _crop_to_aspect(x: "torch.Tensor", width: int, height: int) -> "torch.Tensor":
    """Centre-crop ``(1, 3, h, w)`` to the aspect ratio ``width / height``."""
    h, w = x.shape[-2:]
    if w * height > width * h:  # too wide
        new_w = max(1, round(h * width / height))
        left = (w - new_w) // 2
        return x[..., :, left : left + new_w]
    new_h = max(1, round(w * height / width))
    top = (h - new_h) // 2
    return x[..., top : top + new_h, :]


def load_init_image(init: InitSource, size: tuple[int, int], *, fit: str = "cover") -> "torch.Tensor":
    """Load a start image as float64 ``(1, 3, H, W)`` in ``[0, 1]`` on the CPU.

    ``init`` is a path, a PIL image or a tensor (``uint8`` in ``[0, 255]`` or
    float in ``[0, 1]``), resized to ``size = (W, H)``: ``fit="cover"`` keeps
    the aspect ratio and centre-crops, ``fit="stretch"`` resizes directly. An
    image already of the right size is used unchanged.
    """
    import numpy as np
    import torch
    from PIL import Image, ImageOps

    from vecgen.options import check_size

    width, height = check_size(size)
    if fit not in FITS:
        raise VecgenError(f"unknown fit {fit!r}: expected one of {', '.join(FITS)}")
    if isinstance(init, (str, os.PathLike)):
        init = open_image(init, "init image")
    if isinstance(init, Image.Image):
        img = init
        if img.size != (width, height):
            if img.mode not in ("RGB", "L"):  # flatten alpha / odd modes first
                arr = _pil_to_rgb_array(img)
                img = Image.fromarray(np.round(arr * 255.0).astype(np.uint8), "RGB")
            if fit == "cover":
                img = ImageOps.fit(img, (width, height), method=Image.Resampling.LANCZOS)
            else:
                img = img.resize((width, height), resample=Image.Resampling.LANCZOS)
        arr = _pil_to_rgb_array(img)
        return torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1)[None].contiguous()
    if isinstance(init, torch.Tensor):
        x = _tensor_to_nchw(init)
        if tuple(x.shape[-2:]) != (height, width):
            if fit == "cover":
                x = _crop_to_aspect(x, width, height)
            x = torch.nn.functional.interpolate(
                x, size=(height, width), mode="bicubic", align_corners=False, antialias=True
            ).clamp(0.0, 1.0)
        return x
    raise VecgenError(f"init must be an image path, a PIL image or a tensor, got {type(init).__name__}")


# ----------------------------------------------------------------------------- torch files
#: torch's weights-only unpickler warns about any pickle protocol but 2 (protocol 3 files load fine):
#: not the user's concern, so that one warning is silenced around the load.
PROTOCOL_WARNING = r"Detected pickle protocol \d+ in the checkpoint"
#: torch.load warns before refusing a TorchScript archive; the error below says what to do instead.
_TORCHSCRIPT_WARNING = r"'torch\.load' received a zip file that looks like a TorchScript archive"

_CONVERT_HINT = (
    "If you trust the file, convert it to plain tensors: "
    "torch.save(model.state_dict(), 'weights.pt') or "
    "safetensors.torch.save_file(model.state_dict(), 'weights.safetensors')"
)


def file_format(p: Path) -> str:
    """``"zip"`` (torch.save), ``"legacy"`` (old torch.save), ``"safetensors"``, ``"empty"`` or ``"other"``."""
    with open(p, "rb") as f:
        head = f.read(16)
    if not head:
        return "empty"
    if head.startswith(b"PK\x03\x04"):
        return "zip"
    if p.suffix.lower() == ".safetensors" or (len(head) > 8 and head[8:9] == b"{"):
        return "safetensors"
    if head[:1] == b"\x80":  # a pickle (protocol 2+): torch.save's pre-1.6 format
        return "legacy"
    return "other"


def describe_load_error(exc: BaseException) -> str:
    """One line for what ``torch.load(..., weights_only=True)`` raised, without torch's advice to unpickle unsafely."""
    text = " ".join(str(exc).split())
    if "Weights only load failed" in text:
        glob = re.search(r"GLOBAL ([\w.]+)", text)
        if glob:
            return (
                f"refused for safety: it holds a Python object ({glob.group(1)}), and unpickling objects can "
                f"run code; vecgen reads only tensors and plain containers. {_CONVERT_HINT}"
            )
        op = re.search(r"Unsupported operand (\d+)", text)
        if op:
            return (
                f"it was pickled with instructions the safe loader does not read (opcode {op.group(1)}; "
                f"pickle protocol 4 or newer); re-save it with torch.save's default protocol "
                f"(torch.save(obj, 'weights.pt')) or as safetensors"
            )
        return f"refused for safety: it holds more than tensors and plain containers. {_CONVERT_HINT}"
    if "TorchScript" in text:
        return "it is a TorchScript archive (torch.jit.save), not a checkpoint: load it with script:PATH"
    if "PytorchStreamReader" in text:  # a damaged zip; torch's own text goes on about miniz internals
        return f"the file is damaged or truncated ({text.split('. ')[0]})"
    text = f"{type(exc).__name__}: {text}"
    return text if len(text) <= 200 else text[:197] + "..."


def read_checkpoint(path: str | Path, what: str = "checkpoint") -> Any:
    """``torch.load(path, map_location="cpu", weights_only=True)`` with one-line errors; safetensors files too.

    ``argparse.Namespace`` is allowed as well, because training checkpoints
    (e.g. rosinality's StyleGAN2) store their command-line arguments in one;
    it only carries plain attributes. A file that holds other objects is
    refused for safety (the message says how to convert it); a file that is
    neither torch.save's nor safetensors' is named as not a ``what``.
    """
    import argparse
    import warnings

    import torch

    p = Path(path).expanduser()
    if not p.exists():
        raise VecgenError(f"{what} not found: {p}")
    if not p.is_file():
        raise VecgenError(f"{what} is not a file: {p}")
    try:
        kind = file_format(p)
    except OSError as exc:
        raise VecgenError(f"cannot read {what} {p}: {exc.strerror or type(exc).__name__}") from None
    if kind == "empty":
        raise VecgenError(f"{p} is not a {what}: the file is empty")
    if kind == "other":
        raise VecgenError(f"{p} is not a {what}: not a file written by torch.save or safetensors")
    if kind == "safetensors":
        try:
            from safetensors.torch import load_file

            return load_file(str(p), device="cpu")
        except Exception as exc:  # noqa: BLE001 - a damaged header or a truncated file
            why = describe_load_error(exc)
            raise VecgenError(f"cannot read {what} {p}: not a valid safetensors file ({why})") from None
    try:
        with warnings.catch_warnings(), torch.serialization.safe_globals([argparse.Namespace]):
            warnings.filterwarnings("ignore", message=PROTOCOL_WARNING, category=UserWarning)
            warnings.filterwarnings("ignore", message=_TORCHSCRIPT_WARNING, category=UserWarning)
            return torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt/truncated/unsafe pickle: all user-facing
        raise VecgenError(f"cannot read {what} {p}: {describe_load_error(exc)}") from None


def unwrap_state_dict(state: Any) -> Any:
    """A checkpoint's weights: ``{"state_dict": ...}`` / ``{"model": ...}`` unwrapped, ``module.`` prefixes dropped."""
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if isinstance(state, dict) and state and all(str(k).startswith("module.") for k in state):
        state = {str(k)[len("module.") :]: v for k, v in state.items()}
    return state


def state_mismatch(expected: dict, state: Any) -> str | None:
    """How ``state`` differs from a model's ``expected`` state dict: the first missing/unexpected key and the
    first shape mismatch, in one clause each; None when they match."""
    if not isinstance(state, dict) or not state:
        return f"expected a state dict, got {type(state).__name__}"
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    parts = []
    if missing:
        parts.append(f"missing key '{missing[0]}'" + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
    if unexpected:
        parts.append(
            f"unexpected key '{unexpected[0]}'" + (f" (and {len(unexpected) - 1} more)" if len(unexpected) > 1 else "")
        )
    for k, ref in expected.items():
        got = getattr(state.get(k), "shape", None)
        if got is not None and tuple(got) != tuple(ref.shape):
            parts.append(f"shape mismatch for '{k}': checkpoint {tuple(got)} vs model {tuple(ref.shape)}")
            break
    return "; ".join(parts) or None
