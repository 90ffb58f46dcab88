"""Each runner on the real runtimes, float and int8, against the reference."""

import numpy as np
import pytest

from edgekit.bundle import read_manifest, read_reference
from edgekit.parity import cosine
from edgekit.runners import RunnerError, dequantize, open_runner, quantize

# Float artifacts match Keras to float rounding; int8 ones to a few
# quantization steps of the softmax output (1/256).
TOLERANCE = {"fp32": 1e-5, "int8": 0.05}
IDS = [
    "tflite-fp32.tflite",
    "tflite-int8.tflite",
    "onnx-fp32.onnx",
    "onnx-int8.onnx",
    "openvino-fp32.xml",
    "openvino-int8.xml",
]


def _artifact(bundle, file):
    manifest = read_manifest(bundle)
    return next(a for a in manifest.artifacts if a.file == file), manifest


@pytest.mark.parametrize("file", IDS)
def test_runner_matches_the_reference_within_its_precision(built_bundle, file):
    artifact, manifest = _artifact(built_bundle, file)
    inputs, reference = read_reference(built_bundle, manifest)

    with open_runner(artifact, built_bundle, threads=1) as runner:
        rows = [runner.infer({"image": x[None]}) for x in inputs["image"]]
        settings = runner.settings

    verdict = np.concatenate([r["verdict"] for r in rows])
    features = np.concatenate([r["features"] for r in rows])
    assert verdict.dtype == features.dtype == np.float32
    assert features.shape == reference["features"].shape
    np.testing.assert_allclose(
        verdict, reference["verdict"], atol=TOLERANCE[artifact.precision], rtol=0
    )
    # Features of held-out samples can exceed the calibrated range and clip,
    # so int8 is judged on the whole tensor, not on its worst element.
    assert cosine(features, reference["features"]) > 0.999
    if artifact.precision == "fp32":
        np.testing.assert_allclose(features, reference["features"], atol=1e-5)
    assert settings["runtime"]


def test_int8_tflite_artifact_really_has_int8_io(built_bundle):
    artifact, _ = _artifact(built_bundle, "tflite-int8.tflite")

    assert artifact.inputs[0].dtype == "int8"
    assert artifact.outputs[0].scale == pytest.approx(1 / 256)


def test_threads_and_precision_are_set_and_read_back(built_bundle):
    ort_artifact, _ = _artifact(built_bundle, "onnx-fp32.onnx")
    ov_artifact, _ = _artifact(built_bundle, "openvino-fp32.xml")
    lite_artifact, _ = _artifact(built_bundle, "tflite-fp32.tflite")

    with open_runner(ort_artifact, built_bundle, threads=2) as ort_runner:
        assert ort_runner.settings["intra_op_num_threads"] == 2
        assert ort_runner.settings["graph_optimization_level"] == "ORT_ENABLE_ALL"
    with open_runner(ov_artifact, built_bundle, threads=1) as ov_runner:
        assert ov_runner.settings["inference_num_threads"] == 1
        assert ov_runner.settings["inference_precision_hint"] == "f32"
        assert ov_runner.settings["performance_hint"] == "LATENCY"
        assert ov_runner.settings["num_streams"] == 1
    with open_runner(lite_artifact, built_bundle, threads=2) as lite_runner:
        assert lite_runner.settings["num_threads"] == 2


def test_runtime_call_is_timed_apart_from_io(built_bundle):
    artifact, manifest = _artifact(built_bundle, "tflite-int8.tflite")
    inputs, _ = read_reference(built_bundle, manifest)

    with open_runner(artifact, built_bundle) as runner:
        runner.infer({"image": inputs["image"][:1]})

    assert runner.last_run_ns > 0
    assert runner.last_io_ns > 0
    assert runner.load_ns > 0


def test_wrong_input_name_and_shape_are_refused(built_bundle):
    artifact, _ = _artifact(built_bundle, "onnx-fp32.onnx")

    with open_runner(artifact, built_bundle) as runner:
        with pytest.raises(RunnerError, match="needs input 'image'"):
            runner.infer({"x": np.zeros((1, 32, 32, 1), np.float32)})
        with pytest.raises(RunnerError, match=r"expects \[-1, 32, 32, 1\]"):
            runner.infer({"image": np.zeros((1, 16, 16, 1), np.float32)})


def test_dynamic_batch_accepts_batch_one_and_more(built_bundle):
    artifact, _ = _artifact(built_bundle, "onnx-fp32.onnx")

    with open_runner(artifact, built_bundle) as runner:
        one = runner.infer({"image": np.zeros((1, 32, 32, 1), np.float32)})
        three = runner.infer({"image": np.zeros((3, 32, 32, 1), np.float32)})

    assert one["verdict"].shape == (1, 2)
    assert three["verdict"].shape == (3, 2)


def test_infer_before_load_is_refused(built_bundle):
    artifact, _ = _artifact(built_bundle, "tflite-fp32.tflite")
    runner = open_runner(artifact, built_bundle)

    with pytest.raises(RunnerError, match="not loaded"):
        runner.infer({"image": np.zeros((1, 32, 32, 1), np.float32)})


def test_unknown_openvino_device_is_refused(built_bundle):
    artifact, _ = _artifact(built_bundle, "openvino-fp32.xml")

    with pytest.raises(RunnerError, match="'TPU' is not available here"):
        open_runner(artifact, built_bundle, device="TPU").load()


def test_quantize_rounds_half_away_from_zero_and_clips():
    values = np.array([-1000.0, -0.25, -0.15, 0.0, 0.15, 0.25, 1000.0], np.float32)

    q = quantize(values, scale=0.1, zero_point=-1, dtype="int8")

    assert q.dtype == np.int8
    assert q.tolist() == [-128, -4, -3, -1, 1, 2, 127]


def test_dequantize_inverts_quantize_within_half_a_step():
    rng = np.random.default_rng(1)
    values = rng.uniform(-1, 1, 1000).astype(np.float32)
    scale, zero = 2 / 255, 0

    back = dequantize(quantize(values, scale, zero, "int8"), scale, zero)

    assert back.dtype == np.float32
    assert np.abs(back - values).max() <= scale / 2 + 1e-7


def test_uint8_quantization_uses_its_own_range():
    q = quantize(np.array([-1.0, 0.0, 1.0], np.float32), 1 / 128, 128, "uint8")

    assert q.tolist() == [0, 128, 255]
