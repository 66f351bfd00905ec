"""Real JSON output of every command, validated against docs/schema/.

For enable, status, records and plan, one --sandbox state file carries two domains
through every result. example.com goes from no config to enabled. example.net has a TXT
record at a selector name, so plan reports a conflict and enable fails. The sign-in
commands run against a sandbox tenant over HTTPS, and dns test and bulk against BIND.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from dnsservers import BindServer, authoritative_cname_lookup
from tenant_fixtures import TenantFactory
from typer.testing import CliRunner

from o365dkim.cli.main import app

ROOT = Path(__file__).resolve().parent.parent
SCHEMAS = ROOT / "docs" / "schema"
DOMAIN = "example.com"
CONFLICT_DOMAIN = "example.net"

runner = CliRunner()


@dataclass
class Run:
    """One command run: its exit code, the JSON on stdout, and the JSON log lines."""

    exit_code: int
    output: dict[str, Any]
    log_lines: list[dict[str, Any]]


def load_schema(name: str) -> dict[str, Any]:
    return json.loads((SCHEMAS / f"{name}.json").read_text(encoding="utf-8"))


def validator(name: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(
        load_schema(name), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def run_json(args: list[str], state: Path) -> Run:
    result = runner.invoke(
        app,
        [*args, "--sandbox", "--sandbox-state", str(state), "--output", "json",
         "--log-format", "json", "--debug"],
    )
    lines = [json.loads(line) for line in result.stderr.splitlines() if line.strip()]
    return Run(result.exit_code, json.loads(result.stdout), lines)


def add_txt_record(state: Path, name: str) -> None:
    data = json.loads(state.read_text(encoding="utf-8"))
    data["dns"]["rrsets"].append({"name": name, "type": "TXT", "ttl": 300, "values": ['"hello"']})
    state.write_text(json.dumps(data), encoding="utf-8")


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    """Run the commands in order on one sandbox state and keep every output by case name."""
    state = tmp_path_factory.mktemp("schemas") / "state.json"
    sequence = [
        ("status_not_configured", ["status", DOMAIN]),
        ("plan_changes", ["plan", DOMAIN]),
        ("records_create", ["records", DOMAIN, "--create"]),
        ("status_disabled", ["status", DOMAIN]),
        ("enable_pending_dns", ["enable", DOMAIN, "--timeout", "0"]),
        ("enable_enabled", ["enable", DOMAIN]),
        ("enable_already_enabled", ["enable", DOMAIN]),
        ("plan_nothing_to_do", ["plan", DOMAIN]),
        ("status_enabled", ["status", DOMAIN]),
        ("records_existing", ["records", DOMAIN]),
        ("status_conflict_domain", ["status", CONFLICT_DOMAIN]),
    ]
    collected = {name: run_json(args, state) for name, args in sequence}
    add_txt_record(state, f"selector2._domainkey.{CONFLICT_DOMAIN}")
    collected["plan_conflict"] = run_json(["plan", CONFLICT_DOMAIN], state)
    collected["enable_failed"] = run_json(["enable", CONFLICT_DOMAIN], state)
    return collected


# (case, schema, exit code, field, expected value of the field)
CASES = [
    ("status_not_configured", "status", 0, "result", "not_configured"),
    ("status_disabled", "status", 0, "result", "disabled"),
    ("status_enabled", "status", 0, "result", "enabled"),
    ("enable_pending_dns", "enable", 3, "result", "pending_dns"),
    ("enable_enabled", "enable", 0, "result", "enabled"),
    ("enable_already_enabled", "enable", 0, "result", "already_enabled"),
    ("enable_failed", "enable", 1, "result", "failed"),
    ("records_create", "records", 0, "domain", DOMAIN),
    ("records_existing", "records", 0, "changes", []),
    ("plan_changes", "plan", 0, "outcome", "changes"),
    ("plan_nothing_to_do", "plan", 0, "outcome", "nothing_to_do"),
    ("plan_conflict", "plan", 1, "outcome", "conflict"),
]


@pytest.mark.parametrize(("case", "schema", "exit_code", "field", "expected"), CASES)
def test_output_matches_schema(
    runs: dict[str, Run], case: str, schema: str, exit_code: int, field: str, expected: object
) -> None:
    run = runs[case]
    errors = [error.message for error in validator(schema).iter_errors(run.output)]
    assert errors == []
    assert run.output[field] == expected
    assert run.exit_code == exit_code


def test_log_lines_match_schema(runs: dict[str, Run]) -> None:
    check = validator("log-line")
    lines = [line for run in runs.values() for line in run.log_lines]
    assert len(lines) > len(runs)
    for line in lines:
        errors = [error.message for error in check.iter_errors(line)]
        assert errors == [], line


def test_log_lines_carry_request_ids(runs: dict[str, Run]) -> None:
    calls = [line for line in runs["status_enabled"].log_lines if "client_request_id" in line]
    assert calls
    assert all(line["cmdlet"] == "Get-DkimSigningConfig" for line in calls)


def test_failed_enable_reports_conflict(runs: dict[str, Run]) -> None:
    error = runs["enable_failed"].output["error"]
    assert error["type"] == "DnsConflictError"


def test_conflict_plan_names_record(runs: dict[str, Run]) -> None:
    dns = {item["host"]: item for item in runs["plan_conflict"].output["dns"]}
    conflict = dns[f"selector2._domainkey.{CONFLICT_DOMAIN}"]
    assert conflict["action"] == "conflict"
    assert any("TXT" in record for record in conflict["existing"])


def test_every_schema_is_valid_draft_2020_12() -> None:
    for path in sorted(SCHEMAS.glob("*.json")):
        schema = json.loads(path.read_text(encoding="utf-8"))
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema", path.name
        jsonschema.Draft202012Validator.check_schema(schema)


# -- sign-in and DNS commands, against a sandbox tenant and BIND ------------------------------


def cli_json(args: list[str], env: dict[str, str]) -> dict[str, Any]:
    result = runner.invoke(app, [*args, "--output", "json"], env=env)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_signin_outputs_match_schemas(make_tenant: TenantFactory, tmp_path: Path) -> None:
    handle = make_tenant([DOMAIN])
    env = {**handle.cli_env(), "O365DKIM_TOKEN_CACHE": str(tmp_path / "token-cache.bin")}
    outputs = {
        "login": cli_json(["login"], env),
        "whoami": cli_json(["whoami"], env),
        "logout": cli_json(["logout"], env),
    }
    for name, output in outputs.items():
        errors = [error.message for error in validator(name).iter_errors(output)]
        assert errors == [], name
    assert outputs["whoami"]["kind"] == "app"
    assert outputs["logout"]["removed"]["access_tokens"] >= 1


def test_dns_test_output_matches_schema(bind_server: BindServer) -> None:
    env = {
        "O365DKIM_RFC2136_SERVER": bind_server.server,
        "O365DKIM_RFC2136_KEY_NAME": bind_server.tsig_key_name,
        "O365DKIM_RFC2136_KEY_SECRET": bind_server.tsig_secret,
        "O365DKIM_RFC2136_KEY_ALGORITHM": bind_server.tsig_algorithm,
    }
    output = cli_json(["dns", "test", "rfc2136", "--zone", "example.net"], env)
    errors = [error.message for error in validator("dns-test").iter_errors(output)]
    assert errors == []
    assert output["zone"] == "example.net"


def bulk_json(args: list[str], env: dict[str, str], cwd: Path) -> tuple[int, dict[str, Any]]:
    completed = subprocess.run(
        [sys.executable, "-m", "o365dkim", "bulk", *args, "--output", "json", "--log-format",
         "json"],
        capture_output=True, text=True, env=env, cwd=cwd, timeout=120, check=False,
    )
    check = validator("log-line")
    for line in completed.stderr.splitlines():
        assert [error.message for error in check.iter_errors(json.loads(line))] == []
    return completed.returncode, json.loads(completed.stdout)


def test_bulk_outputs_match_schema(
    bind_server: BindServer, make_tenant: TenantFactory, unique_label: str, tmp_path: Path
) -> None:
    domain = f"{unique_label}.example.net"
    handle = make_tenant([domain], cname_lookup=authoritative_cname_lookup(bind_server))
    env = {key: value for key, value in os.environ.items() if not key.startswith("O365DKIM_")}
    env.update({
        **handle.cli_env(),
        "O365DKIM_DNS_PROVIDER": "rfc2136",
        "O365DKIM_RFC2136_SERVER": bind_server.server,
        "O365DKIM_RFC2136_KEY_NAME": bind_server.tsig_key_name,
        "O365DKIM_RFC2136_KEY_SECRET": bind_server.tsig_secret,
        "O365DKIM_RFC2136_KEY_ALGORITHM": bind_server.tsig_algorithm,
        "O365DKIM_NAMESERVERS": bind_server.server,
        "O365DKIM_RESOLVERS": bind_server.server,
        "O365DKIM_INTERVAL": "0.3",
        "XDG_CONFIG_HOME": str(tmp_path / "config-home"),
    })
    source = tmp_path / "domains.csv"
    source.write_text(f"domain\n{domain}\nbad domain\n{domain}\n", encoding="utf-8")

    plan_code, plan = bulk_json([str(source), "--plan"], env, tmp_path)
    run_code, run = bulk_json([str(source)], env, tmp_path)

    check = validator("bulk")
    assert [error.message for error in check.iter_errors(plan)] == []
    assert [error.message for error in check.iter_errors(run)] == []
    assert [row["result"] for row in plan["rows"]] == ["changes", "invalid", "duplicate"]
    assert run["summary"] == {"duplicate": 1, "enabled": 1, "invalid": 1}
    # An invalid row makes both runs exit 4, plan included.
    assert plan_code == 4
    assert run_code == 4
