"""The layer table behind ``edgekit info``: shapes, parameters and MACs.

MACs are multiply-accumulates per image of the Conv2D and Dense layers.
BatchNormalization folds into the preceding convolution when exported, and
the elementwise layers do no multiply-accumulates, so both count zero.
"""

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import keras


@dataclass(frozen=True)
class LayerRow:
    """One layer of the table, or the totals row (``kind`` is ``"total"``)."""

    name: str
    kind: str
    config: str
    input_shape: tuple | None
    output_shape: tuple | None
    params: int
    macs: int

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("input_shape", "output_shape"):
            if data[key] is not None:
                data[key] = list(data[key])
        return data


def describe(model: "keras.Model") -> list[LayerRow]:
    """One row per layer of ``model`` and a final totals row.

    Args:
        model: a built functional Keras model.

    Returns:
        The rows, in the model's layer order, then ``total``.
    """
    rows = [_row(layer) for layer in model.layers]
    rows.append(
        LayerRow(
            name="total",
            kind="total",
            config="",
            input_shape=None,
            output_shape=None,
            params=int(model.count_params()),
            macs=sum(row.macs for row in rows),
        )
    )
    return rows


def _row(layer) -> LayerRow:
    input_shape = _shape(layer, "input")
    output_shape = _shape(layer, "output")
    return LayerRow(
        name=layer.name,
        kind=type(layer).__name__,
        config=_config_text(layer),
        input_shape=input_shape,
        output_shape=output_shape,
        params=int(layer.count_params()),
        macs=_macs(layer, input_shape, output_shape),
    )


def _shape(layer, which: str) -> tuple | None:
    import keras

    # An InputLayer has no input tensor of its own, and a layer called more
    # than once has no single shape to show.
    if which == "input" and isinstance(layer, keras.layers.InputLayer):
        return None
    try:
        tensor = getattr(layer, which)
    except (AttributeError, ValueError):
        return None
    if isinstance(tensor, list | tuple):
        return tuple(tuple(t.shape) for t in tensor)
    return tuple(tensor.shape)


def _config_text(layer) -> str:
    config = layer.get_config()
    kind = type(layer).__name__
    if kind == "Conv2D":
        kernel = "x".join(str(k) for k in config["kernel_size"])
        stride = "x".join(str(s) for s in config["strides"])
        return (
            f"{config['filters']} filters, kernel {kernel}, stride {stride}, "
            f"padding {config['padding']}"
        )
    if kind == "Dense":
        bias = "" if config["use_bias"] else ", no bias"
        return f"{config['units']} units, {config['activation']}{bias}"
    if kind == "LeakyReLU":
        return f"alpha {config['negative_slope']:g}"
    if kind == "BatchNormalization":
        return f"momentum {config['momentum']:g}, epsilon {config['epsilon']:g}"
    if kind == "Reshape":
        return f"to {tuple(config['target_shape'])}"
    if kind == "MinibatchDiscrimination":
        return f"{config['kernels']} kernels x {config['kernel_dim']}, L1"
    return ""


def _macs(layer, input_shape: tuple | None, output_shape: tuple | None) -> int:
    import keras

    kind = type(layer).__name__
    if isinstance(layer, keras.Model):
        # A sub-model of a user's model: count what is inside it.
        return sum(row.macs for row in describe(layer)[:-1])
    if kind == "Conv2D" and input_shape and output_shape:
        height, width, filters = output_shape[-3:]
        kernel_h, kernel_w = layer.kernel_size
        channels = input_shape[-1] // layer.groups
        return int(height * width * kernel_h * kernel_w * channels * filters)
    if kind == "Dense" and input_shape and None not in input_shape[1:]:
        # A Dense on (N, ..., D) applies its kernel at every leading position.
        positions = int(np.prod(input_shape[1:-1], dtype=np.int64))
        return positions * int(input_shape[-1]) * layer.units
    return 0
