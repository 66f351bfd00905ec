"""``o365dkim enable`` through the CLI, end to end.

The BIND test is the full real path: MSAL certificate sign-in against the sandbox tenant
over HTTPS, records written with RFC 2136 into a real BIND primary on 127.0.0.2:53, name
servers discovered from the zone's NS records, a real zone transfer to the secondary on
127.0.0.3:53, and the tenant's own CNAME check querying that secondary.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from dnsservers import BindPair, BindServer, authoritative_cname_lookup
from tenant_fixtures import TenantFactory, TenantHandle
from typer.testing import CliRunner

from o365dkim.cli.main import app

runner = CliRunner()
JSON_KEYS = {"domain", "result", "enabled", "status", "key_size", "selectors", "changes", "error"}


def rfc2136_env(handle: TenantHandle, primary: BindServer, resolver: str) -> dict[str, str]:
    return {
        **handle.cli_env(),
        "O365DKIM_DNS_PROVIDER": "rfc2136",
        "O365DKIM_RFC2136_SERVER": primary.server,
        "O365DKIM_RFC2136_KEY_NAME": primary.tsig_key_name,
        "O365DKIM_RFC2136_KEY_SECRET": primary.tsig_secret,
        "O365DKIM_RFC2136_KEY_ALGORITHM": primary.tsig_algorithm,
        "O365DKIM_RESOLVERS": resolver,
        "O365DKIM_INTERVAL": "0.5",
        "O365DKIM_TIMEOUT": "60",
    }


def invoke_json(args: list[str], env: dict[str, str]) -> tuple[int, dict[str, object]]:
    result = runner.invoke(app, [*args, "--output", "json"], env=env)
    return result.exit_code, json.loads(result.stdout)


def test_enable_with_bind_pair(
    bind_pair: BindPair, make_tenant: TenantFactory, unique_label: str
) -> None:
    domain = f"{unique_label}.example.com"
    handle = make_tenant([domain], cname_lookup=authoritative_cname_lookup(bind_pair.secondary))
    env = rfc2136_env(handle, bind_pair.primary, bind_pair.primary.address)

    code, first = invoke_json(["enable", domain], env)
    assert code == 0
    assert first["result"] == "enabled"
    assert first["enabled"] is True
    assert first["status"] == "Valid"
    assert set(first) >= JSON_KEYS
    assert [s["published"] for s in first["selectors"]] == [True, True]  # type: ignore[index]
    assert len(first["changes"]) == 4  # type: ignore[arg-type]
    assert handle.tenant.config(domain).enabled  # type: ignore[union-attr]

    code, second = invoke_json(["enable", domain], env)
    assert code == 0
    assert second["result"] == "already_enabled"
    assert second["changes"] == []
    assert handle.cmdlets().count("New-DkimSigningConfig") == 1
    assert handle.cmdlets().count("Set-DkimSigningConfig") == 1


def test_enable_with_nameserver_override(
    bind_server: BindServer, make_tenant: TenantFactory, unique_label: str
) -> None:
    domain = f"{unique_label}.example.net"
    handle = make_tenant([domain], cname_lookup=authoritative_cname_lookup(bind_server))
    env = rfc2136_env(handle, bind_server, bind_server.server)
    env["O365DKIM_NAMESERVERS"] = bind_server.server
    code, report = invoke_json(["enable", domain], env)
    assert code == 0
    assert report["result"] == "enabled"


def test_status_and_records_commands(
    bind_server: BindServer, make_tenant: TenantFactory, unique_label: str
) -> None:
    domain = f"{unique_label}.example.net"
    handle = make_tenant([domain], cname_lookup=authoritative_cname_lookup(bind_server))
    env = {**handle.cli_env(), "O365DKIM_NAMESERVERS": bind_server.server,
           "O365DKIM_RESOLVERS": bind_server.server}

    code, status = invoke_json(["status", domain], env)
    assert code == 0
    assert status["result"] == "not_configured"

    result = runner.invoke(app, ["records", domain, "--output", "json"], env=env)
    assert result.exit_code == 1
    assert "--create" in result.output
    assert handle.cmdlets().count("New-DkimSigningConfig") == 0

    code, records = invoke_json(["records", domain, "--create"], env)
    assert code == 0
    hosts = [s["host"] for s in records["selectors"]]  # type: ignore[index]
    assert hosts == [f"selector1._domainkey.{domain}", f"selector2._domainkey.{domain}"]

    code, status = invoke_json(["status", domain], env)
    assert status["result"] == "disabled"
    assert [s["published"] for s in status["selectors"]] == [False, False]  # type: ignore[index]


def test_enable_conflict_exit_code(
    bind_server: BindServer, make_tenant: TenantFactory, unique_label: str
) -> None:
    domain = f"{unique_label}.example.net"
    handle = make_tenant([domain], cname_lookup=authoritative_cname_lookup(bind_server))
    env = rfc2136_env(handle, bind_server, bind_server.server)
    env["O365DKIM_NAMESERVERS"] = bind_server.server
    nsupdate(bind_server, f"update add selector2._domainkey.{domain}. 300 TXT \"hello\"\n")
    code, report = invoke_json(["enable", domain], env)
    assert code == 1
    assert report["result"] == "failed"
    assert report["error"]["type"] == "DnsConflictError"  # type: ignore[index]
    assert "TXT" in report["error"]["message"]  # type: ignore[index]
    assert handle.cmdlets().count("Set-DkimSigningConfig") == 0


def test_secrets_absent_from_output(
    bind_server: BindServer, make_tenant: TenantFactory, unique_label: str
) -> None:
    domain = f"{unique_label}.example.net"
    handle = make_tenant([domain], cname_lookup=authoritative_cname_lookup(bind_server))
    env = rfc2136_env(handle, bind_server, bind_server.server)
    env["O365DKIM_NAMESERVERS"] = bind_server.server
    result = runner.invoke(app, ["enable", domain, "--debug"], env=env)
    assert result.exit_code == 0
    token = handle.providers[-1].get_token().token if handle.providers else None
    output = result.output
    assert bind_server.tsig_secret not in output
    assert handle.key_pem.decode().splitlines()[1] not in output
    if token:
        assert token not in output


def run_console(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("O365DKIM_")}
    return subprocess.run(
        [sys.executable, "-m", "o365dkim", *args],
        capture_output=True, text=True, cwd=cwd, env=env, timeout=120, check=False,
    )


def test_sandbox_runs_twice_with_state(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    first = run_console(["enable", "example.com", "--sandbox", "--output", "json",
                         "--sandbox-state", str(state)], tmp_path)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["result"] == "enabled"
    # F3: targets are published as Exchange returns them, mixed-case prefix included.
    assert "O365DkimSandbox" in json.loads(first.stdout)["selectors"][0]["target"]

    second = run_console(["enable", "example.com", "--sandbox", "--output", "json",
                          "--sandbox-state", str(state)], tmp_path)
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout)["result"] == "already_enabled"


def test_sandbox_text_output(tmp_path: Path) -> None:
    completed = run_console(["enable", "example.com", "--sandbox"], tmp_path)
    assert completed.returncode == 0, completed.stderr
    assert "DKIM signing is enabled" in completed.stdout


def test_sandbox_pending_then_resume(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    pending = run_console(["enable", "example.com", "--sandbox", "--timeout", "0",
                           "--sandbox-state", str(state), "--output", "json"], tmp_path)
    assert pending.returncode == 3, pending.stderr
    report = json.loads(pending.stdout)
    assert report["result"] == "pending_dns"
    assert report["pending"]

    resumed = run_console(["enable", "example.com", "--sandbox", "--sandbox-state", str(state),
                           "--output", "json"], tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["result"] == "enabled"


def nsupdate(server: BindServer, commands: str) -> None:
    subprocess.run(
        ["nsupdate", "-y", f"{server.tsig_algorithm}:{server.tsig_key_name}:{server.tsig_secret}"],
        input=f"server {server.address} {server.port}\n{commands}send\n",
        text=True, check=True, capture_output=True,
    )


def test_manual_provider_waits_for_person(
    bind_server: BindServer, make_tenant: TenantFactory, unique_label: str, tmp_path: Path
) -> None:
    """The manual provider prints the records, then keeps checking until they appear."""
    domain = f"{unique_label}.example.net"
    handle = make_tenant([domain], cname_lookup=authoritative_cname_lookup(bind_server))
    env = {key: value for key, value in os.environ.items() if not key.startswith("O365DKIM_")}
    env.update(handle.cli_env())
    env.update({"O365DKIM_NAMESERVERS": bind_server.server, "O365DKIM_RESOLVERS": bind_server.server,
                "O365DKIM_INTERVAL": "0.3", "O365DKIM_TIMEOUT": "60"})
    process = subprocess.Popen(
        [sys.executable, "-m", "o365dkim", "enable", domain, "--dns-provider", "manual"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=env,
    )
    try:
        assert process.stdout is not None
        zone_lines = []
        for line in process.stdout:
            if "Zone-file line:" in line:
                zone_lines.append(line.split("Zone-file line:", 1)[1].strip())
            if len(zone_lines) == 2:
                break
        assert len(zone_lines) == 2
        nsupdate(bind_server, "".join(f"update add {line}\n" for line in zone_lines))
        rest, errors = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 0, errors
    assert "DKIM signing is enabled" in rest


def test_dotenv_file_sets_defaults(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("O365DKIM_OUTPUT=json\nO365DKIM_DEBUG=\n", encoding="utf-8")
    completed = run_console(["enable", "example.com", "--sandbox"], tmp_path)
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout)["result"] == "enabled"
