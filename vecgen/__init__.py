"""vecgen: text to pictures by optimization (strokes, images, latents) against CLIP."""

__version__ = "0.1.0"

from vecgen.errors import VecgenError as VecgenError  # noqa: E402 (after __version__; re-exported)

_API_NAMES = ("Result", "VERBS", "list_models", "load_perceptor", "render_svg")


def __getattr__(name: str):
    # Lazy: `import vecgen` (and `vecgen --help`) stay fast; torch loads on first use of a verb.
    import importlib
    import importlib.util

    if not name.startswith("__") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        # a submodule not imported yet: `from vecgen import io` then imports just it, not torch
        raise AttributeError(f"module 'vecgen' has no attribute {name!r}")
    api = importlib.import_module("vecgen.api")
    functions = {api.python_name(v): verb.function for v, verb in api.VERBS.items()}
    if name == "__all__":
        return [*functions, *_API_NAMES, "VecgenError", "__version__"]
    if name in functions:
        return functions[name]
    if name in _API_NAMES:
        return getattr(api, name)
    raise AttributeError(f"module 'vecgen' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__getattr__("__all__")))
