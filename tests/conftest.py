"""Shared test settings, constants, fixtures and helpers (import the constants and helpers with
``from conftest import TINY, small_stylegan2``; fixtures are found by name)."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from vecgen.backends.generators import StyleGAN2Generator

# A test runner started in the background by a non-interactive shell inherits SIGINT ignored, and
# every subprocess would too: the Ctrl-C tests (and the studio's shutdown) need the default.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# Tests must not try the network for CLIP weights.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("VECGEN_OFFLINE", "1")

SHARED = Path(__file__).resolve().parents[2] / "shared"
#: A randomly initialised tiny CLIP: fast, offline, deterministic (no weights file needed).
TINY = "vecgen-tiny-vit@random"


@pytest.fixture
def shared_dir() -> Path:
    if not (SHARED / "conformance").is_dir():
        pytest.skip("../shared/conformance is absent (only present in the project checkout)")
    return SHARED


@pytest.fixture
def one_thread() -> Iterator[None]:
    """torch on one thread for the test (on two busy cores one thread is several times faster than two:
    no spin-waiting). Use per module with ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def small_stylegan2(seed: int = 0) -> StyleGAN2Generator:
    """A 32 px StyleGAN2 with random weights (seeded), frozen, in eval mode: small enough for unit tests."""
    import torch

    from vecgen.backends.generators import StyleGAN2Generator

    torch.manual_seed(seed)
    g = StyleGAN2Generator(32, style_dim=32, n_mlp=2, channels={4: 16, 8: 16, 16: 8, 32: 8})
    return g.eval().requires_grad_(False)


def random_net(seed: int = 0, scale: float = 0.2):
    """A StyleNet with random N(0, scale) weights (a fresh one is the identity), for style tests."""
    import torch

    from vecgen.params.stylenet import StyleNet

    torch.manual_seed(seed)
    net = StyleNet()
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0, scale)
    return net
