"""TFLite export: fp32, full-integer int8 and optionally fp16.

The float model is converted once. The int8 model is calibrated and quantized
from that float flatbuffer, as TensorFlow's own QuantizationDebugger does,
instead of converting the graph a second time: the MLIR conversion is the
slow part, and quantizing from the float flatbuffer is what lets the softmax
stay in float (``denylisted_ops``), which the public converter options do
not offer. The calibration itself runs in LiteRT (see ``calibrate``).

Each artifact is run through the signature ``serving_default``; its inputs
and outputs are the signature's keys, which are the model's own names.
"""

import contextlib
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from edgekit.bundle import TensorInfo
from edgekit.errors import ExportError
from edgekit.export.common import (
    Produced,
    Stopwatch,
    Traced,
    float_block_ops,
    float_quantization,
    fp16_quantization,
    graph_tensors,
    int8_quantization,
    single_images,
)
from edgekit.logs import captured_native_output

SIGNATURE = "serving_default"
# The TFLite op kept in float by the verdict policy.
FLOAT_OPS = ["SOFTMAX"]


def export_tflite(
    traced: Traced,
    out_dir: Path,
    *,
    precisions: list[str],
    calibration: np.ndarray | None = None,
    int8_io: bool = False,
) -> list[Produced]:
    """Convert the traced model to TFLite files in ``out_dir``.

    Args:
        traced: the model traced once (see ``common.trace_model``).
        out_dir: where ``tflite-<precision>.tflite`` files are written.
        precisions: any of ``fp32``, ``fp16``, ``int8``; fp32 is always made
            because int8 is quantized from it.
        calibration: preprocessed images (N, H, W, C), required for int8.
        int8_io: give the int8 model int8 input and output tensors.
    """
    produced = []
    watch = Stopwatch()
    float_model = _convert(traced, fp16=False)
    float_seconds = watch.seconds()
    if "fp32" in precisions:
        produced.append(
            _write(float_model, out_dir, "fp32", float_seconds, None, traced)
        )

    if "fp16" in precisions:
        watch = Stopwatch()
        model = _convert(traced, fp16=True)
        record = fp16_quantization()
        produced.append(_write(model, out_dir, "fp16", watch.seconds(), record, traced))

    if "int8" in precisions:
        watch = Stopwatch()
        model, kept = quantize_int8(float_model, calibration, int8_io=int8_io)
        quant = int8_quantization(
            method="minmax",
            per_channel=True,
            kept_in_float=kept + FLOAT_OPS,
            io="int8" if int8_io else "float32",
        )
        produced.append(_write(model, out_dir, "int8", watch.seconds(), quant, traced))
    return produced


def _convert(traced: Traced, *, fp16: bool) -> bytes:
    import tensorflow as tf

    # The function is frozen already, so the converter takes the frozen-graph
    # path. Given a trackable object it would go through a SavedModel and, with
    # Keras 3 variables, keep READ_VARIABLE ops that calibration cannot run.
    # The frozen path writes no signature; ``add_signature`` puts one back.
    function = traced.function.get_concrete_function()
    with _quiet_absl():
        converter = tf.lite.TFLiteConverter.from_concrete_functions([function])
    _reuse_frozen_graph(converter, traced)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if fp16:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    try:
        with captured_native_output("tflite"):
            return add_signature(converter.convert(), traced)
    except Exception as exc:
        raise ExportError(
            f"the TFLite converter failed ({type(exc).__name__}: {_first_line(exc)})",
            "run with -v to see the converter's output, or leave tflite out of "
            "--formats",
        ) from exc


def _reuse_frozen_graph(converter: Any, traced: Traced) -> None:
    """Hand the converter the graph the trace froze, instead of freezing again.

    The converter freezes the function it is given even when it holds no
    variables, copying the 78 MB of weights through another GraphDef and
    building a function from it: a second on the CI machine, for each TFLite
    conversion. The graph it would produce is the one ``trace_model`` froze
    already; the file is the same. Its Grappler pass wants that graph's
    tensors, not only the GraphDef, hence the import.
    """
    graph, inputs, outputs = graph_tensors(traced)
    frozen = SimpleNamespace(graph=graph)

    def already_frozen() -> tuple[Any, list[Any], list[Any], Any]:
        return traced.graph_def, inputs, outputs, frozen

    converter._freeze_concrete_function = already_frozen


def add_signature(model: bytes, traced: Traced) -> bytes:
    """Name the I/O tensors after the model and add a ``serving_default`` signature.

    The frozen function's outputs come in the order of its flattened output
    dict, which is the sorted order of the output names.
    """
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    parsed = flatbuffer_utils.read_model_from_bytearray(model)
    graph = parsed.subgraphs[0]
    names = {graph.inputs[0]: traced.input_name}
    names |= dict(zip(graph.outputs, sorted(traced.output_names), strict=True))
    for index, name in names.items():
        graph.tensors[index].name = name.encode()

    signature = schema.SignatureDefT()
    signature.signatureKey = SIGNATURE.encode()
    signature.subgraphIndex = 0
    signature.inputs = [_tensor_map(traced.input_name, graph.inputs[0])]
    order = sorted(traced.output_names)
    signature.outputs = [_tensor_map(n, graph.outputs[order.index(n)]) for n in order]
    parsed.signatureDefs = [signature]
    return flatbuffer_utils.convert_object_to_bytearray(parsed)


def _tensor_map(name: str, index: int) -> object:
    from tensorflow.lite.python import schema_py_generated as schema

    mapping = schema.TensorMapT()
    mapping.name = name.encode()
    mapping.tensorIndex = index
    return mapping


@contextlib.contextmanager
def _quiet_absl() -> Iterator[None]:
    # The frozen path is called deprecated by a warning on every call; it is
    # chosen on purpose (see ``_convert``).
    import logging

    logger = logging.getLogger("absl")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def quantize_int8(
    float_model: bytes,
    calibration: np.ndarray | None,
    *,
    int8_io: bool = False,
) -> tuple[bytes, list[str]]:
    """Calibrate a float TFLite model on images and quantize it to int8.

    Weights are int8 per channel, activations int8 per tensor; the softmax and
    the first conv blocks are kept in float (the verdict policy). Returns the
    model and the names of the ops kept in float, besides the softmax.
    """
    import tensorflow as tf
    from tensorflow.lite.python import convert
    from tensorflow.lite.python.optimize import calibrator

    if calibration is None or len(calibration) == 0:
        raise ExportError("int8 TFLite needs calibration images", "pass --calibration")

    io_type = tf.int8 if int8_io else tf.float32
    ops = operator_outputs(float_model)
    kept = float_block_ops(ops, ("CONV_2D",), ("FULLY_CONNECTED",))
    try:
        with captured_native_output("tflite-int8"):
            staged = calibrator.add_intermediate_tensors(float_model)
            stats = calibrate(staged, calibration)
            return convert.mlir_quantize(
                stats,
                disable_per_channel=False,
                input_data_type=io_type,
                output_data_type=io_type,
                denylisted_ops=FLOAT_OPS,
                denylisted_nodes=kept,
            ), kept
    except Exception as exc:
        raise ExportError(
            f"TFLite int8 quantization failed ({type(exc).__name__}: "
            f"{_first_line(exc)})",
            "run with -v to see the converter's output",
        ) from exc


def calibrate(model: bytes, images: np.ndarray) -> bytes:
    """The float model with the min and max of each activation over the images.

    This is what TensorFlow's calibrator hands to ``mlir_quantize``, measured
    faster: its interpreter runs TFLite's reference kernels on one thread
    (67 ms an image for the 256x256 discriminator on the CI machine), while
    LiteRT runs the same model with XNNPACK on every core (26 ms on two),
    once every activation is made a model output so that none is fused away
    unseen. The ranges agree with the calibrator's to within 1e-5. A model
    with control flow (several subgraphs) or ops with intermediate tensors
    (LSTMs) still goes through TensorFlow's calibrator, which handles those.

    Args:
        model: a float TFLite flatbuffer.
        images: preprocessed images (N, H, W, C), fed one by one.
    """
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    from edgekit.environment import physical_cores

    parsed = flatbuffer_utils.read_model_from_bytearray(model)
    graph = parsed.subgraphs[0]
    intermediates = [op for op in graph.operators if _count(op.intermediates)]
    if len(parsed.subgraphs) > 1 or intermediates:
        return _calibrate_with_tensorflow(model, images)

    ranges = _activation_ranges(parsed, images, physical_cores())
    for index, (low, high) in ranges.items():
        params = schema.QuantizationParametersT()
        params.min, params.max = [low], [high]
        graph.tensors[index].quantization = params
    return bytes(flatbuffer_utils.convert_object_to_bytearray(parsed))


def _activation_ranges(
    parsed: Any, images: np.ndarray, threads: int
) -> dict[int, tuple[float, float]]:
    """(min, max) of every non-constant tensor of a parsed model, by index."""
    from ai_edge_litert.interpreter import Interpreter
    from tensorflow.lite.tools import flatbuffer_utils

    graph = parsed.subgraphs[0]
    inputs = [int(i) for i in graph.inputs]
    activations = _activation_tensors(parsed)
    probed = [i for i in activations if i not in inputs]
    # A copy of the model whose outputs are the activations, serialized with
    # the parsed object's outputs swapped for the moment.
    outputs, signatures = graph.outputs, parsed.signatureDefs
    graph.outputs, parsed.signatureDefs = probed, []
    try:
        probe = bytes(flatbuffer_utils.convert_object_to_bytearray(parsed))
    finally:
        graph.outputs, parsed.signatureDefs = outputs, signatures

    interpreter = Interpreter(model_content=probe, num_threads=threads)
    interpreter.allocate_tensors()
    low = dict.fromkeys(activations, np.inf)
    high = dict.fromkeys(activations, -np.inf)
    for image in single_images(images):
        interpreter.set_tensor(inputs[0], image)
        interpreter.invoke()
        for index in activations:
            # A view, not a copy (16 MB an image here); released before the
            # next run, as the interpreter requires.
            values = image if index in inputs else interpreter.tensor(index)()
            low[index] = min(low[index], float(values.min()))
            high[index] = max(high[index], float(values.max()))
            del values
    return {index: (low[index], high[index]) for index in activations}


def _activation_tensors(parsed: Any) -> list[int]:
    """Indices of the tensors that ops read or write and that hold no constant."""
    graph = parsed.subgraphs[0]

    def constant(index: int) -> bool:
        data = parsed.buffers[graph.tensors[index].buffer].data
        return data is not None and len(data) > 0

    used = {int(i) for op in graph.operators for i in [*op.inputs, *op.outputs]}
    return sorted(i for i in used if i >= 0 and not constant(i))


def _count(values: Any) -> int:
    # The flatbuffer object API leaves an absent vector as None.
    return 0 if values is None else len(values)


def _calibrate_with_tensorflow(model: bytes, images: np.ndarray) -> bytes:
    from tensorflow.lite.python.optimize import calibrator

    return calibrator.Calibrator(model).calibrate(
        lambda: ([image] for image in single_images(images))
    )


def _write(
    model: bytes,
    out_dir: Path,
    precision: str,
    seconds: float,
    quantization: dict[str, Any] | None,
    traced: Traced,
) -> Produced:
    import tensorflow as tf

    assert_builtin_only(model)
    name = f"tflite-{precision}.tflite"
    (out_dir / name).write_bytes(model)
    inputs, outputs = describe_signature(model)
    outputs = sorted(outputs, key=lambda t: traced.output_names.index(t.name))
    return Produced(
        file=name,
        format="tflite",
        precision=precision,
        inputs=inputs,
        outputs=outputs,
        converter={
            "name": "tensorflow.lite",
            "version": tf.__version__,
            "signature": SIGNATURE,
        },
        seconds=seconds,
        quantization=quantization or float_quantization(),
    )


def operator_names(model: bytes) -> list[str]:
    """The op names used by a TFLite flatbuffer (custom ops by their code)."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import visualize

    parsed = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(model, 0))
    builtin = visualize.BuiltinCodeToName
    names = []
    for code in parsed.operatorCodes:
        if code.customCode:
            names.append(code.customCode.decode())
        else:
            names.append(builtin(max(code.builtinCode, code.deprecatedBuiltinCode)))
    return names


def operator_outputs(model: bytes) -> list[tuple[str, str]]:
    """(first output tensor name, op name) of every op, in graph order."""
    from tensorflow.lite.python import schema_py_generated as schema

    parsed = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(model, 0))
    names = operator_names(model)
    graph = parsed.subgraphs[0]
    return [
        (graph.tensors[op.outputs[0]].name.decode(), names[op.opcodeIndex])
        for op in graph.operators
    ]


def assert_builtin_only(model: bytes) -> None:
    """Refuse a model that needs the Flex (Select TF ops) delegate."""
    flex = [name for name in operator_names(model) if name.startswith("Flex")]
    if flex:
        raise ExportError(
            f"the TFLite model needs TensorFlow ops {flex}, which edge runtimes "
            "do not have",
            "change the model to use TFLite builtin ops only",
        )


def describe_signature(model: bytes) -> tuple[list[TensorInfo], list[TensorInfo]]:
    """Read names, shapes, dtypes and quantization from the model's signature."""
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_content=model).get_signature_runner(SIGNATURE)
    inputs = [_info(k, d) for k, d in runner.get_input_details().items()]
    outputs = [_info(k, d) for k, d in runner.get_output_details().items()]
    return inputs, outputs


def _info(key: str, details: dict[str, Any]) -> TensorInfo:
    dtype = np.dtype(details["dtype"]).name
    scale, zero_point = details.get("quantization", (0.0, 0))
    quantized = dtype in ("int8", "uint8", "int16") and scale
    shape = [int(d) for d in details.get("shape_signature", details["shape"])]
    return TensorInfo(
        name=key,
        tensor=key,
        shape=shape,
        dtype=dtype,
        scale=float(scale) if quantized else None,
        zero_point=int(zero_point) if quantized else None,
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else "no message"
