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
    package_data={"vecgen": ["backends/perceptors/configs/*.json", "backends/perceptors/weights/*"]},
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
        "test": ["pytest", "resvg-py", "ray", "import-linter"],
        "ray": ["ray"],
        "all": ["resvg-py", "ray"],
    },
    entry_points={"console_scripts": ["vecgen=vecgen.cli:main"]},
)
