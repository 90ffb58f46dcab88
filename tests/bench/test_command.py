"""``edgekit bench`` end to end: the table, the JSON, Markdown, bad input."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from edgekit.bundle import write_reference
from edgekit.cli import app

from .conftest import edit_manifest

FAST = ["--runs", "5", "--warmup", "1", "--min-seconds", "0", "--threads", "1"]
LATENCY_KEYS = {"p50", "p90", "p99", "mean", "std", "min", "max"}
PARITY_KEYS = {"max_abs", "mean_abs", "rmse", "cosine", "sqnr_db"}

# Installed as sitecustomize in a subprocess: importing any blocked package
# raises, and every attempt is written down so a swallowed ImportError
# still shows.
BLOCKER = """
import os, sys
BLOCKED = set(os.environ["EDGEKIT_TEST_BLOCK"].split(","))
LOG = os.environ["EDGEKIT_TEST_BLOCK_LOG"]
class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            with open(LOG, "a") as log:
                log.write(name + "\\n")
            raise ImportError(f"{name} is blocked in this test")
        return None
sys.meta_path.insert(0, Blocker())
"""


def bench(*args: str):
    return CliRunner().invoke(app, ["bench", *args])


def bench_blocked(tmp_path: Path, blocked: str, *args: str):
    """Run ``python -m edgekit bench`` where importing ``blocked`` fails."""
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(BLOCKER)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(site), env.get("PYTHONPATH", "")])
    env["EDGEKIT_TEST_BLOCK"] = blocked
    env["EDGEKIT_TEST_BLOCK_LOG"] = str(tmp_path / "attempts.txt")
    command = [sys.executable, "-m", "edgekit", "bench", *args]
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    attempts = tmp_path / "attempts.txt"
    tried = attempts.read_text().split() if attempts.exists() else []
    return done, tried


def test_json_has_every_field_for_all_six_artifacts(built_bundle, tmp_path):
    report = tmp_path / "r.json"

    result = bench(str(built_bundle), *FAST, "--json", str(report))

    assert result.exit_code == 0, result.output
    data = json.loads(report.read_text())
    assert data["schema_version"] == 1
    assert {"cpu", "packages", "python", "edgekit"} <= set(data["environment"])
    assert len(data["results"]) == 6
    for row in data["results"]:
        assert {"file", "format", "precision", "load_ms", "first_inference_ms"} <= set(
            row
        )
        assert row["peak_rss_mb"] > 0
        assert LATENCY_KEYS <= set(row["latency_ms"])
        assert set(row["parity"]) == {"verdict", "features"}
        assert PARITY_KEYS <= set(row["parity"]["features"])
        assert "agreement" in row["parity"]["verdict"]
        assert "agreement" not in row["parity"]["features"]
        assert row["status"] == "ok"


def test_int8_artifacts_are_also_compared_with_their_fp32(built_bundle, tmp_path):
    report = tmp_path / "r.json"

    bench(
        str(built_bundle),
        *FAST,
        "--only",
        "*int8*",
        "--only",
        "*fp32*",
        "--json",
        str(report),
    )

    rows = {r["file"]: r for r in json.loads(report.read_text())["results"]}
    assert rows["tflite-int8.tflite"]["vs_fp32"]["file"] == "tflite-fp32.tflite"
    assert rows["onnx-int8.onnx"]["vs_fp32"]["parity"]["verdict"]["cosine"] > 0.99
    assert rows["openvino-fp32.xml"]["vs_fp32"] is None


def test_table_and_markdown_list_every_artifact(built_bundle, tmp_path):
    table = tmp_path / "r.md"

    result = bench(str(built_bundle), *FAST, "--markdown", str(table))

    assert result.exit_code == 0, result.output
    text = table.read_text()
    assert text.startswith("| artifact | format | precision | size | p50 ms")
    for name in ("tflite-int8", "onnx-fp32", "openvino-int8"):
        assert f"| {name} |" in text
        assert name in result.output
    assert "speed-up" in result.output


def test_only_selects_by_glob(built_bundle, tmp_path):
    report = tmp_path / "r.json"

    bench(str(built_bundle), *FAST, "--only", "tflite-*", "--json", str(report))

    files = [r["file"] for r in json.loads(report.read_text())["results"]]
    assert sorted(files) == ["tflite-fp32.tflite", "tflite-int8.tflite"]


def test_only_matching_nothing_is_refused(built_bundle):
    result = bench(str(built_bundle), *FAST, "--only", "*.pt")

    assert result.exit_code == 2
    assert "--only *.pt matches no artifact" in result.output


def test_isolated_runs_report_a_per_artifact_peak(built_bundle, tmp_path):
    report = tmp_path / "r.json"

    result = bench(
        str(built_bundle), *FAST, "--isolate", "--only", "onnx-*", "--json", str(report)
    )

    assert result.exit_code == 0, result.output
    rows = json.loads(report.read_text())["results"]
    assert all("isolated subprocess" in r["memory_source"] for r in rows)
    assert rows[1]["vs_fp32"]["file"] == "onnx-fp32.onnx"


def test_bench_runs_where_tensorflow_cannot_be_imported(built_bundle, tmp_path):
    report = tmp_path / "r.json"

    done, tried = bench_blocked(
        tmp_path,
        "tensorflow,keras,tf2onnx",
        str(built_bundle),
        *FAST,
        "--json",
        str(report),
    )

    assert done.returncode == 0, done.stderr
    assert tried == []
    assert len(json.loads(report.read_text())["results"]) == 6


def test_device_side_modules_import_no_tensorflow():
    code = (
        "import sys\n"
        "import edgekit.bench, edgekit.report, edgekit.commands.bench\n"
        "import edgekit.runners.litert, edgekit.runners.onnxruntime\n"
        "import edgekit.runners.openvino, edgekit.runners.keras\n"
        "heavy = [m for m in ('tensorflow', 'keras', 'tf2onnx') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_missing_runtime_names_the_extra_to_install(built_bundle, tmp_path):
    done, _ = bench_blocked(tmp_path, "onnxruntime", str(built_bundle), *FAST)

    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert lines[-1].startswith("error: ONNX Runtime is not installed")
    assert "pip install 'edgekit[runtime]'" in lines[-1]


def test_skip_missing_skips_only_that_runtime(built_bundle, tmp_path):
    report = tmp_path / "r.json"

    done, _ = bench_blocked(
        tmp_path,
        "onnxruntime",
        str(built_bundle),
        *FAST,
        "--skip-missing",
        "--json",
        str(report),
    )

    assert done.returncode == 0, done.stderr
    status = {r["file"]: r["status"] for r in json.loads(report.read_text())["results"]}
    assert status.pop("onnx-fp32.onnx") == status.pop("onnx-int8.onnx") == "skipped"
    assert set(status.values()) == {"ok"}
    assert "skipped onnx-fp32.onnx" in done.stderr


def test_a_fresh_keras_reference_agrees_with_the_bundles(built_bundle, tmp_path):
    report = tmp_path / "r.json"
    model = next(built_bundle.parent.glob("*.keras"))

    result = bench(
        str(built_bundle),
        *FAST,
        "--only",
        "*fp32*",
        "--reference",
        "keras",
        "--model",
        str(model),
        "--json",
        str(report),
    )

    assert result.exit_code == 0, result.output
    data = json.loads(report.read_text())
    assert data["settings"]["reference"] == "keras"
    for row in data["results"]:
        assert row["parity"]["verdict"]["max_abs"] < 1e-5


def test_keras_reference_without_keras_says_what_to_install(built_bundle, tmp_path):
    done, _ = bench_blocked(
        tmp_path, "tensorflow,keras", str(built_bundle), *FAST, "--reference", "keras"
    )

    assert done.returncode == 2
    assert done.stderr.strip().endswith("or drop --reference")
    assert "pip install 'edgekit[host]'" in done.stderr


def _one_line_error(result, *needles):
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    for needle in needles:
        assert needle in lines[0]


def test_missing_bundle(tmp_path):
    _one_line_error(bench(str(tmp_path / "nowhere")), "does not exist")


def test_directory_without_manifest(tmp_path):
    _one_line_error(bench(str(tmp_path)), "has no manifest.json")


def test_manifest_of_another_schema_version(bundle):
    edit_manifest(bundle, lambda data: data.update(schema_version=99))

    _one_line_error(bench(str(bundle)), "schema_version 99")


def test_broken_json(bundle):
    (bundle / "manifest.json").write_text('{"schema_version": 1,')

    _one_line_error(bench(str(bundle)), "is not valid JSON")


@pytest.mark.parametrize("file", ["tflite-int8.tflite", "openvino-fp32.bin"])
def test_a_flipped_byte_is_refused_by_name(bundle, file):
    path = bundle / file
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))

    _one_line_error(
        bench(str(bundle), *FAST), file, "does not match the sha256", "nothing was run"
    )


def test_a_missing_artifact_file_is_refused_by_name(bundle):
    (bundle / "onnx-int8.onnx").unlink()

    _one_line_error(bench(str(bundle), *FAST), "onnx-int8.onnx", "is missing")


def test_an_unknown_device_is_refused(built_bundle):
    _one_line_error(
        bench(str(built_bundle), *FAST, "--device", "TPU"), "'TPU'", "--device"
    )


def test_an_unknown_provider_fails_that_artifact_only(built_bundle):
    result = bench(str(built_bundle), *FAST, "--provider", "NoSuchExecutionProvider")

    assert result.exit_code == 1
    assert "FAILED onnx-fp32.onnx" in result.output
    assert "FAILED tflite" not in result.output


def test_nan_in_outputs_fails_after_the_table(bundle):
    with np.load(bundle / "reference.npz") as data:
        arrays = {k: data[k] for k in data.files}
    arrays["input:image"][0, 0, 0, 0] = np.nan
    write_reference(
        bundle / "reference.npz",
        {"image": arrays["input:image"]},
        {k[7:]: v for k, v in arrays.items() if k.startswith("output:")},
    )

    result = bench(str(bundle), *FAST, "--only", "*fp32*")

    assert result.exit_code == 1
    assert "┃ artifact" in result.output
    assert "NaN/Inf" in result.output
    for file in ("tflite-fp32.tflite", "onnx-fp32.onnx", "openvino-fp32.xml"):
        assert f"FAILED {file}: output 'verdict' has" in result.output
