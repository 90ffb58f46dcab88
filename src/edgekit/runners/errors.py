"""The one message for a runtime that is not installed."""

from edgekit.errors import RuntimeMissingError


def missing_runtime(runtime: str, module: str) -> RuntimeMissingError:
    """Build the error for a runtime whose Python module does not import."""
    return RuntimeMissingError(
        f"{runtime} is not installed here (cannot import {module})",
        "install it with: pip install 'edgekit[runtime]', "
        "or pass --skip-missing to skip these artifacts",
    )
