"""Optional diffvg backend: the same Scene, rendered by pydiffvg when it imports.

diffvg cannot be installed from a registry; build it from source. Its output is
converted to the native backend's convention (premultiplied RGBA, (4, H, W)).
"""

from __future__ import annotations

import torch
from torch import Tensor

from vecgen.errors import VecgenError
from vecgen.scene import Scene


class DiffvgRasterizer:
    name = "diffvg"

    def __init__(self, samples: int = 2) -> None:
        try:
            import pydiffvg  # noqa: F401
        except ImportError:
            raise VecgenError(
                "--rasterizer diffvg needs pydiffvg, which is not importable; "
                "build diffvg from source or use the default --rasterizer native"
            ) from None
        self.samples = samples

    def render(self, scene: Scene, size: tuple[int, int] | None = None) -> Tensor:
        """``scene`` -> premultiplied RGBA ``(4, H, W)``, at ``size`` ``(W, H)`` (default: the scene's own)."""
        import pydiffvg

        w, h = size if size is not None else (scene.width, scene.height)
        sx, sy = w / scene.width, h / scene.height
        scale = torch.tensor([sx, sy])
        shapes, groups = [], []
        for i, p in enumerate(scene.paths):
            pts = p.points * scale.to(p.points)
            if p.closed:
                pts = pts  # diffvg closes implicitly with is_closed
            n = p.num_segments
            shapes.append(
                pydiffvg.Path(
                    num_control_points=torch.full((n,), 2, dtype=torch.int32),
                    points=pts,
                    is_closed=p.closed,
                    stroke_width=torch.as_tensor(p.stroke_width) * (sx * sy) ** 0.5,
                )
            )
            groups.append(
                pydiffvg.ShapeGroup(
                    shape_ids=torch.tensor([i]),
                    fill_color=p.fill,
                    stroke_color=p.stroke,
                    use_even_odd_rule=p.fill_rule == "evenodd",
                )
            )
        args = pydiffvg.RenderFunction.serialize_scene(w, h, shapes, groups)
        img = pydiffvg.RenderFunction.apply(w, h, self.samples, self.samples, 0, None, *args)  # (H, W, 4)
        rgba = img.permute(2, 0, 1)
        return torch.cat([rgba[:3] * rgba[3:4], rgba[3:4]])  # diffvg returns straight alpha
