"""ONNX export: fp32 through tf2onnx, int8 as a QDQ model from ONNX Runtime.

tf2onnx converts the traced tf.function (``from_keras`` breaks on Keras 3
Sequential models, a function with an explicit signature does not). The
graph's inputs and outputs carry the model's names (``image``, ``verdict``,
``features``), and the graph name, which TensorFlow numbers per process, is
replaced by a fixed one so that two runs write the same bytes.

The two halves run apart: ``convert_onnx`` needs TensorFlow, and
``quantize_onnx`` only the fp32 file, so it runs in a helper process of
the export, which never imports TensorFlow.
"""

import contextlib
import importlib.metadata
import inspect
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.errors import ExportError
from edgekit.export.common import (
    ModelIO,
    Produced,
    Stopwatch,
    Traced,
    float_block_ops,
    float_quantization,
    float_tensor,
    int8_quantization,
    single_images,
)
from edgekit.logs import captured_native_output

DEFAULT_OPSET = 17
CALIBRATION_METHODS = ("minmax", "entropy", "percentile")
GRAPH_NAME = "edgekit"
CATCH_ERRORS = "TF2ONNX_CATCH_ERRORS"
_NUMBERED = re.compile(r"__(\d+)")


def convert_onnx(
    traced: Traced, out_dir: Path, *, opset: int = DEFAULT_OPSET
) -> Produced:
    """Convert the traced model to ``onnx-fp32.onnx`` in ``out_dir`` with tf2onnx.

    Args:
        traced: the model traced once (see ``common.trace_model``).
        out_dir: where the file is written.
        opset: the ONNX opset, at least 17.
    """
    watch = Stopwatch()
    path = out_dir / "onnx-fp32.onnx"
    _convert(traced, path, opset)
    return _describe(traced.io, path, "fp32", watch.seconds(), opset, None)


def quantize_onnx(
    float_path: Path,
    io: ModelIO,
    out_dir: Path,
    *,
    calibration: np.ndarray | None,
    opset: int = DEFAULT_OPSET,
    per_channel: bool = True,
    method: str = "percentile",
) -> Produced:
    """Quantize the float ONNX model to ``onnx-int8.onnx``; needs no TensorFlow.

    Args:
        float_path: the fp32 model written by ``convert_onnx``.
        io: the model's input and output names.
        out_dir: where the file is written.
        calibration: preprocessed images (N, H, W, C).
        opset: the opset the float model was converted with (for the record).
        per_channel: quantize weights per output channel.
        method: calibration method, one of ``CALIBRATION_METHODS``. The
            default, percentile (99.999%), ignores the rare extreme
            activations that min/max stretches the int8 range for; with ONNX
            Runtime's fused int8 kernels min/max kept the demo model's verdict
            on 98.2% of the held-out photographs (2 flips), percentile on 100%.
    """
    watch = Stopwatch()
    path = out_dir / "onnx-int8.onnx"
    quant = quantize_int8(
        float_path, path, calibration, per_channel=per_channel, method=method
    )
    return _describe(io, path, "int8", watch.seconds(), opset, quant)


def _convert(traced: Traced, path: Path, opset: int) -> None:
    import onnx
    import tf2onnx

    try:
        with (
            captured_native_output("tf2onnx"),
            _no_optimizer_backups(),
            _no_proto_rebuilds(),
        ):
            proto, _ = tf2onnx.convert.from_graph_def(
                traced.graph_def,
                input_names=list(traced.graph_inputs),
                output_names=list(traced.graph_outputs),
                opset=opset,
            )
    except Exception as exc:
        raise ExportError(
            f"tf2onnx failed ({type(exc).__name__}: {str(exc)[:200]})",
            "run with -v to see the converter's output, or leave onnx out of --formats",
        ) from exc

    _rename_io(proto, traced.tensor_names)
    _name_dynamic_batch(proto)
    canonical_names(proto)
    # The defaults name the TensorFlow function, which TensorFlow numbers per
    # process; fixed names keep the file identical between runs.
    proto.graph.name = GRAPH_NAME
    proto.doc_string = ""
    onnx.save(proto, str(path))


@contextlib.contextmanager
def _no_optimizer_backups() -> Iterator[None]:
    # tf2onnx deep-copies the whole graph, weights included, before each of its
    # optimizer passes so it can roll back a failing one; on this model that is
    # more than half of its time. A failing pass then fails the conversion.
    saved = os.environ.get(CATCH_ERRORS)
    os.environ[CATCH_ERRORS] = "FALSE"
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(CATCH_ERRORS, None)
        else:
            os.environ[CATCH_ERRORS] = saved


@contextlib.contextmanager
def _no_proto_rebuilds() -> Iterator[None]:
    """Skip the protobuf rebuild that tf2onnx does after every optimizer pass.

    After each of its two dozen passes tf2onnx rewrites every node's protobuf
    from its own node objects, the weights of every Const included: on the
    256x256 discriminator, 5 of its 8 seconds went into copying 78 MB of
    weights two dozen times. Nothing reads those protobufs between passes (the
    passes work on the node objects, and shape inference builds its own), and
    the final ``make_graph`` rebuilds them once; the model written is the same,
    byte for byte. The pass is otherwise tf2onnx's own.
    """
    from tf2onnx.optimizer.optimizer_base import GraphOptimizerBase

    original = GraphOptimizerBase.optimize

    def optimize(self: Any, graph: Any, iteration: int) -> Any:
        self.opt_iteration = iteration
        graph = self._optimize(graph)
        graph.delete_unused_nodes(graph.outputs)
        return graph

    GraphOptimizerBase.optimize = optimize
    try:
        yield
    finally:
        GraphOptimizerBase.optimize = original


def _rename_io(proto: Any, names: dict[str, str]) -> None:
    """Give graph inputs and outputs the model's names (``image:0`` → ``image``)."""
    renames = {}
    for value in [*proto.graph.input, *proto.graph.output]:
        if value.name in names:
            renames[value.name] = names[value.name]
            value.name = names[value.name]
    for node in proto.graph.node:
        node.input[:] = [renames.get(n, n) for n in node.input]
        node.output[:] = [renames.get(n, n) for n in node.output]


def canonical_names(proto: Any) -> None:
    """Renumber tf2onnx's made-up names by first use, and order initializers so.

    tf2onnx numbers the names it invents (``new_shape__33``) with a counter,
    and some of its passes visit nodes in the order of Python's per-process
    string hashes, so equal graphs come out with different numbers and a
    different initializer order from run to run.
    """
    numbers: dict[str, str] = {}

    def renumber(name: str) -> str:
        return _NUMBERED.sub(
            lambda m: "__" + numbers.setdefault(m.group(1), str(len(numbers))), name
        )

    first_use: dict[str, int] = {}
    for position, node in enumerate(proto.graph.node):
        node.name = renumber(node.name)
        node.input[:] = [renumber(n) for n in node.input]
        node.output[:] = [renumber(n) for n in node.output]
        for name in node.input:
            first_use.setdefault(name, position)
    for value in [*proto.graph.initializer, *proto.graph.value_info]:
        value.name = renumber(value.name)

    ordered = sorted(
        proto.graph.initializer, key=lambda t: (first_use.get(t.name, -1), t.name)
    )
    copies = [type(t)() for t in ordered]
    for copy, tensor in zip(copies, ordered, strict=True):
        copy.CopyFrom(tensor)
    del proto.graph.initializer[:]
    proto.graph.initializer.extend(copies)


def _name_dynamic_batch(proto: Any) -> None:
    # tf2onnx calls an unknown dimension ``unk__<n>``; ``batch`` says what it is.
    for value in [*proto.graph.input, *proto.graph.output]:
        dims = value.type.tensor_type.shape.dim
        if dims and dims[0].dim_param:
            dims[0].dim_param = "batch"


class _Feed:
    """An ONNX Runtime calibration reader over preprocessed images."""

    def __init__(self, name: str, images: np.ndarray) -> None:
        self.name = name
        self.images = images
        self.rewind()

    def get_next(self) -> dict[str, np.ndarray] | None:
        image = next(self.iterator, None)
        return None if image is None else {self.name: image}

    def rewind(self) -> None:
        self.iterator = single_images(self.images)


def quantize_int8(
    float_path: Path,
    int8_path: Path,
    calibration: np.ndarray | None,
    *,
    per_channel: bool = True,
    method: str = "percentile",
) -> dict[str, Any]:
    """Write a static QDQ int8 model calibrated on images; return its record.

    The softmax nodes are excluded, so they run in float (the verdict policy).
    """
    import onnx
    from onnxruntime import quantization as ortq

    if calibration is None or len(calibration) == 0:
        raise ExportError("int8 ONNX needs calibration images", "pass --calibration")
    if method not in CALIBRATION_METHODS:
        raise ExportError(
            f"unknown ONNX calibration method {method!r}",
            f"choose one of {', '.join(CALIBRATION_METHODS)}",
        )

    model = onnx.load(str(float_path))
    kept = kept_in_float(model)
    feed = _Feed(model.graph.input[0].name, calibration)
    options = static_options(ortq, kept, per_channel=per_channel, method=method)
    try:
        with (
            captured_native_output("onnxruntime-quantization"),
            tempfile.TemporaryDirectory(prefix="edgekit-ortq-") as work,
        ):
            if _takes_calibration_cache(ortq):
                ranges = calibrate_quantized_tensors(
                    float_path, model, set(kept), feed, method, Path(work)
                )
                options["calibration_cache_path"] = str(ranges)
            ortq.quantize_static(str(float_path), str(int8_path), feed, **options)
    except Exception as exc:
        raise ExportError(
            f"ONNX Runtime quantization failed ({type(exc).__name__}: "
            f"{str(exc)[:200]})",
            "run with -v to see its output, or try --onnx-calibration minmax",
        ) from exc
    return int8_quantization(
        method=method, per_channel=per_channel, kept_in_float=kept, format="QDQ"
    )


def kept_in_float(model: Any) -> list[str]:
    """The nodes the verdict policy keeps in float: its conv blocks, softmax."""
    ops = [(n.name, n.op_type) for n in model.graph.node]
    softmax = [name for name, op_type in ops if op_type == "Softmax"]
    return float_block_ops(ops, ("Conv",), ("Gemm", "MatMul")) + softmax


def static_options(
    ortq: Any, kept: list[str], *, per_channel: bool, method: str
) -> dict[str, Any]:
    """The quantize_static arguments of edgekit's int8 ONNX, besides paths."""
    return {
        "quant_format": ortq.QuantFormat.QDQ,
        "per_channel": per_channel,
        "activation_type": ortq.QuantType.QInt8,
        "weight_type": ortq.QuantType.QInt8,
        "nodes_to_exclude": kept,
        "calibrate_method": _method(ortq, method),
    }


def _takes_calibration_cache(ortq: Any) -> bool:
    # ONNX Runtime added calibration_cache_path to quantize_static in 2026;
    # an older one calibrates every tensor itself, slower but the same model.
    parameters = inspect.signature(ortq.quantize_static).parameters
    return "calibration_cache_path" in parameters


# ONNX Runtime's own defaults per method, as quantize_static passes them to
# its calibrator when given no extra options (create_calibrator).
_CALIBRATOR_SETTINGS = {
    "minmax": ("MinMaxCalibrater", {}),
    "entropy": ("EntropyCalibrater", {"num_bins": 128, "num_quantized_bins": 128}),
    "percentile": (
        "PercentileCalibrater",
        {"num_bins": 2048, "percentile": 99.999, "symmetric": True},
    ),
}


def calibrate_quantized_tensors(
    float_path: Path,
    model: Any,
    float_nodes: set[str],
    feed: "_Feed",
    method: str,
    work: Path,
) -> Path:
    """Calibrate only the tensors the quantizer will use; write ORT's cache.

    quantize_static calibrates every float tensor of the model, those of the
    nodes kept in float included. Here those are the first blocks' outputs,
    the largest activations of the network: with percentile calibration they
    took most of its time and held 6 GB of activations. Each tensor's range
    is computed on its own, so leaving the others out changes no range; the
    quantized model is the same, byte for byte.

    Its session does not spin between runs, and so leaves the cores it is
    not using to the export's other processes.

    Returns:
        The calibration cache file, for ``calibration_cache_path``.
    """
    from onnxruntime.quantization import calibrate, registry, save_tensors_data

    needed = {
        name
        for node in model.graph.node
        if node.name not in float_nodes
        for name in (*node.input, *node.output)
    }
    name, settings = _CALIBRATOR_SETTINGS[method]
    base = getattr(calibrate, name)

    class QuantizedTensorsOnly(base):
        def select_tensors_to_calibrate(self, graph_model: Any) -> Any:
            tensors, value_infos = super().select_tensors_to_calibrate(graph_model)
            return tensors & needed, value_infos

        def create_inference_session(self) -> None:
            self.infer_session = _calibration_session(
                self.augmented_model_path, self.execution_providers
            )
            if method == "percentile":
                self.collector = _absolute_histograms(self)

    # The op types quantize_static calibrates when it is given none.
    op_types = sorted(set(registry.QLinearOpsRegistry) | set(registry.QDQRegistry))
    calibrator = QuantizedTensorsOnly(
        str(float_path),
        op_types,
        augmented_model_path=str(work / "augmented.onnx"),
        **settings,
    )
    calibrator.augment_graph()
    calibrator.create_inference_session()
    calibrator.collect_data(feed)
    path = work / "ranges.json"
    save_tensors_data(calibrator.compute_data(), path)
    feed.rewind()
    return path


def _absolute_histograms(calibrator: Any) -> Any:
    """ONNX Runtime's histogram collector, minus its copies, for percentile.

    For each tensor it stacks the images' outputs, flattens that and takes its
    absolute value, three copies of 1.1 GB in all for the discriminator, then
    histograms it between the smallest and largest absolute values. The same
    histogram is the sum of each image's histogram over that same range, with
    the same bin edges; taken image by image, nothing is copied (1.2 s of
    its 2.5 s on the CI machine). Tensors it has seen before, and empty ones,
    go to its own code.
    """
    import numpy as np
    from onnxruntime.quantization.calibrate import HistogramCollector

    class ImageByImage(HistogramCollector):
        def collect_absolute_value(self, name_to_arr: dict[str, Any]) -> None:
            theirs = {n: a for n, a in name_to_arr.items() if not self._fits(n, a)}
            if theirs:
                super().collect_absolute_value(theirs)
            for name, arrays in name_to_arr.items():
                if name not in theirs:
                    self.histogram_dict[name] = self._histogram(arrays)

        def _fits(self, name: str, arrays: Any) -> bool:
            new = name not in self.histogram_dict and isinstance(arrays, list)
            return new and bool(arrays) and all(a.size for a in arrays)

        def _histogram(self, arrays: list[np.ndarray]) -> tuple[Any, ...]:
            # The outputs are this calibration's own: made absolute in place.
            low = min(np.nanmin(a) for a in arrays)
            high = max(np.nanmax(a) for a in arrays)
            for array in arrays:
                np.absolute(array, out=array)
            bounds = (min(a.min() for a in arrays), max(a.max() for a in arrays))
            counts = 0
            for array in arrays:
                part, edges = np.histogram(array, bins=self.num_bins, range=bounds)
                counts = counts + part
            return counts, edges.astype(arrays[0].dtype), low, high

    return ImageByImage(
        method=calibrator.method,
        symmetric=calibrator.symmetric,
        num_bins=calibrator.num_bins,
        num_quantized_bins=calibrator.num_quantized_bins,
        percentile=calibrator.percentile,
        scenario=calibrator.scenario,
    )


def _calibration_session(path: str, providers: list[str]) -> Any:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    # ONNX Runtime's calibrator runs the augmented model unoptimized, to be
    # sure every tensor it calibrates is computed as named. Its optimizers
    # never remove a graph output, and every calibrated tensor is one, so the
    # optimized session computes the same tensors (within 3e-5 of their range
    # on the 256x256 discriminator) with fused, blocked kernels: 22 ms an
    # image instead of 31 on the CI machine.
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return onnxruntime.InferenceSession(path, sess_options=options, providers=providers)


def _method(ortq: Any, method: str) -> Any:
    names = {"minmax": "MinMax", "entropy": "Entropy", "percentile": "Percentile"}
    return getattr(ortq.CalibrationMethod, names[method])


def _describe(
    io: ModelIO,
    path: Path,
    precision: str,
    seconds: float,
    opset: int,
    quantization: dict[str, Any] | None,
) -> Produced:
    outputs = _output_shapes(path)
    return Produced(
        file=path.name,
        format="onnx",
        precision=precision,
        inputs=[float_tensor(io.input_name, io.input_shape)],
        outputs=[float_tensor(n, outputs[n]) for n in io.output_names],
        converter=_converter_record(opset, precision),
        seconds=seconds,
        quantization=quantization or float_quantization(),
    )


def _converter_record(opset: int, precision: str) -> dict[str, str]:
    # Read from the package metadata: importing tf2onnx imports TensorFlow,
    # which the process that quantizes ONNX goes without.
    version = importlib.metadata.version("tf2onnx")
    record = {"name": "tf2onnx", "version": version, "opset": str(opset)}
    if precision == "int8":
        import onnxruntime

        record["quantizer"] = f"onnxruntime.quantization {onnxruntime.__version__}"
    return record


def _output_shapes(path: Path) -> dict[str, list[int | None]]:
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    shapes = {}
    for value in graph.output:
        dims = value.type.tensor_type.shape.dim
        shapes[value.name] = [
            d.dim_value if d.HasField("dim_value") else None for d in dims
        ]
    return shapes
