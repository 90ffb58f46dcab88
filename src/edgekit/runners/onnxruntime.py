"""ONNX Runtime runner: CPU provider by default, everything set explicitly.

Threads, execution mode, graph optimisation level and spinning are set on
the session rather than left to ORT's defaults, and read back into
``settings``. Spinning stays on (ORT's default): the intra-op pool then
busy-waits between calls, which is how a latency-bound deployment runs it;
it is recorded so the choice is visible. With one thread there is no pool
and spinning does not matter.
"""

import numpy as np

from edgekit.runners.base import Runner, RunnerError
from edgekit.runners.errors import missing_runtime

DEFAULT_PROVIDERS = ["CPUExecutionProvider"]


def import_onnxruntime():  # noqa: ANN201 - the module object
    """Import onnxruntime, or say which extra installs it."""
    try:
        import onnxruntime
    except ImportError:
        raise missing_runtime("ONNX Runtime", "onnxruntime") from None
    return onnxruntime


class OnnxRuntimeRunner(Runner):
    """Runs a ``.onnx`` artifact.

    Args:
        providers: execution providers in order of preference; CPU only by
            default.
    """

    runtime = "onnxruntime"

    def __init__(self, *args, providers: list[str] | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.providers = list(providers or DEFAULT_PROVIDERS)

    def _load(self) -> None:
        ort = import_onnxruntime()
        unknown = [p for p in self.providers if p not in ort.get_available_providers()]
        if unknown:
            raise RunnerError(
                f"ONNX Runtime here has no provider {unknown}; available: "
                f"{ort.get_available_providers()}",
                "pass --provider with one of those",
            )

        options = self._session_options(ort)
        try:
            self._session = ort.InferenceSession(
                str(self.path), sess_options=options, providers=self.providers
            )
        except Exception as exc:  # ORT raises its own untyped Fail/InvalidGraph
            raise RunnerError(
                f"ONNX Runtime cannot load {self.artifact.file}: {exc}"
            ) from None

        self._input_names = [i.tensor for i in self.artifact.inputs]
        self._output_names = [o.tensor for o in self.artifact.outputs]
        self._check_names()
        self.settings = {
            "runtime": "onnxruntime",
            "providers": self._session.get_providers(),
            "intra_op_num_threads": options.intra_op_num_threads,
            "inter_op_num_threads": options.inter_op_num_threads,
            "execution_mode": str(options.execution_mode).split(".")[-1],
            "graph_optimization_level": str(options.graph_optimization_level).split(
                "."
            )[-1],
            "allow_spinning": True,
        }

    def _session_options(self, ort):  # noqa: ANN001, ANN202
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.add_session_config_entry("session.intra_op.allow_spinning", "1")
        options.log_severity_level = 3
        return options

    def _check_names(self) -> None:
        have_in = {i.name for i in self._session.get_inputs()}
        have_out = {o.name for o in self._session.get_outputs()}
        missing = [n for n in self._input_names if n not in have_in]
        missing += [n for n in self._output_names if n not in have_out]
        if missing:
            raise RunnerError(
                f"{self.artifact.file} has no tensors named {missing}; it has "
                f"inputs {sorted(have_in)} and outputs {sorted(have_out)}",
                "re-export the bundle",
            )

    def _feed(self, arrays: list[np.ndarray]) -> None:
        self._feeds = dict(zip(self._input_names, arrays, strict=True))

    def _run(self) -> None:
        self._results = self._session.run(self._output_names, self._feeds)

    def _fetch(self) -> list[np.ndarray]:
        return self._results

    def _close(self) -> None:
        del self._session
