"""The runner base: state, checks, int8 (de)quantization and timing hooks.

A backend implements only its load and the runtime call, split in three so
that the call itself is timed apart from moving data in and out:
``_load`` builds the session, ``_feed`` hands it the (already quantized)
inputs, ``_run`` runs it, ``_fetch`` returns the raw outputs. Everything a
user can get wrong (names, shapes, dtypes) is checked here, once, for all
runtimes.
"""

import time
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from edgekit.bundle import Artifact, TensorInfo
from edgekit.errors import EdgekitError

QUANTIZED_DTYPES = ("int8", "uint8", "int16")


class RunnerError(EdgekitError):
    """An artifact that cannot be loaded or run, or inputs that do not fit it."""


class Runner:
    """Runs one artifact with float arrays in and float arrays out.

    Use it as a context manager: entering loads the artifact, leaving closes
    it. After each ``infer``, ``last_run_ns`` holds the time of the runtime
    call alone and ``last_io_ns`` the time spent quantizing, copying in,
    copying out and dequantizing around it.

    Args:
        artifact: the manifest entry of the artifact.
        bundle_dir: the directory that holds the artifact's files.
        threads: CPU threads the runtime may use; always set explicitly.
    """

    runtime = "base"

    def __init__(self, artifact: Artifact, bundle_dir: Path, threads: int = 1) -> None:
        if threads < 1:
            raise RunnerError(f"threads must be at least 1, got {threads}")
        self.artifact = artifact
        self.path = Path(bundle_dir) / artifact.file
        self.threads = threads
        self.settings: dict[str, Any] = {}
        self.loaded = False
        self.load_ns = 0
        self.last_run_ns = 0
        self.last_io_ns = 0

    def __enter__(self) -> "Runner":
        self.load()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def load(self) -> None:
        """Load the artifact and read back the runtime's effective settings."""
        if self.loaded:
            return

        start = time.perf_counter_ns()
        self._load()
        self.load_ns = time.perf_counter_ns() - start
        self.loaded = True

    def close(self) -> None:
        """Release the runtime's session; the runner can be loaded again."""
        if self.loaded:
            self._close()
        self.loaded = False

    def infer(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the artifact once.

        Args:
            feeds: float arrays keyed by the model's input names.

        Returns:
            Float arrays keyed by the model's output names.
        """
        if not self.loaded:
            raise RunnerError(f"{self.artifact.file} is not loaded; call load() first")

        start = time.perf_counter_ns()
        raw = [
            _to_artifact(info, self._checked(info, feeds))
            for info in self.artifact.inputs
        ]
        self._feed(raw)
        ran = time.perf_counter_ns()
        self._run()
        done = time.perf_counter_ns()
        outputs = self._fetch()
        result = {
            info.name: _from_artifact(info, array)
            for info, array in zip(self.artifact.outputs, outputs, strict=True)
        }
        self.last_run_ns = done - ran
        self.last_io_ns = (ran - start) + (time.perf_counter_ns() - done)
        return result

    def _checked(self, info: TensorInfo, feeds: dict[str, np.ndarray]) -> np.ndarray:
        if info.name not in feeds:
            raise RunnerError(
                f"{self.artifact.file} needs input {info.name!r}; got {sorted(feeds)}"
            )

        array = np.asarray(feeds[info.name])
        if not shape_fits(info.shape, array.shape):
            raise RunnerError(
                f"input {info.name!r} of {self.artifact.file} has shape "
                f"{list(array.shape)}; the artifact expects {info.shape} "
                "(-1 is any size)"
            )
        if not np.issubdtype(array.dtype, np.number):
            raise RunnerError(
                f"input {info.name!r} must be numeric, got dtype {array.dtype}"
            )
        return array

    # Backend hooks.

    def _load(self) -> None:
        raise NotImplementedError

    def _feed(self, arrays: list[np.ndarray]) -> None:
        raise NotImplementedError

    def _run(self) -> None:
        raise NotImplementedError

    def _fetch(self) -> list[np.ndarray]:
        raise NotImplementedError

    def _close(self) -> None:
        pass


def shape_fits(expected: list[int], actual: tuple[int, ...]) -> bool:
    """True when ``actual`` matches ``expected``, where -1 means any size."""
    if len(expected) != len(actual):
        return False
    return all(e in (-1, None) or e == a for e, a in zip(expected, actual, strict=True))


def quantize(
    array: np.ndarray, scale: float, zero_point: int, dtype: str
) -> np.ndarray:
    """Float to integer: round(x / scale) + zero_point, clipped to the dtype.

    Halves round away from zero, as TFLite's own quantize kernel does, rather
    than to even as ``np.round`` would.
    """
    limits = np.iinfo(dtype)
    values = np.asarray(array, dtype=np.float32) / np.float32(scale)
    values = np.trunc(values + np.copysign(np.float32(0.5), values))
    values += zero_point
    return np.clip(values, limits.min, limits.max).astype(dtype)


def dequantize(array: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """Integer to float: (q - zero_point) * scale, in float32."""
    shifted = np.asarray(array, dtype=np.float32) - np.float32(zero_point)
    return shifted * np.float32(scale)


def _to_artifact(info: TensorInfo, array: np.ndarray) -> np.ndarray:
    if info.dtype in QUANTIZED_DTYPES:
        if info.scale is None or info.zero_point is None:
            raise RunnerError(
                f"input {info.name!r} is {info.dtype} but the manifest gives no "
                "scale and zero point",
                "re-export the bundle",
            )
        return quantize(array, info.scale, info.zero_point, info.dtype)
    return np.ascontiguousarray(array, dtype=info.dtype)


def _from_artifact(info: TensorInfo, array: np.ndarray) -> np.ndarray:
    if info.dtype in QUANTIZED_DTYPES and info.scale is not None:
        return dequantize(array, info.scale, info.zero_point or 0)
    return np.asarray(array, dtype=np.float32)
