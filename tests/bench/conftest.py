"""A small real bundle for the bench tests, built once per session.

A tiny two-output Keras model (32x32x1 in, a 2-way softmax verdict and a
feature vector out) is converted with the real converters into the six
artifacts that ``edgekit export --int8`` writes: TFLite, ONNX and OpenVINO,
each fp32 and int8. The TFLite int8 artifact has int8 inputs and outputs, so
the runners' (de)quantization is exercised; the ONNX artifacts keep a
dynamic batch dimension. Tests may import TensorFlow; the code under test may
not.
"""

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from edgekit.bundle import (
    Artifact,
    FileInfo,
    Manifest,
    TensorInfo,
    sha256_of,
    write_reference,
)

SIZE = 32
SAMPLES = 8


def _model(batch_size: int | None = None):
    import keras

    keras.utils.set_random_seed(7)
    image = keras.Input((SIZE, SIZE, 1), batch_size=batch_size, name="image")
    x = keras.layers.Conv2D(8, 4, strides=2, padding="same", use_bias=False)(image)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.LeakyReLU(0.2)(x)
    x = keras.layers.Conv2D(16, 4, strides=4, padding="same")(x)
    x = keras.layers.LeakyReLU(0.2)(x)
    features = keras.layers.Flatten(name="features")(x)
    verdict = keras.layers.Dense(2, activation="softmax", name="verdict")(features)
    return keras.Model(image, [verdict, features])


def _function(model, batch):
    import tensorflow as tf

    shape = (batch, *model.input_shape[1:])
    spec = tf.TensorSpec(shape, tf.float32, name="image")

    @tf.function(input_signature=[spec])
    def serve(image):
        verdict, features = model(image, training=False)
        return {"verdict": verdict, "features": features}

    return serve


def _tflite(model, calibration, int8):
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if int8:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([x[None]] for x in calibration)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    return converter.convert()


def _tflite_tensors(path):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    runner = interpreter.get_signature_runner()

    def info(name, key, detail):
        scale, zero = detail["quantization"]
        quantized = scale != 0.0
        return TensorInfo(
            name=name,
            tensor=key,
            shape=[int(d) for d in detail["shape"]],
            dtype=np.dtype(detail["dtype"]).name,
            scale=float(scale) if quantized else None,
            zero_point=int(zero) if quantized else None,
        )

    inputs = [info(k, k, d) for k, d in runner.get_input_details().items()]
    outputs = runner.get_output_details()
    # from_keras_model names the outputs by position.
    pairs = (("verdict", "output_0"), ("features", "output_1"))
    return inputs, [info(name, key, outputs[key]) for name, key in pairs]


def _onnx(model, path):
    import tf2onnx

    # The model's own batch: None (dynamic) for the tiny model, 1 for PatchGAN.
    serve = _function(model, model.input_shape[0])
    proto, _ = tf2onnx.convert.from_function(
        serve, input_signature=serve.input_signature, opset=17
    )
    path.write_bytes(proto.SerializeToString())


def _onnx_tensors(path, features):
    import onnx

    proto = onnx.load(str(path))

    def shape(value):
        dims = value.type.tensor_type.shape.dim
        return [d.dim_value if d.HasField("dim_value") else -1 for d in dims]

    inputs = [
        TensorInfo(
            "image", proto.graph.input[0].name, shape(proto.graph.input[0]), "float32"
        )
    ]
    by_width = {shape(o)[-1]: o for o in proto.graph.output}
    outputs = [
        TensorInfo(name, by_width[width].name, shape(by_width[width]), "float32")
        for name, width in (("verdict", 2), ("features", features))
    ]
    return inputs, outputs


def _onnx_int8(source, target, calibration, input_name):
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantType,
        quantize_static,
    )

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.items = iter([{input_name: x[None]} for x in calibration])

        def get_next(self):
            return next(self.items, None)

    # Softmax stays float: quantized softmax collapses a 2-class verdict.
    quantize_static(
        str(source),
        str(target),
        Reader(),
        activation_type=QuantType.QInt8,
        weight_type=QuantType.QInt8,
        op_types_to_quantize=["Conv", "MatMul", "Gemm", "Add", "LeakyRelu"],
    )


def _openvino(onnx_path, xml_path):
    import openvino as ov

    ov.save_model(
        ov.convert_model(str(onnx_path)), str(xml_path), compress_to_fp16=False
    )


def _artifact(bundle, file, fmt, precision, inputs, outputs, companions=()):
    path = bundle / file
    return Artifact(
        file=file,
        format=fmt,
        precision=precision,
        sha256=sha256_of(path),
        bytes=path.stat().st_size,
        inputs=inputs,
        outputs=outputs,
        converter={"name": "test"},
        seconds=0.0,
        companions=[
            FileInfo(c, sha256_of(bundle / c), (bundle / c).stat().st_size)
            for c in companions
        ],
    )


def build_bundle(bundle: Path, model=None, samples: int = SAMPLES) -> None:
    """Convert a model (the tiny one by default) into six artifacts.

    The model must have one input ``image`` and the outputs ``verdict`` and
    ``features``, in that order, like edgekit's PatchGAN.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    model = model or _model()
    shape = tuple(model.input_shape[1:])
    rng = np.random.default_rng(0)
    calibration = rng.uniform(-1, 1, (16, *shape)).astype(np.float32)
    holdout = rng.uniform(-1, 1, (samples, *shape)).astype(np.float32)
    model.predict(calibration, verbose=0)
    bundle.mkdir(parents=True)

    artifacts = []
    for precision, int8 in (("fp32", False), ("int8", True)):
        name = f"tflite-{precision}.tflite"
        (bundle / name).write_bytes(_tflite(model, calibration, int8))
        inputs, outputs = _tflite_tensors(bundle / name)
        artifacts.append(_artifact(bundle, name, "tflite", precision, inputs, outputs))

    _onnx(model, bundle / "onnx-fp32.onnx")
    features = int(model.output_shape[1][-1])
    inputs, outputs = _onnx_tensors(bundle / "onnx-fp32.onnx", features)
    _onnx_int8(
        bundle / "onnx-fp32.onnx",
        bundle / "onnx-int8.onnx",
        calibration,
        inputs[0].tensor,
    )
    for precision in ("fp32", "int8"):
        onnx_file, xml = f"onnx-{precision}.onnx", f"openvino-{precision}.xml"
        artifacts.append(
            _artifact(bundle, onnx_file, "onnx", precision, inputs, outputs)
        )
        _openvino(bundle / onnx_file, bundle / xml)
        bin_file = xml.replace(".xml", ".bin")
        artifacts.append(
            _artifact(bundle, xml, "openvino", precision, inputs, outputs, [bin_file])
        )

    verdict, features = model.predict(holdout, verbose=0)
    write_reference(
        bundle / "reference.npz",
        {"image": holdout},
        {"verdict": verdict, "features": features},
    )
    manifest = Manifest(
        model={"name": model.name, "input_shape": list(shape)},
        preprocessing={"range": [-1, 1]},
        calibration={"count": len(calibration)},
        holdout={"count": samples},
        outputs=[
            {"name": "verdict", "role": "class"},
            {"name": "features", "role": "features"},
        ],
        artifacts=artifacts,
        edgekit_version="test",
    )
    (bundle / "manifest.json").write_text(manifest.to_json())
    # Beside the bundle, not in it: for --reference keras --model.
    model.save(bundle.parent / f"{model.name}.keras")


@pytest.fixture(scope="session")
def built_bundle(tmp_path_factory) -> Path:
    """The pristine bundle; copy it before changing anything (see ``bundle``)."""
    path = tmp_path_factory.mktemp("built") / "bundle"
    build_bundle(path)
    return path


@pytest.fixture
def bundle(built_bundle, tmp_path) -> Path:
    """A private copy of the bundle that a test may tamper with."""
    copy = tmp_path / "bundle"
    shutil.copytree(built_bundle, copy)
    return copy


def edit_manifest(bundle: Path, change) -> None:
    """Apply ``change`` to the manifest's JSON dict and write it back."""
    path = bundle / "manifest.json"
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))
