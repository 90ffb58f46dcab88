"""``edgekit build`` and ``edgekit info`` (placeholder until models land)."""

from edgekit.commands import reports_errors
from edgekit.errors import EdgekitError


@reports_errors
def build() -> None:
    """Build the discriminator and save it as a .keras file."""
    raise EdgekitError("build is not built yet")


@reports_errors
def info() -> None:
    """Print the model's layer table, parameters and MACs."""
    raise EdgekitError("info is not built yet")
