"""The work every converting process does first: model, images, trace."""

from dataclasses import dataclass
from typing import Any

import numpy as np

from edgekit.export.common import Traced, trace_model
from edgekit.export.options import ExportOptions


@dataclass
class Prepared:
    """A resolved model, its calibration and held-out images, and its trace."""

    loaded: Any
    preprocessing: Any
    calibration: Any
    holdout: Any
    traced: Traced


def prepare(options: ExportOptions) -> Prepared:
    """Resolve the model, load its images, and trace it once.

    Args:
        options: resolved export options.
    """
    from edgekit.images import Preprocessing, load_images
    from edgekit.models import resolve_model

    size = options.input_size
    loaded = resolve_model(
        options.model,
        weights=options.weights,
        seed=options.seed,
        calibration=options.calibration,
        input_shape=(size, size, 1),
        batch_size=None if options.dynamic_batch else 1,
    )
    height, width, channels = loaded.model.input_shape[1:]
    prep = Preprocessing(height=height, width=width, channels=channels)
    calibration = load_images(options.calibration, prep, options.calibration_limit)
    held = load_images(options.holdout, prep, options.holdout_limit)
    traced = trace_model(loaded.model, dynamic_batch=options.dynamic_batch)
    return Prepared(loaded, prep, calibration, held, traced)


def reference_outputs(prepared: Prepared) -> dict[str, np.ndarray]:
    """The float Keras outputs for the held-out images, keyed by output name."""
    model = prepared.loaded.model
    arrays = prepared.holdout.arrays
    # A static batch of 1 is what the artifacts take, so the model is run
    # image by image through the traced function rather than in batches.
    results: dict[str, list[np.ndarray]] = {n: [] for n in prepared.traced.output_names}
    batch = 1 if model.input_shape[0] == 1 else 32
    for start in range(0, len(arrays), batch):
        outputs = prepared.traced.function(arrays[start : start + batch])
        for name in results:
            results[name].append(outputs[name].numpy())
    return {name: np.concatenate(parts) for name, parts in results.items()}
