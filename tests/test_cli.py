"""The CLI's skeleton: version, help, and the error contract."""

import subprocess
import sys

from typer.testing import CliRunner

from edgekit import __version__
from edgekit.cli import app

runner = CliRunner()


def test_version_prints_the_package_version():
    result = runner.invoke(app, ["--version"])

    assert result.exit_code == 0
    assert result.output.strip() == f"edgekit {__version__}"


def test_help_does_not_import_tensorflow():
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from edgekit.cli import app\n"
        "for args in (['--help'], ['info', '--help'], ['export', '--help'],"
        " ['bench', '--help'], ['build', '--help']):\n"
        "    result = CliRunner().invoke(app, args)\n"
        "    assert result.exit_code == 0, (args, result.output)\n"
        "heavy = [m for m in ('tensorflow', 'keras', 'tf2onnx', 'nncf', 'openvino')"
        " if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
