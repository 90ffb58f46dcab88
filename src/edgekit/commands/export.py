"""``edgekit export``: TFLite, ONNX and OpenVINO artifacts in one bundle."""

from pathlib import Path
from typing import Annotated, Any

import typer

from edgekit.commands import reports_errors
from edgekit.errors import ExportError

STAGE_LABELS = {
    "prepare": "model, images and trace",
    "reference": "float reference outputs",
    "tflite": "TFLite",
    "onnx": "ONNX (tf2onnx, ONNX Runtime)",
    "openvino": "OpenVINO (convert, NNCF)",
}


@reports_errors
def export(
    model: Annotated[
        str | None,
        typer.Argument(
            help="A built-in model name or a .keras file. [default: patchgan]"
        ),
    ] = None,
    int8: Annotated[bool, typer.Option("--int8", help="Add int8 artifacts.")] = False,
    fp16: Annotated[bool, typer.Option("--fp16", help="Add fp16 artifacts.")] = False,
    int8_io: Annotated[
        bool,
        typer.Option("--int8-io", help="int8 input/output tensors for TFLite int8."),
    ] = False,
    calibration: Annotated[
        Path | None,
        typer.Option(help="Calibration images. [default: calibration/images]"),
    ] = None,
    holdout: Annotated[
        Path | None,
        typer.Option(
            help="Held-out images for reference.npz. [default: calibration/holdout]"
        ),
    ] = None,
    formats: Annotated[
        str | None,
        typer.Option(help="Comma-separated: tflite,onnx,openvino. [default: all]"),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Bundle directory. [default: artifacts]"),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace an existing bundle.")
    ] = False,
    weights: Annotated[
        Path | None, typer.Option(help="Weights for a built-in model.")
    ] = None,
    dynamic_batch: Annotated[
        bool, typer.Option("--dynamic-batch", help="Unknown batch instead of 1.")
    ] = False,
    onnx_calibration: Annotated[
        str, typer.Option(help="ONNX calibration: minmax, entropy or percentile.")
    ] = "percentile",
    nncf_preset: Annotated[
        str, typer.Option(help="NNCF preset: performance or mixed.")
    ] = "performance",
    per_channel: Annotated[
        bool, typer.Option(help="Quantize weights per output channel.")
    ] = True,
    opset: Annotated[int, typer.Option(help="ONNX opset (17 or newer).")] = 17,
    calibration_limit: Annotated[
        int | None, typer.Option(help="Use only the first N calibration images.")
    ] = None,
    holdout_limit: Annotated[
        int | None, typer.Option(help="Use only the first N held-out images.")
    ] = None,
    input_size: Annotated[
        int | None, typer.Option(help="Input size of a built-in model. [default: 256]")
    ] = None,
    workers: Annotated[
        int,
        typer.Option(help="Converting processes: 1 (all in one) to 3 (one per step)."),
    ] = 3,
) -> None:
    """Export TFLite, ONNX and OpenVINO artifacts into one bundle."""
    from edgekit.export import ExportOptions, export_bundle
    from edgekit.export.process import keep_freed_memory, skip_unused_imports

    options = ExportOptions(
        model=model,
        weights=weights,
        int8=int8,
        fp16=fp16,
        int8_io=int8_io,
        calibration=calibration,
        holdout=holdout,
        formats=_split(formats),
        output=output,
        force=force,
        dynamic_batch=dynamic_batch,
        opset=opset,
        per_channel=per_channel,
        onnx_calibration=onnx_calibration,
        nncf_preset=nncf_preset,
        calibration_limit=calibration_limit,
        holdout_limit=holdout_limit,
        input_size=input_size,
        workers=workers,
    ).resolved()

    # This process converts and exits: it can keep what it frees for reuse,
    # and leave out what Keras imports for other uses (see export.process).
    keep_freed_memory()
    skip_unused_imports()
    with _ProgressReporter() as reporter:
        manifest = export_bundle(options, reporter)
    _print_table(manifest, options.output)


def _split(formats: str | None) -> tuple[str, ...] | None:
    if formats is None:
        return None
    parts = tuple(p.strip().lower() for p in formats.split(",") if p.strip())
    if not parts:
        raise ExportError("--formats is empty", "choose from tflite, onnx, openvino")
    return parts


class _ProgressReporter:
    """Rich progress on stderr: one line per stage, a spinner until it ends."""

    def __enter__(self) -> "_ProgressReporter":
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        from edgekit.logs import stderr_console

        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=stderr_console(),
            transient=False,
        )
        self.tasks: dict[str, Any] = {}
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(*exc)

    def begin(self, stage: str) -> None:
        label = STAGE_LABELS.get(stage, stage)
        self.tasks[stage] = self.progress.add_task(label, total=1)

    def end(self, stage: str, seconds: float) -> None:
        label = STAGE_LABELS.get(stage, stage)
        self.progress.update(
            self.tasks[stage], completed=1, description=f"{label} ({seconds:.1f} s)"
        )


def _print_table(manifest: Any, bundle: Path) -> None:
    from rich.table import Table

    from edgekit.logs import stderr_console

    table = Table(title="edgekit export")
    for column in ("artifact", "precision", "size", "seconds"):
        table.add_column(column, justify="left" if column == "artifact" else "right")
    for artifact in manifest.artifacts:
        size = f"{artifact.total_bytes / 1e6:.1f} MB"
        table.add_row(
            artifact.file, artifact.precision, size, f"{artifact.seconds:.1f}"
        )
    console = stderr_console()
    console.print(table)
    total = manifest.stages.get("total", 0.0)
    console.print(
        f"bundle: {bundle} ({len(manifest.artifacts)} artifacts, {total:.1f} s)"
    )
