"""Every export option and its default, resolved in one place."""

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgekit.bundle import FORMATS
from edgekit.errors import ExportError, ImageError

DEFAULT_CALIBRATION = Path("calibration/images")
DEFAULT_HOLDOUT = Path("calibration/holdout")
DEFAULT_OUTPUT = Path("artifacts")
ONNX_CALIBRATION_METHODS = ("minmax", "entropy", "percentile")
NNCF_PRESETS = ("performance", "mixed")


@dataclass(frozen=True)
class ExportOptions:
    """What to export and how; ``None`` means "the default", see ``resolved``.

    Attributes:
        model: a built-in model name or a ``.keras`` file; None: ``patchgan``.
        weights: a weights file for a built-in model.
        int8: add int8 artifacts, calibrated on ``calibration``.
        fp16: add fp16 artifacts (TFLite and OpenVINO; ONNX has none).
        int8_io: give the int8 TFLite model int8 input and output tensors.
        calibration: calibration images; None: ``calibration/images``.
        holdout: held-out images for ``reference.npz``; None:
            ``calibration/holdout``.
        formats: a subset of ``tflite``, ``onnx``, ``openvino``; None: all.
        output: the bundle directory; None: ``artifacts``.
        force: replace an existing bundle.
        dynamic_batch: leave the batch dimension unknown instead of 1.
        opset: the ONNX opset (at least 17).
        per_channel: quantize weights per output channel.
        onnx_calibration: ``minmax``, ``entropy`` or ``percentile``.
        nncf_preset: ``performance`` or ``mixed``.
        calibration_limit: use only the first N calibration images.
        holdout_limit: use only the first N held-out images.
        input_size: height and width of a built-in model; None: 256.
        seed: the initialisation seed of a built-in model.
        workers: processes to convert in: 3 runs OpenVINO and the ONNX int8
            quantization in a helper process each, 2 in one helper, 1 runs
            everything in this process.
    """

    model: str | None = None
    weights: Path | None = None
    int8: bool = False
    fp16: bool = False
    int8_io: bool = False
    calibration: Path | None = None
    holdout: Path | None = None
    formats: tuple[str, ...] | None = None
    output: Path | None = None
    force: bool = False
    dynamic_batch: bool = False
    opset: int = 17
    per_channel: bool = True
    onnx_calibration: str = "percentile"
    nncf_preset: str = "performance"
    calibration_limit: int | None = None
    holdout_limit: int | None = None
    input_size: int | None = None
    seed: int = 0
    workers: int = 3

    def resolved(self) -> "ExportOptions":
        """Fill in every default and refuse what cannot work, before any work."""
        formats = tuple(dict.fromkeys(self.formats or FORMATS))
        unknown = [f for f in formats if f not in FORMATS]
        if unknown:
            raise ExportError(
                f"unknown format {', '.join(map(repr, unknown))}",
                f"choose from {', '.join(FORMATS)}",
            )
        _check_choice(
            "--onnx-calibration", self.onnx_calibration, ONNX_CALIBRATION_METHODS
        )
        _check_choice("--nncf-preset", self.nncf_preset, NNCF_PRESETS)
        if self.opset < 17:
            raise ExportError(
                f"ONNX opset {self.opset} is too old", "use --opset 17 or newer"
            )
        if self.int8_io and not self.int8:
            raise ExportError("--int8-io needs --int8", "add --int8")

        resolved = dataclasses.replace(
            self,
            formats=formats,
            calibration=Path(self.calibration or DEFAULT_CALIBRATION),
            holdout=Path(self.holdout or DEFAULT_HOLDOUT),
            output=Path(self.output or DEFAULT_OUTPUT),
            input_size=self.input_size or 256,
        )
        resolved.check_paths()
        return resolved

    @property
    def precisions(self) -> list[str]:
        """The precisions asked for, fp32 first."""
        return ["fp32"] + ["fp16"] * self.fp16 + ["int8"] * self.int8

    def check_paths(self) -> None:
        """Refuse missing image folders and an unwritable output, early."""
        for flag, path in (
            ("--calibration", self.calibration),
            ("--holdout", self.holdout),
        ):
            if not path.is_dir():
                raise ImageError(
                    f"{flag} {path} is not a directory of images",
                    f"pass {flag} DIR with .png or .jpg files",
                )
        parent = self.output.resolve().parent
        while not parent.exists():
            parent = parent.parent
        if not parent.is_dir() or not os.access(parent, os.W_OK):
            raise ExportError(
                f"cannot write the bundle {self.output}: {parent} is not writable",
                "choose a writable -o",
            )
        if self.output.exists() and not self.output.is_dir():
            raise ExportError(
                f"{self.output} exists and is not a directory", "choose -o"
            )
        if self.output.exists() and not self.force:
            raise ExportError(
                f"{self.output} already exists",
                "pass --force to replace it, or choose -o",
            )

    def to_json(self) -> str:
        """Serialize for the worker process."""
        data = dataclasses.asdict(self)
        return json.dumps({k: _plain(v) for k, v in data.items()})

    @classmethod
    def from_json(cls, text: str) -> "ExportOptions":
        data = json.loads(text)
        for key in ("weights", "calibration", "holdout", "output"):
            data[key] = Path(data[key]) if data[key] is not None else None
        data["formats"] = tuple(data["formats"]) if data["formats"] else None
        return cls(**data)


def _plain(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return list(value)
    return value


def _check_choice(flag: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ExportError(
            f"unknown {flag} {value!r}", f"choose one of {', '.join(choices)}"
        )
