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

import pytest
from dnsservers import (
    BindPair,
    BindServer,
    DnsServerUnavailable,
    find_named,
    start_pair,
    start_single,
)

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
