"""Each exported artifact, loaded in its own runtime, against the Keras outputs."""

import numpy as np
import pytest

from edgekit.bundle import verify_artifact
from edgekit.export import export_bundle
from edgekit.export.tflite import operator_names

from .conftest import (
    agreement,
    min_cosine,
    reference_of,
    run_artifact,
    tiny_options,
)

EXPECTED = {
    "tflite": ["fp32", "fp16", "int8"],
    "onnx": ["fp32", "int8"],
    "openvino": ["fp32", "fp16", "int8"],
}


def _artifact(manifest, fmt: str, precision: str):
    return next(
        a for a in manifest.artifacts if (a.format, a.precision) == (fmt, precision)
    )


def test_every_format_and_precision_is_exported_and_hashed(
    small_bundle, small_manifest
):
    found = {}
    for artifact in small_manifest.artifacts:
        found.setdefault(artifact.format, []).append(artifact.precision)
        verify_artifact(small_bundle, artifact)
        assert (
            artifact.file
            == f"{artifact.format}-{artifact.precision}"
            + (
                {"tflite": ".tflite", "onnx": ".onnx", "openvino": ".xml"}[
                    artifact.format
                ]
            )
        )

    assert found == EXPECTED


@pytest.mark.parametrize("fmt", ["tflite", "onnx", "openvino"])
def test_fp32_matches_keras(small_bundle, small_manifest, fmt):
    images, reference = reference_of(small_bundle, small_manifest)

    outputs = run_artifact(small_bundle, _artifact(small_manifest, fmt, "fp32"), images)

    np.testing.assert_allclose(outputs["verdict"], reference["verdict"], atol=1e-5)
    np.testing.assert_allclose(outputs["features"], reference["features"], atol=1e-4)


@pytest.mark.parametrize("fmt", ["tflite", "openvino"])
def test_fp16_stays_close_to_keras(small_bundle, small_manifest, fmt):
    images, reference = reference_of(small_bundle, small_manifest)

    outputs = run_artifact(small_bundle, _artifact(small_manifest, fmt, "fp16"), images)

    # fp16 weights move the tiny model's logits by up to a few hundredths, and
    # OpenVINO runs an fp16 IR in bf16 on CPUs that have it (this one does).
    np.testing.assert_allclose(outputs["verdict"], reference["verdict"], atol=3e-2)
    assert min_cosine(outputs["features"], reference["features"]) > 0.99
    assert agreement(outputs, reference) >= 0.95


@pytest.mark.parametrize("fmt", ["tflite", "onnx", "openvino"])
def test_int8_keeps_the_verdict(small_bundle, small_manifest, fmt):
    images, reference = reference_of(small_bundle, small_manifest)
    artifact = _artifact(small_manifest, fmt, "int8")

    outputs = run_artifact(small_bundle, artifact, images)

    # A narrow 32x32 network is harder on int8 than the real one, whose
    # >= 98% agreement is checked in test_end_to_end.py; NNCF does least well
    # on it (35 of 40 held-out verdicts kept, against 39 of 40 for the others,
    # and a worst image at cosine 0.78).
    nncf = fmt == "openvino"
    assert agreement(outputs, reference) >= (0.85 if nncf else 0.9)
    assert min_cosine(outputs["features"], reference["features"]) >= (
        0.75 if nncf else 0.93
    )
    # The verdict policy: the softmax is not stuck on 1/256 steps.
    steps = np.abs(outputs["verdict"] * 256 - np.round(outputs["verdict"] * 256))
    assert steps.max() > 0.01


@pytest.mark.parametrize("fmt", ["tflite", "onnx", "openvino"])
def test_int8_records_the_softmax_kept_in_float(small_manifest, fmt):
    record = _artifact(small_manifest, fmt, "int8").quantization

    assert record["applied"] is True
    assert record["per_channel"] is True
    assert record["verdict_policy"] == "softmax-in-float"
    assert record["float_blocks"] == {"leading": 3, "trailing": 1}
    assert any("softmax" in name.lower() for name in record["kept_in_float"])
    assert len(record["kept_in_float"]) >= 7


def test_tflite_uses_builtin_ops_only_and_int8_kernels(small_bundle, small_manifest):
    for precision in EXPECTED["tflite"]:
        artifact = _artifact(small_manifest, "tflite", precision)
        ops = operator_names((small_bundle / artifact.file).read_bytes())

        assert not [op for op in ops if op.startswith("Flex")], ops
        if precision == "int8":
            assert {"QUANTIZE", "DEQUANTIZE", "SOFTMAX"} <= set(ops)


def test_int8_io_gives_quantized_tensors_that_dequantize_right(
    tiny_model_path, tmp_path
):
    options = tiny_options(
        tiny_model_path, tmp_path / "io", int8=True, int8_io=True, formats=("tflite",)
    )

    manifest = export_bundle(options)

    artifact = _artifact(manifest, "tflite", "int8")
    tensors = {t.name: t for t in [*artifact.inputs, *artifact.outputs]}
    assert {t.dtype for t in tensors.values()} == {"int8"}
    assert all(t.scale and t.zero_point is not None for t in tensors.values())
    images, reference = reference_of(tmp_path / "io", manifest)
    outputs = run_artifact(tmp_path / "io", artifact, images)
    assert agreement(outputs, reference) >= 0.9
    assert min_cosine(outputs["features"], reference["features"]) >= 0.93


def test_dynamic_batch_leaves_the_batch_open_in_every_format(tiny_model_path, tmp_path):
    import onnx

    options = tiny_options(tiny_model_path, tmp_path / "dyn", dynamic_batch=True)

    manifest = export_bundle(options)

    assert {a.inputs[0].shape[0] for a in manifest.artifacts} == {-1}
    graph = onnx.load(str(tmp_path / "dyn" / "onnx-fp32.onnx")).graph
    assert graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    images, reference = reference_of(tmp_path / "dyn", manifest)
    for artifact in manifest.artifacts:
        outputs = run_artifact(tmp_path / "dyn", artifact, images)
        np.testing.assert_allclose(outputs["verdict"], reference["verdict"], atol=1e-5)


@pytest.mark.parametrize("method", ["minmax", "entropy", "percentile"])
def test_calibrating_only_quantized_tensors_gives_ort_s_own_model(
    small_bundle, tmp_path, method
):
    import onnx
    from onnxruntime import quantization as ortq

    from edgekit.export.onnx import _Feed, kept_in_float, quantize_int8, static_options
    from edgekit.images import Preprocessing, load_images

    from .conftest import CALIBRATION, SIZE

    images = load_images(
        CALIBRATION, Preprocessing(height=SIZE, width=SIZE, channels=1), limit=16
    ).arrays
    float_path = small_bundle / "onnx-fp32.onnx"
    kept = kept_in_float(onnx.load(str(float_path)))
    ours = tmp_path / "ours.onnx"
    theirs = tmp_path / "theirs.onnx"

    quantize_int8(float_path, ours, images, method=method)
    # ONNX Runtime calibrating every tensor itself, with the same settings.
    ortq.quantize_static(
        str(float_path),
        str(theirs),
        _Feed("image", images),
        **static_options(ortq, kept, per_channel=True, method=method),
    )

    _assert_same_up_to_float_rounding(onnx.load(str(ours)), onnx.load(str(theirs)))


def _assert_same_up_to_float_rounding(ours, theirs) -> None:
    """The same graph, weights and zero points; scales within float rounding.

    Ours calibrates on an optimized session, ONNX Runtime on an unoptimized
    one: the activations agree to float rounding, and so do the scales. A
    tensor left out of our calibration would leave its nodes unquantized.
    """
    from onnx import numpy_helper

    def nodes(model):
        return [(n.op_type, n.name, list(n.input)) for n in model.graph.node]

    def tensors(model):
        return {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}

    assert nodes(ours) == nodes(theirs)
    ours_tensors, their_tensors = tensors(ours), tensors(theirs)
    assert ours_tensors.keys() == their_tensors.keys()
    for name, value in ours_tensors.items():
        if value.dtype.kind == "f":
            np.testing.assert_allclose(value, their_tensors[name], rtol=2e-3)
        else:
            np.testing.assert_array_equal(value, their_tensors[name], err_msg=name)


def test_image_by_image_histograms_are_onnx_runtime_s_own():
    from types import SimpleNamespace

    from onnxruntime.quantization.calibrate import HistogramCollector

    from edgekit.export.onnx import _absolute_histograms

    settings = {"method": "percentile", "symmetric": True, "num_bins": 2048}
    settings |= {"num_quantized_bins": 128, "percentile": 99.999, "scenario": "same"}
    generator = np.random.default_rng(7)
    # Images of different spreads, so that the range comes from more than one.
    outputs = {
        f"tensor{t}": [
            (generator.standard_normal((1, 8, 8, 16)) * scale).astype(np.float32)
            for scale in generator.uniform(0.1, 5.0, size=12)
        ]
        for t in range(3)
    }

    theirs = HistogramCollector(**settings)
    theirs.collect({n: [a.copy() for a in arrays] for n, arrays in outputs.items()})
    ours = _absolute_histograms(SimpleNamespace(**settings))
    ours.collect(outputs)

    assert ours.histogram_dict.keys() == theirs.histogram_dict.keys()
    for name, (counts, edges, low, high) in ours.histogram_dict.items():
        their_counts, their_edges, their_low, their_high = theirs.histogram_dict[name]
        np.testing.assert_array_equal(counts, their_counts, err_msg=name)
        np.testing.assert_array_equal(edges, their_edges, err_msg=name)
        assert edges.dtype == their_edges.dtype and (low, high) == (
            their_low,
            their_high,
        )


def test_litert_calibration_gives_tensorflow_calibrator_s_ranges(small_bundle):
    from tensorflow.lite.tools import flatbuffer_utils

    from edgekit.export.tflite import _calibrate_with_tensorflow, calibrate
    from edgekit.images import Preprocessing, load_images

    from .conftest import CALIBRATION, SIZE

    images = load_images(
        CALIBRATION, Preprocessing(height=SIZE, width=SIZE, channels=1), limit=16
    ).arrays
    model = (small_bundle / "tflite-fp32.tflite").read_bytes()

    ours = _ranges(flatbuffer_utils, calibrate(model, images))
    theirs = _ranges(flatbuffer_utils, _calibrate_with_tensorflow(model, images))

    # Every tensor the calibrator measured, and its range within float rounding
    # (XNNPACK and the reference kernels sum in different orders).
    assert ours.keys() == theirs.keys() and len(ours) > 10
    for index, (low, high) in theirs.items():
        np.testing.assert_allclose(ours[index], (low, high), rtol=1e-4, atol=1e-5)


def _ranges(flatbuffer_utils, model: bytes) -> dict[int, tuple[float, float]]:
    graph = flatbuffer_utils.read_model_from_bytearray(model).subgraphs[0]
    return {
        index: (float(t.quantization.min[0]), float(t.quantization.max[0]))
        for index, t in enumerate(graph.tensors)
        if t.quantization is not None
        and t.quantization.min is not None
        and len(t.quantization.min)
    }
