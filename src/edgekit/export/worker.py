"""A helper process of the export: OpenVINO, ONNX quantization, no TensorFlow.

Run as ``python -m edgekit.export.worker TASK_NAME...``. It imports what the
named tasks need, then reads tasks from its stdin, one JSON object per line
(``name``, ``format``, ``args``, see ``export.tasks``), and runs them in
order until stdin closes. It reports on its stdout, one JSON object per line:
``{"event": "done", "name": ..., "seconds": ..., "produced": [...]}`` per
task, or ``{"event": "error", "name": ..., "message": ..., "hint": ...}``
and exit 2 when one fails. What the converters print goes to its stderr,
which the parent shows with ``-v``.
"""

import dataclasses
import importlib
import json
import logging
import os
import sys
from typing import Any

from edgekit import logs
from edgekit.errors import EdgekitError
from edgekit.export.common import Produced, Stopwatch
from edgekit.export.process import keep_freed_memory
from edgekit.export.tasks import PRELOAD, Task, run_task


def produced_to_dict(produced: Produced) -> dict[str, Any]:
    return dataclasses.asdict(produced)


def produced_from_dict(data: dict[str, Any]) -> Produced:
    from edgekit.bundle import TensorInfo

    data = dict(data)
    data["inputs"] = [TensorInfo(**t) for t in data["inputs"]]
    data["outputs"] = [TensorInfo(**t) for t in data["outputs"]]
    return Produced(**data)


def main(argv: list[str]) -> int:
    """Run the tasks read from stdin and report each on stdout; 0 on success."""
    events = os.fdopen(os.dup(1), "w", buffering=1)
    # Keep stdout for events only: anything else printed goes to stderr.
    os.dup2(2, 1)
    logs.configure(1)
    # Calibration buffers are large and freed image after image; this process
    # exits when its tasks are done, so it keeps what it frees for reuse.
    keep_freed_memory()
    for name in argv:
        for module in PRELOAD[name]:
            importlib.import_module(module)

    for line in sys.stdin:
        task = Task(**json.loads(line))
        watch = Stopwatch()
        try:
            produced = run_task(task)
        except EdgekitError as error:
            _send(
                events,
                event="error",
                name=task.name,
                message=error.message,
                hint=error.hint,
            )
            return 2
        _send(
            events,
            event="done",
            name=task.name,
            seconds=round(watch.seconds(), 3),
            produced=[produced_to_dict(p) for p in produced],
        )
    return 0


def _send(stream: Any, **event: Any) -> None:
    stream.write(json.dumps(event) + "\n")
    stream.flush()


def _end(code: int) -> None:
    """End without the interpreter's teardown, which the export waits for.

    Unloading OpenVINO, NNCF and ONNX Runtime after the work is done only
    delays the export's last step; everything written is closed by now.
    """
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    _end(main(sys.argv[1:]))
