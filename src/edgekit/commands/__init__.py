"""The CLI's commands, one module per area, each thin: parse, call, print.

Nothing here imports TensorFlow, tf2onnx, OpenVINO or NNCF at module level,
so ``edgekit --help`` and every ``--help`` start fast.
"""

import functools
import logging
import sys
from collections.abc import Callable
from typing import Any

import typer

from edgekit.errors import EdgekitError

log = logging.getLogger("edgekit")


def reports_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn an ``EdgekitError`` into one line on stderr and its exit code.

    Anything else is a bug and keeps its traceback.
    """

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except EdgekitError as error:
            typer.echo(f"error: {error.one_line()}", err=True)
            raise typer.Exit(error.exit_code) from None
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            raise typer.Exit(130) from None

    return wrapper


def stdout_is_terminal() -> bool:
    return sys.stdout.isatty()
