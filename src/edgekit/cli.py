"""The ``edgekit`` command line: a thin Typer app over the library."""

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
    app()
