"""A whole sandbox in one process: tenants over HTTPS, an MSAL app, and two-server DNS.

``o365dkim ... --sandbox`` runs the real code path against it: MSAL certificate sign-in,
the admin API client, the DNS provider interface and the propagation check all talk to
these servers over loopback sockets.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import tempfile
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from o365dkim.auth.cache import CACHE_DISABLED
from o365dkim.dns.provider import DnsProvider
from o365dkim.dns.records import canonical_name
from o365dkim.errors import ConfigurationError
from o365dkim.sandbox.ca import EphemeralCA, make_client_certificate
from o365dkim.sandbox.dns_server import SandboxDnsServer
from o365dkim.sandbox.server import SandboxServer
from o365dkim.sandbox.tenant import SandboxTenant, tenant_id_for
from o365dkim.settings import Settings

log = logging.getLogger(__name__)

#: Initial domain of the default sandbox tenant; its mixed-case prefix shows up in targets.
TENANT_NAME = "O365DkimSandbox.onmicrosoft.com"
#: Zones that hold the DKIM keys behind the selector targets.
KEY_ZONES = ("dkim.mail.microsoft", "onmicrosoft.com")
STATE_VERSION = 2
_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)


class SandboxEnvironment:
    """Starts sandbox tenants and DNS servers, and saves their state on exit.

    ``domains`` become accepted domains of the default tenant; ``tenants`` maps further
    tenants (``*.onmicrosoft.com`` names or GUIDs) to their accepted domains.
    ``latency`` adds seconds to every admin API call, for rehearsals and benchmarks.
    """

    def __init__(
        self,
        domains: Sequence[str] = (),
        *,
        tenants: Mapping[str, Sequence[str]] | None = None,
        state_path: Path | None = None,
        secondary_lag: float = 3.0,
        latency: float = 0.0,
        report_path: Path | None = None,
    ) -> None:
        self.wanted: dict[str, list[str]] = {}
        if domains or not tenants:
            self.wanted[TENANT_NAME.lower()] = [canonical_name(d) for d in domains]
        for tenant, names in (tenants or {}).items():
            self.wanted.setdefault(tenant.lower(), []).extend(canonical_name(d) for d in names)
        self.state_path = state_path
        self.secondary_lag = secondary_lag
        self.latency = latency
        self.report_path = report_path
        self._workdir: tempfile.TemporaryDirectory[str] | None = None
        self.ca: EphemeralCA | None = None
        self.dns: SandboxDnsServer | None = None
        self.tenants: dict[str, SandboxTenant] = {}
        self.server: SandboxServer | None = None
        self.client_id = str(uuid.uuid4())
        self.ca_bundle: Path | None = None
        self.certificate: Path | None = None

    @property
    def tenant(self) -> SandboxTenant:
        """Return the default tenant (the first one)."""
        return next(iter(self.tenants.values()))

    def __enter__(self) -> SandboxEnvironment:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Start DNS and the tenants (restoring saved state), and register the app."""
        state = self._load_state()
        try:
            self._start(state)
        except (KeyError, TypeError, AttributeError, ValueError) as err:
            self.stop(save=False)
            raise ConfigurationError(
                f"The sandbox state file {self.state_path} is damaged ({type(err).__name__}: "
                f"{err}).",
                hint="Give a file that o365dkim wrote, or a new file name.",
            ) from err

    def _start(self, state: dict[str, Any]) -> None:
        self._workdir = tempfile.TemporaryDirectory(prefix="o365dkim-sandbox-")
        workdir = Path(self._workdir.name)
        self.ca = EphemeralCA()
        self.ca_bundle = self.ca.write_ca_bundle(workdir / "ca.pem")

        self.dns = self._make_dns(state.get("dns"))
        self.dns.start()
        self.tenants = self._make_tenants(state.get("tenants", []), self.dns)
        unique = list({id(tenant): tenant for tenant in self.tenants.values()}.values())
        self.server = SandboxServer(self.ca, unique)
        self.server.faults.update(latency_seconds=self.latency)
        self.server.start()

        key_pem, cert_pem = make_client_certificate("o365dkim sandbox app")
        self.certificate = _write_private(workdir / "app.pem", key_pem + cert_pem)
        for tenant in unique:
            # One multi-tenant app, as an MSP registers it once and consents per customer.
            self.server.register_app(tenant.tenant_id, self.client_id, cert_pem)
        log.info("Sandbox with %d tenant(s) at %s", len(self.tenants), self.server.base_url)

    def stop(self, *, save: bool = True) -> None:
        """Save the state (with --sandbox-state), stop the servers and delete the key files."""
        try:
            if save:
                self._save_state()
            self._write_report()
        finally:
            if self.server is not None:
                self.server.stop()
            if self.dns is not None:
                self.dns.stop()
            if self._workdir is not None:
                self._workdir.cleanup()
                self._workdir = None

    def apply(self, settings: Settings, tenant: str | None = None) -> Settings:
        """Return ``settings`` pointed at the sandbox: sign-in, admin API, CA and DNS."""
        assert self.server is not None, "start() first"
        assert self.dns is not None, "start() first"
        assert self.certificate is not None, "start() first"
        assert self.ca_bundle is not None, "start() first"
        chosen = self.tenants[tenant.lower()] if tenant else self.tenant
        servers = [f"{host}:{port}" for host, port in (self.dns.primary, self.dns.secondary)]
        return dataclasses.replace(
            settings,
            tenant=tenant or chosen.name,
            client_id=self.client_id,
            auth="certificate",
            certificate=self.certificate,
            certificate_password=None,
            client_secret=None,
            # Each run has a new server, so its tokens are of no use to the next run.
            token_cache=CACHE_DISABLED,
            authority_host=self.server.base_url,
            api_base=self.server.base_url,
            ca_bundle=str(self.ca_bundle),
            dns_provider="sandbox",
            dns_options={},
            nameservers=servers,
            resolvers=servers[:1],
        )

    def dns_provider(self) -> DnsProvider:
        """Return the provider that writes to the sandbox DNS server."""
        from o365dkim.dns.sandbox import SandboxProvider

        assert self.dns is not None
        return SandboxProvider(self.dns)

    def _make_dns(self, saved: dict[str, Any] | None) -> SandboxDnsServer:
        if saved:
            dns_server = SandboxDnsServer.from_dict(saved, secondary_lag=self.secondary_lag)
        else:
            dns_server = SandboxDnsServer(KEY_ZONES, secondary_lag=self.secondary_lag)
        for domains in self.wanted.values():
            for domain in domains:
                if dns_server.zone_for(domain) is None:
                    dns_server.add_zone(domain)
        return dns_server

    def _make_tenants(
        self, saved: list[dict[str, Any]], dns_server: SandboxDnsServer
    ) -> dict[str, SandboxTenant]:
        def lookup(host: str) -> str | None:
            # Exchange checks through a recursive resolver that may reach either server;
            # the lagging secondary is the stricter choice.
            return dns_server.lookup_cname(host, view="secondary")

        def publish(target: str, value: str) -> None:
            dns_server.set_rrset(target, "TXT", [value])

        tenants: dict[str, SandboxTenant] = {}
        for data in saved:
            tenant = SandboxTenant.from_dict(data, cname_lookup=lookup, publish_key=publish)
            tenants[tenant.name.lower()] = tenant
            tenants[tenant.tenant_id] = tenant
        for key, domains in self.wanted.items():
            tenant = tenants.get(key) or _new_tenant(key, lookup, publish)
            tenants[tenant.name.lower()] = tenants[tenant.tenant_id] = tenants[key] = tenant
            for domain in domains:
                if domain not in tenant.accepted_domains:
                    tenant.accepted_domains.append(domain)
        return _unique_in_order(tenants, self.wanted)

    def call_report(self) -> dict[str, Any]:
        """Return the admin API calls per cmdlet and outcome, and the token requests."""
        calls: dict[str, int] = {}
        unique = {id(tenant): tenant for tenant in self.tenants.values()}
        for tenant in unique.values():
            for call in tenant.call_log:
                key = f"{call.cmdlet} {call.outcome}"
                calls[key] = calls.get(key, 0) + 1
        tokens = sum(self.server.token_requests.values()) if self.server else 0
        return {"tenants": len(unique), "calls": calls, "token_requests": tokens}

    def _write_report(self) -> None:
        if self.report_path is not None and self.tenants:
            self.report_path.write_text(json.dumps(self.call_report(), indent=2), encoding="utf-8")

    def _load_state(self) -> dict[str, Any]:
        if self.state_path is None or not self.state_path.exists():
            return {}
        try:
            state = json.loads(self.state_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise ConfigurationError(
                f"Cannot read the sandbox state file {self.state_path}: {err}.",
                hint="Give a file that o365dkim wrote, or a new file name.",
            ) from err
        if not _looks_like_state(state):
            raise ConfigurationError(
                f"{self.state_path} is not a sandbox state file of this version.",
                hint="Give a file that o365dkim wrote, or a new file name.",
            )
        return dict(state)

    def _save_state(self) -> None:
        if self.state_path is None or not self.tenants or self.dns is None:
            return
        unique = {id(tenant): tenant for tenant in self.tenants.values()}
        state = {
            "version": STATE_VERSION,
            "tenants": [tenant.to_dict() for tenant in unique.values()],
            "dns": self.dns.to_dict(),
        }
        partial = self.state_path.with_name(self.state_path.name + ".tmp")
        partial.write_text(json.dumps(state), encoding="utf-8")
        os.replace(partial, self.state_path)


def _new_tenant(key: str, lookup: Any, publish: Any) -> SandboxTenant:
    if key == TENANT_NAME.lower():
        # The default tenant keeps its mixed-case prefix, which Exchange copies into targets.
        return SandboxTenant(
            TENANT_NAME, tenant_id_for(TENANT_NAME), [], cname_lookup=lookup, publish_key=publish
        )
    if _GUID.match(key):
        return SandboxTenant(
            f"tenant-{key[:8]}.onmicrosoft.com", key, [], cname_lookup=lookup, publish_key=publish
        )
    return SandboxTenant(key, tenant_id_for(key), [], cname_lookup=lookup, publish_key=publish)


def _unique_in_order(
    tenants: dict[str, SandboxTenant], wanted: Mapping[str, Sequence[str]]
) -> dict[str, SandboxTenant]:
    """Return the tenants keyed by every name they answer to, wanted ones first."""
    ordered: dict[str, SandboxTenant] = {}
    for key in wanted:
        ordered[key] = tenants[key]
    for key, tenant in tenants.items():
        ordered.setdefault(key, tenant)
    return ordered


def _looks_like_state(state: Any) -> bool:
    return (
        isinstance(state, dict)
        and state.get("version") == STATE_VERSION
        and isinstance(state.get("tenants"), list)
        and isinstance(state.get("dns"), dict)
    )


def _write_private(path: Path, data: bytes) -> Path:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
    return path
