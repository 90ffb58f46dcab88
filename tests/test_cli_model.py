"""``edgekit build`` and ``edgekit info`` through the real CLI."""

import json
from pathlib import Path

import keras
import numpy as np
import pytest
from typer.testing import CliRunner

from edgekit.cli import app
from edgekit.models import build_model, resolve_model

REPO = Path(__file__).resolve().parents[1]
CALIBRATION = REPO / "calibration" / "images"

runner = CliRunner()


@pytest.fixture
def demo_cache(tmp_path_factory, monkeypatch) -> Path:
    # The same directory as tests/models' fixture, so demo weights computed
    # there are reused here.
    path = tmp_path_factory.getbasetemp() / "demo-cache"
    path.mkdir(exist_ok=True)
    monkeypatch.setenv("EDGEKIT_CACHE", str(path))
    return path


def test_info_prints_the_spec_table():
    result = runner.invoke(app, ["info"])

    assert result.exit_code == 0, result.output
    assert "block1_conv" in result.output
    assert "64 filters, kernel 4x4, stride 2x2, padding same" in result.output
    assert "(1, 128, 128, 64)" in result.output
    assert "(1, 2, 2, 512)" in result.output
    assert "alpha 0.2" in result.output
    assert "19,546,562" in result.output
    assert "1.98 G" in result.output
    assert "not a trained discriminator" in result.output


def test_info_json_is_machine_readable():
    result = runner.invoke(app, ["info", "pix2pix", "--json"])

    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    layers = {layer["name"]: layer for layer in info["layers"]}
    assert info["model"] == "pix2pix"
    assert info["weights"] == {
        "kind": "demo",
        "trained": False,
        "description": info["weights"]["description"],
    }
    assert [o["name"] for o in info["outputs"]] == ["verdict", "features"]
    assert info["inputs"] == [
        {"name": "image", "shape": [1, 256, 256, 1], "dtype": "float32"}
    ]
    assert layers["block8_conv"]["input_shape"] == [1, 2, 2, 512]
    assert layers["minibatch_l1"]["output_shape"] == [1, 100]
    assert info["total"]["params"] == 19_802_768


def test_info_on_a_keras_file_with_user_weights(tmp_path):
    model = build_model("patchgan", seed=2)
    model.save(tmp_path / "mine.keras")
    model.save_weights(tmp_path / "mine.weights.h5")

    args = ["info", str(tmp_path / "mine.keras"), "--weights"]
    result = runner.invoke(app, [*args, str(tmp_path / "mine.weights.h5"), "--json"])

    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["model"] == "mine"
    assert info["weights"]["kind"] == "user"
    assert info["weights"]["trained"] is None
    assert info["total"]["macs"] == 1_983_906_816


def test_build_with_weights_round_trips_in_safe_mode(tmp_path):
    weights = tmp_path / "w.weights.h5"
    build_model("patchgan", seed=4).save_weights(weights)
    output = tmp_path / "out" / "model.keras"

    result = runner.invoke(app, ["build", "--weights", str(weights), "-o", output])

    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"wrote {output}: user weights {weights}")
    loaded = keras.saving.load_model(output, safe_mode=True)
    expected = resolve_model(weights=weights).model
    image = np.random.default_rng(0).random((1, 256, 256, 1), dtype=np.float32)
    for got, want in zip(loaded(image), expected(image), strict=True):
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(got), keras.ops.convert_to_numpy(want)
        )


def test_build_pix2pix_with_demo_weights(tmp_path, demo_cache):
    output = tmp_path / "pix2pix.keras"

    args = ["build", "--model", "pix2pix", "--calibration", str(CALIBRATION)]
    result = runner.invoke(app, [*args, "-o", str(output)])

    assert result.exit_code == 0, result.output
    assert "demo weights" in result.output
    assert "not a trained discriminator" in result.output
    loaded = keras.saving.load_model(output, safe_mode=True)
    assert loaded.output_names == ["verdict", "features"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["info", "resnet"], "error: unknown model 'resnet'; expected one of"),
        (["info", "gone.keras"], "error: model file not found: gone.keras"),
        (["build", "--weights", "nope.h5"], "error: weights file not found: nope.h5"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, message):
    result = runner.invoke(app, args)

    assert result.exit_code == 2
    assert result.output.startswith(message)
    assert len(result.output.strip().splitlines()) == 1


def test_build_rejects_an_unknown_model_name():
    result = runner.invoke(app, ["build", "--model", "resnet"])

    assert result.exit_code == 2
    assert "patchgan" in result.output
