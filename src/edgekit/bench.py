"""Bench a bundle: verify, then run every artifact for parity and latency.

The stages follow one another strictly: read the manifest, verify every
selected artifact's hashes (nothing runs if one is refused), check that each
runtime imports, then for each artifact load it, time it and compare its
outputs with the float reference and with the fp32 artifact of the same
format. Failures of single artifacts (NaN/Inf, a load error) are collected
and reported together at the end instead of stopping the run.

``python -m edgekit.bench --worker REQUEST`` is the entry point of the
subprocess that ``--isolate`` starts for each artifact.
"""

import fnmatch
import json
import logging
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from edgekit import __version__
from edgekit.bundle import (
    Artifact,
    Manifest,
    read_manifest,
    read_reference,
    verify_artifact,
)
from edgekit.environment import describe_environment, physical_cores
from edgekit.errors import BundleError, EdgekitError, RuntimeMissingError
from edgekit.latency import (
    DEFAULT_MIN_SECONDS,
    DEFAULT_RUNS,
    DEFAULT_WARMUP,
    LatencyResult,
    measure,
)
from edgekit.parity import compare_outputs
from edgekit.runners import Runner, open_runner

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
MB = 2**20

# Written into every JSON report, so that a reader needs no other document.
CONVENTIONS = {
    "latency_ms": "the runtime call alone, batch 1, after untimed warm-up",
    "io_ms": "quantizing, copying in, copying out and dequantizing around it",
    "sqnr_db": "10*log10(sum ref^2 / sum (ref-out)^2); null when the tensors are "
    "identical (infinite), see 'identical'",
    "agreement": "percent of samples whose argmax matches the reference",
    "vs_fp32": "the same metrics against the fp32 artifact of the same format",
    "peak_rss_mb": "see memory_source: per artifact only with --isolate",
}


@dataclass
class BenchOptions:
    """How to bench; ``None`` means the default, resolved in ``resolved``."""

    only: list[str] = field(default_factory=list)
    threads: int | None = None
    warmup: int = DEFAULT_WARMUP
    runs: int = DEFAULT_RUNS
    min_seconds: float = DEFAULT_MIN_SECONDS
    device: str = "CPU"
    providers: list[str] | None = None
    reference: str = "bundle"
    model: str | None = None
    weights: str | None = None
    skip_missing: bool = False
    isolate: bool = False

    def resolved(self) -> "BenchOptions":
        """A copy with defaults filled in: threads = physical cores."""
        data = asdict(self)
        data["threads"] = self.threads or physical_cores()
        data["providers"] = self.providers or ["CPUExecutionProvider"]
        return BenchOptions(**data)


@dataclass
class BenchReport:
    """Everything one bench run found, ready for the table and the JSON."""

    bundle: str
    options: BenchOptions
    environment: dict[str, Any]
    model: dict[str, Any]
    class_output: str | None
    results: list[dict[str, Any]]
    failures: list[str]

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "kind": "edgekit-bench",
            "edgekit_version": __version__,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "bundle": self.bundle,
            "model": self.model,
            "class_output": self.class_output,
            "conventions": CONVENTIONS,
            "settings": asdict(self.options),
            "environment": self.environment,
            "results": self.results,
            "failures": self.failures,
        }


def run_bench(bundle_dir: Path, options: BenchOptions | None = None) -> BenchReport:
    """Bench every selected artifact of a bundle.

    Args:
        bundle_dir: the bundle directory.
        options: selection, threads and loop settings. Defaults to BenchOptions().

    Returns:
        The report; ``failures`` lists what failed (NaN/Inf, load errors).

    Raises:
        BundleError: a missing or malformed bundle, or a tampered artifact.
        RuntimeMissingError: a runtime that does not import, unless skipped.
    """
    options = (options or BenchOptions()).resolved()
    bundle_dir = Path(bundle_dir)
    manifest = read_manifest(bundle_dir)
    artifacts = select_artifacts(manifest, options.only)

    # Integrity first: nothing is loaded until every chosen file checks out.
    verify_all(bundle_dir, artifacts)

    inputs, reference = load_reference(bundle_dir, manifest, options)
    missing = check_runtimes(artifacts, options)

    results: list[dict[str, Any]] = []
    outputs: dict[str, dict[str, np.ndarray]] = {}
    for artifact in artifacts:
        if artifact.format in missing:
            results.append(skipped_result(artifact, missing[artifact.format]))
            continue
        log.info("benching %s", artifact.file)
        result, produced = bench_one(
            bundle_dir, artifact, inputs, reference, manifest, options
        )
        results.append(result)
        if produced is not None:
            outputs[artifact.file] = produced

    add_vs_fp32(results, artifacts, outputs, manifest.class_output)
    return BenchReport(
        bundle=str(bundle_dir),
        options=options,
        environment=describe_environment(),
        model=manifest.model,
        class_output=manifest.class_output,
        results=results,
        failures=[f"{r['file']}: {f}" for r in results for f in r["failures"]],
    )


def select_artifacts(manifest: Manifest, patterns: list[str]) -> list[Artifact]:
    """The artifacts whose file name or id matches any glob (all without one)."""
    if not patterns:
        return list(manifest.artifacts)

    chosen = [
        a
        for a in manifest.artifacts
        if any(fnmatch.fnmatch(a.file, p) or fnmatch.fnmatch(a.id, p) for p in patterns)
    ]
    if not chosen:
        raise BundleError(
            f"--only {' '.join(patterns)} matches no artifact; the bundle has "
            f"{[a.file for a in manifest.artifacts]}"
        )
    return chosen


def verify_all(bundle_dir: Path, artifacts: list[Artifact]) -> None:
    """Check every artifact's hashes before anything runs; name all refused."""
    refused = []
    for artifact in artifacts:
        try:
            verify_artifact(bundle_dir, artifact)
        except BundleError as error:
            refused.append(error)
    if refused:
        raise BundleError(
            "; ".join(e.message for e in refused) + " - nothing was run",
            refused[0].hint,
        )


def load_reference(
    bundle_dir: Path, manifest: Manifest, options: BenchOptions
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The reference inputs and float outputs: reference.npz or a fresh Keras run."""
    inputs, reference = read_reference(bundle_dir, manifest)
    if options.reference == "bundle":
        return inputs, reference
    if options.reference != "keras":
        raise EdgekitError(
            f"--reference {options.reference!r} is not known; use 'bundle' or 'keras'"
        )

    from edgekit.runners.keras import keras_reference

    weights = Path(options.weights) if options.weights else None
    return inputs, keras_reference(manifest, inputs, options.model, weights)


def check_runtimes(
    artifacts: list[Artifact], options: BenchOptions
) -> dict[str, RuntimeMissingError]:
    """Import each needed runtime once; return the formats to skip.

    Raises:
        RuntimeMissingError: a runtime is missing and ``skip_missing`` is off.
    """
    missing: dict[str, RuntimeMissingError] = {}
    for fmt in dict.fromkeys(a.format for a in artifacts):
        try:
            probe_runtime(fmt, options)
        except RuntimeMissingError as error:
            if not options.skip_missing:
                raise
            log.warning("skipping %s artifacts: %s", fmt, error.one_line())
            missing[fmt] = error
    return missing


def probe_runtime(fmt: str, options: BenchOptions) -> None:
    """Import the runtime for a format, and check the OpenVINO device."""
    if fmt == "tflite":
        from edgekit.runners.litert import interpreter_class

        interpreter_class()
    elif fmt == "onnx":
        from edgekit.runners.onnxruntime import import_onnxruntime

        import_onnxruntime()
    elif fmt == "openvino":
        from edgekit.runners.openvino import check_device

        check_device(options.device)


def skipped_result(artifact: Artifact, error: EdgekitError) -> dict[str, Any]:
    """The result row of an artifact whose runtime is not installed."""
    result = base_result(artifact)
    result |= {"status": "skipped", "reason": error.one_line()}
    return result


def base_result(artifact: Artifact) -> dict[str, Any]:
    """The fields every result has, whether it ran or not."""
    return {
        "id": artifact.id,
        "file": artifact.file,
        "format": artifact.format,
        "precision": artifact.precision,
        "bytes": artifact.total_bytes,
        "io_dtypes": {
            "inputs": {t.name: t.dtype for t in artifact.inputs},
            "outputs": {t.name: t.dtype for t in artifact.outputs},
        },
        "status": "ok",
        "failures": [],
        "parity": {},
        "vs_fp32": None,
    }


def bench_one(
    bundle_dir: Path,
    artifact: Artifact,
    inputs: dict[str, np.ndarray],
    reference: dict[str, np.ndarray],
    manifest: Manifest,
    options: BenchOptions,
) -> tuple[dict[str, Any], dict[str, np.ndarray] | None]:
    """Bench one artifact, in this process or in its own subprocess.

    Returns:
        The result row, and the artifact's outputs on all reference samples
        (None if it did not run), kept for the comparison with fp32.
    """
    if options.isolate:
        result, outputs = run_isolated(bundle_dir, artifact, options)
    else:
        result, outputs = measure_artifact(bundle_dir, artifact, inputs, options)

    if outputs is not None:
        parity = compare_outputs(reference, outputs, manifest.class_output)
        result["parity"] = {name: p.to_json() for name, p in parity.items()}
        result["failures"] += [
            f"output {name!r} has {p.nonfinite} NaN/Inf values"
            for name, p in parity.items()
            if p.nonfinite
        ]
    if result["failures"]:
        result["status"] = "failed"
    return result, outputs


def measure_artifact(
    bundle_dir: Path,
    artifact: Artifact,
    inputs: dict[str, np.ndarray],
    options: BenchOptions,
) -> tuple[dict[str, Any], dict[str, np.ndarray] | None]:
    """Load, time and run an artifact on every reference sample, here."""
    result = base_result(artifact)
    before = psutil.Process().memory_info().rss
    feeds = batch_one_feeds(inputs)
    try:
        runner = open_runner(
            artifact,
            bundle_dir,
            threads=options.threads or 1,
            device=options.device,
            providers=options.providers,
        )
        with runner:
            loaded = psutil.Process().memory_info().rss
            timing = measure(
                runner,
                feeds,
                warmup=options.warmup,
                runs=options.runs,
                min_seconds=options.min_seconds,
            )
            outputs = collect_outputs(runner, feeds)
            peak = max(loaded, psutil.Process().memory_info().rss)
    except RuntimeMissingError:
        raise
    except EdgekitError as error:
        result["failures"].append(error.one_line())
        return result, None

    result |= timing_fields(runner, timing, options.threads or 1)
    result |= {
        "peak_rss_mb": peak / MB,
        "rss_load_delta_mb": (loaded - before) / MB,
        "memory_source": "psutil RSS of the shared bench process after the run "
        "(includes earlier artifacts; use --isolate for a per-artifact peak)",
    }
    return result, outputs


def timing_fields(
    runner: Runner, timing: LatencyResult, threads: int
) -> dict[str, Any]:
    """The result fields that come from the runner and the timing loop."""
    return {
        "threads": threads,
        "runtime": runner.settings,
        "load_ms": runner.load_ns / 1e6,
        "first_inference_ms": timing.first_inference_ms,
        "latency_ms": timing.latency.to_json(),
        "io_ms": timing.io.to_json(),
        "throughput_per_s": timing.throughput,
        "warmup": timing.warmup,
        "timed_seconds": timing.seconds,
    }


def batch_one_feeds(inputs: dict[str, np.ndarray]) -> list[dict[str, np.ndarray]]:
    """Split (N, ...) reference inputs into N contiguous batch-1 feeds."""
    count = min(len(v) for v in inputs.values())
    return [
        {name: np.ascontiguousarray(array[i : i + 1]) for name, array in inputs.items()}
        for i in range(count)
    ]


def collect_outputs(
    runner: Any, feeds: list[dict[str, np.ndarray]]
) -> dict[str, np.ndarray]:
    """Run every sample once and stack the outputs back to (N, ...)."""
    rows = [runner.infer(feed) for feed in feeds]
    return {name: np.concatenate([r[name] for r in rows]) for name in rows[0]}


def add_vs_fp32(
    results: list[dict[str, Any]],
    artifacts: list[Artifact],
    outputs: dict[str, dict[str, np.ndarray]],
    class_output: str | None,
) -> None:
    """Compare each non-fp32 artifact with the fp32 artifact of its format.

    This separates quantization error (vs fp32 of the same runtime) from
    conversion error (fp32 vs the Keras reference).
    """
    fp32 = {a.format: a.file for a in artifacts if a.precision == "fp32"}
    for result in results:
        baseline = fp32.get(result["format"])
        if result["precision"] == "fp32" or baseline not in outputs:
            continue
        if result["file"] not in outputs:
            continue
        parity = compare_outputs(
            outputs[baseline], outputs[result["file"]], class_output
        )
        result["vs_fp32"] = {
            "file": baseline,
            "parity": {name: p.to_json() for name, p in parity.items()},
        }


def run_isolated(
    bundle_dir: Path, artifact: Artifact, options: BenchOptions
) -> tuple[dict[str, Any], dict[str, np.ndarray] | None]:
    """Bench one artifact in a fresh Python process, for an honest peak RSS."""
    with tempfile.TemporaryDirectory(prefix="edgekit-bench-") as work:
        request = Path(work) / "request.json"
        request.write_text(
            json.dumps(
                {
                    "bundle": str(bundle_dir),
                    "file": artifact.file,
                    "options": asdict(options),
                    "out": work,
                }
            )
        )
        command = [sys.executable, "-m", "edgekit.bench", "--worker", str(request)]
        done = subprocess.run(command, capture_output=True, text=True)
        answer = Path(work) / "result.json"
        if not answer.is_file():
            result = base_result(artifact)
            tail = done.stderr.strip().splitlines()[-1:] or [f"exit {done.returncode}"]
            result["failures"].append(f"isolated run crashed: {tail[0]}")
            return result, None

        result = json.loads(answer.read_text())
        if "error" in result:
            raise RuntimeMissingError(result["error"])
        arrays = Path(work) / "outputs.npz"
        if not arrays.is_file():
            return result, None
        with np.load(arrays, allow_pickle=False) as data:
            return result, {k: data[k] for k in data.files}


def worker(request_path: Path) -> None:
    """The body of an isolated run: bench one artifact, write its result."""
    request = json.loads(Path(request_path).read_text())
    out = Path(request["out"])
    options = BenchOptions(**request["options"])
    bundle_dir = Path(request["bundle"])
    manifest = read_manifest(bundle_dir)
    artifact = next(a for a in manifest.artifacts if a.file == request["file"])
    inputs, _ = read_reference(bundle_dir, manifest)
    try:
        result, outputs = measure_artifact(bundle_dir, artifact, inputs, options)
    except RuntimeMissingError as error:
        (out / "result.json").write_text(json.dumps({"error": error.one_line()}))
        return

    if outputs is not None:
        np.savez(out / "outputs.npz", **outputs)
        result["peak_rss_mb"] = peak_rss_mb()
        result["memory_source"] = (
            "peak RSS (VmHWM) of an isolated subprocess that ran only this artifact"
        )
    (out / "result.json").write_text(json.dumps(result))


def peak_rss_mb() -> float:
    """This process's peak resident set size, in MiB.

    On Linux it is VmHWM of /proc/self/status: ``ru_maxrss`` survives
    fork and exec, so a child would report its parent's peak if larger.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass

    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # macOS reports bytes, the other Unixes kilobytes.
    return peak / MB if sys.platform == "darwin" else peak / 1024


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        worker(Path(sys.argv[2]))
    else:
        sys.exit("usage: python -m edgekit.bench --worker REQUEST.json")
