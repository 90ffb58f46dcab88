"""The report's own wording, on results as bench writes them."""

from edgekit.bench import BenchOptions, BenchReport, run_bench
from edgekit.report import markdown, precision_notes


def _report(results: list[dict]) -> BenchReport:
    return BenchReport(
        bundle="artifacts",
        options=BenchOptions().resolved(),
        environment={},
        model={},
        class_output="verdict",
        results=results,
        failures=[],
    )


def test_float_math_below_f32_is_named_under_the_table():
    rows = [
        {"id": "openvino-fp32", "runtime": {"inference_precision_hint": "f32"}},
        {"id": "openvino-int8", "runtime": {"inference_precision_hint": "bf16"}},
        {"id": "onnx-int8", "runtime": {"providers": ["CPUExecutionProvider"]}},
        {"id": "tflite-int8", "status": "skipped"},
    ]

    notes = precision_notes(_report(rows))

    assert notes == [
        "openvino-int8: OpenVINO ran its float layers in bf16, "
        "the CPU plugin's default on this CPU"
    ]


def test_notes_follow_what_openvino_read_back_on_this_cpu(built_bundle):
    report = run_bench(
        built_bundle, BenchOptions(only=["openvino-*"], runs=2, warmup=0, min_seconds=0)
    )
    below_f32 = [
        r["id"]
        for r in report.results
        if r["runtime"]["inference_precision_hint"] != "f32"
    ]

    notes = precision_notes(report)

    assert [note.split(":")[0] for note in notes] == below_f32
    assert "openvino-fp32" not in below_f32
    for note in notes:
        assert f"- {note}" in markdown(report)
