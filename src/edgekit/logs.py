"""Quiet by default, honest when asked.

Every module logs through ``logging.getLogger(__name__)``. The CLI calls
``configure`` once with the count of ``-v`` minus the count of ``-q``:
-1 shows errors only, 0 warnings and edgekit's own progress, 1 info plus the
converters' captured output, 2 debug. Machine output (JSON) never goes
through here; it goes to stdout or a file.
"""

import contextlib
import io
import logging
import os
import sys
import tempfile
from collections.abc import Iterator

from rich.console import Console
from rich.logging import RichHandler

_state = {"verbosity": 0}


def configure(verbosity: int = 0) -> None:
    """Install a Rich handler on stderr at the level the verbosity asks for."""
    _state["verbosity"] = verbosity
    level = {-1: logging.ERROR, 0: logging.WARNING, 1: logging.INFO}.get(
        max(-1, min(verbosity, 2)), logging.DEBUG
    )
    handler = RichHandler(
        console=stderr_console(), show_time=False, show_path=False, markup=False
    )
    root = logging.getLogger("edgekit")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False

    # TensorFlow's C++ side logs before Python logging is involved; this is the
    # only switch that reaches it, and it must be set before TF is imported.
    if verbosity < 2:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def verbosity() -> int:
    return _state["verbosity"]


def stderr_console() -> Console:
    """A Rich console for progress and tables on stderr.

    When stderr is the process's real file descriptor 2, the console writes to
    a duplicate of it, so that ``captured_native_output`` can silence fd 2 for
    a converter without silencing our own progress bars.
    """
    stream = sys.stderr
    try:
        if stream.fileno() == 2:
            if "stderr_dup" not in _state:
                _state["stderr_dup"] = os.fdopen(os.dup(2), "w", buffering=1)
            stream = _state["stderr_dup"]
    except (AttributeError, OSError, io.UnsupportedOperation):
        pass
    return Console(file=stream, stderr=True)


@contextlib.contextmanager
def captured_native_output(label: str) -> Iterator[None]:
    """Capture everything a converter prints, from Python and from C++.

    TensorFlow, tf2onnx and OpenVINO print pages of noise to file descriptors
    1 and 2 directly. At verbosity 0 it is swallowed; at -v it is replayed
    through the log after the stage, labelled. If the stage fails, the tail of
    the output is logged at warning level so the failure can be diagnosed.
    """
    if verbosity() >= 2:
        yield
        return

    log = logging.getLogger("edgekit.converters")
    with tempfile.TemporaryFile(mode="w+b") as sink:
        saved = _redirect_fds(sink.fileno())
        python_sink = io.StringIO()
        failed = False
        try:
            with contextlib.redirect_stdout(python_sink):
                with contextlib.redirect_stderr(python_sink):
                    yield
        except BaseException:
            failed = True
            raise
        finally:
            _restore_fds(saved)
            sink.seek(0)
            text = python_sink.getvalue() + sink.read().decode("utf-8", "replace")
            if text.strip():
                if failed:
                    tail = "\n".join(text.strip().splitlines()[-30:])
                    log.warning("%s output (last lines):\n%s", label, tail)
                else:
                    log.info("%s output:\n%s", label, text.rstrip())


def _redirect_fds(target_fd: int) -> list[tuple[int, int]]:
    saved = []
    for fd in (1, 2):
        with contextlib.suppress(Exception):
            (sys.stdout if fd == 1 else sys.stderr).flush()
        try:
            saved.append((fd, os.dup(fd)))
            os.dup2(target_fd, fd)
        except OSError:
            pass
    return saved


def _restore_fds(saved: list[tuple[int, int]]) -> None:
    for fd, copy in saved:
        os.dup2(copy, fd)
        os.close(copy)
