"""Test isolation for what the CLI sets process-wide."""

import logging

import pytest

from edgekit import logs


@pytest.fixture(autouse=True)
def restore_edgekit_logger():
    """Undo ``logs.configure`` after each test.

    A CLI run installs a Rich handler on the ``edgekit`` logger, bound to the
    stderr of that run (CliRunner's, closed when the run ends), and stops
    propagation. Left in place, later tests would log into a closed stream
    and ``caplog`` would see nothing.
    """
    logger = logging.getLogger("edgekit")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    verbosity = logs.verbosity()
    yield
    logger.handlers[:], logger.level, logger.propagate = saved
    logs._state["verbosity"] = verbosity
