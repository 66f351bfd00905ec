"""Per-tenant sign-in, DNS provider and checker for bulk rows, built once and shared."""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from o365dkim.auth import TokenProvider
from o365dkim.bulk.csvinput import BulkRow
from o365dkim.bulk.profiles import ProfileConfig
from o365dkim.bulk.runner import TenantContext
from o365dkim.dns.provider import DnsProvider
from o365dkim.dns.records import CnameRecord, ExistingRecord, canonical_name
from o365dkim.errors import ConfigurationError, O365DkimError
from o365dkim.settings import Settings

if TYPE_CHECKING:
    from o365dkim.sandbox.environment import SandboxEnvironment

log = logging.getLogger(__name__)


class ContextBuilder:
    """Builds the TenantContext of a row: one token provider per tenant, reused by every row.

    Failures are remembered too, so a tenant whose sign-in fails is tried once, not once
    per row.
    """

    def __init__(
        self,
        base: Settings,
        profiles: ProfileConfig,
        *,
        show_code: Callable[[str], None],
        sandbox: SandboxEnvironment | None = None,
    ) -> None:
        self.base = base
        self.profiles = profiles
        self.show_code = show_code
        self.sandbox = sandbox
        self._tokens: dict[tuple[str, ...], TokenProvider | O365DkimError] = {}
        self._contexts: dict[tuple[str, ...], TenantContext] = {}
        self._lock = threading.Lock()
        self._key_locks: dict[tuple[str, ...], threading.Lock] = {}

    def settings_for(self, row: BulkRow) -> Settings:
        """Return the settings of a row: base, then its profile, then its own columns."""
        profile = self.profiles.get(row.profile)
        settings = profile.apply(self.base) if profile else self.base
        if row.tenant:
            settings = dataclasses.replace(settings, tenant=row.tenant)
        if row.dns_provider:
            settings = dataclasses.replace(settings, dns_provider=row.dns_provider)
        if not settings.tenant:
            raise ConfigurationError(
                f"Line {row.line}: no tenant for {row.domain}.",
                hint="Add a tenant column, a profile with a tenant, or --tenant.",
            )
        if self.sandbox is not None:
            settings = self.sandbox.apply(settings, tenant=settings.tenant)
        return settings

    def __call__(self, row: BulkRow) -> TenantContext:
        """Return the shared context for the row's tenant, profile and DNS provider."""
        from o365dkim.secret_store import resolve_settings_secrets

        settings = resolve_settings_secrets(self.settings_for(row))
        key = (str(settings.tenant), row.profile or "", settings.dns_provider)
        with self._lock_for(key):
            context = self._contexts.get(key)
            if context is None:
                context = self._build(settings)
                self._contexts[key] = context
        if row.zone:
            return dataclasses.replace(
                context, provider=FixedZoneProvider(context.provider, row.zone)
            )
        return context

    def _build(self, settings: Settings) -> TenantContext:
        from o365dkim.settings import build_checker, build_dns_provider, build_exchange_client

        provider = self.sandbox.dns_provider() if self.sandbox else build_dns_provider(settings)
        checker = build_checker(settings)
        tokens = self._token_provider(settings)
        return TenantContext(
            str(settings.tenant), build_exchange_client(settings, tokens), provider, checker
        )

    def _token_provider(self, settings: Settings) -> TokenProvider:
        from o365dkim.settings import build_token_provider

        key = (str(settings.tenant).lower(), str(settings.client_id), str(settings.auth))
        with self._lock_for(("token", *key)):
            known = self._tokens.get(key)
            if isinstance(known, O365DkimError):
                raise known
            if known is None:
                try:
                    known = build_token_provider(settings, self.show_code)
                    known.get_token()
                except O365DkimError as err:
                    self._tokens[key] = err
                    raise
                self._tokens[key] = known
            return known

    def _lock_for(self, key: tuple[str, ...]) -> threading.Lock:
        with self._lock:
            return self._key_locks.setdefault(key, threading.Lock())


class FixedZoneProvider(DnsProvider):
    """Wraps a provider so that every record goes into a zone given in the CSV."""

    name = "fixed-zone"

    def __init__(self, inner: DnsProvider, zone: str) -> None:
        self.inner = inner
        self.zone = canonical_name(zone)
        self.name = inner.name  # type: ignore[misc]

    def find_zone(self, host: str) -> str:
        """Return the given zone, after checking that it contains ``host``."""
        name = canonical_name(host)
        if name != self.zone and not name.endswith(f".{self.zone}"):
            raise ConfigurationError(f"{host} is not inside the zone {self.zone} given in the CSV.")
        return self.zone

    def list_records(self, zone: str, host: str) -> list[ExistingRecord]:
        """Return the inner provider's records at ``host``."""
        return self.inner.list_records(zone, host)

    def write_cname(self, zone: str, record: CnameRecord, remove: Sequence[ExistingRecord]) -> None:
        """Write through the inner provider."""
        self.inner.write_cname(zone, record, remove)
