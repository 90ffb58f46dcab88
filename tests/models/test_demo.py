"""Demo weights: decisive on held-out photographs, and cached."""

import logging

import numpy as np
import pytest

from edgekit.images import Preprocessing, load_images
from edgekit.models import resolve_model
from edgekit.models.demo import cache_directory

from .conftest import CALIBRATION, HOLDOUT


@pytest.fixture(scope="module")
def holdout() -> np.ndarray:
    return load_images(HOLDOUT).arrays


def _verdicts(model, images: np.ndarray) -> np.ndarray:
    return model.predict(images, batch_size=1, verbose=0)[0]


@pytest.mark.parametrize("name", ["patchgan", "pix2pix"])
def test_demo_weights_are_decisive_on_held_out_photographs(
    demo_cache, monkeypatch, holdout, name
):
    monkeypatch.setenv("EDGEKIT_CACHE", str(demo_cache))

    loaded = resolve_model(name, calibration=CALIBRATION)
    verdicts = _verdicts(loaded.model, holdout)
    margin = np.median(np.abs(verdicts[:, 1] - verdicts[:, 0]))
    share = float(np.mean(verdicts[:, 1] > 0.5))

    assert loaded.trained is False
    assert "not a trained discriminator" in loaded.source
    assert margin >= 0.3
    # Centring the bias splits the calibration photographs evenly; unseen
    # crops of the same scenes must split roughly evenly too.
    assert 0.3 <= share <= 0.7


def test_fresh_initialisation_is_not_decisive(holdout):
    loaded = resolve_model("patchgan", demo_weights=False)
    verdicts = _verdicts(loaded.model, holdout[:20])

    assert np.median(np.abs(verdicts[:, 1] - verdicts[:, 0])) < 0.05


def test_demo_weights_come_from_the_cache_the_second_time(
    demo_cache, monkeypatch, caplog
):
    monkeypatch.setenv("EDGEKIT_CACHE", str(demo_cache))
    first = resolve_model("patchgan", calibration=CALIBRATION)

    with caplog.at_level(logging.INFO, logger="edgekit"):
        second = resolve_model("patchgan", calibration=CALIBRATION)

    assert second.weights_sha256 == first.weights_sha256
    assert "demo weights loaded from cache" in caplog.text
    assert cache_directory() == demo_cache
    assert not list(demo_cache.glob(".*"))


def test_recomputing_demo_weights_is_exact_and_splits_calibration_evenly(
    tmp_path, monkeypatch
):
    # A 64x64 variant: the recipe is the same, the arithmetic 16x smaller.
    shape = (64, 64, 1)
    loads = []
    for attempt in ("first", "second"):
        monkeypatch.setenv("EDGEKIT_CACHE", str(tmp_path / attempt))
        loads.append(
            resolve_model("patchgan", calibration=CALIBRATION, input_shape=shape)
        )
    calibration = load_images(
        CALIBRATION, Preprocessing(height=64, width=64, channels=1)
    ).arrays
    share = float(np.mean(_verdicts(loads[0].model, calibration)[:, 1] > 0.5))

    assert loads[0].weights_sha256 == loads[1].weights_sha256
    assert len(list((tmp_path / "first").glob("*.weights.h5"))) == 1
    assert share == pytest.approx(0.5, abs=0.01)
