"""`cbi tui` is registered on the main CLI without importing Textual into the headless packages."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

REPO = Path(__file__).resolve().parents[2]


def test_importing_the_command_does_not_import_textual():
    code = "import sys, cbi_local.cli, tui.cli; print(any(m == 'textual' or m.startswith('textual.') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_cbi_tui_is_a_command_and_fails_cleanly_without_a_warehouse(tmp_path: Path):
    from cbi_local.cli import app
    from tui import cli  # noqa: F401  (registers `tui`)

    runner = CliRunner()
    result = runner.invoke(app, ["tui", "--help"])
    assert result.exit_code == 0 and "--home" in result.output
    result = runner.invoke(app, ["tui", "--home", str(tmp_path / "none")])
    assert result.exit_code == 2
    assert "no warehouse" in result.output + (result.stderr if result.stderr_bytes is not None else "")
