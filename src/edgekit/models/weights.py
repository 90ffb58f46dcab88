"""Loading weights files into a model, and fingerprinting a model's weights.

Two layouts are read, recognised by their content rather than their name:

* Keras 3's ``.weights.h5`` (``model.save_weights`` in Keras 3): variables
  stored by layer path.
* Keras 2's ``.h5`` (``model.save_weights`` in Keras 2, as the chapter's
  training script writes it): a root attribute ``layer_names``, one group per
  layer with a ``weight_names`` attribute. These load in topological order,
  so Keras 2's automatic layer names need not match ours.
"""

import contextlib
import hashlib
import logging
import re
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from edgekit.errors import ModelError

if TYPE_CHECKING:
    import keras

log = logging.getLogger(__name__)

WEIGHTS_HINT = (
    "pass --weights a Keras 3 .weights.h5 or a Keras 2 .h5 file saved with "
    "model.save_weights from the same architecture"
)


def weights_sha256(model: "keras.Model") -> str:
    """A sha256 over every weight of ``model``: its path, shape and bytes.

    Arrays are hashed as little-endian so the digest is the same on every
    machine, and in the model's own variable order.
    """
    digest = hashlib.sha256()
    for variable in model.weights:
        array = np.asarray(variable.numpy())
        array = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
        digest.update(variable.path.encode("utf-8"))
        digest.update(str(array.shape).encode("ascii"))
        digest.update(array.tobytes())
    return digest.hexdigest()


def load_weights_file(model: "keras.Model", path: Path) -> None:
    """Load a Keras 3 or Keras 2 weights file into ``model``, in place.

    Raises:
        ModelError: the file is missing, is not a Keras weights file, or holds
            weights of another architecture.
    """
    path = Path(path)
    layout = _layout(path)

    try:
        if layout == "keras3":
            _load_keras3(model, path)
        else:
            _load_keras2(model, path)
    except ValueError as error:
        raise ModelError(
            f"the weights in {path} do not fit the {model.name} model "
            f"({_reason(error)})",
            WEIGHTS_HINT,
        ) from None

    log.info("loaded %s weights from %s", layout, path)


def _reason(error: Exception) -> str:
    # Keras's messages run over several lines; keep the one that says which
    # layer and what it expected, not the summary or the list of objects.
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    useful = [
        line
        for line in lines
        if not line.startswith(("A total of", "List of objects", "[<"))
    ]
    reason = (useful or lines or [type(error).__name__])[0]

    # Keras appends the variable itself, values included, to shape errors;
    # keep only its path.
    reason, _, target = reason.partition(" Target variable:")
    path = re.search(r"path=([^,\s]+)", target)
    if path:
        reason = f"{reason.rstrip('.')} for {path.group(1)}"
    return reason if len(reason) <= 240 else reason[:237] + "..."


def _layout(path: Path) -> str:
    import h5py

    if not path.is_file():
        raise ModelError(f"weights file not found: {path}", WEIGHTS_HINT)
    if not h5py.is_hdf5(path):
        raise ModelError(f"{path} is not an HDF5 weights file", WEIGHTS_HINT)

    with h5py.File(path, "r") as handle:
        if "layer_names" in handle.attrs:
            return "keras2"
        if "model_weights" in handle and "layer_names" in handle["model_weights"].attrs:
            return "keras2"
        if "layers" in handle or "vars" in handle:
            return "keras3"

    raise ModelError(
        f"{path} is an HDF5 file but holds no Keras weights (no 'layer_names' "
        "attribute and no 'layers' group)",
        WEIGHTS_HINT,
    )


def _load_keras3(model: "keras.Model", path: Path) -> None:
    # Keras picks its reader from the file name; give it the name it expects.
    with tempfile.TemporaryDirectory() as scratch:
        target = path
        if not path.name.endswith(".weights.h5"):
            target = Path(scratch) / "weights.weights.h5"
            target.symlink_to(path.resolve())
        with _no_keras_warnings():
            model.load_weights(target)


def _load_keras2(model: "keras.Model", path: Path) -> None:
    import h5py

    with tempfile.TemporaryDirectory() as scratch:
        target = path
        if path.suffix not in (".h5", ".hdf5") or path.name.endswith(".weights.h5"):
            target = Path(scratch) / "legacy.h5"
            target.symlink_to(path.resolve())
        try:
            with _no_keras_warnings():
                model.load_weights(target)
            return
        except ValueError as error:
            if "Layer count mismatch" not in str(error):
                raise

    # A Keras 2 model that nests the PatchGAN as a sub-model stores all its
    # weights under one group, so the layer counts differ while the flat
    # sequence of arrays still matches ours; load that sequence instead.
    with h5py.File(path, "r") as handle:
        arrays = _flat_legacy_arrays(handle)
    _assign_in_order(model, arrays)


@contextlib.contextmanager
def _no_keras_warnings() -> Iterator[None]:
    # A mismatch raises anyway; Keras's warnings on the way repeat it at length.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        yield


def _flat_legacy_arrays(handle) -> list[np.ndarray]:
    from keras.src.legacy.saving import legacy_h5_format as legacy

    group = handle["model_weights"] if "layer_names" not in handle.attrs else handle
    arrays = []
    for layer_name in legacy.load_attributes_from_hdf5_group(group, "layer_names"):
        layer_group = group[layer_name]
        names = legacy.load_attributes_from_hdf5_group(layer_group, "weight_names")
        arrays.extend(np.asarray(layer_group[name]) for name in names)
    return arrays


def _assign_in_order(model: "keras.Model", arrays: list[np.ndarray]) -> None:
    # Keras 2 stored each layer's trainable weights before its non-trainable
    # ones (BatchNorm: gamma, beta, then the moving statistics).
    variables = []
    for layer in model.layers:
        variables.extend(layer.trainable_weights + layer.non_trainable_weights)

    if len(arrays) != len(variables):
        raise ValueError(
            f"the file holds {len(arrays)} weight arrays, the model has "
            f"{len(variables)}"
        )
    for index, (variable, array) in enumerate(zip(variables, arrays, strict=True)):
        if tuple(variable.shape) != array.shape:
            raise ValueError(
                f"weight #{index} ({variable.path}) has shape "
                f"{tuple(variable.shape)}, the file's has {array.shape}"
            )
    for variable, array in zip(variables, arrays, strict=True):
        variable.assign(array)
