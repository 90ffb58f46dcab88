"""Parity metrics: how far an artifact's outputs are from a reference.

Every metric is computed over all samples at once (the arrays are (N, ...)).
SQNR of identical tensors is infinite; it is kept as ``math.inf`` here and
written as ``null`` in JSON, with ``identical`` set, because JSON has no
infinity. NaN or Inf in an artifact's output is never averaged away: it is
reported in ``nonfinite`` and turned into a failure by the caller.
"""

import math
from dataclasses import asdict, dataclass

import numpy as np


@dataclass
class TensorParity:
    """The comparison of one output tensor with its reference."""

    max_abs: float
    mean_abs: float
    rmse: float
    cosine: float
    sqnr_db: float
    nonfinite: int
    agreement: float | None = None
    flipped: int | None = None

    @property
    def identical(self) -> bool:
        return self.max_abs == 0.0 and self.nonfinite == 0

    def to_json(self) -> dict[str, float | int | bool | None]:
        """A JSON-safe dict: infinities and NaN become null."""
        data = {k: _finite_or_none(v) for k, v in asdict(self).items()}
        data["identical"] = self.identical
        if self.agreement is None:
            del data["agreement"], data["flipped"]
        return data


def compare_tensor(
    reference: np.ndarray, output: np.ndarray, is_class: bool = False
) -> TensorParity:
    """Compare one output tensor with its reference, over all samples.

    Args:
        reference: the float reference, (N, ...).
        output: the artifact's output, same shape.
        is_class: whether this is the verdict output; adds argmax agreement.

    Returns:
        The metrics; NaN/Inf in ``output`` are counted in ``nonfinite``.
    """
    ref = np.asarray(reference, dtype=np.float64)
    out = np.asarray(output, dtype=np.float64)
    if ref.shape != out.shape:
        raise ValueError(f"shapes differ: reference {ref.shape}, output {out.shape}")

    nonfinite = int(np.count_nonzero(~np.isfinite(out)))
    diff = np.abs(ref - out)
    parity = TensorParity(
        max_abs=float(diff.max()) if diff.size else 0.0,
        mean_abs=float(diff.mean()) if diff.size else 0.0,
        rmse=float(np.sqrt(np.mean(diff**2))) if diff.size else 0.0,
        cosine=cosine(ref, out),
        sqnr_db=sqnr_db(ref, out),
        nonfinite=nonfinite,
    )
    if is_class:
        parity.agreement, parity.flipped = verdict_agreement(ref, out)
    return parity


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of the flattened arrays; 1.0 when both are all zero."""
    a, b = np.ravel(a), np.ravel(b)
    norms = float(np.linalg.norm(a)) * float(np.linalg.norm(b))
    if norms == 0.0:
        return 1.0 if not a.any() and not b.any() else 0.0
    return float(np.dot(a, b) / norms)


def sqnr_db(reference: np.ndarray, output: np.ndarray) -> float:
    """10·log10(Σref² / Σ(ref−out)²); ``inf`` when the arrays are identical."""
    noise = float(np.sum((reference - output) ** 2))
    signal = float(np.sum(reference**2))
    if noise == 0.0:
        return math.inf
    if not math.isfinite(noise):
        return math.nan
    if signal == 0.0:
        return -math.inf
    return 10.0 * math.log10(signal / noise)


def verdict_agreement(reference: np.ndarray, output: np.ndarray) -> tuple[float, int]:
    """Percent of samples whose argmax matches the reference, and the flips.

    Args:
        reference: (N, classes) reference scores.
        output: (N, classes) artifact scores.

    Returns:
        (agreement in percent, number of samples whose verdict flipped).
    """
    ref = np.asarray(reference).reshape(len(reference), -1)
    out = np.asarray(output).reshape(len(output), -1)
    if len(ref) == 0:
        return 100.0, 0
    matches = np.argmax(ref, axis=1) == np.argmax(out, axis=1)
    # A NaN row has no meaningful argmax; count it as flipped.
    matches &= np.isfinite(out).all(axis=1)
    flipped = int(len(ref) - np.count_nonzero(matches))
    return 100.0 * (len(ref) - flipped) / len(ref), flipped


def compare_outputs(
    reference: dict[str, np.ndarray],
    outputs: dict[str, np.ndarray],
    class_output: str | None,
) -> dict[str, TensorParity]:
    """Compare every reference output with the artifact's, by name."""
    return {
        name: compare_tensor(ref, outputs[name], is_class=name == class_output)
        for name, ref in reference.items()
        if name in outputs
    }


def _finite_or_none(value: float | int | None) -> float | int | None:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
