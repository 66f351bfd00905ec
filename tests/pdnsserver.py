"""Start and stop a real PowerDNS Authoritative server with its HTTP API for tests.

The server keeps its zones in a fresh SQLite database (gsqlite3 backend), answers DNS on
127.0.0.1 at a free port and serves the API on 127.0.0.1 at another free port. Outbound
traffic is off: no security poll (``security-poll-suffix=``), no NOTIFY (zones are Native).
"""

from __future__ import annotations

import secrets
import shutil
import sqlite3
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from dnsservers import DnsServerUnavailable, free_port

SCHEMA = Path("/usr/share/pdns-backend-sqlite3/schema/schema.sqlite3.sql")
STARTUP_TIMEOUT = 20.0


@dataclass
class PowerDnsServer:
    """One running ``pdns_server`` and what a client needs to reach its API and DNS port."""

    api_url: str
    api_key: str
    dns_port: int
    workdir: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def zones_url(self) -> str:
        return f"{self.api_url}/api/v1/servers/localhost/zones"

    def request(self, method: str, path: str, body: Any = None) -> requests.Response:
        """Call the API with the right key, without going through o365dkim."""
        return requests.request(
            method,
            f"{self.zones_url}{path}",
            json=body,
            headers={"X-API-Key": self.api_key},
            timeout=10,
        )

    def create_zone(self, zone: str) -> None:
        """Create a Native zone (no NOTIFY) with one NS record."""
        response = self.request(
            "POST", "", {"name": zone + ".", "kind": "Native", "nameservers": [f"ns1.{zone}."]}
        )
        response.raise_for_status()

    def log_text(self) -> str:
        return (self.workdir / "pdns.log").read_text(encoding="utf-8", errors="replace")

    def stop(self) -> None:
        """Stop the process by its id and wait for it to exit."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


def find_pdns_server() -> str | None:
    """Return the path of pdns_server, or None when PowerDNS is not installed."""
    found = shutil.which("pdns_server") or shutil.which("pdns_server", path="/usr/sbin")
    return found if found and SCHEMA.is_file() else None


def start_powerdns(workdir: Path, zones: tuple[str, ...]) -> PowerDnsServer:
    """Start pdns_server in ``workdir``, wait until its API responds, and create ``zones``."""
    binary = find_pdns_server()
    if binary is None:
        raise DnsServerUnavailable("PowerDNS (pdns_server with the sqlite3 backend) is missing")
    database = workdir / "pdns.sqlite3"
    with sqlite3.connect(database) as connection:
        connection.executescript(SCHEMA.read_text(encoding="utf-8"))
    server = PowerDnsServer(
        api_url=f"http://127.0.0.1:{free_port()}",
        api_key=secrets.token_urlsafe(24),
        dns_port=free_port(),
        workdir=workdir,
    )
    (workdir / "pdns.conf").write_text(_config(server, database), encoding="utf-8")
    with (workdir / "pdns.log").open("wb") as log_file:
        server.process = subprocess.Popen(
            [binary, f"--config-dir={workdir}"], stdout=log_file, stderr=subprocess.STDOUT
        )
    _wait_for_api(server)
    for zone in zones:
        server.create_zone(zone)
    return server


def _config(server: PowerDnsServer, database: Path) -> str:
    port = server.api_url.rsplit(":", 1)[1]
    lines = [
        "launch=gsqlite3",
        f"gsqlite3-database={database}",
        "local-address=127.0.0.1",
        f"local-port={server.dns_port}",
        "api=yes",
        f"api-key={server.api_key}",
        "webserver=yes",
        "webserver-address=127.0.0.1",
        f"webserver-port={port}",
        "webserver-allow-from=127.0.0.0/8",
        f"socket-dir={server.workdir}",
        "guardian=no",
        "daemon=no",
        # No outbound queries: the security poll would ask a public name over DNS.
        "security-poll-suffix=",
        "loglevel=4",
    ]
    return "\n".join(lines) + "\n"


def _wait_for_api(server: PowerDnsServer) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        assert server.process is not None
        if server.process.poll() is not None:
            raise DnsServerUnavailable(f"pdns_server exited at start:\n{server.log_text()}")
        try:
            if server.request("GET", "").status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.1)
    server.stop()
    raise DnsServerUnavailable(f"the PowerDNS API did not answer:\n{server.log_text()}")
