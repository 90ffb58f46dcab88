"""The real job: ``edgekit export --int8`` of the 256x256 discriminator."""

import os
import subprocess
import sys

import pytest

from edgekit.bundle import read_manifest, verify_artifact

from .conftest import REPO, agreement, reference_of, run_artifact


@pytest.mark.slow
def test_export_int8_writes_six_faithful_artifacts(tmp_path):
    output = tmp_path / "artifacts"
    # Run as a user would, from the repository root, in a fresh process.
    result = subprocess.run(
        [sys.executable, "-m", "edgekit", "export", "--int8", "-o", str(output)],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=os.environ | {"COLUMNS": "120"},
    )

    assert result.returncode == 0, result.stderr[-3000:]
    assert f"bundle: {output}" in result.stderr
    manifest = read_manifest(output)
    kinds = sorted((a.format, a.precision) for a in manifest.artifacts)
    assert kinds == sorted(
        (f, p) for f in ("tflite", "onnx", "openvino") for p in ("fp32", "int8")
    )
    images, reference = reference_of(output, manifest)
    assert len(images) >= 100 and images.shape[1:] == (256, 256, 1)
    for artifact in manifest.artifacts:
        verify_artifact(output, artifact)
        if artifact.precision == "int8":
            outputs = run_artifact(output, artifact, images)
            assert agreement(outputs, reference) >= 0.98, artifact.id
