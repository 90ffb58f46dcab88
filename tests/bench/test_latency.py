"""The timing loop and its statistics."""

import numpy as np
import pytest

from edgekit.bundle import read_manifest, read_reference
from edgekit.latency import measure, summarize
from edgekit.runners import open_runner


def test_summary_of_known_timings():
    stats = summarize([1_000_000 * v for v in range(1, 101)])

    assert stats.count == 100
    assert stats.p50 == pytest.approx(50.5)
    assert stats.p90 == pytest.approx(90.1)
    assert stats.p99 == pytest.approx(99.01)
    assert stats.mean == pytest.approx(50.5)
    assert stats.std == pytest.approx(np.std(np.arange(1, 101), ddof=1))
    assert (stats.min, stats.max) == (1.0, 100.0)


def test_one_timing_has_zero_spread():
    stats = summarize([2_000_000])

    assert stats.p50 == stats.p99 == stats.mean == 2.0
    assert stats.std == 0.0


def test_no_timings_is_an_error():
    with pytest.raises(ValueError):
        summarize([])


def _runner(bundle):
    manifest = read_manifest(bundle)
    artifact = next(a for a in manifest.artifacts if a.file == "onnx-fp32.onnx")
    inputs, _ = read_reference(bundle, manifest)
    feeds = [{"image": x[None]} for x in inputs["image"]]
    return open_runner(artifact, bundle), feeds


def test_loop_meets_the_run_count(built_bundle):
    runner, feeds = _runner(built_bundle)

    with runner:
        result = measure(runner, feeds, warmup=2, runs=7, min_seconds=0)

    assert result.latency.count == 7
    assert result.io.count == 7
    assert result.first_inference_ms > 0
    assert result.warmup == 2
    assert result.throughput == pytest.approx(1000 / result.latency.mean)


def test_loop_runs_at_least_the_minimum_time(built_bundle):
    runner, feeds = _runner(built_bundle)

    with runner:
        result = measure(runner, feeds, warmup=0, runs=1, min_seconds=0.2)

    assert result.seconds >= 0.2
    assert result.latency.count > 1
