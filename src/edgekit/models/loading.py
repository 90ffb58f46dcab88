"""Resolving what the user asked for into one loaded Keras model.

A model is a built-in name (``patchgan``, ``pix2pix``) or the path of a
user's ``.keras`` file; weights are the built-in demo weights, the seeded
initialisation, or a user's weights file. ``resolve_model`` is the one place
where these choices and their defaults are settled.
"""

import contextlib
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from edgekit.errors import ModelError
from edgekit.models.architectures import (
    BUILTIN_MODELS,
    DEFAULT_INPUT_SHAPE,
    build_model,
)
from edgekit.models.weights import load_weights_file, weights_sha256

if TYPE_CHECKING:
    import keras

log = logging.getLogger(__name__)

DEFAULT_CALIBRATION = Path("calibration/images")


@dataclass
class LoadedModel:
    """A model ready to export, and where its weights came from.

    Attributes:
        model: the Keras model.
        name: ``patchgan``, ``pix2pix``, or the ``.keras`` file's stem.
        source: a sentence saying what the model and its weights are.
        weights_sha256: a digest of every weight, stable across machines.
        trained: False for demo or fresh weights, None when unknown.
    """

    model: "keras.Model"
    name: str
    source: str
    weights_sha256: str
    trained: bool | None


def resolve_model(
    model: str | Path | None = None,
    *,
    weights: Path | None = None,
    seed: int = 0,
    calibration: Path | None = None,
    input_shape: tuple[int, int, int] = DEFAULT_INPUT_SHAPE,
    batch_size: int | None = 1,
    demo_weights: bool = True,
) -> LoadedModel:
    """Build or load a model and its weights.

    Args:
        model: a built-in name or a ``.keras`` path; None means ``patchgan``.
        weights: a weights file to load into the model.
        seed: initialisation seed of a built-in model.
        calibration: photographs for the demo weights; None means
            ``calibration/images``.
        input_shape: (height, width, channels) of a built-in model.
        batch_size: static batch of a built-in model, None for dynamic.
        demo_weights: give a built-in model without ``weights`` the demo
            weights; when False it keeps its fresh seeded initialisation.

    Raises:
        ModelError: an unknown name, a missing or unreadable file, or
            weights that do not fit.
    """
    model = "patchgan" if model is None else model
    if isinstance(model, str) and model in BUILTIN_MODELS:
        return _resolve_builtin(
            model,
            weights=weights,
            seed=seed,
            calibration=calibration,
            input_shape=input_shape,
            batch_size=batch_size,
            demo_weights=demo_weights,
        )

    path = Path(model)
    if path.suffix != ".keras":
        raise ModelError(
            f"unknown model {str(model)!r}; expected one of "
            f"{', '.join(BUILTIN_MODELS)} or a path to a .keras file"
        )
    return _resolve_user_model(path, weights)


def _resolve_builtin(
    name: str,
    *,
    weights: Path | None,
    seed: int,
    calibration: Path | None,
    input_shape: tuple[int, int, int],
    batch_size: int | None,
    demo_weights: bool,
) -> LoadedModel:
    with _quiet_tensorflow():
        model = build_model(
            name, seed=seed, input_shape=input_shape, batch_size=batch_size
        )

    if weights is not None:
        load_weights_file(model, weights)
        source = f"user weights {weights} (built-in {name} architecture)"
        trained = None
    elif demo_weights:
        from edgekit.models.demo import apply_demo_weights

        count = apply_demo_weights(
            model, name, seed, calibration or DEFAULT_CALIBRATION
        )
        source = (
            f"built-in {name}, seed {seed}, demo weights (BatchNorm statistics "
            f"from {count} calibration photographs; not a trained discriminator)"
        )
        trained = False
    else:
        source = (
            f"built-in {name}, seed {seed}, fresh initialisation (default "
            "BatchNorm statistics; not a trained discriminator)"
        )
        trained = False

    return LoadedModel(model, name, source, weights_sha256(model), trained)


def _resolve_user_model(path: Path, weights: Path | None) -> LoadedModel:
    model = load_keras_file(path)
    source = f"user model {path}"
    if weights is not None:
        load_weights_file(model, weights)
        source += f", user weights {weights}"
    return LoadedModel(model, path.stem, source, weights_sha256(model), None)


def load_keras_file(path: Path) -> "keras.Model":
    """Load a ``.keras`` file in safe mode, with edgekit's layers registered.

    Raises:
        ModelError: the file is missing or Keras cannot load it.
    """
    if not path.is_file():
        raise ModelError(
            f"model file not found: {path}",
            "pass a built-in model name or the path of a .keras file",
        )

    with _quiet_tensorflow():
        import keras

        # Registers MinibatchDiscrimination so files holding it deserialize.
        import edgekit.models.minibatch  # noqa: F401

    try:
        with _quiet_tensorflow():
            return keras.saving.load_model(path, safe_mode=True)
    except Exception as error:  # Keras raises many types for one bad file.
        reason = " ".join(str(error).split())[:300]
        raise ModelError(
            f"cannot load {path} as a Keras 3 model ({type(error).__name__}: {reason})",
            "pass a .keras file saved by Keras 3 with model.save",
        ) from None


def save_keras_file(model: "keras.Model", path: Path) -> None:
    """Save ``model`` to ``path`` atomically: a temporary file, then a rename.

    Raises:
        ModelError: the directory cannot be written.
    """
    path = Path(path)
    if path.suffix != ".keras":
        raise ModelError(f"the output must end in .keras, got {path}")

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(
            prefix=f".{path.stem}.", suffix=".keras", dir=path.parent
        )
        os.close(handle)
    except OSError as error:
        raise ModelError(f"cannot write {path}: {error.strerror}") from None

    # A reader never sees a half-written file: the rename is atomic.
    try:
        with _quiet_tensorflow():
            model.save(temporary)
        os.replace(temporary, path)
    except OSError as error:
        raise ModelError(f"cannot write {path}: {error.strerror}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)


@contextlib.contextmanager
def _quiet_tensorflow():
    from edgekit.logs import captured_native_output

    with captured_native_output("tensorflow"):
        yield
