"""Settings for a process that exports and then exits: the CLI, the helpers.

Both trade something a long-lived process would want kept for speed, so the
library call ``export_bundle`` applies neither to its caller.

Freed memory. TensorFlow's converters and tf2onnx copy the whole weight set
(78 MB for the 256x256 discriminator) over and over: into protobufs, MLIR,
flatbuffers. glibc serves every block over 32 MB with a fresh ``mmap`` and
hands it back to the kernel when it is freed, so each copy faults its pages
in anew: about 2.5 million page faults (10 GB) in one export, 3.5 s of the
TensorFlow process's time on the CI machine. Served from the heap, and the
heap not trimmed, a freed block is reused as it is. What is freed is not
returned to the system until the process ends (its peak stayed under 3 GB).

Unused imports. Importing TensorFlow imports Keras, which imports
scikit-learn (and with it SciPy) for its sklearn wrappers and IPython to
detect notebooks, when they are installed. An export uses neither, and the
import is on the path every converter waits on.
"""

import ctypes
import logging
import sys

log = logging.getLogger(__name__)

# mallopt parameters, from glibc's <malloc.h>.
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_NEVER_TRIM = 2**31 - 1

# Imported by Keras only for features an export never uses; Keras goes on
# without them when their import fails. 0.8 s of TensorFlow's 3.6 s import
# on the CI machine.
UNUSED_BY_EXPORT = ("sklearn", "IPython")


def keep_freed_memory() -> bool:
    """Serve large blocks from the heap and never trim it; glibc only.

    Returns:
        Whether the allocator took the settings (False on other C libraries,
        where nothing changes).
    """
    try:
        # The process's own symbols, the C library's among them; finding the
        # library by name would run ldconfig.
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False

    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    taken = (
        mallopt(_M_MMAP_MAX, 0) == 1 and mallopt(_M_TRIM_THRESHOLD, _NEVER_TRIM) == 1
    )
    log.debug("allocator keeps freed memory: %s", taken)
    return taken


def skip_unused_imports() -> None:
    """Make importing ``UNUSED_BY_EXPORT`` fail in this process, unless done.

    A ``None`` in ``sys.modules`` makes ``import`` raise ImportError, which is
    what Keras expects of a package that is not installed.
    """
    for name in UNUSED_BY_EXPORT:
        sys.modules.setdefault(name, None)
