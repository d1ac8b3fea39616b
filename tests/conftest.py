import os
from pathlib import Path

import pytest

# Tests must not try the network for CLIP weights.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("VECGEN_OFFLINE", "1")

SHARED = Path(__file__).resolve().parents[2] / "shared"
TINY = "vecgen-tiny-vit@random"


@pytest.fixture
def shared_dir() -> Path:
    if not (SHARED / "conformance").is_dir():
        pytest.skip("../shared/conformance is absent (only present in the project checkout)")
    return SHARED


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: long tests (deselect with -m 'not slow')")
