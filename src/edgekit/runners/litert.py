"""LiteRT (TFLite) runner: ai-edge-litert, or tflite-runtime where it works.

Uses the classic ``Interpreter`` API (the "v1" CPU API, with XNNPACK as its
default delegate). Only ``invoke`` is timed; ``set_tensor`` and
``get_tensor`` copy data in and out and are counted with (de)quantization.
"""

from typing import Any

import numpy as np

from edgekit.logs import captured_native_output
from edgekit.runners.base import Runner, RunnerError
from edgekit.runners.errors import missing_runtime


def interpreter_class() -> tuple[type, str]:
    """The first Interpreter class that imports and can build an interpreter.

    tflite-runtime 2.14 imports under numpy 2 and then fails when an
    interpreter is created, so it is only accepted if the probe succeeds.
    """
    try:
        from ai_edge_litert.interpreter import Interpreter

        return Interpreter, "ai-edge-litert"
    except ImportError:
        pass

    try:
        from tflite_runtime.interpreter import Interpreter

        Interpreter(model_content=_EMPTY_PROBE)
    except ImportError:
        raise missing_runtime("LiteRT", "ai_edge_litert") from None
    except (AttributeError, RuntimeError, ValueError) as exc:
        if "_ARRAY_API" in str(exc) or "NumPy" in str(exc):
            raise missing_runtime(
                "LiteRT", "ai_edge_litert (tflite-runtime does not work with numpy 2)"
            ) from None
    return Interpreter, "tflite-runtime"


# The smallest bytes that make tflite-runtime's wrapper reach numpy; a model
# error here means the extension itself works.
_EMPTY_PROBE = b"\x00" * 16


class LiteRTRunner(Runner):
    """Runs a ``.tflite`` artifact."""

    runtime = "litert"

    def _load(self) -> None:
        cls, package = interpreter_class()
        try:
            # The runtime announces its XNNPACK delegate on fd 2; keep it
            # out of the table unless -v asks for it.
            with captured_native_output("LiteRT"):
                self._interpreter = cls(
                    model_path=str(self.path), num_threads=self.threads
                )
                self._resize_dynamic_inputs()
                self._interpreter.allocate_tensors()
        except (RuntimeError, ValueError) as exc:
            raise RunnerError(
                f"LiteRT cannot load {self.artifact.file}: {exc}"
            ) from None

        self._inputs = self._indices("inputs")
        self._outputs = self._indices("outputs")
        self.settings = {
            "runtime": package,
            "api": "Interpreter",
            "num_threads": self.threads,
            "op_resolver": "AUTO (XNNPACK delegate)",
        }

    def _resize_dynamic_inputs(self) -> None:
        # A -1 batch dimension is stored as 1 in 'shape'; resize to batch 1
        # explicitly so allocate_tensors plans for what bench feeds.
        for detail in self._interpreter.get_input_details():
            signature = detail.get("shape_signature", detail["shape"])
            if any(int(d) == -1 for d in signature):
                shape = [1 if int(d) == -1 else int(d) for d in signature]
                self._interpreter.resize_tensor_input(detail["index"], shape)

    def _indices(self, side: str) -> list[int]:
        details = getattr(self._interpreter, f"get_{side[:-1]}_details")()
        by_name = {d["name"]: d["index"] for d in details}
        by_name |= self._signature_indices(side)
        infos = getattr(self.artifact, side)
        if len(infos) == len(details) == 1 and infos[0].tensor not in by_name:
            return [details[0]["index"]]

        missing = [i.tensor for i in infos if i.tensor not in by_name]
        if missing:
            raise RunnerError(
                f"{self.artifact.file} has no {side} named {missing}; it has "
                f"{sorted(by_name)}",
                "re-export the bundle",
            )
        return [by_name[i.tensor] for i in infos]

    def _signature_indices(self, side: str) -> dict[str, int]:
        signatures: dict[str, Any] = self._interpreter.get_signature_list()
        if len(signatures) != 1:
            return {}
        runner = self._interpreter.get_signature_runner(next(iter(signatures)))
        details = getattr(runner, f"get_{side[:-1]}_details")()
        return {key: detail["index"] for key, detail in details.items()}

    def _feed(self, arrays: list[np.ndarray]) -> None:
        for index, array in zip(self._inputs, arrays, strict=True):
            self._interpreter.set_tensor(index, array)

    def _run(self) -> None:
        self._interpreter.invoke()

    def _fetch(self) -> list[np.ndarray]:
        return [self._interpreter.get_tensor(index) for index in self._outputs]

    def _close(self) -> None:
        del self._interpreter
