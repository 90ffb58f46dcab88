"""The spec's discriminators, and loading of user models and weights.

Importing this package does not import TensorFlow or Keras; the functions
import them when called.
"""

from edgekit.models.architectures import BUILTIN_MODELS, build_model
from edgekit.models.describe import LayerRow, describe
from edgekit.models.loading import (
    LoadedModel,
    load_keras_file,
    resolve_model,
    save_keras_file,
)
from edgekit.models.weights import load_weights_file, weights_sha256

__all__ = [
    "BUILTIN_MODELS",
    "LayerRow",
    "LoadedModel",
    "build_model",
    "describe",
    "load_keras_file",
    "load_weights_file",
    "resolve_model",
    "save_keras_file",
    "weights_sha256",
]
