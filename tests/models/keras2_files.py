"""Writing weights files in Keras 2's ``save_weights`` layout, with h5py.

Keras 2 named layers after their class with a counter (``conv2d_3``) and
stored, per layer, the trainable weights before the non-trainable ones under
``<layer>/<weight>:0``. Weightless layers appear with empty ``weight_names``.
"""

from pathlib import Path

import h5py
import numpy as np

KERAS2_PREFIX = {
    "InputLayer": "input",
    "Conv2D": "conv2d",
    "BatchNormalization": "batch_normalization",
    "LeakyReLU": "leaky_re_lu",
    "Flatten": "flatten",
    "Dense": "dense",
    "Reshape": "reshape",
    "MinibatchDiscrimination": "lambda",
    "Concatenate": "concatenate",
}
KERAS2_WEIGHT = {
    "kernel": "kernel",
    "bias": "bias",
    "gamma": "gamma",
    "beta": "beta",
    "moving_mean": "moving_mean",
    "moving_variance": "moving_variance",
}


def _keras2_layers(model) -> list[tuple[str, list[tuple[str, np.ndarray]]]]:
    counters: dict[str, int] = {}
    layers = []
    for layer in model.layers:
        prefix = KERAS2_PREFIX[type(layer).__name__]
        counters[prefix] = counters.get(prefix, 0) + 1
        name = f"{prefix}_{counters[prefix]}"
        weights = [
            (f"{name}/{KERAS2_WEIGHT[v.name]}:0", np.asarray(v.numpy()))
            for v in layer.trainable_weights + layer.non_trainable_weights
        ]
        layers.append((name, weights))
    return layers


def _write_group(group, layers) -> None:
    group.attrs["layer_names"] = np.array([n.encode() for n, _ in layers])
    for name, weights in layers:
        layer_group = group.create_group(name)
        layer_group.attrs["weight_names"] = np.array(
            [w.encode() for w, _ in weights], dtype="S"
        )
        for weight_name, array in weights:
            layer_group.create_dataset(weight_name, data=array)


def write_keras2_weights(model, path: Path, nested: bool = False) -> None:
    """Write ``model``'s weights as Keras 2's ``model.save_weights`` would.

    With ``nested``, every layer up to ``features`` is stored inside one
    sub-model group, as when the PatchGAN is a model called by the full
    discriminator.
    """
    layers = _keras2_layers(model)
    with h5py.File(path, "w") as handle:
        handle.attrs["backend"] = b"tensorflow"
        handle.attrs["keras_version"] = b"2.4.0"
        if not nested:
            _write_group(handle, layers)
            return

        cut = [layer.name for layer in model.layers].index("features") + 1
        inner = [w for _, weights in layers[:cut] for w in weights]
        outer = [("input_9", []), ("model_1", inner), *layers[cut:]]
        _write_group(handle, outer)
