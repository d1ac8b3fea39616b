"""Feature taps: intermediate activations of a perceptor's image tower, by module name.

Shared by the CLIP and classifier perceptors: forward hooks on named modules,
removed again after one forward pass, so taps cost nothing when unused.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from torch import Tensor, nn

from vecgen.errors import VecgenError


def check_layers(layers: Sequence[str] | None, known: Sequence[str], name: str) -> list[str]:
    """``layers`` (None = all of ``known``) validated against ``known``; one-line error naming them."""
    if layers is None:
        return list(known)
    if isinstance(layers, str):
        layers = [layers]
    bad = [layer for layer in layers if layer not in known]
    if bad:
        raise VecgenError(f"{name} has no feature layer {bad[0]!r} (its layers: {', '.join(known)})")
    return list(layers)


def tap(
    root: nn.Module,
    modules: dict[str, str],
    layers: list[str],
    run: Callable[[], object],
    extra: dict[str, Callable[[], Tensor]] | None = None,
) -> dict[str, Tensor]:
    """Run ``run()`` once with hooks on ``root``'s submodules and return ``{layer: activation}``.

    ``modules`` maps a public layer name to a submodule path of ``root``;
    ``extra`` gives layers computed from the run's own output (such as the
    pooled embedding). Activations keep their graph: content losses backpropagate.

    Shape:

    - returns: layer -> the module's output as it is (a tuple's first item), e.g. ``(N, C, h, w)``
      for a conv stage, ``(N, tokens, width)`` for a transformer block; an ``extra`` layer:
      what its function returns, e.g. a pooled ``(N, D)``
    """
    out: dict[str, Tensor] = {}
    handles = []
    try:
        for layer in layers:
            if layer in modules:
                module = root.get_submodule(modules[layer])

                def hook(_m, _inp, output, key=layer):
                    out[key] = output[0] if isinstance(output, tuple) else output

                handles.append(module.register_forward_hook(hook))
        run()
    finally:
        for h in handles:
            h.remove()
    for layer in layers:
        if extra and layer in extra:
            out[layer] = extra[layer]()
    return {layer: out[layer] for layer in layers}
