"""How much faster ``edgekit export --int8`` is than the same export by hand.

Run from the repository root (it reads ``calibration/``)::

    python benchmarks/export_speed.py            # by hand, then edgekit
    python benchmarks/export_speed.py --repeat 2 # best of two of each

The by-hand sequence is the straightforward one: in one fresh process,
import TensorFlow, build the model with its demo weights, then convert
stage after stage with each tool's usual entry point (TFLite fp32 and int8
from the Keras model, tf2onnx from a tf.function, ONNX Runtime static QDQ
quantization, OpenVINO conversion from the Keras model, NNCF). Both runs use
the same model, the same calibration images and a fresh process, measured in
the same invocation; the ratio is edgekit's wall time over the by-hand one
(the target is at most 0.6).
"""

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STAGES = ("tflite_fp32", "tflite_int8", "onnx_fp32", "onnx_int8", "ov_fp32", "ov_int8")


def by_hand(out: Path) -> None:
    """The export done stage after stage, printing each stage's seconds."""
    clock = time.perf_counter()
    import tensorflow as tf

    from edgekit.images import load_images
    from edgekit.models import resolve_model

    model = resolve_model().model
    images = load_images("calibration/images").arrays
    _lap("import_and_model", clock)

    for stage in STAGES:
        clock = time.perf_counter()
        globals()[f"_{stage}"](model, images, out, tf)
        _lap(stage, clock)


def _lap(stage: str, clock: float) -> None:
    print(f"STAGE {stage} {time.perf_counter() - clock:.2f}", flush=True)


def _samples(images):
    for index in range(len(images)):
        yield [images[index : index + 1]]


def _tflite_fp32(model, images, out: Path, tf) -> None:
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    (out / "fp32.tflite").write_bytes(converter.convert())


def _tflite_int8(model, images, out: Path, tf) -> None:
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: _samples(images)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    (out / "int8.tflite").write_bytes(converter.convert())


def _onnx_fp32(model, images, out: Path, tf) -> None:
    import tf2onnx

    spec = tf.TensorSpec((1, *model.input_shape[1:]), tf.float32, name="image")
    function = tf.function(lambda image: model(image), input_signature=[spec])
    tf2onnx.convert.from_function(
        function, input_signature=[spec], opset=17, output_path=str(out / "fp32.onnx")
    )


def _onnx_int8(model, images, out: Path, tf) -> None:
    import onnx
    from onnxruntime import quantization as ortq

    graph = onnx.load(str(out / "fp32.onnx")).graph
    softmax = [n.name for n in graph.node if n.op_type == "Softmax"]
    feeds = iter([{graph.input[0].name: images[i : i + 1]} for i in range(len(images))])

    class Reader(ortq.CalibrationDataReader):
        def get_next(self):
            return next(feeds, None)

    ortq.quantize_static(
        str(out / "fp32.onnx"),
        str(out / "int8.onnx"),
        Reader(),
        quant_format=ortq.QuantFormat.QDQ,
        per_channel=True,
        nodes_to_exclude=softmax,
    )


def _ov_fp32(model, images, out: Path, tf) -> None:
    import openvino as ov

    ov.save_model(
        ov.convert_model(model), str(out / "fp32.xml"), compress_to_fp16=False
    )


def _ov_int8(model, images, out: Path, tf) -> None:
    import nncf
    import openvino as ov

    ov_model = ov.Core().read_model(str(out / "fp32.xml"))
    dataset = nncf.Dataset([images[i : i + 1] for i in range(len(images))])
    quantized = nncf.quantize(ov_model, dataset, subset_size=len(images))
    ov.save_model(quantized, str(out / "int8.xml"), compress_to_fp16=False)


def _timed(command: list[str]) -> tuple[float, str]:
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"{' '.join(command[:4])} failed:\n{result.stderr[-2000:]}")
    return seconds, result.stdout


def main() -> None:
    """Time both, print the stages, the totals and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--by-hand", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.by_hand:
        by_hand(args.by_hand)
        return

    hand_times, edgekit_times = [], []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as scratch:
            seconds, stages = _timed([sys.executable, __file__, "--by-hand", scratch])
            hand_times.append(seconds)
            edgekit = [sys.executable, "-m", "edgekit", "-q", "export", "--int8"]
            seconds, _ = _timed(edgekit + ["-o", str(Path(scratch) / "bundle")])
            edgekit_times.append(seconds)
    # The converters print to stdout too; only the stage lines are ours.
    lines = [line[6:] for line in stages.splitlines() if line.startswith("STAGE ")]
    print("by hand, per stage (s):")
    print("  " + "\n  ".join(lines))
    hand, ours = min(hand_times), min(edgekit_times)
    print(f"by hand:        {hand:6.1f} s")
    print(f"edgekit export: {ours:6.1f} s")
    print(f"ratio:          {ours / hand:6.2f} (target <= 0.6)")


if __name__ == "__main__":
    main()
