"""One runner per runtime, all exchanging float numpy arrays.

No runtime is imported here: each backend imports its own runtime when an
artifact of its format is opened, so this package imports on a device that
has only some of them, and never pulls in TensorFlow.
"""

from pathlib import Path

from edgekit.bundle import Artifact
from edgekit.runners.base import Runner, RunnerError, dequantize, quantize

__all__ = ["Runner", "RunnerError", "dequantize", "open_runner", "quantize"]

# The pip extra that installs each format's runtime, for error messages.
RUNTIME_OF_FORMAT = {
    "tflite": "ai-edge-litert",
    "onnx": "onnxruntime",
    "openvino": "openvino",
}


def open_runner(
    artifact: Artifact,
    bundle_dir: Path,
    *,
    threads: int = 1,
    device: str = "CPU",
    providers: list[str] | None = None,
) -> Runner:
    """Make the runner for an artifact's format; it is not loaded yet.

    Args:
        artifact: the manifest entry to run.
        bundle_dir: the bundle directory holding its files.
        threads: CPU threads for the runtime. Defaults to 1.
        device: OpenVINO device (CPU, GPU, NPU, AUTO). Defaults to CPU.
        providers: ONNX Runtime execution providers. Defaults to CPU only.

    Returns:
        A runner; use it as a context manager to load and close it.
    """
    if artifact.format == "tflite":
        from edgekit.runners.litert import LiteRTRunner

        return LiteRTRunner(artifact, bundle_dir, threads=threads)

    if artifact.format == "onnx":
        from edgekit.runners.onnxruntime import OnnxRuntimeRunner

        return OnnxRuntimeRunner(
            artifact, bundle_dir, threads=threads, providers=providers
        )

    if artifact.format == "openvino":
        from edgekit.runners.openvino import OpenVINORunner

        return OpenVINORunner(artifact, bundle_dir, threads=threads, device=device)

    raise RunnerError(
        f"artifact {artifact.file} has format {artifact.format!r}; edgekit runs "
        f"{sorted(RUNTIME_OF_FORMAT)}"
    )
