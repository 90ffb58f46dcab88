"""The bundle as a whole: manifest, reproducibility, --force, atomic failure."""

import json
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from edgekit.bundle import read_manifest, read_reference, sha256_of
from edgekit.cli import app
from edgekit.errors import ExportError
from edgekit.export import export_bundle

from .conftest import CALIBRATION, HOLDOUT, tiny_options

runner = CliRunner()


def test_manifest_has_every_field_the_device_side_needs(small_bundle, small_manifest):
    data = json.loads((small_bundle / "manifest.json").read_text())

    assert data["schema_version"] == 1
    assert set(data["model"]) >= {"name", "source", "sha256", "trained"}
    assert (
        data["calibration"]["count"] == 64 and len(data["calibration"]["sha256"]) == 64
    )
    assert data["holdout"]["count"] == 40
    assert data["outputs"] == [
        {"name": "verdict", "role": "class"},
        {"name": "features", "role": "features"},
    ]
    assert {"prepare", "reference", "tflite", "onnx", "openvino", "total"} <= set(
        data["stages"]
    )
    for entry in data["artifacts"]:
        assert set(entry) >= {
            "file",
            "format",
            "precision",
            "sha256",
            "bytes",
            "inputs",
            "outputs",
            "quantization",
            "converter",
            "seconds",
        }
        assert entry["converter"]["name"] and entry["converter"]["version"]
        assert [t["name"] for t in entry["outputs"]] == ["verdict", "features"]
        assert entry["bytes"] == (small_bundle / entry["file"]).stat().st_size
    assert "/" not in data["model"]["source"].replace("tiny.keras", "")


def test_reference_holds_every_output_for_the_holdout(small_bundle, small_manifest):
    inputs, outputs = read_reference(small_bundle, small_manifest)

    assert inputs["image"].shape == (40, 32, 32, 1)
    assert outputs["verdict"].shape == (40, 2)
    assert outputs["features"].shape[0] == 40
    np.testing.assert_allclose(outputs["verdict"].sum(axis=1), 1.0, atol=1e-5)


def test_a_second_export_is_byte_identical(tiny_model_path, small_bundle, tmp_path):
    again = tmp_path / "again"

    export_bundle(tiny_options(tiny_model_path, again, int8=True, fp16=True))

    first, second = read_manifest(small_bundle), read_manifest(again)
    assert [(a.file, a.sha256) for a in first.artifacts] == [
        (a.file, a.sha256) for a in second.artifacts
    ]
    assert [c.sha256 for a in first.artifacts for c in a.companions] == [
        c.sha256 for a in second.artifacts for c in a.companions
    ]
    assert sha256_of(small_bundle / "reference.npz") == sha256_of(
        again / "reference.npz"
    )


def _cli_export(model, output, *extra: str):
    args = ["export", str(model), "--calibration", str(CALIBRATION)]
    args += ["--holdout", str(HOLDOUT), "--calibration-limit", "16"]
    args += ["--holdout-limit", "8", "--formats", "tflite", "-o", str(output)]
    return runner.invoke(app, args + list(extra))


def test_existing_bundle_is_refused_then_replaced_with_force(tiny_model_path, tmp_path):
    output = tmp_path / "bundle"
    output.mkdir()
    (output / "old.txt").write_text("old")

    refused = _cli_export(tiny_model_path, output)
    replaced = _cli_export(tiny_model_path, output, "--force")

    assert refused.exit_code != 0
    assert "already exists" in refused.output and "--force" in refused.output
    assert replaced.exit_code == 0, replaced.output
    assert "tflite-fp32.tflite" in replaced.output
    assert not (output / "old.txt").exists()
    assert (output / "manifest.json").is_file()


def test_a_failing_converter_leaves_nothing_behind(tiny_model_path, tmp_path):
    output = tmp_path / "bundle"
    output.mkdir()
    (output / "old.txt").write_text("old")
    # tf2onnx 1.17 has no opset 99, so the conversion itself fails.
    options = tiny_options(
        tiny_model_path, output, force=True, formats=("tflite", "onnx"), opset=99
    )

    with pytest.raises(ExportError, match="onnx|tf2onnx"):
        export_bundle(options)

    assert (output / "old.txt").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]


def test_the_command_keeps_its_exit_code_after_loading_tensorflow(
    tiny_model_path, tmp_path
):
    # A real process: once TensorFlow is loaded the command skips Python's
    # teardown, and must still report the failure and its code.
    output = tmp_path / "bundle"
    command = [sys.executable, "-m", "edgekit", "export", str(tiny_model_path)]
    command += ["--calibration", str(CALIBRATION), "--holdout", str(HOLDOUT)]
    command += ["--holdout-limit", "4", "--formats", "onnx", "--opset", "99"]

    result = subprocess.run(
        command + ["-o", str(output)], capture_output=True, text=True
    )

    assert result.returncode == 2, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "tf2onnx" in errors[0], result.stderr[-2000:]
    assert not output.exists()


def test_keras_loads_without_the_imports_the_export_skips():
    # The exporting process makes scikit-learn and IPython unimportable
    # (export.process); Keras must still load and build a model without them.
    script = (
        "import sys\n"
        "from edgekit.export.process import UNUSED_BY_EXPORT, skip_unused_imports\n"
        "skip_unused_imports()\n"
        "import keras, tensorflow\n"
        "keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])\n"
        "assert all(sys.modules[name] is None for name in UNUSED_BY_EXPORT)\n"
    )

    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True
    )

    assert result.returncode == 0, result.stderr[-2000:]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"formats": "tflite,coreml"}, "unknown format 'coreml'"),
        ({"calibration": "EMPTY"}, "no images"),
        ({"model": "BROKEN"}, "broken.keras"),
        ({"output": "UNDER_A_FILE"}, "cannot write"),
    ],
)
def test_bad_input_is_one_line_and_a_non_zero_exit(
    tmp_path, tiny_model_path, change, message
):
    empty = tmp_path / "empty"
    empty.mkdir()
    broken = tmp_path / "broken.keras"
    broken.write_bytes(b"not a zip file")
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    values = {
        "model": str(tiny_model_path),
        "calibration": str(CALIBRATION),
        "formats": "tflite",
        "output": str(tmp_path / "out"),
    }
    values |= change
    values = {
        k: {"EMPTY": str(empty), "BROKEN": str(broken)}.get(v, v)
        for k, v in values.items()
    }
    if values["output"] == "UNDER_A_FILE":
        values["output"] = str(a_file / "bundle")

    result = runner.invoke(
        app,
        [
            "export",
            values["model"],
            "--calibration",
            values["calibration"],
            "--holdout",
            str(HOLDOUT),
            "--formats",
            values["formats"],
            "-o",
            values["output"],
        ],
    )

    assert result.exit_code != 0
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.output
    assert message in lines[0].lower(), lines[0]
    assert not (tmp_path / "out").exists()
