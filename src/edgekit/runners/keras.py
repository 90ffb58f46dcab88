"""The Keras reference, run fresh: host side only, TensorFlow on demand.

``edgekit bench`` uses the bundle's ``reference.npz`` unless
``--reference keras`` asks for a fresh run; only then is Keras imported.
"""

from pathlib import Path

import numpy as np

from edgekit.errors import DependencyError, ModelError


def run_keras_reference(
    model_file: Path, inputs: dict[str, np.ndarray], output_names: list[str]
) -> dict[str, np.ndarray]:
    """Run a saved Keras model on the reference inputs, one sample at a time.

    Args:
        model_file: a ``.keras`` file.
        inputs: the reference inputs, (N, ...) each.
        output_names: the model's output names, in the model's output order.

    Returns:
        The float outputs keyed by name, (N, ...) each.
    """
    try:
        import keras
    except ImportError:
        raise DependencyError(
            "--reference keras needs Keras and TensorFlow, which do not import here",
            "install them with: pip install 'edgekit[host]', or drop --reference",
        ) from None

    if not Path(model_file).is_file():
        raise ModelError(f"Keras model {model_file} does not exist")

    model = keras.saving.load_model(model_file, compile=False)
    values = list(inputs.values())
    feed = values[0] if len(values) == 1 else values
    result = model.predict(feed, batch_size=1, verbose=0)
    if not isinstance(result, list | tuple):
        result = [result]
    return {
        name: np.asarray(array, dtype=np.float32)
        for name, array in zip(output_names, result, strict=True)
    }
