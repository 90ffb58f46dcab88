"""Shared models for the model tests: built once, small where size is no point."""

from pathlib import Path

import pytest

from edgekit.models import build_model

REPO = Path(__file__).resolve().parents[2]
CALIBRATION = REPO / "calibration" / "images"
HOLDOUT = REPO / "calibration" / "holdout"
SMALL = (32, 32, 1)


@pytest.fixture(scope="session")
def patchgan():
    """The spec's PatchGAN at its real size, batch 1, seed 0."""
    return build_model("patchgan")


@pytest.fixture(scope="session")
def pix2pix():
    """The full discriminator at its real size, batch 1, seed 0."""
    return build_model("pix2pix")


@pytest.fixture(scope="session")
def demo_cache(tmp_path_factory) -> Path:
    """One demo-weights cache for the whole session (test_cli_model uses it too)."""
    path = tmp_path_factory.getbasetemp() / "demo-cache"
    path.mkdir(exist_ok=True)
    return path
