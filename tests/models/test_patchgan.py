"""The PatchGAN against the spec, layer by layer, with its errata corrected."""

import subprocess
import sys

import keras
import numpy as np
import pytest

from edgekit.models import build_model, describe

from .conftest import SMALL

# (block, filters, input shape, output shape) with the spec's shape slips
# corrected: block 1 halves to 128, block 8 reads (2, 2, 512).
BLOCKS = [
    (1, 64, (1, 256, 256, 1), (1, 128, 128, 64)),
    (2, 128, (1, 128, 128, 64), (1, 64, 64, 128)),
    (3, 256, (1, 64, 64, 128), (1, 32, 32, 256)),
    (4, 512, (1, 32, 32, 256), (1, 16, 16, 512)),
    (5, 512, (1, 16, 16, 512), (1, 8, 8, 512)),
    (6, 512, (1, 8, 8, 512), (1, 4, 4, 512)),
    (7, 512, (1, 4, 4, 512), (1, 2, 2, 512)),
    (8, 512, (1, 2, 2, 512), (1, 1, 1, 512)),
]


@pytest.mark.parametrize(("block", "filters", "in_shape", "out_shape"), BLOCKS)
def test_each_block_matches_the_spec(patchgan, block, filters, in_shape, out_shape):
    conv = patchgan.get_layer(f"block{block}_conv")
    lrelu = patchgan.get_layer(f"block{block}_lrelu")

    assert isinstance(conv, keras.layers.Conv2D)
    assert conv.filters == filters
    assert conv.kernel_size == (4, 4)
    assert conv.strides == (2, 2)
    assert conv.padding == "same"
    assert conv.use_bias
    assert tuple(conv.input.shape) == in_shape
    assert tuple(conv.output.shape) == out_shape
    assert isinstance(lrelu, keras.layers.LeakyReLU)
    assert lrelu.negative_slope == pytest.approx(0.2)
    assert tuple(lrelu.output.shape) == out_shape


def test_batchnorm_sits_between_conv_and_activation_in_blocks_2_to_8(patchgan):
    names = [layer.name for layer in patchgan.layers]

    assert "block1_bn" not in names
    for block in range(2, 9):
        conv = names.index(f"block{block}_conv")
        assert names[conv + 1 : conv + 3] == [f"block{block}_bn", f"block{block}_lrelu"]
        bn = patchgan.get_layer(f"block{block}_bn")
        assert isinstance(bn, keras.layers.BatchNormalization)


def test_head_is_flatten_then_dense_softmax_on_512_features(patchgan):
    features = patchgan.get_layer("features")
    verdict = patchgan.get_layer("verdict")

    assert isinstance(features, keras.layers.Flatten)
    assert tuple(features.output.shape) == (1, 512)
    assert isinstance(verdict, keras.layers.Dense)
    assert verdict.units == 2
    assert verdict.activation.__name__ == "softmax"
    assert tuple(verdict.input.shape) == (1, 512)


def test_input_and_outputs_are_named_and_shaped(patchgan):
    assert patchgan.inputs[0].name == "image"
    assert tuple(patchgan.inputs[0].shape) == (1, 256, 256, 1)
    assert patchgan.output_names == ["verdict", "features"]
    assert [tuple(o.shape) for o in patchgan.outputs] == [(1, 2), (1, 512)]


def test_parameters_and_macs_match_the_spec(patchgan):
    total = describe(patchgan)[-1]

    assert patchgan.count_params() == 19_546_562
    assert total.params == 19_546_562
    assert total.macs == 1_983_906_816
    assert round(total.macs / 1e9, 2) == 1.98


def test_a_dynamic_batch_and_a_small_input_still_work():
    model = build_model("patchgan", input_shape=SMALL, batch_size=None)
    verdict, features = model(np.zeros((3, *SMALL), np.float32))

    assert tuple(model.inputs[0].shape) == (None, *SMALL)
    assert verdict.shape == (3, 2)
    assert features.shape == (3, 512)
    assert model.count_params() == 19_546_562


def test_the_same_seed_gives_the_same_weights_and_another_seed_does_not():
    first = build_model("patchgan", seed=7, input_shape=SMALL).get_weights()
    again = build_model("patchgan", seed=7, input_shape=SMALL).get_weights()
    other = build_model("patchgan", seed=8, input_shape=SMALL).get_weights()

    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not np.array_equal(first[0], other[0])


def test_importing_the_package_does_not_import_tensorflow():
    code = (
        "import sys, edgekit.models\n"
        "heavy = [m for m in ('tensorflow', 'keras') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
