"""Export a Keras model to TFLite, ONNX and OpenVINO IR in one bundle.

``export_bundle(ExportOptions(...))`` is the whole job: resolve the model,
load calibration and held-out images, trace the model once, convert every
format asked for, and write the bundle atomically (see ``edgekit.bundle``).

Policies, applied the same way in every format:

* **Verdict.** The default int8 configuration keeps the softmax in float, on
  dequantized logits, and with it the first three conv blocks and the last
  one, where int8 error flipped verdicts (``common.VERDICT_POLICY``); each
  int8 artifact's ``quantization`` record names the ops kept in float.
* **Failure.** A format that fails fails the whole export: the bundle is
  written only when every format succeeded, nothing is left behind, and an
  existing bundle is untouched. The error names the format; leaving it out
  of ``--formats`` exports the others.
* **Concurrency.** Only this process imports TensorFlow and traces the
  model. It writes the traced model as a frozen graph and as fp32 ONNX, and
  helper processes that never import TensorFlow take it from those files:
  with ``workers=3`` (the default) one converts OpenVINO and quantizes it
  with NNCF, one quantizes ONNX with ONNX Runtime, while this one converts
  TFLite and computes the reference outputs (``export.pipeline``).
"""

from edgekit.bundle import FORMATS
from edgekit.export.options import ExportOptions
from edgekit.export.pipeline import StageReporter, export_bundle

__all__ = ["FORMATS", "ExportOptions", "StageReporter", "export_bundle"]
