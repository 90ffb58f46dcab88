"""Keep freed memory in the process, for the TensorFlow side of an export.

TensorFlow's converters and tf2onnx copy the whole weight set (78 MB for the
256x256 discriminator) over and over: into protobufs, MLIR, flatbuffers.
glibc serves every block over 32 MB with a fresh ``mmap`` and hands it back
to the kernel when it is freed, so each copy faults its pages in anew: about
2.5 million page faults (10 GB) in one export, 3.5 s of the TensorFlow
process's time on the CI machine. Served from the heap, and the heap not
trimmed, a freed block is reused as it is. What is freed is not returned to
the system until the process ends, which suits a command that exports and
exits (its peak stayed under 3 GB on the CI machine).
"""

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)

# mallopt parameters, from glibc's <malloc.h>.
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_NEVER_TRIM = 2**31 - 1


def keep_freed_memory() -> bool:
    """Serve large blocks from the heap and never trim it; glibc only.

    Returns:
        Whether the allocator took the settings (False on other C libraries,
        where nothing changes).
    """
    name = ctypes.util.find_library("c")
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError, TypeError):
        return False

    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    taken = (
        mallopt(_M_MMAP_MAX, 0) == 1 and mallopt(_M_TRIM_THRESHOLD, _NEVER_TRIM) == 1
    )
    log.debug("allocator keeps freed memory: %s", taken)
    return taken
