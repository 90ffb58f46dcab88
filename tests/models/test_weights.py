"""Loading weights files: Keras 3, Keras 2 (flat and nested), and bad files."""

from pathlib import Path

import h5py
import numpy as np
import pytest

from edgekit.errors import ModelError
from edgekit.models import (
    build_model,
    load_weights_file,
    resolve_model,
    weights_sha256,
)

from .conftest import SMALL
from .keras2_files import write_keras2_weights


def _shifted(name: str, seed: int = 5):
    """A small model whose weights differ from every seeded initialisation."""
    model = build_model(name, seed=seed, input_shape=SMALL)
    for variable in model.weights:
        variable.assign(variable.numpy() + 0.25)
    return model


@pytest.mark.parametrize("name", ["patchgan", "pix2pix"])
def test_keras3_weights_file_loads(tmp_path, name):
    source = _shifted(name)
    path = tmp_path / "w.weights.h5"
    source.save_weights(path)

    target = build_model(name, seed=0, input_shape=SMALL)
    load_weights_file(target, path)

    assert weights_sha256(target) == weights_sha256(source)


def test_keras3_weights_file_with_a_plain_h5_name_loads(tmp_path):
    source = _shifted("patchgan")
    source.save_weights(tmp_path / "w.weights.h5")
    (tmp_path / "w.weights.h5").rename(tmp_path / "renamed.h5")

    target = build_model("patchgan", input_shape=SMALL)
    load_weights_file(target, tmp_path / "renamed.h5")

    assert weights_sha256(target) == weights_sha256(source)


@pytest.mark.parametrize("name", ["patchgan", "pix2pix"])
@pytest.mark.parametrize("nested", [False, True])
def test_keras2_weights_with_other_layer_names_load_in_order(tmp_path, name, nested):
    source = _shifted(name)
    path = tmp_path / "keras2.h5"
    write_keras2_weights(source, path, nested=nested)
    with h5py.File(path, "r") as handle:
        assert "block1_conv" not in handle

    target = build_model(name, seed=0, input_shape=SMALL)
    load_weights_file(target, path)

    for got, want in zip(target.weights, source.weights, strict=True):
        np.testing.assert_array_equal(got.numpy(), want.numpy())


def test_resolve_model_reports_user_weights(tmp_path):
    path = tmp_path / "w.weights.h5"
    _shifted("patchgan").save_weights(path)

    loaded = resolve_model(weights=path, input_shape=SMALL)

    assert loaded.name == "patchgan"
    assert loaded.trained is None
    assert loaded.source == f"user weights {path} (built-in patchgan architecture)"


def test_weights_digest_is_stable_and_sensitive():
    first = build_model("patchgan", seed=1, input_shape=SMALL)
    second = build_model("patchgan", seed=1, input_shape=SMALL)
    digest = weights_sha256(first)

    assert digest == weights_sha256(second)
    second.get_layer("verdict").bias.assign([0.0, 1e-6])
    assert digest != weights_sha256(second)


def test_missing_weights_file_is_a_model_error(tmp_path):
    model = build_model("patchgan", input_shape=SMALL)

    with pytest.raises(ModelError, match="weights file not found: .*missing.h5"):
        load_weights_file(model, tmp_path / "missing.h5")


def test_a_file_that_is_not_hdf5_is_a_model_error(tmp_path):
    path = tmp_path / "notes.h5"
    path.write_text("not weights")
    model = build_model("patchgan", input_shape=SMALL)

    with pytest.raises(ModelError, match="is not an HDF5 weights file"):
        load_weights_file(model, path)


def test_an_hdf5_file_without_keras_weights_is_a_model_error(tmp_path):
    path = tmp_path / "data.h5"
    with h5py.File(path, "w") as handle:
        handle.create_dataset("x", data=np.zeros(3))
    model = build_model("patchgan", input_shape=SMALL)

    with pytest.raises(ModelError, match="holds no Keras weights"):
        load_weights_file(model, path)


@pytest.mark.parametrize("layout", ["keras3", "keras2"])
def test_weights_of_the_other_architecture_are_a_model_error(tmp_path, layout):
    source = build_model("pix2pix", input_shape=SMALL)
    path = tmp_path / ("w.weights.h5" if layout == "keras3" else "w.h5")
    if layout == "keras3":
        source.save_weights(path)
    else:
        write_keras2_weights(source, path)
    model = build_model("patchgan", input_shape=SMALL)

    with pytest.raises(ModelError) as caught:
        load_weights_file(model, path)

    message = str(caught.value)
    assert f"the weights in {path} do not fit the patchgan model" in message
    assert "\n" not in message
    assert "same architecture" in message


@pytest.mark.parametrize("layout", ["keras3", "keras2"])
def test_a_shape_mismatch_names_the_weight(tmp_path, layout):
    source = build_model("patchgan", input_shape=(32, 32, 3))
    path = tmp_path / ("rgb.weights.h5" if layout == "keras3" else "rgb.h5")
    if layout == "keras3":
        source.save_weights(path)
    else:
        write_keras2_weights(source, path)
    model = build_model("patchgan", input_shape=SMALL)

    with pytest.raises(ModelError, match="block1_conv/kernel"):
        load_weights_file(model, path)


def test_unknown_model_name_is_a_model_error():
    with pytest.raises(ModelError, match="unknown model 'resnet'; expected one of"):
        resolve_model("resnet", demo_weights=False)


def test_missing_keras_file_is_a_model_error(tmp_path):
    with pytest.raises(ModelError, match="model file not found"):
        resolve_model(Path(tmp_path / "gone.keras"))


def test_a_broken_keras_file_is_a_model_error(tmp_path):
    path = tmp_path / "broken.keras"
    path.write_bytes(b"not a zip")

    with pytest.raises(ModelError, match="cannot load .*broken.keras as a Keras 3"):
        resolve_model(path)
