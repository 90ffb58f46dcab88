"""The timing loop and its statistics.

Only the runtime call is timed (the runner measures it with
``perf_counter_ns`` around the call itself); quantizing, copying in, copying
out and dequantizing are summed apart as ``io``. The first inference after
load is reported on its own, the warm-up runs are not timed, and the timed
loop runs until both the run count and the minimum time are reached, feeding
the same inputs in the same order to every runtime.
"""

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from edgekit.runners.base import Runner

DEFAULT_WARMUP = 10
DEFAULT_RUNS = 50
DEFAULT_MIN_SECONDS = 1.0


@dataclass
class LatencyStats:
    """Summary of one series of timings, in milliseconds."""

    count: int
    p50: float
    p90: float
    p99: float
    mean: float
    std: float
    min: float
    max: float

    def to_json(self) -> dict[str, float | int]:
        return asdict(self)


@dataclass
class LatencyResult:
    """What the timing loop measured for one artifact."""

    first_inference_ms: float
    warmup: int
    latency: LatencyStats
    io: LatencyStats
    seconds: float

    @property
    def throughput(self) -> float:
        """Inferences per second at batch 1, from the mean runtime call."""
        return 1000.0 / self.latency.mean if self.latency.mean > 0 else 0.0


def summarize(samples_ns: Sequence[int]) -> LatencyStats:
    """Percentiles (linear interpolation), mean, std, min and max in ms."""
    if not samples_ns:
        raise ValueError("no timings to summarize")

    ms = np.asarray(samples_ns, dtype=np.float64) / 1e6
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    return LatencyStats(
        count=int(ms.size),
        p50=float(p50),
        p90=float(p90),
        p99=float(p99),
        mean=float(ms.mean()),
        std=float(ms.std(ddof=1)) if ms.size > 1 else 0.0,
        min=float(ms.min()),
        max=float(ms.max()),
    )


def measure(
    runner: Runner,
    feeds: Sequence[dict[str, np.ndarray]],
    *,
    warmup: int = DEFAULT_WARMUP,
    runs: int = DEFAULT_RUNS,
    min_seconds: float = DEFAULT_MIN_SECONDS,
) -> LatencyResult:
    """Time a loaded runner on the given inputs, cycling through them.

    Args:
        runner: a loaded runner that has not run yet (for first inference).
        feeds: batch-1 inputs, used in this order for every runtime.
        warmup: untimed runs after the first inference. Defaults to 10.
        runs: the least number of timed runs. Defaults to 50.
        min_seconds: the least time spent in timed runs. Defaults to 1.0.

    Returns:
        First-inference time, runtime-call statistics and I/O statistics.
    """
    if not feeds:
        raise ValueError("no inputs to time")

    runner.infer(feeds[0])
    first_ms = runner.last_run_ns / 1e6
    for i in range(warmup):
        runner.infer(feeds[(i + 1) % len(feeds)])

    run_ns: list[int] = []
    io_ns: list[int] = []
    deadline = time.perf_counter_ns() + int(min_seconds * 1e9)
    start = time.perf_counter_ns()
    while len(run_ns) < max(runs, 1) or time.perf_counter_ns() < deadline:
        runner.infer(feeds[len(run_ns) % len(feeds)])
        run_ns.append(runner.last_run_ns)
        io_ns.append(runner.last_io_ns)

    return LatencyResult(
        first_inference_ms=first_ms,
        warmup=warmup,
        latency=summarize(run_ns),
        io=summarize(io_ns),
        seconds=(time.perf_counter_ns() - start) / 1e9,
    )
