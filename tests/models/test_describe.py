"""The layer table on models that are not the built-in ones."""

import keras

from edgekit.models import build_model, describe

from .conftest import SMALL


def test_a_user_model_nesting_the_patchgan_counts_its_macs():
    inner = build_model("patchgan", input_shape=SMALL)
    image = keras.Input(SMALL, batch_size=1)
    verdict, features = inner(image)
    head = keras.layers.Dense(3, name="head")(keras.layers.Reshape((2, 256))(features))
    outer = keras.Model(image, [verdict, head])

    rows = {row.name: row for row in describe(outer)}

    assert rows["patchgan"].macs == describe(inner)[-1].macs
    assert rows["patchgan"].output_shape == ((1, 2), (1, 512))
    assert rows["head"].macs == 2 * 256 * 3
    assert rows["total"].params == inner.count_params() + 256 * 3 + 3
