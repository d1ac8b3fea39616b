"""vecgen: text to pictures by optimization (strokes, images, latents) against CLIP."""
__version__ = "0.1.0"

from vecgen.errors import VecgenError  # noqa: E402


def __getattr__(name: str):
    # Lazy re-exports keep `import vecgen` (and `vecgen --help`) fast: torch loads on first use.
    import importlib

    api = importlib.import_module("vecgen.api")
    perceptors = importlib.import_module("vecgen.backends.perceptors")

    table = {"draw": api.draw, "render_svg": api.render_svg, "Result": api.Result,
             "load_perceptor": perceptors.load_perceptor}
    for extra in ("paint", "generate", "adapt"):
        if hasattr(api, extra):
            table[extra] = getattr(api, extra)
    if name in table:
        return table[name]
    raise AttributeError(f"module 'vecgen' has no attribute {name!r}")


__all__ = ["draw", "render_svg", "Result", "load_perceptor", "VecgenError", "__version__"]
