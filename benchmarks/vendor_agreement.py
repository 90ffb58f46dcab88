"""Does ``edgekit bench`` agree with the runtimes' own benchmark tools?

For every TFLite and OpenVINO artifact of a bundle, this runs the vendor's
tool and edgekit's timing loop (the runner and ``measure`` that bench uses,
in this process) on the same file with the same thread count, alternating
which goes first in each round so that drift of a shared machine hits both,
and prints edgekit's p50 as a ratio to the tool's median. A ratio above
1.05 means edgekit adds overhead worth finding.

Separate processes minutes apart see different loads on a shared machine,
so the last column also compares edgekit's runner with the tool's own API
call (``InferRequest.infer``, ``CompiledModel.run_by_name``) inside one
process, in alternating blocks of ten calls: that ratio is edgekit's own
overhead with the machine's noise mostly cancelled.

* OpenVINO: ``benchmark_app -api sync -hint latency`` with the threads (and
  f32 precision for fp32 artifacts) given through ``-load_config``, the same
  properties edgekit's runner sets; a dynamic input is fixed with ``-shape``
  so the app does not refill inputs inside its timed loop.
* LiteRT: ``litert-benchmark`` from ai-edge-litert, ``--num_threads N``.
  It drives the CompiledModel API, edgekit the Interpreter API; both use
  the XNNPACK CPU kernels.

ONNX artifacts are skipped: the onnxruntime wheel ships no perf tool.
edgekit times the runtime call from Python with ``perf_counter_ns``, so a
call costs it a few microseconds more than benchmark_app, which reports the
request's own C++ timer; that is noise for the PatchGAN (milliseconds) and
dominates only for toy models that run in tens of microseconds.
litert-benchmark 2.3 cannot run models whose outputs have a dynamic batch
dimension (its CompiledModel fails to bind the output buffer); such rows
say so and the others still run.

Run it on a bundle from ``edgekit export --int8``::

    python benchmarks/vendor_agreement.py artifacts --threads 2 --rounds 5
"""

import argparse
import fnmatch
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from edgekit.bench import batch_one_feeds
from edgekit.bundle import Artifact, read_manifest, read_reference
from edgekit.environment import physical_cores
from edgekit.latency import measure
from edgekit.logs import captured_native_output
from edgekit.runners import Runner, open_runner, quantize

TOOLS = {"openvino": "benchmark_app", "tflite": "litert-benchmark"}
TARGET = 1.05


def openvino_median_ms(
    path: Path, artifact: Artifact, threads: int, runs: int
) -> float:
    """Median latency reported by benchmark_app in synchronous mode.

    The app refuses -nthreads next to a hint, so the properties edgekit's
    runner sets (LATENCY, threads, f32 for fp32) go in through -load_config.
    """
    shapes = ",".join(
        f"{t.tensor}[{','.join(str(max(d, 1)) for d in t.shape)}]"
        for t in artifact.inputs
    )
    config = {"INFERENCE_NUM_THREADS": str(threads)}
    if artifact.precision == "fp32":
        config["INFERENCE_PRECISION_HINT"] = "f32"

    with tempfile.TemporaryDirectory() as work:
        config_file = Path(work) / "config.json"
        config_file.write_text(json.dumps({"CPU": config}))
        command = ["benchmark_app", "-m", str(path), "-d", "CPU", "-api", "sync"]
        command += ["-hint", "latency", "-load_config", str(config_file)]
        command += ["-niter", str(runs), "-shape", shapes]
        output = _run(command)

    match = re.search(r"Median:\s+([\d.]+)\s*(ms|us)", output)
    if not match:
        raise RuntimeError(f"no median in benchmark_app output:\n{output[-2000:]}")
    value = float(match.group(1))
    return value / 1000 if match.group(2) == "us" else value


def litert_median_ms(path: Path, threads: int, runs: int) -> float:
    """Median latency reported by litert-benchmark."""
    with tempfile.TemporaryDirectory() as work:
        result = Path(work) / "result.json"
        command = ["litert-benchmark", "--model", str(path)]
        command += ["--num_threads", str(threads), "--num_runs", str(runs)]
        command += ["--warmup_runs", "10", "--result_json", str(result)]
        output = _run(command)
        if not result.is_file():
            raise RuntimeError(f"litert-benchmark wrote no result:\n{output[-2000:]}")
        return float(json.loads(result.read_text())["latency"]["median_ms"])


def edgekit_p50_ms(bundle: Path, artifact: Artifact, threads: int, runs: int) -> float:
    """edgekit's p50 for one artifact: the runner and timing loop bench uses.

    The parity pass over every reference sample is left out; it does not
    touch the timed loop and would only make the benchmark slower.
    """
    inputs, _ = read_reference(bundle, read_manifest(bundle))
    feeds = batch_one_feeds(inputs)
    with open_runner(artifact, bundle, threads=threads) as runner:
        timing = measure(runner, feeds, warmup=10, runs=runs, min_seconds=0)
    return timing.latency.p50


def bare_call(artifact: Artifact, path: Path, threads: int, feed: np.ndarray):
    """The tool's own API call on inputs set once, with edgekit's settings.

    OpenVINO: ``InferRequest.infer`` on a model compiled like edgekit's
    runner compiles it. LiteRT: ``CompiledModel.run_by_name``, the API that
    litert-benchmark drives.
    """
    info = artifact.inputs[0]
    if info.dtype in ("int8", "uint8"):
        feed = quantize(feed, info.scale, info.zero_point, info.dtype)

    if artifact.format == "openvino":
        import openvino as ov

        config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": threads}
        if artifact.precision == "fp32":
            config["INFERENCE_PRECISION_HINT"] = "f32"
        request = (
            ov.Core().compile_model(str(path), "CPU", config).create_infer_request()
        )
        request.get_input_tensor(0).data[...] = feed
        return request.infer

    from ai_edge_litert.compiled_model import CompiledModel
    from ai_edge_litert.environment import Environment, EnvironmentOptions
    from ai_edge_litert.hardware_accelerator import HardwareAccelerator
    from ai_edge_litert.options import CpuOptions, Options

    options = Options(
        hardware_accelerators=HardwareAccelerator(HardwareAccelerator.CPU),
        cpu_options=CpuOptions(num_threads=threads),
    )
    environment = Environment.create(options=EnvironmentOptions())
    model = CompiledModel.from_file(str(path), environment=environment, options=options)
    key = next(iter(model.get_signature_list()))
    inputs = {
        n: model.create_input_buffer_by_name(key, n)
        for n in model.get_input_tensor_details(key)
    }
    outputs = {
        n: model.create_output_buffer_by_name(key, n)
        for n in model.get_output_tensor_details(key)
    }
    next(iter(inputs.values())).write(feed)
    return lambda: model.run_by_name(key, inputs, outputs)


def in_process_ratio(bundle: Path, artifact: Artifact, threads: int) -> float:
    """edgekit's runner against the bare API call, in alternating blocks.

    Both run in this process, ten calls at a time, so a busy machine slows
    both alike; the ratio of medians is edgekit's own overhead.
    """
    inputs, _ = read_reference(bundle, read_manifest(bundle))
    feeds = batch_one_feeds(inputs)
    first = feeds[0][artifact.inputs[0].name]
    with open_runner(artifact, bundle, threads=threads) as runner:
        call = bare_call(artifact, bundle / artifact.file, threads, first)
        ours, theirs = alternate(runner, feeds, call)
    return statistics.median(ours) / statistics.median(theirs)


def alternate(runner: Runner, feeds: list, call) -> tuple[list[int], list[int]]:
    """Time 20 blocks of ten runner calls and ten bare calls, in turn."""
    for _ in range(5):
        runner.infer(feeds[0])
        call()

    ours: list[int] = []
    theirs: list[int] = []
    for _ in range(20):
        for i in range(10):
            runner.infer(feeds[i % len(feeds)])
            ours.append(runner.last_run_ns)
        for _ in range(10):
            start = time.perf_counter_ns()
            call()
            theirs.append(time.perf_counter_ns() - start)
    return ours, theirs


def _run(command: list[str]) -> str:
    done = subprocess.run(command, capture_output=True, text=True)
    output = done.stdout + done.stderr
    if done.returncode != 0:
        lines = [line for line in output.splitlines() if "rror" in line]
        raise RuntimeError(f"{command[0]} exited {done.returncode}: {lines[-1:]}")
    return output


def measure_round(bundle: Path, artifact: Artifact, args, edgekit_first: bool):
    """One vendor and one edgekit measurement, in the given order."""
    path = bundle / artifact.file

    def vendor() -> float:
        if artifact.format == "openvino":
            return openvino_median_ms(path, artifact, args.threads, args.runs)
        return litert_median_ms(path, args.threads, args.runs)

    def ours() -> float:
        return edgekit_p50_ms(bundle, artifact, args.threads, args.runs)

    if edgekit_first:
        mine = ours()
        return mine, vendor()
    theirs = vendor()
    return ours(), theirs


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("bundle", nargs="?", type=Path, default=Path("artifacts"))
    parser.add_argument("--threads", type=int, default=physical_cores())
    parser.add_argument("--runs", type=int, default=100, help="timed runs per tool")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds")
    parser.add_argument("--only", default="*", help="glob over artifact files")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    manifest = read_manifest(args.bundle)
    chosen = [
        a
        for a in manifest.artifacts
        if a.format in TOOLS and fnmatch.fnmatch(a.file, args.only)
    ]
    missing = [TOOLS[a.format] for a in chosen if not shutil.which(TOOLS[a.format])]
    if missing:
        print(f"not on PATH: {sorted(set(missing))}", file=sys.stderr)
        return 2

    print(f"threads {args.threads}, {args.runs} runs x {args.rounds} rounds, batch 1")
    header = ("artifact", "tool", "edgekit p50", "tool p50", "ratio", "range")
    print("{:<16} {:<17} {:>12} {:>10} {:>7}  {:<11}  in-process".format(*header))
    ratios = [compare_artifact(args, artifact) for artifact in chosen]
    return print_verdict([r for r in ratios if r is not None])


def compare_artifact(args: argparse.Namespace, artifact: Artifact) -> tuple | None:
    """Print one artifact's row; return (ratio, low, high), None if it failed."""
    tool = TOOLS[artifact.format]
    try:
        pairs = [
            measure_round(args.bundle, artifact, args, edgekit_first=i % 2 == 1)
            for i in range(args.rounds)
        ]
    except RuntimeError as error:
        print(f"{artifact.id:<16} {tool:<17} failed: {error}")
        return None

    ratio, low, high = summarize(pairs)
    mine = statistics.median(p[0] for p in pairs)
    theirs = statistics.median(p[1] for p in pairs)
    try:
        # LiteRT's accelerator registry logs on fd 2 as it comes and goes.
        with captured_native_output("LiteRT"):
            bare = f"{in_process_ratio(args.bundle, artifact, args.threads):.3f}"
    except RuntimeError as error:
        bare = f"n/a ({str(error).splitlines()[0][:40]})"
    print(
        f"{artifact.id:<16} {tool:<17} {mine:>9.3f} ms {theirs:>7.3f} ms "
        f"{ratio:>7.3f}  {low:.3f}-{high:.3f}  {bare}"
    )
    return ratio, low, high


def print_verdict(ratios: list[tuple[float, float, float]]) -> int:
    """Say whether every median ratio is within the target; 1 if none ran."""
    if not ratios:
        print("no artifact could be measured by its vendor tool")
        return 1

    worst = max(abs(ratio - 1) for ratio, _, _ in ratios)
    spread = max(high - low for _, low, high in ratios)
    verdict = "within" if worst <= TARGET - 1 else "OUTSIDE"
    print(f"largest deviation {worst:.1%}: {verdict} the {TARGET - 1:.0%} target")
    if spread > 2 * (TARGET - 1):
        # Ratios of single rounds that differ this much say the machine was
        # busy; the medians are still paired, but the verdict is weak.
        print(
            f"noisy: single-round ratios spread over {spread:.0%}; rerun on an "
            "idle machine or with more --rounds before trusting the verdict"
        )
    return 0


def summarize(pairs: list[tuple[float, float]]) -> tuple[float, float, float]:
    """The median of paired ratios edgekit/tool, and their range.

    Each pair ran back to back, so load from other processes on a shared
    machine mostly cancels within a pair.
    """
    ratios = [mine / theirs for mine, theirs in pairs]
    return statistics.median(ratios), min(ratios), max(ratios)


if __name__ == "__main__":
    sys.exit(main())
