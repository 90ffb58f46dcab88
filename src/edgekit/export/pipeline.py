"""The export, stage by stage, into a staged bundle directory."""

import json
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Any, Protocol

from edgekit import __version__, logs
from edgekit.bundle import (
    FORMATS,
    PRECISIONS,
    REFERENCE_NAME,
    Manifest,
    staged_bundle,
    write_reference,
)
from edgekit.errors import ExportError
from edgekit.export.common import Produced, to_artifact
from edgekit.export.options import ExportOptions
from edgekit.export.worker import convert_format, produced_from_dict

log = logging.getLogger(__name__)

# ONNX goes to the worker when there is one: its calibration is the longest
# stage, about as long as TFLite and OpenVINO together in this process.
WORKER_FORMATS = ("onnx",)


class StageReporter(Protocol):
    """Told when each stage starts and ends (the CLI draws progress from it)."""

    def begin(self, stage: str) -> None: ...

    def end(self, stage: str, seconds: float) -> None: ...


class _Silent:
    def begin(self, stage: str) -> None:
        pass

    def end(self, stage: str, seconds: float) -> None:
        pass


def export_bundle(
    options: ExportOptions, reporter: StageReporter | None = None
) -> Manifest:
    """Export every format asked for into one bundle, atomically.

    Args:
        options: what to export; unset options take their defaults.
        reporter: told when each stage begins and ends.

    Raises:
        EdgekitError: bad input, or a conversion that failed (then nothing
            is written and an existing bundle is left as it was).
    """
    started = time.perf_counter()
    options = options.resolved()
    reporter = reporter or _Silent()
    local, remote = _split_formats(options)

    with staged_bundle(options.output, options.force) as staging:
        worker = _Worker.start(options, staging, remote, reporter) if remote else None
        try:
            manifest = _export_into(staging, options, local, worker, reporter)
        finally:
            if worker:
                worker.stop()
        manifest.stages["total"] = round(time.perf_counter() - started, 3)
        (staging / "manifest.json").write_text(manifest.to_json(), encoding="utf-8")
    return manifest


def _split_formats(options: ExportOptions) -> tuple[list[str], list[str]]:
    formats = list(options.formats)
    remote = [f for f in formats if f in WORKER_FORMATS]
    local = [f for f in formats if f not in WORKER_FORMATS]
    if options.workers < 2 or not local or not remote:
        return formats, []
    return local, remote


def _export_into(
    staging: Path,
    options: ExportOptions,
    local: list[str],
    worker: "_Worker | None",
    reporter: StageReporter,
) -> Manifest:
    from edgekit.export.prepare import prepare, reference_outputs

    stages: dict[str, float] = {}
    prepared = _staged(stages, "prepare", reporter, lambda: prepare(options))
    reference = _staged(
        stages, "reference", reporter, lambda: reference_outputs(prepared)
    )
    write_reference(
        staging / REFERENCE_NAME,
        {prepared.traced.input_name: prepared.holdout.arrays},
        reference,
    )

    produced: list[Produced] = []
    for fmt in local:
        produced += _staged(
            stages,
            fmt,
            reporter,
            lambda f=fmt: convert_format(prepared, options, f, staging),
        )
    if worker:
        produced += worker.collect(prepared.loaded.weights_sha256, stages)
    return _manifest(prepared, options, produced, staging, stages)


def _staged(
    stages: dict[str, float], name: str, reporter: StageReporter, work: Any
) -> Any:
    reporter.begin(name)
    started = time.perf_counter()
    result = work()
    stages[name] = round(time.perf_counter() - started, 3)
    reporter.end(name, stages[name])
    return result


def _manifest(
    prepared: Any,
    options: ExportOptions,
    produced: list[Produced],
    staging: Path,
    stages: dict[str, float],
) -> Manifest:
    order = {
        (f, p): i
        for i, (f, p) in enumerate((f, p) for f in FORMATS for p in PRECISIONS)
    }
    produced = sorted(produced, key=lambda p: order[(p.format, p.precision)])
    loaded = prepared.loaded
    names = prepared.traced.output_names
    class_name = "verdict" if "verdict" in names else names[0]
    return Manifest(
        model={
            "name": loaded.name,
            "source": _without_paths(loaded.source, options),
            "sha256": loaded.weights_sha256,
            "trained": loaded.trained,
            "input_shape": [
                d if d is not None else -1 for d in prepared.traced.input_shape
            ],
        },
        preprocessing=prepared.preprocessing.to_dict(),
        calibration=_calibration_record(prepared, options),
        holdout={"count": prepared.holdout.count, "sha256": prepared.holdout.sha256},
        outputs=[
            {"name": n, "role": "class" if n == class_name else "features"}
            for n in names
        ],
        artifacts=[to_artifact(p, staging) for p in produced],
        stages=stages,
        edgekit_version=__version__,
    )


def _without_paths(text: str, options: ExportOptions) -> str:
    """Say which files by name only: a manifest holds no machine paths."""
    for path in (options.model, options.weights):
        if path is not None and str(path) not in ("patchgan", "pix2pix"):
            text = text.replace(str(path), Path(path).name)
    return text


def _calibration_record(prepared: Any, options: ExportOptions) -> dict[str, Any]:
    record: dict[str, Any] = {
        "count": prepared.calibration.count,
        "sha256": prepared.calibration.sha256,
        "used": bool(options.int8),
    }
    if options.int8:
        record["options"] = {
            "per_channel": options.per_channel,
            "onnx_method": options.onnx_calibration,
            "nncf_preset": options.nncf_preset,
            "tflite_method": "minmax",
            "int8_io": options.int8_io,
        }
    return record


class _Worker:
    """The second process, its event reader, and what it reported."""

    def __init__(
        self, process: subprocess.Popen, log_file: IO[bytes], formats: list[str]
    ) -> None:
        self.process = process
        self.log_file = log_file
        self.formats = formats
        self.events: list[dict[str, Any]] = []
        self.started = time.perf_counter()
        self.reader: threading.Thread | None = None

    @classmethod
    def start(
        cls,
        options: ExportOptions,
        out_dir: Path,
        formats: list[str],
        reporter: StageReporter,
    ) -> "_Worker":
        log_file = tempfile.TemporaryFile()
        command = [
            sys.executable,
            "-m",
            "edgekit.export.worker",
            options.to_json(),
            str(out_dir),
        ]
        # A fixed hash seed: tf2onnx visits nodes in string-hash order.
        process = subprocess.Popen(
            command + formats,
            stdout=subprocess.PIPE,
            stderr=log_file,
            stdin=subprocess.DEVNULL,
            env=os.environ | {"PYTHONHASHSEED": "0"},
        )
        worker = cls(process, log_file, formats)
        for fmt in formats:
            reporter.begin(fmt)
        worker.reader = threading.Thread(
            target=worker._read, args=(reporter,), daemon=True
        )
        worker.reader.start()
        return worker

    def _read(self, reporter: StageReporter) -> None:
        last = self.started
        for line in self.process.stdout:
            event = json.loads(line)
            now = time.perf_counter()
            event["seconds"] = round(now - last, 3)
            last = now
            self.events.append(event)
            if event["event"] == "done":
                reporter.end(event["format"], event["seconds"])

    def collect(self, weights_sha256: str, stages: dict[str, float]) -> list[Produced]:
        """Wait for the worker and return what it produced, or raise its error."""
        code = self.process.wait()
        self.reader.join()
        self._replay_log(failed=code != 0)
        errors = [e for e in self.events if e["event"] == "error"]
        if errors:
            raise ExportError(errors[0]["message"], errors[0]["hint"])
        if code != 0:
            raise ExportError(
                f"the {' and '.join(self.formats)} conversion process failed "
                f"(exit {code})",
                "run with -v to see its output, or pass --workers 1",
            )
        return self._produced(weights_sha256, stages)

    def _produced(
        self, weights_sha256: str, stages: dict[str, float]
    ) -> list[Produced]:
        ready = next(e for e in self.events if e["event"] == "ready")
        if ready["weights_sha256"] != weights_sha256:
            raise ExportError(
                "the two converting processes resolved different weights",
                "pass --workers 1",
            )
        stages["worker_prepare"] = ready["seconds"]
        produced = []
        for event in (e for e in self.events if e["event"] == "done"):
            stages[event["format"]] = event["seconds"]
            produced += [produced_from_dict(p) for p in event["produced"]]
        return produced

    def _replay_log(self, *, failed: bool) -> None:
        self.log_file.seek(0)
        text = self.log_file.read().decode("utf-8", "replace").strip()
        if text and failed:
            tail = "\n".join(text.splitlines()[-30:])
            log.warning("conversion process output (last lines):\n%s", tail)
        elif text and logs.verbosity() >= 1:
            log.info("conversion process output:\n%s", text)

    def stop(self) -> None:
        """End the worker if it is still running (the export failed here)."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.log_file.close()
