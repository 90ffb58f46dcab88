"""The export, stage by stage, into a staged bundle directory.

Processes share the work. This one imports TensorFlow, resolves and traces
the model, and does what needs TensorFlow: the TFLite conversions, tf2onnx,
and the float reference outputs. As soon as the model is traced it writes it
as a frozen graph, and later as fp32 ONNX, and hands the steps that start
from those files (OpenVINO with NNCF, ONNX Runtime's quantization; see
``export.tasks``) to helper processes, which never import TensorFlow: one
per step with ``workers=3``, one for both with ``workers=2``. With
``workers=1`` those steps run here instead, in that order.

Three processes on two cores is not a mistake: each step is long and runs
between 1 and 2 threads, and the operating system keeps both cores busy
until the last one ends, where one helper doing both steps after each other
left a core idle for its last seconds. On the CI machine, when this was
chosen, the export took 33-35 s with three processes and 36-38 s with two.
"""

import dataclasses
import json
import logging
import subprocess
import sys
import tempfile
import threading
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
from edgekit.export.common import Produced, Stopwatch, to_artifact, write_frozen_graph
from edgekit.export.options import ExportOptions
from edgekit.export.tasks import Task, run_task, write_images
from edgekit.export.worker import produced_from_dict

log = logging.getLogger(__name__)


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
    watch = Stopwatch()
    options = options.resolved()
    stages = _Stages(reporter or _Silent())

    with (
        staged_bundle(options.output, options.force) as staging,
        tempfile.TemporaryDirectory(prefix="edgekit-export-") as scratch,
    ):
        runner = _start_runner(options, stages)
        try:
            export = _Export(options, staging, Path(scratch), runner, stages)
            manifest = export.run()
        finally:
            runner.stop()
        manifest.stages["total"] = round(watch.seconds(), 3)
        (staging / "manifest.json").write_text(manifest.to_json(), encoding="utf-8")
    return manifest


def _start_runner(options: ExportOptions, stages: "_Stages") -> "_InProcess | _Workers":
    names = []
    if "openvino" in options.formats:
        names.append("openvino")
    if "onnx" in options.formats and options.int8:
        names.append("onnx-int8")
    helpers = min(options.workers - 1, len(names))
    if helpers < 1:
        return _InProcess(stages)
    # Started first, so that they import their runtimes while TensorFlow loads
    # here. With one helper it runs both tasks, one after the other.
    groups = [names[index::helpers] for index in range(helpers)]
    return _Workers([_Worker.start(group, stages) for group in groups])


class _Export:
    """One export under way: its options, where it writes, who runs its tasks.

    The steps run in the order that lets the helpers start soonest:
    the frozen graph for OpenVINO right after the trace, then tf2onnx (whose
    fp32 file ONNX Runtime quantizes there), then TFLite and the reference
    outputs here.
    """

    def __init__(
        self,
        options: ExportOptions,
        staging: Path,
        scratch: Path,
        runner: "_InProcess | _Workers",
        stages: "_Stages",
    ) -> None:
        self.options = options
        self.staging = staging
        self.scratch = scratch
        self.runner = runner
        self.stages = stages

    def run(self) -> Manifest:
        from edgekit.export.prepare import prepare

        options = self.options
        prepared = self.stages.run("prepare", lambda: prepare(options))
        images = None
        if options.int8:
            arrays = prepared.calibration.arrays
            images = write_images(arrays, self.scratch / "calibration.npy")
        shared = {"out_dir": str(self.staging), "calibration": images}
        shared["io"] = dataclasses.asdict(prepared.traced.io)

        produced: list[Produced] = []
        if "openvino" in options.formats:
            self._submit_openvino(prepared, shared)
        if "onnx" in options.formats:
            produced.append(self._onnx(prepared, shared))
            self.runner.check()
        if "tflite" in options.formats:
            produced += self._tflite(prepared)
            self.runner.check()
        self._reference(prepared)
        produced += self.runner.collect()
        return _manifest(prepared, options, produced, self.staging, self.stages.seconds)

    def _submit_openvino(self, prepared: Any, shared: dict[str, Any]) -> None:
        self.stages.begin("openvino")
        graph = write_frozen_graph(prepared.traced, self.scratch / "graph.pb")
        args = {"graph": str(graph), "precisions": self.options.precisions}
        args["preset"] = self.options.nncf_preset
        self.runner.submit(Task("openvino", "openvino", shared | args))

    def _onnx(self, prepared: Any, shared: dict[str, Any]) -> Produced:
        from edgekit.export.onnx import convert_onnx

        options = self.options
        converted = self.stages.run(
            "onnx",
            lambda: convert_onnx(prepared.traced, self.staging, opset=options.opset),
            last=not options.int8,
        )
        if options.int8:
            args = {"float_model": str(self.staging / converted.file)}
            args |= {"opset": options.opset, "per_channel": options.per_channel}
            args["method"] = options.onnx_calibration
            self.runner.submit(Task("onnx-int8", "onnx", shared | args))
        return converted

    def _tflite(self, prepared: Any) -> list[Produced]:
        from edgekit.export.tflite import export_tflite

        options = self.options
        calibration = prepared.calibration.arrays if options.int8 else None
        return self.stages.run(
            "tflite",
            lambda: export_tflite(
                prepared.traced,
                self.staging,
                precisions=options.precisions,
                calibration=calibration,
                int8_io=options.int8_io,
            ),
        )

    def _reference(self, prepared: Any) -> None:
        from edgekit.export.prepare import reference_outputs

        outputs = self.stages.run("reference", lambda: reference_outputs(prepared))
        inputs = {prepared.traced.input_name: prepared.holdout.arrays}
        write_reference(self.staging / REFERENCE_NAME, inputs, outputs)


class _Stages:
    """Seconds per stage, and the reporter told when each begins and ends.

    A format's stage can span both processes (tf2onnx here, ONNX Runtime in
    the worker): its seconds add up its steps, and it ends with its last one.
    """

    def __init__(self, reporter: StageReporter) -> None:
        self.reporter = reporter
        self.seconds: dict[str, float] = {}
        self.lock = threading.Lock()

    def begin(self, name: str) -> None:
        with self.lock:
            if name not in self.seconds:
                self.seconds[name] = 0.0
                self.reporter.begin(name)

    def add(self, name: str, seconds: float, *, last: bool) -> None:
        with self.lock:
            self.seconds[name] = round(self.seconds[name] + seconds, 3)
            if last:
                self.reporter.end(name, self.seconds[name])

    def run(self, name: str, work: Any, *, last: bool = True) -> Any:
        """Do one step of a stage here, and time it."""
        self.begin(name)
        watch = Stopwatch()
        result = work()
        self.add(name, watch.seconds(), last=last)
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


class _InProcess:
    """Runs each task in this process as it is submitted (``workers=1``)."""

    def __init__(self, stages: _Stages) -> None:
        self.stages = stages
        self.produced: list[Produced] = []

    def submit(self, task: Task) -> None:
        self.produced += self.stages.run(
            task.format, lambda: run_task(task), last=task.last
        )

    def check(self) -> None:
        pass

    def collect(self) -> list[Produced]:
        return self.produced

    def stop(self) -> None:
        pass


class _Workers:
    """The helper processes, each given the tasks it was started for."""

    def __init__(self, workers: list["_Worker"]) -> None:
        self.workers = workers

    def submit(self, task: Task) -> None:
        next(w for w in self.workers if task.name in w.names).submit(task)

    def check(self) -> None:
        for worker in self.workers:
            worker.check()

    def collect(self) -> list[Produced]:
        return [p for worker in self.workers for p in worker.collect()]

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()


class _Worker:
    """A helper process (``export.worker``), its event reader, and its results.

    Tasks are written to its stdin as they become ready and run there in the
    order they were submitted; its events come back on its stdout.
    """

    def __init__(
        self,
        process: subprocess.Popen,
        log_file: IO[bytes],
        names: list[str],
        stages: _Stages,
    ) -> None:
        self.process = process
        self.names = names
        self.log_file = log_file
        self.stages = stages
        self.pending: list[Task] = []
        self.produced: list[Produced] = []
        self.error: dict[str, Any] | None = None
        self.reader = threading.Thread(target=self._read, daemon=True)

    @classmethod
    def start(cls, names: list[str], stages: _Stages) -> "_Worker":
        log_file = tempfile.TemporaryFile()
        process = subprocess.Popen(
            [sys.executable, "-m", "edgekit.export.worker", *names],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log_file,
        )
        worker = cls(process, log_file, names, stages)
        worker.reader.start()
        return worker

    def submit(self, task: Task) -> None:
        self.pending.append(task)
        line = json.dumps(dataclasses.asdict(task)) + "\n"
        try:
            self.process.stdin.write(line.encode())
            self.process.stdin.flush()
        except BrokenPipeError:
            pass  # It has ended; check() or collect() says why.

    def _read(self) -> None:
        for line in self.process.stdout:
            event = json.loads(line)
            if event["event"] != "done":
                self.error = event
                continue
            task = self.pending.pop(0)
            self.produced += [produced_from_dict(p) for p in event["produced"]]
            self.stages.add(task.format, event["seconds"], last=task.last)

    def check(self) -> None:
        """Raise the worker's error now if it has reported one: fail early."""
        if self.error:
            self._finish()

    def collect(self) -> list[Produced]:
        """Wait for every submitted task and return what they produced."""
        self.process.stdin.close()
        self._finish()
        return self.produced

    def _finish(self) -> None:
        code = self.process.wait()
        self.reader.join()
        self._replay_log(failed=code != 0)
        if self.error:
            raise ExportError(self.error["message"], self.error["hint"])
        if code != 0:
            formats = sorted({task.format for task in self.pending})
            raise ExportError(
                f"the {' and '.join(formats) or 'conversion'} process failed "
                f"(exit {code})",
                "run with -v to see its output, or pass --workers 1",
            )

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
