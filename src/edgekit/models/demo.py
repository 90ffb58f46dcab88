"""Demo weights: a seeded network made decisive by real photographs.

No trained weights ship with the spec, and a freshly initialised network
answers about 0.5 for every image because its BatchNorm statistics are the
defaults (mean 0, variance 1) rather than those of real activations. The
demo weights keep the seeded initialisation and

1. set each BatchNorm's moving mean and variance to the population
   statistics, per channel, of its input on the calibration photographs,
   block by block, so each BatchNorm sees the activations produced with the
   earlier ones already set;
2. centre the bias of the verdict Dense so the calibration photographs split
   evenly between the two classes (median logit difference 0);
3. for ``pix2pix``, do the same for the final head, after scaling the
   head's weights on the PatchGAN softmax (see ``_centre_pix2pix_head``).

The result is not a trained discriminator; it is a network whose verdicts
are decisive and depend on the image, which is what a quantization parity
check needs. The weights are cached, keyed by everything they depend on.
"""

import contextlib
import hashlib
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from edgekit.errors import ModelError

if TYPE_CHECKING:
    import keras

log = logging.getLogger(__name__)

# Bump when the recipe changes, so that older cached files are not reused.
RECIPE_VERSION = 1
BATCH = 16


def cache_directory() -> Path:
    """Where demo weights are cached: ``$EDGEKIT_CACHE``, else the XDG cache."""
    if os.environ.get("EDGEKIT_CACHE"):
        return Path(os.environ["EDGEKIT_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "edgekit"


def apply_demo_weights(
    model: "keras.Model", name: str, seed: int, calibration: Path
) -> int:
    """Give a freshly built model its demo weights, from the cache if present.

    Args:
        model: a built-in model as ``build_model`` returns it.
        name: its architecture, ``patchgan`` or ``pix2pix``.
        seed: the seed it was built with.
        calibration: the calibration photographs' directory.

    Returns:
        The number of calibration photographs the statistics came from.
    """
    from edgekit.images import Preprocessing, load_images

    height, width, channels = model.input_shape[1:]
    images = load_images(
        calibration, Preprocessing(height=height, width=width, channels=channels)
    )
    path = _cache_path(name, seed, (height, width, channels), images.sha256)

    if _load_cached(model, path):
        log.info("demo weights loaded from cache %s", path)
        return images.count

    log.info(
        "computing demo weights for %s on %d calibration photographs",
        name,
        images.count,
    )
    started = time.perf_counter()
    compute_demo_weights(model, images.arrays)
    log.info("demo weights computed in %.1f s", time.perf_counter() - started)

    _save_cached(model, path)
    return images.count


def compute_demo_weights(model: "keras.Model", images: np.ndarray) -> None:
    """Measure BatchNorm statistics on ``images`` and centre the verdict.

    Args:
        model: a built-in model (its layers named as ``architectures`` does).
        images: (N, H, W, C) float32 photographs in [0, 1].
    """
    if len(images) < 2:
        raise ModelError(
            f"the demo weights need at least 2 calibration photographs, got "
            f"{len(images)}",
            "pass --calibration a directory of photographs",
        )

    features = _set_batchnorm_statistics(model, images)
    patch_logits = _centre_dense(model.get_layer(_patch_head(model)), features)

    if "minibatch_l1" in [layer.name for layer in model.layers]:
        _centre_pix2pix_head(model, patch_logits)


def _patch_head(model: "keras.Model") -> str:
    names = [layer.name for layer in model.layers]
    return "patch_verdict" if "patch_verdict" in names else "verdict"


def _set_batchnorm_statistics(model: "keras.Model", images: np.ndarray) -> np.ndarray:
    """Set every BatchNorm's statistics in order; return the features."""
    import keras

    trunk = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        trunk.append(layer)
        if layer.name == "features":
            break

    # Run the layers up to each BatchNorm, measure its input, set it, go on.
    activations, pending = images, []
    for layer in trunk:
        if isinstance(layer, keras.layers.BatchNormalization):
            activations = _run(pending, activations)
            mean, variance = _channel_statistics(activations)
            layer.moving_mean.assign(mean)
            layer.moving_variance.assign(variance)
            pending = []
        pending.append(layer)

    return _run(pending, activations)


def _run(layers: list, inputs: np.ndarray) -> np.ndarray:
    import keras

    outputs = []
    for start in range(0, len(inputs), BATCH):
        x = inputs[start : start + BATCH]
        for layer in layers:
            x = layer(x, training=False)
        outputs.append(keras.ops.convert_to_numpy(x))
    return np.concatenate(outputs)


def _channel_statistics(activations: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel population mean and variance, in float64, chunk by chunk.

    Two passes (mean, then squared deviations) keep the variance accurate;
    chunks keep a float64 copy of the largest activations (about 500 MB in
    float32 for 240 photographs) from being made all at once.
    """
    channels = activations.shape[-1]
    chunks = range(0, len(activations), BATCH)
    count = activations[..., 0].size

    total = np.zeros(channels)
    for start in chunks:
        chunk = activations[start : start + BATCH].reshape(-1, channels)
        total += chunk.sum(axis=0, dtype=np.float64)
    mean = total / count

    squares = np.zeros(channels)
    for start in chunks:
        chunk = activations[start : start + BATCH].reshape(-1, channels)
        squares += ((chunk.astype(np.float64) - mean) ** 2).sum(axis=0)
    return mean, squares / count


def _centre_dense(dense, inputs: np.ndarray) -> np.ndarray:
    """Shift a 2-unit Dense's bias so the median logit difference is 0.

    Returns:
        The logits after the shift, (N, 2).
    """
    kernel, bias = (np.asarray(w, dtype=np.float64) for w in dense.get_weights())
    logits = inputs.astype(np.float64) @ kernel + bias
    shift = np.median(logits[:, 1] - logits[:, 0])

    # Move the two biases apart symmetrically; only their difference matters.
    bias = bias + np.array([shift / 2, -shift / 2])
    dense.set_weights([kernel.astype(np.float32), bias.astype(np.float32)])
    return logits + np.array([shift / 2, -shift / 2])


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def _centre_pix2pix_head(model: "keras.Model", patch_logits: np.ndarray) -> None:
    """Make the final head as decisive as the PatchGAN, then centre it.

    At batch size 1 the minibatch features are all ones, so the final Dense
    is an affine map of the PatchGAN softmax ``p``. A softmax lies in [0, 1]
    and the seeded head weights on it are ~0.2, so the head's logit difference
    hardly moves between images and every verdict sits near 0.5 once centred.
    The rows of the kernel that read ``p`` are therefore scaled so that the
    head's median absolute logit difference equals the PatchGAN's (before
    centring both are measured about their medians). The rows that read the
    minibatch features are left as they are.
    """
    head = model.get_layer("verdict")
    kernel, bias = head.get_weights()
    kernels = model.get_layer("minibatch_l1").kernels
    softmax = _softmax(patch_logits)
    inputs = np.concatenate([np.ones((len(softmax), kernels)), softmax], axis=1)

    difference = inputs @ (kernel[:, 1] - kernel[:, 0]).astype(np.float64)
    spread = np.median(np.abs(difference - np.median(difference)))
    patch_difference = patch_logits[:, 1] - patch_logits[:, 0]
    target = np.median(np.abs(patch_difference - np.median(patch_difference)))

    if spread > 0:
        kernel = kernel.copy()
        kernel[kernels:] *= target / spread
        head.set_weights([kernel, bias])

    _centre_dense(head, inputs)


def _cache_path(name: str, seed: int, shape: tuple[int, ...], images_sha: str) -> Path:
    key = f"{name}|{seed}|{shape}|{images_sha}|{RECIPE_VERSION}"
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]
    shape_text = "x".join(str(d) for d in shape)
    return (
        cache_directory() / f"demo-{name}-seed{seed}-{shape_text}-{digest}.weights.h5"
    )


def _load_cached(model: "keras.Model", path: Path) -> bool:
    if not path.is_file():
        return False

    # A failed load can leave some variables overwritten; put them back.
    fresh = model.get_weights()
    try:
        model.load_weights(path)
    except Exception as error:  # a truncated or foreign file: recompute it
        log.warning("ignoring unreadable cached demo weights %s (%s)", path, error)
        model.set_weights(fresh)
        return False
    return True


def _save_cached(model: "keras.Model", path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(
            prefix=".demo-", suffix=".weights.h5", dir=path.parent
        )
        os.close(handle)
    except OSError as error:
        # The weights are in the model already; only the cache is lost.
        log.warning("cannot cache demo weights in %s: %s", path.parent, error)
        return

    # Written aside and renamed, so a concurrent reader never sees half a file.
    try:
        model.save_weights(temporary, overwrite=True)
        os.replace(temporary, path)
    except OSError as error:
        log.warning("cannot cache demo weights in %s: %s", path.parent, error)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
