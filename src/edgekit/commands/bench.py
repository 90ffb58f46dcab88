"""``edgekit bench``: parity and latency of every artifact in a bundle."""

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from edgekit import logs
from edgekit.commands import reports_errors
from edgekit.latency import DEFAULT_MIN_SECONDS, DEFAULT_RUNS, DEFAULT_WARMUP


class Reference(StrEnum):
    bundle = "bundle"
    keras = "keras"


@reports_errors
def bench(
    bundle: Annotated[
        Path, typer.Argument(help="The bundle directory to bench.")
    ] = Path("artifacts"),
    only: Annotated[
        list[str] | None,
        typer.Option("--only", help="Bench only artifacts matching this glob."),
    ] = None,
    threads: Annotated[
        int | None,
        typer.Option(
            min=1, help="CPU threads for every runtime.", show_default="physical cores"
        ),
    ] = None,
    warmup: Annotated[
        int, typer.Option(min=0, help="Untimed warm-up runs.")
    ] = DEFAULT_WARMUP,
    runs: Annotated[
        int, typer.Option(min=1, help="Least number of timed runs.")
    ] = DEFAULT_RUNS,
    min_seconds: Annotated[
        float, typer.Option(min=0.0, help="Least seconds of timed runs.")
    ] = DEFAULT_MIN_SECONDS,
    device: Annotated[
        str, typer.Option(help="OpenVINO device: CPU, GPU, NPU, AUTO.")
    ] = "CPU",
    provider: Annotated[
        list[str] | None,
        typer.Option(
            help="ONNX Runtime execution provider.", show_default="CPUExecutionProvider"
        ),
    ] = None,
    reference: Annotated[
        Reference,
        typer.Option(help="Float reference: the bundle's, or a fresh Keras run."),
    ] = Reference.bundle,
    model: Annotated[
        str | None,
        typer.Option(help="With --reference keras: built-in name or .keras file."),
    ] = None,
    weights: Annotated[
        Path | None,
        typer.Option(help="With --reference keras: the weights given to export."),
    ] = None,
    skip_missing: Annotated[
        bool, typer.Option(help="Skip artifacts whose runtime is not installed.")
    ] = False,
    isolate: Annotated[
        bool,
        typer.Option(help="Run each artifact in its own process (honest peak RSS)."),
    ] = False,
    json_file: Annotated[
        Path | None, typer.Option("--json", help="Write the JSON report here.")
    ] = None,
    markdown_file: Annotated[
        Path | None, typer.Option("--markdown", help="Write a Markdown table here.")
    ] = None,
) -> None:
    """Check parity and latency of every artifact in a bundle."""
    from edgekit.bench import BenchOptions, run_bench
    from edgekit.report import markdown, print_table, write_json

    options = BenchOptions(
        only=list(only or []),
        threads=threads,
        warmup=warmup,
        runs=runs,
        min_seconds=min_seconds,
        device=device,
        providers=list(provider) if provider else None,
        reference=reference.value,
        model=model,
        weights=str(weights) if weights else None,
        skip_missing=skip_missing,
        isolate=isolate,
    )
    report = run_bench(bundle, options)

    print_table(report, logs.stderr_console())
    if json_file:
        write_json(report, json_file)
    if markdown_file:
        markdown_file.write_text(markdown(report), encoding="utf-8")
    if report.failures:
        raise typer.Exit(1)
