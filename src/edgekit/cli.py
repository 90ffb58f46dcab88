"""The ``edgekit`` command line: a thin Typer app over the library."""

import logging
import os
import sys
from typing import Annotated

import typer

from edgekit import __version__, logs
from edgekit.commands import bench, export, model

app = typer.Typer(
    name="edgekit",
    help="Put a Keras model on edge hardware with proof that it still works.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"edgekit {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    verbose: Annotated[
        int,
        typer.Option(
            "--verbose", "-v", count=True, help="More output; -vv shows everything."
        ),
    ] = 0,
    quiet: Annotated[
        int, typer.Option("--quiet", "-q", count=True, help="Errors only.")
    ] = 0,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print version."
        ),
    ] = False,
) -> None:
    """Build, quantize, export and bench a Keras model for edge hardware."""
    logs.configure(verbose - quiet)


app.command("build")(model.build)
app.command("info")(model.info)
app.command("export")(export.export)
app.command("bench")(bench.bench)


def main() -> None:
    try:
        app()
    except SystemExit as end:
        _leave(end.code)
    _leave(0)


def _leave(code: int | str | None) -> None:
    """Exit, without Python's teardown when TensorFlow was loaded.

    Unloading TensorFlow and the converters took 1.1 s after an export had
    written its bundle on the CI machine. Everything edgekit writes is closed
    by then, so the process flushes its streams and logs and ends.
    """
    if "tensorflow" not in sys.modules:
        sys.exit(code)
    if isinstance(code, str):
        print(code, file=sys.stderr)
        code = 1
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code or 0)
