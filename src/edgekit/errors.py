"""The one exception family that the CLI turns into a one-line message.

Raise an ``EdgekitError`` (or a subclass) for anything the user can fix:
a missing file, a corrupt image, a wrong shape, a tampered artifact. The
message says what was wrong and what to do. Real bugs are left to raise
whatever they raise, so they keep their traceback.
"""


class EdgekitError(Exception):
    """Something the user can fix; the CLI prints it on one line.

    Args:
        message: what was wrong, what was expected, what was received.
        hint: the flag or command that fixes it, appended after the message.
    """

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(self.one_line())

    def one_line(self) -> str:
        text = self.message if not self.hint else f"{self.message}; {self.hint}"
        return " ".join(text.split())


class ImageError(EdgekitError):
    """An image or image directory that cannot be used."""


class ModelError(EdgekitError):
    """A model or weights file that cannot be built or loaded."""


class ExportError(EdgekitError):
    """A conversion that failed or an output path that cannot be written."""


class BundleError(EdgekitError):
    """A bundle that is missing, malformed, or has been tampered with."""


class RuntimeMissingError(EdgekitError):
    """A runtime that is not installed or cannot run here."""


class DependencyError(EdgekitError):
    """A host-side package (TensorFlow, tf2onnx, NNCF) that is not installed."""


class BudgetError(EdgekitError):
    """A parity or latency budget that was exceeded; exit code 1, like a test."""

    exit_code = 1
