"""The Keras reference, run fresh: host side only, TensorFlow on demand.

``edgekit bench`` uses the bundle's ``reference.npz`` unless
``--reference keras`` asks for a fresh run; only then are Keras and
TensorFlow imported. The model is rebuilt the way ``edgekit export`` built
it (a built-in name from the manifest, or the user's ``--model`` file and
``--weights``), and refused if its weights digest differs from the one the
manifest recorded, so the fresh reference is of the exported model.
"""

from pathlib import Path
from typing import Any

import numpy as np

from edgekit.bundle import Manifest
from edgekit.errors import DependencyError, ModelError


def keras_reference(
    manifest: Manifest,
    inputs: dict[str, np.ndarray],
    model: str | None = None,
    weights: Path | None = None,
) -> dict[str, np.ndarray]:
    """Run the bundle's Keras model on the reference inputs.

    Args:
        manifest: the bundle's manifest (model name, digest, output names).
        inputs: the reference inputs, (N, ...) each.
        model: a built-in name or ``.keras`` path; defaults to the
            manifest's model name.
        weights: a weights file, as given to ``edgekit export --weights``.

    Returns:
        The float outputs keyed by the manifest's output names.
    """
    try:
        import keras  # noqa: F401 - only to say clearly when it is missing
    except ImportError:
        raise DependencyError(
            "--reference keras needs Keras and TensorFlow, which do not import here",
            "install them with: pip install 'edgekit[host]', or drop --reference",
        ) from None

    loaded = _load(manifest, model, weights)
    expected = manifest.model.get("sha256")
    if expected and loaded.weights_sha256 != expected:
        raise ModelError(
            f"the Keras model {loaded.name} has weights {loaded.weights_sha256[:12]}, "
            f"but the bundle was exported from {expected[:12]}",
            "pass the --model and --weights the bundle was exported with",
        )

    values = list(inputs.values())
    result = loaded.model.predict(
        values[0] if len(values) == 1 else values, batch_size=1, verbose=0
    )
    result = result if isinstance(result, list | tuple) else [result]
    names = [o["name"] for o in manifest.outputs]
    return {
        name: np.asarray(array, dtype=np.float32)
        for name, array in zip(names, result, strict=True)
    }


def _load(manifest: Manifest, model: str | None, weights: Path | None) -> Any:
    from edgekit.models import resolve_model

    name = model or manifest.model.get("name")
    if not name:
        raise ModelError(
            "the manifest names no model to rebuild", "pass --model with a .keras file"
        )
    shape = [int(d) for d in manifest.model.get("input_shape", [])][-3:]
    source = Path(name) if str(name).endswith(".keras") else name
    kwargs: dict[str, Any] = {"weights": weights}
    if len(shape) == 3 and not isinstance(source, Path):
        kwargs["input_shape"] = tuple(shape)
    return resolve_model(source, **kwargs)
