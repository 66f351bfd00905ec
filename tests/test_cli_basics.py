"""CLI behaviour that needs no tenant: help, version, generated docs and bad input."""

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from o365dkim import __version__
from o365dkim.cli.main import app

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()


@pytest.mark.parametrize("command", ["enable", "status", "records"])
def test_command_help_has_example(command: str) -> None:
    result = runner.invoke(app, [command, "--help"], env={"NO_COLOR": "1"})
    assert result.exit_code == 0
    assert "Example: o365dkim" in result.output


def test_version_prints_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert __version__ in result.output


def test_cli_reference_is_current() -> None:
    completed = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_cli_docs.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout


@pytest.mark.parametrize(
    "domain",
    ["", "contoso .com", "contoso.com;whoami", "$(id).com", "a" * 64 + ".com", "contoso..com"],
)
def test_enable_rejects_bad_domain(domain: str, tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    result = runner.invoke(app, ["enable", domain, "--sandbox", "--sandbox-state", str(state)])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1
    assert lines[0].startswith("Error: Invalid domain")
    assert not state.exists()


def test_enable_rejects_bad_key_size(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    result = runner.invoke(
        app,
        ["enable", "contoso.com", "--key-size", "4096", "--sandbox", "--sandbox-state", str(state)],
    )
    assert result.exit_code == 2
    assert "Invalid key size 4096" in result.output
    assert not state.exists()


def test_enable_rejects_initial_domain(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    result = runner.invoke(
        app, ["enable", "contoso.onmicrosoft.com", "--sandbox", "--sandbox-state", str(state)]
    )
    assert result.exit_code == 2
    assert "initial onmicrosoft domain" in result.output
    assert not state.exists()


def test_certificate_mode_needs_tenant(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        ["status", "contoso.com", "--auth", "certificate"],
        env={"O365DKIM_TENANT": "", "O365DKIM_CLIENT_ID": "", "O365DKIM_CERTIFICATE": ""},
    )
    assert result.exit_code == 2
    assert "Certificate sign-in needs --tenant" in result.output


def test_unknown_output_format_is_usage_error() -> None:
    result = runner.invoke(app, ["enable", "contoso.com", "--output", "xml"])
    assert result.exit_code == 2
