"""The export's steps that start from a file and need no TensorFlow.

The TensorFlow process traces the model once and writes it twice: as a frozen
graph (``graph.pb``) and, through tf2onnx, as ``onnx-fp32.onnx``. From those
files OpenVINO converts and NNCF quantizes the IR, and ONNX Runtime quantizes
the ONNX model. A ``Task`` names one such step and carries its arguments as
plain JSON, so the same step runs in the TensorFlow process or in a helper
process (``export.worker``), which never imports TensorFlow and so is ready in
a second rather than after TensorFlow's import and a second trace.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.export.common import ModelIO, Produced


@dataclass(frozen=True)
class Task:
    """One step for ``run_task``.

    Attributes:
        name: a key of ``TASKS``.
        format: the bundle format the step produces artifacts of.
        args: the step's keyword arguments, JSON values only.
        last: whether the step ends its format's stage of the export.
    """

    name: str
    format: str
    args: dict[str, Any]
    last: bool = True


def openvino_task(
    out_dir: str,
    graph: str,
    io: dict[str, Any],
    precisions: list[str],
    calibration: str | None,
    preset: str,
) -> list[Produced]:
    """Convert the frozen graph to IR, and quantize it with NNCF for int8."""
    from edgekit.export.openvino import export_openvino

    return export_openvino(
        Path(graph),
        ModelIO(**io),
        Path(out_dir),
        precisions=precisions,
        calibration=_images(calibration),
        preset=preset,
    )


def onnx_int8_task(
    out_dir: str,
    float_model: str,
    io: dict[str, Any],
    calibration: str,
    opset: int,
    per_channel: bool,
    method: str,
) -> list[Produced]:
    """Quantize the fp32 ONNX model with ONNX Runtime."""
    from edgekit.export.onnx import quantize_onnx

    produced = quantize_onnx(
        Path(float_model),
        ModelIO(**io),
        Path(out_dir),
        calibration=_images(calibration),
        opset=opset,
        per_channel=per_channel,
        method=method,
    )
    return [produced]


TASKS = {"openvino": openvino_task, "onnx-int8": onnx_int8_task}

# What each task imports first; the worker imports it while TensorFlow is
# still loading in the main process. NNCF imports onnx when it quantizes
# (to tell which kind of model it was given): 0.7 s more for that step.
PRELOAD = {
    "openvino": ["openvino", "nncf", "onnx"],
    "onnx-int8": ["onnx", "onnxruntime.quantization"],
}


def run_task(task: Task) -> list[Produced]:
    return TASKS[task.name](**task.args)


def write_images(images: np.ndarray, path: Path) -> str:
    """Save calibration images for a task; the path goes into its arguments."""
    np.save(path, np.ascontiguousarray(images, dtype=np.float32))
    return str(path)


def _images(path: str | None) -> np.ndarray | None:
    return None if path is None else np.load(path)
