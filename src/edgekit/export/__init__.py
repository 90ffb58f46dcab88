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
* **Concurrency.** With ``workers=2`` (the default) a second process
  converts ONNX (tf2onnx, then ONNX Runtime's percentile calibration, the
  longest stage) while this one converts TFLite, then OpenVINO. Each process
  resolves and traces the same model; their weight digests are compared.
"""

from edgekit.bundle import FORMATS
from edgekit.export.options import ExportOptions
from edgekit.export.pipeline import StageReporter, export_bundle

__all__ = ["FORMATS", "ExportOptions", "StageReporter", "export_bundle"]
