"""Shared exports for the exporter tests, made once per session.

The exporter tests use a narrow PatchGAN built here: the spec's structure
(eight 4x4/2 conv blocks, BatchNorm in blocks 2-8, LeakyReLU 0.2, Flatten,
Dense softmax) with 16-64 filters on a 32x32 input, and demo-style BatchNorm
statistics so that its verdicts are decisive. Its files are a few hundred
kilobytes, so each conversion takes seconds. The real 256x256 export runs
once, in ``test_end_to_end.py``.
"""

from pathlib import Path

import numpy as np
import pytest

from edgekit.bundle import Manifest, read_manifest, read_reference
from edgekit.export import ExportOptions, export_bundle

REPO = Path(__file__).resolve().parents[2]
CALIBRATION = REPO / "calibration" / "images"
HOLDOUT = REPO / "calibration" / "holdout"
SIZE = 32
WIDTHS = (16, 32, 64, 64, 64, 64, 64, 64)


def build_tiny_model(seed: int = 0):
    """A narrow PatchGAN with the spec's layer structure and names."""
    import keras
    from keras import layers

    image = keras.Input((SIZE, SIZE, 1), batch_size=1, name="image")
    x = image
    for block, filters in enumerate(WIDTHS, start=1):
        init = keras.initializers.GlorotUniform(seed=seed * 100 + block)
        x = layers.Conv2D(
            filters,
            4,
            strides=2,
            padding="same",
            kernel_initializer=init,
            name=f"block{block}_conv",
        )(x)
        if block > 1:
            x = layers.BatchNormalization(name=f"block{block}_bn")(x)
        x = layers.LeakyReLU(negative_slope=0.2, name=f"block{block}_lrelu")(x)
    features = layers.Flatten(name="features")(x)
    init = keras.initializers.GlorotUniform(seed=seed * 100 + 99)
    verdict = layers.Dense(
        2, activation="softmax", kernel_initializer=init, name="verdict"
    )(features)
    return keras.Model(image, [verdict, features], name="tiny_patchgan")


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model with demo statistics, saved as a user's .keras file."""
    from edgekit.images import Preprocessing, load_images
    from edgekit.models import save_keras_file
    from edgekit.models.demo import compute_demo_weights

    model = build_tiny_model()
    prep = Preprocessing(height=SIZE, width=SIZE, channels=1)
    compute_demo_weights(model, load_images(CALIBRATION, prep, limit=64).arrays)
    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    save_keras_file(model, path)
    return path


def tiny_options(model: Path, output: Path, **changes) -> ExportOptions:
    """Options for a quick export of the tiny model; ``changes`` override."""
    options = {
        "model": str(model),
        "calibration": CALIBRATION,
        "holdout": HOLDOUT,
        "calibration_limit": 64,
        "holdout_limit": 40,
        "output": output,
    }
    return ExportOptions(**(options | changes))


@pytest.fixture(scope="session")
def small_bundle(
    tiny_model_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """Every format and precision of the tiny model, exported in two processes."""
    output = tmp_path_factory.mktemp("bundle") / "small"
    export_bundle(tiny_options(tiny_model_path, output, int8=True, fp16=True))
    return output


@pytest.fixture(scope="session")
def small_manifest(small_bundle: Path) -> Manifest:
    return read_manifest(small_bundle)


def run_artifact(bundle: Path, artifact, images: np.ndarray) -> dict[str, np.ndarray]:
    """Every output of one artifact for each image, stacked, via edgekit.runners."""
    from edgekit.runners import open_runner

    results: dict[str, list[np.ndarray]] = {}
    with open_runner(artifact, bundle) as runner:
        for index in range(len(images)):
            outputs = runner.infer({"image": images[index : index + 1]})
            for name, value in outputs.items():
                results.setdefault(name, []).append(value)
    return {name: np.concatenate(parts) for name, parts in results.items()}


def reference_of(bundle: Path, manifest: Manifest):
    """The held-out images and the float Keras outputs stored in the bundle."""
    inputs, outputs = read_reference(bundle, manifest)
    return inputs["image"], outputs


def agreement(
    outputs: dict[str, np.ndarray], reference: dict[str, np.ndarray]
) -> float:
    """The share of images whose verdict (argmax) matches the reference."""
    ours = outputs["verdict"].argmax(axis=1)
    return float(np.mean(ours == reference["verdict"].argmax(axis=1)))


def min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    """The smallest per-image cosine similarity between two feature sets."""
    dots = np.sum(a * b, axis=1)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return float(np.min(dots / np.maximum(norms, 1e-12)))
