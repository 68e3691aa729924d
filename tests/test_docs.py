"""The README stays true: every CLI command is documented, CI runs the README's test command."""

from __future__ import annotations

import re
from pathlib import Path

import typer.main

from cbi_local.cli import app

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()


def _command_paths(group, prefix=("cbi",)):
    for name, cmd in getattr(group, "commands", {}).items():
        path = prefix + (name,)
        if getattr(cmd, "commands", None):
            yield from _command_paths(cmd, path)
        else:
            yield " ".join(path)


def test_every_cli_command_is_documented_in_the_readme():
    commands = list(_command_paths(typer.main.get_command(app)))
    assert "cbi init" in commands
    missing = [c for c in commands if f"`{c}" not in README]
    assert missing == []


def test_ci_runs_exactly_the_readme_test_command():
    blocks = re.findall(r"^    (\./scripts/setup && .+)$", README, re.M)
    assert len(blocks) >= 2, "the README's first two commands are set-up + demo and set-up + tests"
    demo, tests = blocks[0], blocks[1]
    assert demo.endswith("cbi demo") and "pytest" in tests
    ci = (REPO / ".ci" / "run").read_text()
    assert tests in ci.splitlines()


# Text that is not ours but DuckDB's (quoted in the troubleshooting table as users see it).
_FOREIGN = {"Conflicting lock is held in"}


def test_troubleshooting_quotes_messages_the_code_prints():
    section = README.split("## Troubleshooting", 1)[1].split("\n## ", 1)[0]
    quoted = re.findall(r"^\| `([^`]+)`", section, re.M)
    assert len(quoted) >= 8
    sources = "\n".join(p.read_text() for d in ("cbi_local", "sync") for p in (REPO / d).rglob("*.py"))
    missing = []
    for message in quoted:
        # "..." and N/ZL/7 stand for the variable parts; every literal fragment must be in the code.
        for fragment in re.split(r"\.\.\.|\bN\b|\bZL\b|\b7\b|\(PID|\)$", message):
            fragment = fragment.strip(" ;:")
            if len(fragment) >= 4 and fragment not in _FOREIGN and fragment not in sources:
                missing.append((message, fragment))
    assert missing == []


def test_the_generated_cli_reference_is_current(tmp_path):
    """docs/cli.md is what scripts/cli-reference writes from the commands as they are now."""
    import os
    import subprocess
    import sys

    script = (REPO / "scripts" / "cli-reference").read_text()
    (args,) = re.findall(r"^\.venv/bin/typer (.+) --output docs/cli\.md$", script, re.M)
    out = tmp_path / "cli.md"
    typer_exe = Path(sys.executable).parent / "typer"
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    # --title holds spaces: split the script's line the way bash does (its one quoted argument).
    argv = [a.strip('"') for a in re.findall(r'"[^"]*"|\S+', args)]
    subprocess.run([str(typer_exe), *argv, "--output", str(out)], cwd=REPO, env=env, check=True, capture_output=True)
    assert out.read_text() == (REPO / "docs" / "cli.md").read_text(), "docs/cli.md is stale: run scripts/cli-reference"
    for command in _command_paths(typer.main.get_command(app)):
        assert f"## `{command}`" in out.read_text()
