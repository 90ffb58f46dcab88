"""OpenVINO IR export: fp32, fp16 on request, int8 through NNCF.

The model arrives as the frozen TensorFlow graph that the other converters
use too, written to a ``.pb`` file, and ``openvino.convert_model`` reads it
with its own TensorFlow frontend: no TensorFlow is imported here, so this
runs in a helper process of the export. It gives the same IR, weight for
weight, as converting the traced function in the TensorFlow process did.
The fp32 IR is saved without the fp16 weight compression that
``save_model`` applies by default, so that it is a true float baseline.
"""

import re
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.bundle import TensorInfo
from edgekit.errors import ExportError
from edgekit.export.common import (
    ModelIO,
    Produced,
    Stopwatch,
    float_block_ops,
    float_quantization,
    fp16_quantization,
    int8_quantization,
    single_images,
)
from edgekit.logs import captured_native_output

PRESETS = ("performance", "mixed")
_GENERATED = re.compile(r"[A-Za-z]+_\d+")
SOFTMAX_TYPES = ("Softmax", "SoftMax")


def export_openvino(
    graph: Path,
    io: ModelIO,
    out_dir: Path,
    *,
    precisions: list[str],
    calibration: np.ndarray | None = None,
    preset: str = "performance",
) -> list[Produced]:
    """Convert a frozen TensorFlow graph to OpenVINO IR files in ``out_dir``.

    Args:
        graph: the traced model's frozen GraphDef (``common.write_frozen_graph``).
        io: the model's input and output names.
        out_dir: where ``openvino-<precision>.xml`` and ``.bin`` are written.
        precisions: any of ``fp32``, ``fp16``, ``int8``.
        calibration: preprocessed images (N, H, W, C), required for int8.
        preset: NNCF quantization preset, ``performance`` (symmetric
            activations) or ``mixed`` (asymmetric activations).
    """
    order = io.output_names
    watch = Stopwatch()
    model = _convert(graph, io)
    convert_seconds = watch.seconds()

    produced = []
    for precision in ("fp32", "fp16"):
        if precision in precisions:
            watch = Stopwatch()
            _save(model, out_dir, precision)
            seconds = convert_seconds + watch.seconds()
            record = fp16_quantization() if precision == "fp16" else None
            produced.append(
                _describe(model, out_dir, precision, seconds, record, order)
            )

    if "int8" in precisions:
        watch = Stopwatch()
        quantized, quant = quantize_int8(model, calibration, preset=preset)
        canonical_names(quantized)
        _save(quantized, out_dir, "int8")
        produced.append(
            _describe(quantized, out_dir, "int8", watch.seconds(), quant, order)
        )
    return produced


def _convert(graph: Path, io: ModelIO) -> Any:
    import openvino as ov

    try:
        with captured_native_output("openvino"):
            model = ov.convert_model(str(graph))
    except Exception as exc:
        raise ExportError(
            f"openvino.convert_model failed ({type(exc).__name__}: {str(exc)[:200]})",
            "run with -v to see its output, or leave openvino out of --formats",
        ) from exc
    _use_model_names(model, io)
    canonical_names(model)
    return model


def _use_model_names(model: Any, io: ModelIO) -> None:
    """Call the inputs and outputs after the model (``image``, not ``image:0``).

    A frozen graph knows its tensors only by graph names; each port is renamed,
    and its Parameter or Result node too, so the XML says what it is.
    """
    for port in [*model.inputs, *model.outputs]:
        names = [io.tensor_names[n] for n in port.get_names() if n in io.tensor_names]
        if len(set(names)) != 1:
            raise ExportError(
                f"OpenVINO found a model port {sorted(port.get_names())} that is "
                "not one of the model's inputs or outputs",
                "run with -v to see its output, or leave openvino out of --formats",
            )
        port.get_tensor().set_names({names[0]})
        port.get_node().set_friendly_name(names[0])


def canonical_names(model: Any) -> None:
    """Replace OpenVINO's generated node names with ones numbered in graph order.

    A node nobody named is called after its type and a counter shared by the
    whole process (``Constant_95``), so the XML of the same model differs with
    whatever the process converted before, e.g. the fp32 IR before the int8
    one. Numbering by position in the ordered graph makes it repeatable.
    """
    for index, op in enumerate(model.get_ordered_ops()):
        name = op.get_friendly_name()
        # The TensorFlow frontend also hands such generated names on to the
        # ops it rewrites (a PRelu called ``Transpose_666``).
        if name == op.get_name() or _GENERATED.fullmatch(name):
            op.set_friendly_name(f"{op.get_type_name()}_{index}")


def quantize_int8(
    model: Any, calibration: np.ndarray | None, *, preset: str = "performance"
) -> tuple[Any, dict[str, Any]]:
    """Quantize an OpenVINO model with NNCF on images; return it and its record.

    The softmax nodes are named in NNCF's ignored scope, so they stay in float
    (the verdict policy) whatever NNCF's defaults are.
    """
    import nncf
    from nncf.quantization.advanced_parameters import (
        AdvancedQuantizationParameters,
        OverflowFix,
    )

    if calibration is None or len(calibration) == 0:
        raise ExportError(
            "int8 OpenVINO needs calibration images", "pass --calibration"
        )
    if preset not in PRESETS:
        raise ExportError(
            f"unknown NNCF preset {preset!r}", f"choose one of {', '.join(PRESETS)}"
        )

    softmax = [
        op.get_friendly_name()
        for op in model.get_ordered_ops()
        if op.get_type_name() in SOFTMAX_TYPES
    ]
    path = _main_path(model)
    kept = float_block_ops(path, ("Convolution",), ("MatMul",)) + softmax
    dataset = nncf.Dataset(list(single_images(calibration)))
    # CPUs without VNNI (AVX2, plain AVX-512) add int8 products in 16-bit
    # registers that saturate. NNCF's default guards only the first layer, and
    # on an AVX2 machine that cost the verdict on 7% of held-out photographs;
    # 7-bit weights in every layer keep it (98%), on any CPU the IR lands on.
    advanced = AdvancedQuantizationParameters(overflow_fix=OverflowFix.ENABLE)
    try:
        with captured_native_output("nncf"):
            quantized = nncf.quantize(
                model.clone(),
                dataset,
                preset=getattr(nncf.QuantizationPreset, preset.upper()),
                subset_size=len(calibration),
                ignored_scope=nncf.IgnoredScope(names=kept),
                advanced_parameters=advanced,
            )
    except Exception as exc:
        raise ExportError(
            f"NNCF quantization failed ({type(exc).__name__}: {str(exc)[:200]})",
            "run with -v to see its output",
        ) from exc
    record = int8_quantization(
        method="minmax",
        per_channel=True,
        kept_in_float=kept,
        preset=preset,
        overflow_fix="enable (7-bit weights)",
    )
    return quantized, record


def _main_path(model: Any) -> list[tuple[str, str]]:
    """(name, type) of the ops on the path from the input, up to a fork.

    The ordered op list interleaves the weights' own ops (transposes of
    constants) with the data path, so the path is walked from the input.
    """
    path = []
    node = model.get_parameters()[0]
    while True:
        consumers = list(node.output(0).get_target_inputs())
        if len(consumers) != 1:
            return path
        node = consumers[0].get_node()
        path.append((node.get_friendly_name(), node.get_type_name()))


def _save(model: Any, out_dir: Path, precision: str) -> None:
    import openvino as ov

    path = out_dir / f"openvino-{precision}.xml"
    with captured_native_output("openvino"):
        ov.save_model(model, str(path), compress_to_fp16=precision == "fp16")


def _describe(
    model: Any,
    out_dir: Path,
    precision: str,
    seconds: float,
    quantization: dict[str, Any] | None,
    order: list[str],
) -> Produced:
    import openvino as ov

    stem = f"openvino-{precision}"
    outputs = sorted(
        (_port_info(p) for p in model.outputs), key=lambda t: order.index(t.name)
    )
    return Produced(
        file=f"{stem}.xml",
        format="openvino",
        precision=precision,
        inputs=[_port_info(p) for p in model.inputs],
        outputs=outputs,
        converter={"name": "openvino", "version": ov.__version__},
        seconds=seconds,
        quantization=quantization or float_quantization(),
        companions=[f"{stem}.bin"],
    )


def _port_info(port: Any) -> TensorInfo:
    name = port.get_any_name()
    shape = [d.get_length() if d.is_static else -1 for d in port.get_partial_shape()]
    return TensorInfo(name, name, shape, port.get_element_type().to_dtype().name)
