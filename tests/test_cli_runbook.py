"""The runbook interface: no prompts without a person, JSON log lines, plan, exit codes.

Device code tests run against a sandbox tenant over HTTPS through MSAL. A terminal on
stdin is a real pseudo-terminal (``pty``), so ``isatty()`` returns what the kernel reports.
"""

from __future__ import annotations

import io
import json
import logging
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from dnsservers import BindServer
from tenant_fixtures import TenantFactory, TenantHandle
from typer.testing import CliRunner

from o365dkim.cli.logs import JsonFormatter, Masker, logging_to_stderr
from o365dkim.cli.main import app
from o365dkim.cli.runtime import InputPolicy, read_secret, secret_values
from o365dkim.errors import InputRequiredError

DOMAIN = "contoso.com"
runner = CliRunner()


class TerminalLike(io.StringIO):
    """A stdin stand-in that claims to be a terminal, for the prompt branches of read_secret."""

    def isatty(self) -> bool:
        return True


def device_code_env(handle: TenantHandle, home: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("O365DKIM_")}
    env.update(handle.cli_env())
    env.update({
        "O365DKIM_AUTH": "device-code",
        "O365DKIM_CLIENT_ID": "",
        "O365DKIM_CERTIFICATE": "",
        "HOME": str(home),
        "XDG_CACHE_HOME": str(home / "cache"),
        "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_DATA_HOME": str(home / "data"),
    })
    return env


def run_with_terminal(
    args: list[str], env: dict[str, str], cwd: Path
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m o365dkim`` with a pseudo-terminal on stdin and pipes for output."""
    leader, follower = pty.openpty()
    try:
        return subprocess.run(
            [sys.executable, "-m", "o365dkim", *args],
            stdin=follower, capture_output=True, text=True, env=env, cwd=cwd,
            timeout=60, check=False,
        )
    finally:
        os.close(follower)
        os.close(leader)


def error_lines(stderr: str) -> list[str]:
    """Return the error lines; warnings (such as about the token cache) may come before."""
    return [line for line in stderr.splitlines() if line.startswith("Error:")]


# -- device code sign-in --------------------------------------------------------------------


def test_device_code_without_terminal_fails(make_tenant: TenantFactory, tmp_path: Path) -> None:
    handle = make_tenant([DOMAIN])
    handle.server.faults.update(device_code_approval_seconds=0.2)
    env = device_code_env(handle, tmp_path)
    completed = subprocess.run(
        [sys.executable, "-m", "o365dkim", "status", DOMAIN],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env, cwd=tmp_path,
        timeout=60, check=False,
    )
    lines = error_lines(completed.stderr)
    assert completed.returncode == 2
    assert len(lines) == 1, completed.stderr
    assert "Interactive sign-in (device code or browser) needs a person, but stdin is not a terminal" in lines[0]
    assert "--auth" in lines[0]


def test_device_code_no_input_flag_fails(make_tenant: TenantFactory, tmp_path: Path) -> None:
    handle = make_tenant([DOMAIN])
    handle.server.faults.update(device_code_approval_seconds=0.2)
    env = device_code_env(handle, tmp_path)
    completed = run_with_terminal(["status", DOMAIN, "--no-input"], env, tmp_path)
    assert completed.returncode == 2
    assert "--no-input (O365DKIM_NO_INPUT) is set" in completed.stderr


def test_device_code_no_input_variable_fails(make_tenant: TenantFactory, tmp_path: Path) -> None:
    handle = make_tenant([DOMAIN])
    handle.server.faults.update(device_code_approval_seconds=0.2)
    env = {**device_code_env(handle, tmp_path), "O365DKIM_NO_INPUT": "1"}
    completed = run_with_terminal(["status", DOMAIN], env, tmp_path)
    assert completed.returncode == 2
    assert "--no-input (O365DKIM_NO_INPUT) is set" in completed.stderr


def test_device_code_on_terminal_signs_in(make_tenant: TenantFactory, tmp_path: Path) -> None:
    handle = make_tenant([DOMAIN])
    handle.server.faults.update(device_code_approval_seconds=0.2)
    env = device_code_env(handle, tmp_path)
    completed = run_with_terminal(["status", DOMAIN, "--output", "json"], env, tmp_path)
    assert completed.returncode == 0, completed.stderr
    assert "code" in completed.stderr.lower()
    assert json.loads(completed.stdout)["result"] == "not_configured"


def test_browser_no_input_uses_cache_only(make_tenant: TenantFactory, tmp_path: Path) -> None:
    handle = make_tenant([DOMAIN])
    env = {**device_code_env(handle, tmp_path), "O365DKIM_AUTH": "browser"}
    completed = subprocess.run(
        [sys.executable, "-m", "o365dkim", "status", DOMAIN, "--no-input"],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env, cwd=tmp_path,
        timeout=60, check=False,
    )
    assert completed.returncode == 1
    assert "No cached sign-in for --auth browser" in completed.stderr


def test_no_input_json_error_is_one_object(make_tenant: TenantFactory, tmp_path: Path) -> None:
    handle = make_tenant([DOMAIN])
    env = {**device_code_env(handle, tmp_path), "O365DKIM_LOG_FORMAT": "json"}
    completed = subprocess.run(
        [sys.executable, "-m", "o365dkim", "plan", DOMAIN, "--no-input"],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env, cwd=tmp_path,
        timeout=60, check=False,
    )
    records = [json.loads(line) for line in completed.stderr.splitlines()]
    errors = [record for record in records if record["level"] == "ERROR"]
    assert completed.returncode == 2
    assert len(errors) == 1, completed.stderr
    record = errors[0]
    assert record["error_type"] == "InputRequiredError"
    assert record["exit_code"] == 2


# -- secrets read from stdin ----------------------------------------------------------------


def test_read_secret_takes_piped_value() -> None:
    policy = InputPolicy(False, "stdin is not a terminal")
    assert read_secret(policy, "dns-token", io.StringIO("s3cret-value\n")) == "s3cret-value"


def test_read_secret_rejects_empty_stdin() -> None:
    policy = InputPolicy(False, "stdin is not a terminal")
    with pytest.raises(InputRequiredError, match="No value for secret dns-token on stdin"):
        read_secret(policy, "dns-token", io.StringIO(""))


def test_read_secret_no_input_terminal() -> None:
    policy = InputPolicy.detect(True, TerminalLike())
    with pytest.raises(InputRequiredError, match="--no-input"):
        read_secret(policy, "dns-token", TerminalLike())


def test_input_policy_allows_terminal() -> None:
    assert InputPolicy.detect(False, TerminalLike()).allowed


def test_input_policy_rejects_pipe() -> None:
    policy = InputPolicy.detect(False, io.StringIO())
    assert policy.reason == "stdin is not a terminal"


def test_secret_values_by_option_name() -> None:
    args = {"certificate_password": "pw-1234", "rfc2136_key_secret": "c2VjcmV0",
            "federated_token_file": "/run/token", "tenant": "contoso.onmicrosoft.com"}
    assert secret_values(args) == ["pw-1234", "c2VjcmV0"]


# -- JSON log lines -------------------------------------------------------------------------


def test_masker_masks_json_escaped_value() -> None:
    secret = 'pa"ss\\word'
    line = JsonFormatter().format(logging.makeLogRecord({"msg": "value %s", "args": (secret,)}))
    assert secret not in Masker([secret]).mask(line)
    assert json.dumps(secret)[1:-1] not in Masker([secret]).mask(line)


def test_json_log_masks_extra_and_exception(capsys: pytest.CaptureFixture[str]) -> None:
    secret = "tsig-c2VjcmV0LXZhbHVl"
    with logging_to_stderr(debug=True, secrets=[secret], log_format="json"):
        try:
            raise ValueError(f"bad key {secret}")
        except ValueError:
            logging.getLogger("o365dkim.test").exception("failed", extra={"key": secret})
    stderr = capsys.readouterr().err
    assert secret not in stderr
    assert json.loads(stderr)["key"] == "***"


def test_json_log_has_context_fields(capsys: pytest.CaptureFixture[str]) -> None:
    with logging_to_stderr(debug=False, secrets=[], log_format="json", context={"domain": DOMAIN}):
        logging.getLogger("o365dkim.test").warning("w %d", 1, extra={"client_request_id": "r-1"})
    record = json.loads(capsys.readouterr().err)
    assert record["domain"] == DOMAIN
    assert record["client_request_id"] == "r-1"
    assert record["message"] == "w 1"


def test_nested_logging_adds_secrets(capsys: pytest.CaptureFixture[str]) -> None:
    with (
        logging_to_stderr(debug=False, secrets=[], log_format="text"),
        logging_to_stderr(debug=False, secrets=["late-secret-1"]),
    ):
        logging.getLogger("o365dkim.test").warning("value late-secret-1")
    stderr = capsys.readouterr().err
    assert stderr.count("\n") == 1
    assert "late-secret-1" not in stderr


def test_manual_records_as_json_lines(
    bind_server: BindServer, make_tenant: TenantFactory, unique_label: str
) -> None:
    domain = f"{unique_label}.example.net"
    handle = make_tenant([domain])
    env = {**handle.cli_env(), "O365DKIM_NAMESERVERS": bind_server.server,
           "O365DKIM_RESOLVERS": bind_server.server}
    result = runner.invoke(app, ["enable", domain, "--dns-provider", "manual", "--timeout", "0",
                                 "--output", "json", "--log-format", "json"], env=env)
    assert result.exit_code == 3
    records = [json.loads(line) for line in result.stderr.splitlines()]
    published = sorted(record["host"] for record in records if "host" in record)
    assert published == [f"selector1._domainkey.{domain}", f"selector2._domainkey.{domain}"]


# -- plan and help --------------------------------------------------------------------------


def test_plan_text_lists_steps() -> None:
    result = runner.invoke(app, ["plan", "example.com", "--sandbox"])
    assert result.exit_code == 0, result.output
    assert "example.com: enable would make these changes" in result.stdout
    assert "  5. enable DKIM signing" in result.stdout


def command_paths() -> list[list[str]]:
    paths: list[list[str]] = []

    def walk(command: object, prefix: list[str]) -> None:
        for name, sub in getattr(command, "commands", {}).items():
            if not getattr(sub, "commands", None):
                paths.append([*prefix, name])
            walk(sub, [*prefix, name])

    walk(typer.main.get_command(app), [])
    return paths


@pytest.mark.parametrize("path", command_paths(), ids=" ".join)
def test_command_help_lists_exit_codes(path: list[str]) -> None:
    result = runner.invoke(app, [*path, "--help"], env={"NO_COLOR": "1"})
    assert result.exit_code == 0
    assert "Exit codes:" in result.output
