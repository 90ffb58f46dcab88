"""``edgekit export --int8`` then ``edgekit bench``: the issue's done check.

The real exporter converts a tiny two-output model (the one in conftest)
with the repository's calibration photographs; bench must then print the
table and write the JSON for all six artifacts with every field, and refuse
the bundle once a byte of an artifact is flipped.
"""

import json
from pathlib import Path

from typer.testing import CliRunner

from edgekit.cli import app

from .conftest import _model

REPO = Path(__file__).resolve().parents[2]
RESULT_FIELDS = {
    "file",
    "format",
    "precision",
    "latency_ms",
    "parity",
    "load_ms",
    "first_inference_ms",
    "peak_rss_mb",
}


def test_bench_of_an_exported_bundle(tmp_path):
    model = tmp_path / "tiny.keras"
    # Batch 1, as edgekit's own models are: the exporter traces a fixed batch.
    _model(batch_size=1).save(model)
    bundle = tmp_path / "artifacts"
    export = CliRunner().invoke(
        app,
        [
            "export",
            str(model),
            "--int8",
            "--calibration",
            str(REPO / "calibration" / "images"),
            "--holdout",
            str(REPO / "calibration" / "holdout"),
            "--calibration-limit",
            "16",
            "--holdout-limit",
            "8",
            "-o",
            str(bundle),
        ],
    )
    assert export.exit_code == 0, export.output

    report = tmp_path / "r.json"
    fast = ["--runs", "5", "--warmup", "1", "--min-seconds", "0"]
    result = CliRunner().invoke(
        app, ["bench", str(bundle), *fast, "--json", str(report)]
    )

    assert result.exit_code == 0, result.output
    rows = json.loads(report.read_text())["results"]
    assert len(rows) == 6
    for row in rows:
        assert RESULT_FIELDS <= set(row), row["file"]
        assert row["id"] in result.output
        assert row["status"] == "ok"
        assert row["parity"]["verdict"]["agreement"] >= 75.0

    (bundle / "onnx-int8.onnx").write_bytes(
        b"\x00" + (bundle / "onnx-int8.onnx").read_bytes()[1:]
    )
    refused = CliRunner().invoke(app, ["bench", str(bundle), *fast])
    assert refused.exit_code == 2
    assert "onnx-int8.onnx does not match the sha256" in refused.output
