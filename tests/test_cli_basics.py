"""CLI behaviour that needs no tenant: help, version, generated docs and bad input."""

import os
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
    assert "certificate needs --tenant" in result.output


def test_unknown_output_format_is_usage_error() -> None:
    result = runner.invoke(app, ["enable", "contoso.com", "--output", "xml"])
    assert result.exit_code == 2


def run_cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("O365DKIM_")}
    return subprocess.run(
        [sys.executable, "-m", "o365dkim", *args],
        capture_output=True, text=True, cwd=cwd, env=env, timeout=60, check=False,
    )


@pytest.mark.parametrize(
    "args",
    [
        ["enable", "contoso.com", "--bogus"],
        ["enable", "contoso.com", "--timeout", "-1"],
        ["enable", "contoso.com", "--output", "xml"],
        ["enable", "contoso.com", "--key-size", "abc"],
    ],
)
def test_usage_error_is_one_line(args: list[str], tmp_path: Path) -> None:
    completed = run_cli(args, tmp_path)
    assert completed.returncode == 2
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("Error: ")
    assert "--help" in lines[0]


def test_sandbox_state_needs_sandbox(tmp_path: Path) -> None:
    result = runner.invoke(app, ["status", "contoso.com", "--sandbox-state", str(tmp_path / "s")])
    assert result.exit_code == 2
    assert "applies only with --sandbox" in result.output


def test_timeout_must_be_finite(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    result = runner.invoke(app, ["enable", "contoso.com", "--timeout", "inf", "--sandbox",
                                 "--sandbox-state", str(state)])
    assert result.exit_code == 2
    assert "Invalid timeout" in result.output
    assert not state.exists()


@pytest.mark.parametrize("content", ["not json", '{"version": 1, "tenant": 3}', "[]"])
def test_damaged_state_file_rejected(tmp_path: Path, content: str) -> None:
    state = tmp_path / "state.json"
    state.write_text(content, encoding="utf-8")
    result = runner.invoke(app, ["enable", "contoso.com", "--sandbox", "--sandbox-state",
                                 str(state)])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert "o365dkim wrote" in result.output
    assert state.read_text(encoding="utf-8") == content


def test_unwritable_state_path_rejected(tmp_path: Path) -> None:
    state = tmp_path / "missing-folder" / "state.json"
    result = runner.invoke(app, ["enable", "contoso.com", "--sandbox", "--sandbox-state",
                                 str(state)])
    assert result.exit_code == 2
    assert "does not exist or is not writable" in result.output


def test_bad_nameserver_rejected_before_sign_in(tmp_path: Path) -> None:
    result = runner.invoke(app, ["enable", "contoso.com", "--nameserver", "bad host:99999",
                                 "--auth", "certificate", "--tenant", "contoso.onmicrosoft.com",
                                 "--client-id", "00000000-0000-0000-0000-000000000001",
                                 "--certificate", str(tmp_path / "missing.pem")])
    assert result.exit_code == 2
    assert "bad host:99999" in result.output


def test_sandbox_warns_about_ignored_options(tmp_path: Path) -> None:
    completed = run_cli(["enable", "example.com", "--sandbox", "--dns-provider", "rfc2136",
                         "--tenant", "contoso.onmicrosoft.com"], tmp_path)
    assert completed.returncode == 0, completed.stderr
    assert "these settings are ignored: --tenant, --dns-provider" in completed.stderr
