"""``o365dkim login``, ``whoami``, ``logout`` and ``secret`` through the CLI, against the
sandbox tenant over HTTPS.

Runs that need a person (device code, browser) go through a subprocess whose stdin is a
pseudo-terminal, because the CLI never prompts without a terminal; CliRunner's stdin is
never one. The browser is the stand-in script of browser_stand_in.py. The keyring is an
in-memory backend set up in the test process, so those runs use CliRunner.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import keyring
import keyring.backends.fail
import pytest
from signin_helpers import (
    MemoryKeyring,
    browser_stand_in,
    clear_managed_identity_environment,
    forbid_metadata_address,
    run_cli_on_terminal,
)
from tenant_fixtures import TenantFactory, TenantHandle
from typer.testing import CliRunner

from o365dkim.auth import tokens as token_module
from o365dkim.cli.main import app

runner = CliRunner()
DOMAIN = "contoso.com"
CLIENT_SECRET = "cli-Client-Secret-4096"
IDENTITY_KEYS = {
    "auth",
    "cloud",
    "tenant_id",
    "kind",
    "subject",
    "permissions",
    "expires_on",
    "from_cache",
    "token_cache",
}


@pytest.fixture
def handle(make_tenant: TenantFactory) -> TenantHandle:
    tenant = make_tenant([DOMAIN])
    tenant.server.faults.update(device_code_approval_seconds=0.2)
    return tenant


@pytest.fixture(autouse=True)
def fresh_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(token_module, "_warned", set())


@pytest.fixture
def memory_keyring() -> Iterator[MemoryKeyring]:
    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)


def person_env(handle: TenantHandle, mode: str) -> dict[str, str]:
    """The sandbox settings for a person's sign-in, without the app's credentials."""
    env = handle.cli_env()
    env["O365DKIM_AUTH"] = mode
    env["O365DKIM_CERTIFICATE"] = ""
    env["O365DKIM_CLIENT_ID"] = ""
    return env


def cache_file(handle: TenantHandle) -> Path:
    """Return the token cache file that the CLI uses with the tenant's settings."""
    return Path(handle.cli_env()["O365DKIM_TOKEN_CACHE"])


def cached_access_tokens(cache: Path) -> list[str]:
    data = json.loads(cache.read_text())
    return [entry["secret"] for entry in data.get("AccessToken", {}).values()]


def test_login_whoami_certificate(handle: TenantHandle) -> None:
    login = runner.invoke(app, ["login"], env=handle.cli_env())
    assert login.exit_code == 0, login.output
    assert f"Signed in to tenant {handle.tenant.tenant_id}" in login.stdout
    whoami = runner.invoke(app, ["whoami", "--output", "json"], env=handle.cli_env())
    assert whoami.exit_code == 0, whoami.output
    identity = json.loads(whoami.stdout)
    assert set(identity) == IDENTITY_KEYS
    assert identity["kind"] == "app"
    assert identity["subject"] == handle.client_id.lower()
    assert identity["permissions"] == ["Exchange.ManageAsApp"]
    assert identity["from_cache"] is True
    assert identity["token_cache"]["location"] == str(cache_file(handle))
    assert handle.server.token_requests[handle.client_id.lower()] == 1


def test_whoami_never_prints_token(handle: TenantHandle) -> None:
    for output in ("text", "json"):
        result = runner.invoke(app, ["whoami", "--output", output, "--debug"], env=handle.cli_env())
        assert result.exit_code == 0, result.output
        for token in cached_access_tokens(cache_file(handle)):
            assert token not in result.output
            assert token[:40] not in result.output


def test_device_code_login_on_terminal(handle: TenantHandle) -> None:
    env = person_env(handle, "device-code")
    login = run_cli_on_terminal(["login"], env)
    assert login.returncode == 0, login.stderr
    assert "enter the code" in login.stderr
    assert f"User: admin@{handle.tenant.initial_domain}" in login.stdout
    whoami = runner.invoke(app, ["whoami", "--output", "json"], env=env)
    assert whoami.exit_code == 0, whoami.output
    assert json.loads(whoami.stdout)["kind"] == "user"
    assert "enter the code" not in whoami.output


def test_device_code_login_needs_terminal(handle: TenantHandle) -> None:
    result = runner.invoke(app, ["login"], env=person_env(handle, "device-code"))
    assert result.exit_code == 2
    assert "needs a person" in result.stderr


def test_browser_login_on_terminal(
    handle: TenantHandle, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    browser = browser_stand_in(monkeypatch, tmp_path, handle.ca_bundle)
    login = run_cli_on_terminal(["login", "--auth", "browser"], person_env(handle, "browser"))
    assert login.returncode == 0, login.stderr
    assert "Opening a browser" in login.stderr
    assert browser.steps() == ["opened", "authorize 200", "redirect 200 True"]
    assert f"User: admin@{handle.tenant.initial_domain}" in login.stdout


def test_logout_then_whoami_fails(handle: TenantHandle) -> None:
    env = person_env(handle, "device-code")
    assert run_cli_on_terminal(["login"], env).returncode == 0
    logout = runner.invoke(app, ["logout", "--output", "json"], env=env)
    assert logout.exit_code == 0, logout.output
    assert json.loads(logout.stdout)["removed"]["accounts"] == 1
    assert not cache_file(handle).exists()
    whoami = runner.invoke(app, ["whoami"], env=env)
    assert whoami.exit_code == 1
    assert "No cached sign-in for --auth device-code" in whoami.stderr
    assert "Traceback" not in whoami.output


def test_logout_empty_cache_succeeds(handle: TenantHandle) -> None:
    result = runner.invoke(app, ["logout"], env=handle.cli_env())
    assert result.exit_code == 0, result.output
    assert "Removed 0 accounts" in result.stdout


def test_client_secret_warns_once_cli(handle: TenantHandle) -> None:
    handle.server.add_client_secret(handle.tenant.tenant_id, handle.client_id, CLIENT_SECRET)
    env = {**handle.cli_env(), "O365DKIM_AUTH": "client-secret", "O365DKIM_CERTIFICATE": ""}
    env["O365DKIM_CLIENT_SECRET"] = CLIENT_SECRET
    result = runner.invoke(app, ["status", DOMAIN, "--debug"], env=env)
    assert result.exit_code == 0, result.output
    assert result.stderr.count("Microsoft documents certificates") == 1
    assert CLIENT_SECRET not in result.output


def test_keyring_client_secret_used(handle: TenantHandle, memory_keyring: MemoryKeyring) -> None:
    handle.server.add_client_secret(handle.tenant.tenant_id, handle.client_id, CLIENT_SECRET)
    stored = runner.invoke(app, ["secret", "set", "app-secret"], input=CLIENT_SECRET + "\n")
    assert stored.exit_code == 0, stored.output
    env = {**handle.cli_env(), "O365DKIM_AUTH": "client-secret", "O365DKIM_CERTIFICATE": ""}
    env["O365DKIM_CLIENT_SECRET"] = "keyring:app-secret"
    result = runner.invoke(app, ["whoami", "--debug", "--output", "json"], env=env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["auth"] == "client-secret"
    assert CLIENT_SECRET not in stored.output
    assert CLIENT_SECRET not in result.output


def test_secret_set_reads_stdin(memory_keyring: MemoryKeyring) -> None:
    result = runner.invoke(app, ["secret", "set", "dns-key"], input="tsig-Secret-99\n")
    assert result.exit_code == 0, result.output
    assert memory_keyring.entries[("o365dkim", "dns-key")] == "tsig-Secret-99"
    assert "keyring:dns-key" in result.stdout
    assert "tsig-Secret-99" not in result.output


def test_secret_value_not_from_argv(memory_keyring: MemoryKeyring) -> None:
    result = runner.invoke(app, ["secret", "set", "dns-key", "tsig-Secret-99"])
    assert result.exit_code == 2
    assert memory_keyring.entries == {}


def test_secret_set_empty_stdin_fails(memory_keyring: MemoryKeyring) -> None:
    result = runner.invoke(app, ["secret", "set", "dns-key"], input="")
    assert result.exit_code == 2
    assert "No value for secret dns-key" in result.stderr


def test_secret_delete_then_missing(memory_keyring: MemoryKeyring) -> None:
    memory_keyring.set_password("o365dkim", "dns-key", "tsig-Secret-99")
    deleted = runner.invoke(app, ["secret", "delete", "dns-key"])
    assert deleted.exit_code == 0, deleted.output
    again = runner.invoke(app, ["secret", "delete", "dns-key"])
    assert again.exit_code == 2
    assert "No secret named dns-key" in again.stderr


def test_secret_without_backend_one_line() -> None:
    previous = keyring.get_keyring()
    keyring.set_keyring(keyring.backends.fail.Keyring())
    try:
        result = runner.invoke(app, ["secret", "set", "dns-key"], input="tsig-Secret-99\n")
    finally:
        keyring.set_keyring(previous)
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1
    assert lines[0].startswith("Error: No keyring backend is available here")
    assert "tsig-Secret-99" not in result.output


def test_missing_keyring_reference_fails(handle: TenantHandle) -> None:
    previous = keyring.get_keyring()
    keyring.set_keyring(keyring.backends.fail.Keyring())
    try:
        env = {**handle.cli_env(), "O365DKIM_CERTIFICATE_PASSWORD": "keyring:pfx"}
        result = runner.invoke(app, ["whoami"], env=env)
    finally:
        keyring.set_keyring(previous)
    assert result.exit_code == 2
    assert "No keyring backend" in result.stderr
    assert "Traceback" not in result.output


def test_managed_identity_whoami(handle: TenantHandle, monkeypatch: pytest.MonkeyPatch) -> None:
    clear_managed_identity_environment(monkeypatch)
    forbid_metadata_address(monkeypatch)
    identity = handle.server.assign_managed_identity(handle.tenant.tenant_id, user_assigned=True)
    env = {**handle.cli_env(), **handle.server.managed_identity_environment()}
    env.update(O365DKIM_AUTH="managed-identity", O365DKIM_CERTIFICATE="", O365DKIM_TENANT="")
    result = runner.invoke(
        app,
        ["whoami", "--managed-identity-client-id", identity.client_id, "--output", "json"],
        env=env,
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["subject"] == identity.client_id
    assert data["auth"] == "managed-identity"


def test_federated_token_file_option(handle: TenantHandle, tmp_path: Path) -> None:
    from o365dkim.sandbox.entra_federation import OidcIssuer

    issuer = OidcIssuer("https://kubernetes.sandbox.test/oidc")
    subject = "system:serviceaccount:dkim:o365dkim"
    handle.server.add_federated_credential(
        handle.tenant.tenant_id, handle.client_id, issuer, subject
    )
    token_file = tmp_path / "token"
    token_file.write_text(issuer.issue(subject))
    env = {**handle.cli_env(), "O365DKIM_CERTIFICATE": "", "O365DKIM_AUTH": ""}
    result = runner.invoke(
        app, ["status", DOMAIN, "--federated-token-file", str(token_file)], env=env
    )
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    "command", [["login"], ["logout"], ["whoami"], ["secret", "set"], ["secret", "delete"]]
)
def test_signin_help_has_example(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"], env={"NO_COLOR": "1"})
    assert result.exit_code == 0
    assert "Example: " in result.output
