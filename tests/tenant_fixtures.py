"""A sandbox tenant over real HTTPS with a registered certificate app, for client and CLI tests."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from o365dkim.auth import CertificateCredential, MsalTokenProvider, certificate_provider
from o365dkim.exchange.client import ExchangeClient
from o365dkim.exchange.retry import RetryPolicy
from o365dkim.http import create_session
from o365dkim.sandbox.ca import EphemeralCA, make_client_certificate
from o365dkim.sandbox.server import SandboxServer
from o365dkim.sandbox.tenant import SandboxTenant, tenant_id_for

SCOPE = "https://outlook.office365.com/.default"
#: Retries short enough for tests; the shape of the policy is the production one.
FAST_RETRIES = RetryPolicy(max_attempts=4, initial_wait=0.05, max_wait=0.2, max_total_wait=5.0)


@dataclass
class TenantHandle:
    """A running sandbox tenant and what a client needs to sign in to it."""

    server: SandboxServer
    tenant: SandboxTenant
    ca_bundle: Path
    certificate: Path
    client_id: str
    cert_pem: bytes
    key_pem: bytes
    providers: list[MsalTokenProvider] = field(default_factory=list)

    def token_provider(self) -> MsalTokenProvider:
        """Return an MSAL certificate sign-in against this tenant."""
        credential = CertificateCredential(self.client_id, self.tenant.name, self.certificate)
        provider = certificate_provider(
            credential,
            authority_host=self.server.base_url,
            scope=SCOPE,
            session=create_session(ca_bundle=str(self.ca_bundle)),
        )
        self.providers.append(provider)
        return provider

    def client(self, retry_policy: RetryPolicy = FAST_RETRIES) -> ExchangeClient:
        """Return an admin API client signed in as the registered app."""
        return ExchangeClient(
            self.token_provider(),
            create_session(ca_bundle=str(self.ca_bundle)),
            api_base=self.server.base_url,
            retry_policy=retry_policy,
        )

    def cli_env(self) -> dict[str, str]:
        """Return the O365DKIM_* variables that point the CLI at this tenant."""
        return {
            "O365DKIM_AUTHORITY_HOST": self.server.base_url,
            "O365DKIM_API_BASE": self.server.base_url,
            "O365DKIM_CA_BUNDLE": str(self.ca_bundle),
            "O365DKIM_TENANT": self.tenant.name,
            "O365DKIM_CLIENT_ID": self.client_id,
            "O365DKIM_CERTIFICATE": str(self.certificate),
            "O365DKIM_AUTH": "certificate",
            # A private unencrypted token cache, even for runs that drop the test's own
            # O365DKIM_* variables, so no test writes to the user's cache or keyring.
            "O365DKIM_TOKEN_CACHE": str(self.ca_bundle.parent / "token-cache.json"),
            "O365DKIM_TOKEN_CACHE_ENCRYPTION": "off",
        }

    def cmdlets(self) -> list[str]:
        """Return the cmdlet names the tenant has received, in order."""
        return [call.cmdlet for call in self.tenant.call_log]


@dataclass
class TenantFactory:
    """Starts sandbox tenants for one test and stops them afterwards."""

    workdir: Path
    started: list[TenantHandle] = field(default_factory=list)

    def __call__(
        self,
        domains: Sequence[str],
        *,
        name: str = "Contoso.onmicrosoft.com",
        cname_lookup: Callable[[str], str | None] | None = None,
        publish_key: Callable[[str, str], None] | None = None,
        legacy_domains: Sequence[str] = (),
        random_suffix: bool = False,
    ) -> TenantHandle:
        tenant = SandboxTenant(
            name, tenant_id_for(name), domains, legacy_domains=legacy_domains,
            random_suffix=random_suffix, cname_lookup=cname_lookup, publish_key=publish_key,
        )
        ca = EphemeralCA()
        folder = self.workdir / uuid.uuid4().hex[:8]
        folder.mkdir()
        ca_bundle = ca.write_ca_bundle(folder / "ca.pem")
        server = SandboxServer(ca, [tenant])
        server.start()
        key_pem, cert_pem = make_client_certificate("o365dkim test app")
        certificate = folder / "app.pem"
        certificate.write_bytes(key_pem + cert_pem)
        os.chmod(certificate, 0o600)
        client_id = str(uuid.uuid4())
        server.register_app(tenant.tenant_id, client_id, cert_pem)
        handle = TenantHandle(server, tenant, ca_bundle, certificate, client_id, cert_pem, key_pem)
        self.started.append(handle)
        return handle

    def stop(self) -> None:
        for handle in self.started:
            handle.server.stop()


def tenant_factory_fixture(tmp_path: Path) -> Iterator[TenantFactory]:
    """Yield a TenantFactory; used by the ``make_tenant`` fixture in conftest.py."""
    factory = TenantFactory(tmp_path)
    try:
        yield factory
    finally:
        factory.stop()
