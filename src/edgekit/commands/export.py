"""``edgekit export`` (placeholder until the exporters land)."""

from edgekit.commands import reports_errors
from edgekit.errors import EdgekitError


@reports_errors
def export() -> None:
    """Export TFLite, ONNX and OpenVINO artifacts into one bundle."""
    raise EdgekitError("export is not built yet")
