"""The second converting process: ONNX beside TFLite and OpenVINO.

Run as ``python -m edgekit.export.worker OPTIONS_JSON OUT_DIR FORMAT...``.
It resolves the same model from the same options, traces it, converts the
formats it was given into OUT_DIR, and reports on its stdout, one JSON object
per line: ``{"event": "ready", "weights_sha256": ...}`` once the model is
traced, ``{"event": "done", "format": ..., "produced": [...]}`` per format,
and ``{"event": "error", "message": ..., "hint": ...}`` if it fails. What the
converters print goes to its stderr, which the parent shows with ``-v``.
"""

import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import Any

from edgekit import logs
from edgekit.errors import EdgekitError
from edgekit.export.common import Produced
from edgekit.export.options import ExportOptions


def convert_format(
    prepared: Any, options: ExportOptions, fmt: str, out_dir: Path
) -> list[Produced]:
    """Convert one format; the one place that maps a format to its exporter."""
    images = prepared.calibration.arrays if options.int8 else None
    precisions = options.precisions
    if fmt == "tflite":
        from edgekit.export.tflite import export_tflite

        return export_tflite(
            prepared.traced,
            out_dir,
            precisions=precisions,
            calibration=images,
            int8_io=options.int8_io,
        )
    if fmt == "onnx":
        from edgekit.export.onnx import export_onnx

        return export_onnx(
            prepared.traced,
            out_dir,
            precisions=[p for p in precisions if p != "fp16"],
            calibration=images,
            opset=options.opset,
            per_channel=options.per_channel,
            method=options.onnx_calibration,
        )
    from edgekit.export.openvino import export_openvino

    return export_openvino(
        prepared.traced,
        out_dir,
        precisions=precisions,
        calibration=images,
        preset=options.nncf_preset,
    )


def produced_to_dict(produced: Produced) -> dict[str, Any]:
    return dataclasses.asdict(produced)


def produced_from_dict(data: dict[str, Any]) -> Produced:
    from edgekit.bundle import TensorInfo

    data = dict(data)
    data["inputs"] = [TensorInfo(**t) for t in data["inputs"]]
    data["outputs"] = [TensorInfo(**t) for t in data["outputs"]]
    return Produced(**data)


def main(argv: list[str]) -> int:
    """Convert the given formats and report each on stdout; 0 on success."""
    from edgekit.export.prepare import prepare

    events = os.fdopen(os.dup(1), "w", buffering=1)
    # Keep stdout for events only: anything else printed goes to stderr.
    os.dup2(2, 1)
    options = ExportOptions.from_json(argv[0])
    out_dir = Path(argv[1])
    logs.configure(1)
    try:
        prepared = prepare(options, holdout=False)
        _send(events, event="ready", weights_sha256=prepared.loaded.weights_sha256)
        for fmt in argv[2:]:
            produced = convert_format(prepared, options, fmt, out_dir)
            _send(
                events,
                event="done",
                format=fmt,
                produced=[produced_to_dict(p) for p in produced],
            )
    except EdgekitError as error:
        _send(events, event="error", message=error.message, hint=error.hint)
        return 2
    return 0


def _send(stream: Any, **event: Any) -> None:
    stream.write(json.dumps(event) + "\n")
    stream.flush()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
