"""``edgekit bench`` (placeholder until the runners land)."""

from edgekit.commands import reports_errors
from edgekit.errors import EdgekitError


@reports_errors
def bench() -> None:
    """Check parity and latency of every artifact in a bundle."""
    raise EdgekitError("bench is not built yet")
