"""The bundle: a directory of artifacts that can be copied to a device as it is.

The manifest is the contract between the host side that writes a bundle and
the device side that benches it. Everything needed to run and judge an
artifact is in it; nothing is guessed from a file name. This module needs
only numpy and the standard library, so it imports on a device.

Layout::

    bundle/
      manifest.json     schema_version, model, preprocessing, calibration,
                        holdout, reference, outputs, artifacts, stages
      reference.npz     held-out inputs and the float Keras outputs for them
      *.tflite *.onnx *.xml *.bin
"""

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.errors import BundleError, ExportError

SCHEMA_VERSION = 1
MANIFEST_NAME = "manifest.json"
REFERENCE_NAME = "reference.npz"
FORMATS = ("tflite", "onnx", "openvino")
PRECISIONS = ("fp32", "fp16", "int8")

# Keys inside reference.npz: one input array and one array per model output.
REFERENCE_INPUT_PREFIX = "input:"
REFERENCE_OUTPUT_PREFIX = "output:"


@dataclass(frozen=True)
class TensorInfo:
    """One input or output of an artifact.

    ``name`` is the model's own name for the tensor (the key in
    reference.npz and in every runner's result); ``tensor`` is what the
    artifact calls it inside (a TFLite signature key, an ONNX value name, an
    OpenVINO port name). ``scale`` and ``zero_point`` are set only where the
    artifact's tensor itself is quantized (int8 I/O).
    """

    name: str
    tensor: str
    shape: list[int]
    dtype: str
    scale: float | None = None
    zero_point: int | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TensorInfo":
        return cls(
            name=data["name"],
            tensor=data.get("tensor", data["name"]),
            shape=[int(d) for d in data["shape"]],
            dtype=data["dtype"],
            scale=data.get("scale"),
            zero_point=data.get("zero_point"),
        )


@dataclass(frozen=True)
class FileInfo:
    """A companion file of an artifact (OpenVINO's weights ``.bin``)."""

    file: str
    sha256: str
    bytes: int


@dataclass(frozen=True)
class Artifact:
    """One exported model file and everything needed to run and judge it."""

    file: str
    format: str
    precision: str
    sha256: str
    bytes: int
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    converter: dict[str, str]
    seconds: float
    quantization: dict[str, Any] | None = None
    companions: list[FileInfo] = field(default_factory=list)

    @property
    def id(self) -> str:
        """A short stable label, e.g. ``tflite-int8``."""
        return Path(self.file).stem

    @property
    def total_bytes(self) -> int:
        return self.bytes + sum(c.bytes for c in self.companions)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Artifact":
        return cls(
            file=data["file"],
            format=data["format"],
            precision=data["precision"],
            sha256=data["sha256"],
            bytes=int(data["bytes"]),
            inputs=[TensorInfo.from_dict(t) for t in data["inputs"]],
            outputs=[TensorInfo.from_dict(t) for t in data["outputs"]],
            converter=dict(data.get("converter", {})),
            seconds=float(data.get("seconds", 0.0)),
            quantization=data.get("quantization"),
            companions=[FileInfo(**c) for c in data.get("companions", [])],
        )


@dataclass
class Manifest:
    """The parsed ``manifest.json`` of a bundle.

    ``outputs`` lists the model's outputs in order, each a dict with ``name``
    and ``role`` (``class`` for the softmax verdict whose argmax is compared,
    ``features`` for any other tensor).
    """

    model: dict[str, Any]
    preprocessing: dict[str, Any]
    calibration: dict[str, Any]
    holdout: dict[str, Any]
    outputs: list[dict[str, Any]]
    artifacts: list[Artifact]
    stages: dict[str, float] = field(default_factory=dict)
    edgekit_version: str = ""
    schema_version: int = SCHEMA_VERSION

    @property
    def class_output(self) -> str | None:
        """The name of the output whose argmax is the verdict, if any."""
        return next((o["name"] for o in self.outputs if o["role"] == "class"), None)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["artifacts"] = [_drop_none(asdict(a)) for a in self.artifacts]
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Manifest":
        return cls(
            schema_version=data["schema_version"],
            edgekit_version=data.get("edgekit_version", ""),
            model=data["model"],
            preprocessing=data["preprocessing"],
            calibration=data["calibration"],
            holdout=data.get("holdout", {}),
            outputs=data["outputs"],
            artifacts=[Artifact.from_dict(a) for a in data["artifacts"]],
            stages=data.get("stages", {}),
        )


def _drop_none(data: dict[str, Any]) -> dict[str, Any]:
    """Leave out unset scale/zero point so float tensors read cleanly."""
    for key in ("inputs", "outputs"):
        data[key] = [{k: v for k, v in t.items() if v is not None} for t in data[key]]
    return data


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(bundle_dir: Path) -> Manifest:
    """Read and validate a bundle's manifest, refusing anything malformed."""
    bundle_dir = Path(bundle_dir)
    if not bundle_dir.is_dir():
        raise BundleError(
            f"bundle {bundle_dir} does not exist or is not a directory",
            "make one with: edgekit export --int8",
        )

    path = bundle_dir / MANIFEST_NAME
    if not path.is_file():
        raise BundleError(
            f"{bundle_dir} has no {MANIFEST_NAME}, so it is not an edgekit bundle",
            "make one with: edgekit export --int8",
        )

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(
            f"{path} is not valid JSON ({exc})", "re-export the bundle"
        ) from None

    version = data.get("schema_version") if isinstance(data, dict) else None
    if version != SCHEMA_VERSION:
        raise BundleError(
            f"{path} has schema_version {version!r}; this edgekit reads "
            f"version {SCHEMA_VERSION}",
            "re-export the bundle with this edgekit version",
        )

    try:
        return Manifest.from_dict(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise BundleError(
            f"{path} is missing or has a malformed field ({exc})",
            "re-export the bundle",
        ) from None


def verify_artifact(bundle_dir: Path, artifact: Artifact) -> None:
    """Refuse an artifact whose files are missing or differ from the manifest."""
    expected = [(artifact.file, artifact.sha256)]
    expected += [(c.file, c.sha256) for c in artifact.companions]
    for name, digest in expected:
        path = Path(bundle_dir) / name
        if not path.is_file():
            raise BundleError(
                f"artifact file {name} listed in the manifest is missing from "
                f"{bundle_dir}",
                "copy the whole bundle, or re-export it",
            )
        if sha256_of(path) != digest:
            raise BundleError(
                f"artifact file {name} does not match the sha256 in the manifest "
                "(changed or corrupted after export)",
                "re-export the bundle or copy it again",
            )


def read_reference(
    bundle_dir: Path, manifest: Manifest
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Load the held-out inputs and the float reference outputs."""
    path = Path(bundle_dir) / REFERENCE_NAME
    if not path.is_file():
        raise BundleError(
            f"{bundle_dir} has no {REFERENCE_NAME}", "re-export the bundle"
        )

    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (ValueError, OSError) as exc:
        raise BundleError(
            f"{path} cannot be read ({exc})", "re-export the bundle"
        ) from None

    inputs = _strip_prefix(arrays, REFERENCE_INPUT_PREFIX)
    outputs = _strip_prefix(arrays, REFERENCE_OUTPUT_PREFIX)
    missing = [o["name"] for o in manifest.outputs if o["name"] not in outputs]
    if not inputs or missing:
        raise BundleError(
            f"{path} lacks inputs or the outputs {missing}", "re-export the bundle"
        )
    return inputs, outputs


def write_reference(
    path: Path, inputs: dict[str, np.ndarray], outputs: dict[str, np.ndarray]
) -> None:
    """Write reference.npz without pickled objects and without timestamps."""
    arrays = {
        REFERENCE_INPUT_PREFIX + k: np.ascontiguousarray(v) for k, v in inputs.items()
    }
    arrays |= {
        REFERENCE_OUTPUT_PREFIX + k: np.ascontiguousarray(v) for k, v in outputs.items()
    }
    for array in arrays.values():
        if array.dtype == object:
            raise ValueError("reference arrays must be numeric")
    # np.savez stamps zip entries with the current time; a fixed date keeps the
    # file byte-identical between runs.
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        for key in sorted(arrays):
            info = zipfile.ZipInfo(key + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            with archive.open(info, "w") as member:
                np.lib.format.write_array(member, arrays[key], allow_pickle=False)


def _strip_prefix(arrays: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    return {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}


@contextlib.contextmanager
def staged_bundle(target: Path, force: bool = False) -> Iterator[Path]:
    """Write a bundle into a temporary directory, renamed into place at the end.

    The temporary directory sits beside the target so the final rename stays
    on one file system. If the block raises, the temporary directory is
    removed and the target is left exactly as it was. An existing target is
    replaced only with ``force``.
    """
    target = Path(target)
    if target.exists() and not force:
        raise ExportError(
            f"{target} already exists", "pass --force to replace it, or choose -o"
        )
    if target.exists() and not target.is_dir():
        raise ExportError(f"{target} exists and is not a directory", "choose -o")

    parent = target.parent.resolve()
    try:
        parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=parent))
    except OSError as exc:
        raise ExportError(
            f"cannot write into {parent} ({exc.strerror})", "choose a writable -o"
        ) from None

    try:
        yield staging
        _swap_into_place(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _swap_into_place(staging: Path, target: Path) -> None:
    os.chmod(staging, 0o755)
    if not target.exists():
        staging.rename(target)
        return

    # Move the old bundle aside first, so that a failure between the two
    # renames can be undone and never leaves a mix of old and new files.
    retired = target.with_name(f".{target.name}.old-{os.getpid()}")
    target.rename(retired)
    try:
        staging.rename(target)
    except OSError:
        retired.rename(target)
        raise
    shutil.rmtree(retired, ignore_errors=True)
