"""``o365dkim bulk`` as a user runs it: a subprocess, real BIND, sandbox tenants over HTTPS."""

from __future__ import annotations

import csv
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from dnsservers import BindServer, authoritative_cname_lookup

from o365dkim.sandbox.ca import EphemeralCA, make_client_certificate
from o365dkim.sandbox.server import SandboxServer
from o365dkim.sandbox.tenant import SandboxTenant, tenant_id_for

TENANTS = ("alpha.onmicrosoft.com", "bravo.onmicrosoft.com", "charlie.onmicrosoft.com")


@dataclass
class Fleet:
    """Sandbox tenants on one HTTPS server, checking CNAMEs at a real BIND server."""

    server: SandboxServer
    tenants: dict[str, SandboxTenant]
    env: dict[str, str]


@pytest.fixture
def fleet(bind_server: BindServer, tmp_path: Path) -> Iterator[Fleet]:
    label = uuid.uuid4().hex[:10]
    # Each tenant's domains sit in another zone of the BIND server, so discovery and
    # updates meet several zones in one run.
    zones = dict(zip(TENANTS, ("example.net", "example.com", "example.org"), strict=True))
    tenants = {
        name: SandboxTenant(
            name,
            tenant_id_for(name),
            [f"d{i}.{name.split('.')[0]}-{label}.{zones[name]}" for i in range(8)],
            cname_lookup=authoritative_cname_lookup(bind_server),
        )
        for name in TENANTS
    }

    ca = EphemeralCA()
    server = SandboxServer(ca, tenants.values())
    server.start()

    key_pem, cert_pem = make_client_certificate("bulk test app")
    certificate = tmp_path / "app.pem"
    certificate.write_bytes(key_pem + cert_pem)
    client_id = str(uuid.uuid4())
    for tenant in tenants.values():
        server.register_app(tenant.tenant_id, client_id, cert_pem)

    env = {key: value for key, value in os.environ.items() if not key.startswith("O365DKIM_")}
    env.update({
        "O365DKIM_AUTHORITY_HOST": server.base_url,
        "O365DKIM_API_BASE": server.base_url,
        "O365DKIM_CA_BUNDLE": str(ca.write_ca_bundle(tmp_path / "ca.pem")),
        "O365DKIM_CLIENT_ID": client_id,
        "O365DKIM_CERTIFICATE": str(certificate),
        "O365DKIM_AUTH": "certificate",
        "O365DKIM_DNS_PROVIDER": "rfc2136",
        "O365DKIM_RFC2136_SERVER": bind_server.server,
        "O365DKIM_RFC2136_KEY_NAME": bind_server.tsig_key_name,
        "O365DKIM_RFC2136_KEY_SECRET": bind_server.tsig_secret,
        "O365DKIM_RFC2136_KEY_ALGORITHM": bind_server.tsig_algorithm,
        "O365DKIM_NAMESERVERS": bind_server.server,
        "O365DKIM_RESOLVERS": bind_server.server,
        "O365DKIM_INTERVAL": "0.3",
        "O365DKIM_TIMEOUT": "60",
        "XDG_CONFIG_HOME": str(tmp_path / "config-home"),
        "O365DKIM_TOKEN_CACHE": "none",
    })
    yield Fleet(server, tenants, env)
    server.stop()


def write_csv(path: Path, fleet: Fleet) -> Path:
    lines = ["domain,tenant,ticket"]
    for name, tenant in fleet.tenants.items():
        lines += [f"{domain},{name},T-{index}" for index, domain in enumerate(tenant.accepted_domains)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def bulk(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "o365dkim", "bulk", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd, env=env,
    )


def successful_news(tenant: SandboxTenant) -> dict[str, int]:
    counts: dict[str, int] = {}
    for call in tenant.call_log:
        if call.cmdlet == "New-DkimSigningConfig" and call.outcome == "ok":
            domain = str(call.parameters["DomainName"])
            counts[domain] = counts.get(domain, 0) + 1
    return counts


def test_bulk_killed_and_resumed(fleet: Fleet, tmp_path: Path) -> None:
    """A run killed with SIGKILL mid-way, then run again: nothing twice, nothing lost."""
    source = write_csv(tmp_path / "customers.csv", fleet)
    fleet.server.faults.update(latency_seconds=0.25)
    first = bulk([str(source), "--workers", "4", "--tenant-limit", "2"], fleet.env, tmp_path)
    journal = tmp_path / "customers.results.csv.journal.sqlite"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        time.sleep(0.2)
        if journal.exists() and _finished_rows(journal) >= 3:
            break
    first.send_signal(signal.SIGKILL)
    first.communicate()
    finished_before = _finished_rows(journal)
    assert 3 <= finished_before < 24

    fleet.server.faults.update(latency_seconds=0.0)
    second = bulk([str(source)], fleet.env, tmp_path)
    out, err = second.communicate(timeout=120)
    assert second.returncode == 0, err + out
    for tenant in fleet.tenants.values():
        assert set(successful_news(tenant).values()) == {1}
        assert len(successful_news(tenant)) == 8
        for domain in tenant.accepted_domains:
            config = tenant.config(domain)
            assert config is not None
            assert config.enabled
    with (tmp_path / "customers.results.csv").open(encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 24
    # A row enabled just before the kill, but not yet journaled, is found already enabled.
    assert {row["result"] for row in rows} <= {"enabled", "already_enabled"}
    assert rows[0]["ticket"] == "T-0"


def _finished_rows(journal: Path) -> int:
    try:
        with sqlite3.connect(journal) as db:
            return int(db.execute("SELECT COUNT(*) FROM results").fetchone()[0])
    except sqlite3.Error:
        return 0


def test_bulk_json_results_and_exit_code(fleet: Fleet, tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    tenant = TENANTS[0]
    domain = fleet.tenants[tenant].accepted_domains[0]
    source.write_text(f"domain;tenant\n{domain};{tenant}\nbad domain;{tenant}\n", encoding="utf-8")
    process = bulk([str(source), "--results", str(tmp_path / "out.json"), "--output", "json"],
                   fleet.env, tmp_path)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 4, err
    summary = json.loads(out)
    assert summary["summary"] == {"enabled": 1, "invalid": 1}
    rows = json.loads((tmp_path / "out.json").read_text())
    assert rows[0]["input"]["domain"] == domain
    assert rows[1]["result"] == "invalid"


def test_bulk_plan_changes_nothing(fleet: Fleet, tmp_path: Path) -> None:
    source = write_csv(tmp_path / "in.csv", fleet)
    process = bulk([str(source), "--plan", "--output", "json"], fleet.env, tmp_path)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    rows = json.loads(out)["rows"]
    assert {row["result"] for row in rows} == {"changes"}
    for tenant in fleet.tenants.values():
        assert {call.cmdlet for call in tenant.call_log} == {"Get-DkimSigningConfig"}
    assert not (tmp_path / "in.results.csv").exists()


def test_bulk_missing_domain_column(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text("name,tenant\ncontoso.com,contoso.onmicrosoft.com\n", encoding="utf-8")
    process = bulk([str(source), "--sandbox"], dict(os.environ), tmp_path)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 2
    assert "Expected columns: domain, tenant" in err
    assert not (tmp_path / "in.results.csv").exists()


@pytest.mark.parametrize(
    ("content", "delimiter"),
    [
        ("\ufeffdomain,tenant\nContoso.com,contoso.onmicrosoft.com\n", ","),
        ("domain;tenant\r\ncontoso.com;contoso.onmicrosoft.com\r\n", ";"),
        ('domain,tenant\n" Contoso.com. ",contoso.onmicrosoft.com\n', ","),
    ],
)
def test_bulk_sandbox_spreadsheet_inputs(tmp_path: Path, content: str, delimiter: str) -> None:
    """F17's three inputs, rehearsed against sandbox tenants made from the file."""
    source = tmp_path / "in.csv"
    source.write_bytes(content.encode("utf-8"))
    process = bulk([str(source), "--sandbox", "--interval", "0.3", "--sandbox-lag", "0.5"],
                   dict(os.environ), tmp_path)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err + out
    with (tmp_path / "in.results.csv").open(encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle, delimiter=delimiter))
    assert rows[0]["result"] == "enabled"
    assert rows[0]["o365dkim_domain"] == "contoso.com"


def test_bulk_unknown_profile_stops(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text("domain,tenant\ncontoso.com,contoso.onmicrosoft.com\n", encoding="utf-8")
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config-home")}
    process = bulk([str(source), "--sandbox", "--profile", "ghost"], env, tmp_path)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 2
    assert "Unknown profile 'ghost'" in err
    assert not (tmp_path / "in.results.csv").exists()


def test_bulk_results_folder_rejected(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text("domain,tenant\ncontoso.com,contoso.onmicrosoft.com\n", encoding="utf-8")
    (tmp_path / "out.csv").mkdir()
    process = bulk([str(source), "--sandbox", "--results", str(tmp_path / "out.csv")],
                   dict(os.environ), tmp_path)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 2
    assert "it is a folder" in err
