"""Shared fixtures: real BIND 9 servers in two layouts, the sandbox DNS server, a silent server.

When BIND or the loopback addresses are missing, the BIND tests skip with the reason,
except under CI (the CI environment variable is set), where they fail instead.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dnsservers import (
    BindPair,
    BindServer,
    DnsServerUnavailable,
    find_named,
    start_pair,
    start_single,
)
from pdnsserver import PowerDnsServer, find_pdns_server, start_powerdns
from tenant_fixtures import TenantFactory, tenant_factory_fixture

from o365dkim.sandbox.dns_server import SandboxDnsServer

SANDBOX_ZONES = ("contoso.test", "dkim.mail.microsoft")
SANDBOX_LAG = 0.3


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so this fails instead of skipping)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def bind_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BindServer]:
    """Layout (a): one BIND primary on 127.0.0.1 at a free port, with TSIG updates allowed."""
    if find_named() is None:
        _unavailable("BIND 9 (named) is not installed")
    try:
        server = start_single(tmp_path_factory.mktemp("bind-single"))
    except DnsServerUnavailable as err:
        _unavailable(str(err))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def bind_pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BindPair]:
    """Layout (b): primary 127.0.0.2:53 and secondary 127.0.0.3:53 linked by NOTIFY and IXFR."""
    if find_named() is None:
        _unavailable("BIND 9 (named) is not installed")
    try:
        pair = start_pair(tmp_path_factory.mktemp("bind-pair"))
    except DnsServerUnavailable as err:
        _unavailable(str(err))
    yield pair
    pair.stop()


#: Zones on the PowerDNS test server; the powerdns and lexicon:powerdns tests share them.
POWERDNS_ZONES = ("pdns.example", "lexicon.example")


@pytest.fixture(scope="session")
def pdns_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PowerDnsServer]:
    """PowerDNS Authoritative with its HTTP API on 127.0.0.1 at free ports, sqlite3 backend."""
    if find_pdns_server() is None:
        _unavailable("PowerDNS (pdns_server with pdns-backend-sqlite3) is not installed")
    try:
        server = start_powerdns(tmp_path_factory.mktemp("pdns"), POWERDNS_ZONES)
    except DnsServerUnavailable as err:
        _unavailable(str(err))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    """moto's AWS fake in server mode on 127.0.0.1 at a free port, as an endpoint URL.

    Tests that use it must also keep boto3 away from AWS: dummy keys, no shared config
    files, AWS_EC2_METADATA_DISABLED=true, and this URL as endpoint_url on every client.
    """
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def keyring_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The keyring library with a JSON-file backend in tmp_path, as ``keyring`` itself.

    No Secret Service runs on test machines; the backend is restored afterwards.
    """
    import keyring
    from file_keyring import FileKeyring

    monkeypatch.setenv("TEST_KEYRING_FILE", str(tmp_path / "keyring.json"))
    previous = keyring.get_keyring()
    keyring.set_keyring(FileKeyring())
    try:
        yield keyring
    finally:
        keyring.set_keyring(previous)


@pytest.fixture
def sandbox_dns() -> Iterator[SandboxDnsServer]:
    """A running sandbox DNS server whose secondary lags by SANDBOX_LAG seconds."""
    with SandboxDnsServer(SANDBOX_ZONES, secondary_lag=SANDBOX_LAG) as server:
        yield server


@pytest.fixture
def unique_label() -> str:
    """A fresh DNS label, so tests sharing a session-wide server never meet each other's records."""
    return f"t{uuid.uuid4().hex[:12]}"


@pytest.fixture
def silent_server() -> Iterator[tuple[str, int]]:
    """A loopback UDP and TCP port that this test owns and that never answers, for timeouts."""
    for _ in range(20):
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.bind(("127.0.0.1", 0))
        port = udp.getsockname()[1]
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            tcp.bind(("127.0.0.1", port))
        except OSError:
            udp.close()
            tcp.close()
            continue
        # Connections complete through the backlog but nothing is ever read or sent.
        tcp.listen(8)
        try:
            yield ("127.0.0.1", port)
        finally:
            udp.close()
            tcp.close()
        return
    raise RuntimeError("no loopback port is free for both UDP and TCP")


@pytest.fixture
def make_tenant(tmp_path: Path) -> Iterator[TenantFactory]:
    """Start sandbox tenants over HTTPS (real MSAL sign-in) and stop them after the test."""
    yield from tenant_factory_fixture(tmp_path)


@pytest.fixture(autouse=True)
def private_token_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Give each test its own unencrypted token cache file, never the user's cache or keyring."""
    path = tmp_path_factory.mktemp("token-cache") / "msal_token_cache.json"
    monkeypatch.setenv("O365DKIM_TOKEN_CACHE", str(path))
    monkeypatch.setenv("O365DKIM_TOKEN_CACHE_ENCRYPTION", "off")
    return path
