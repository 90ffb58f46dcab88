"""The chapter's full discriminator: PatchGAN, minibatch head, safe round trip."""

import keras
import numpy as np
import pytest

from edgekit.models import build_model, describe, load_keras_file, save_keras_file
from edgekit.models.minibatch import MinibatchDiscrimination

from .conftest import SMALL


def test_head_layers_follow_the_chapter(pix2pix):
    projection = pix2pix.get_layer("minibatch_dense")
    reshape = pix2pix.get_layer("minibatch_reshape")
    concat = pix2pix.get_layer("head_concat")
    verdict = pix2pix.get_layer("verdict")

    assert projection.units == 500
    assert not projection.use_bias
    assert tuple(projection.input.shape) == (1, 512)
    assert tuple(reshape.output.shape) == (1, 100, 5)
    assert isinstance(pix2pix.get_layer("minibatch_l1"), MinibatchDiscrimination)
    assert [tuple(t.shape) for t in concat.input] == [(1, 100), (1, 2)]
    assert verdict.units == 2
    assert verdict.activation.__name__ == "softmax"
    assert pix2pix.get_layer("patch_verdict").activation.__name__ == "softmax"


def test_outputs_and_size(pix2pix):
    assert pix2pix.output_names == ["verdict", "features"]
    assert pix2pix.count_params() == 19_546_562 + 500 * 512 + 102 * 2 + 2
    assert describe(pix2pix)[-1].macs == 1_983_906_816 + 512 * 500 + 102 * 2


def test_minibatch_kernel_matches_its_definition():
    rng = np.random.default_rng(0)
    m = rng.normal(size=(4, 100, 5)).astype(np.float32)

    expected = np.zeros((4, 100))
    for i in range(4):
        for j in range(4):
            expected[i] += np.exp(-np.abs(m[i] - m[j]).sum(axis=-1))
    result = keras.ops.convert_to_numpy(MinibatchDiscrimination(100, 5)(m))

    np.testing.assert_allclose(result, expected, rtol=1e-5)


def test_at_batch_one_the_minibatch_features_are_all_ones():
    m = np.random.default_rng(1).normal(size=(1, 100, 5)).astype(np.float32)

    result = keras.ops.convert_to_numpy(MinibatchDiscrimination(100, 5)(m))

    np.testing.assert_array_equal(result, np.ones((1, 100)))


@pytest.mark.parametrize("name", ["patchgan", "pix2pix"])
def test_keras_file_round_trips_in_safe_mode(tmp_path, name):
    model = build_model(name, seed=3, input_shape=SMALL)
    path = tmp_path / f"{name}.keras"
    image = np.random.default_rng(2).random((1, *SMALL), dtype=np.float32)

    save_keras_file(model, path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    again = load_keras_file(path)

    assert loaded.output_names == ["verdict", "features"]
    for before, after in zip(model(image), again(image), strict=True):
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(before), keras.ops.convert_to_numpy(after)
        )
    assert not list(tmp_path.glob(".*"))
