"""The azure provider: Azure DNS record sets through azure-mgmt-dns and azure-identity.

Install with ``pip install 'o365dkim[azure]'``. Record set names in the API are relative
to the zone ("@" for the apex), so this provider converts every host before a call. A
host sent whole would be stored with the zone appended twice. CNAME targets are written
absolute, without the final dot, as Azure DNS shows them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from o365dkim.dns.options import (
    ProviderOptions,
    longest_zone,
    parse_seconds,
    parse_ttl,
    relative_name,
)
from o365dkim.dns.provider import DnsProvider
from o365dkim.dns.records import AccessReport, CnameRecord, ExistingRecord, canonical_name
from o365dkim.errors import (
    ConfigurationError,
    DnsConflictError,
    DnsProviderError,
    ZoneNotFoundError,
)

log = logging.getLogger(__name__)

_T = TypeVar("_T")

_OPTIONS = (
    "subscription_id", "resource_group", "credential", "managed_identity_client_id",
    "tenant_id", "client_id", "client_secret", "base_url", "authority_host", "ca_bundle",
    "ttl", "timeout",
)  # fmt: skip
CREDENTIAL_KINDS = ("default", "managed-identity", "client-secret", "cli")
_INSTALL_HINT = "Install it with: pip install 'o365dkim[azure]'"
_ROLE_HINT = (
    "Assign the DNS Zone Contributor role on the zone (or its resource group) to the "
    "identity; reading zones in the subscription also needs Reader there, or set "
    "resource_group."
)


class AzureDnsProvider(DnsProvider):
    """Publishes records as record sets of a public Azure DNS zone.

    ``subscription_id`` (or AZURE_SUBSCRIPTION_ID) is required. ``resource_group``
    limits the zone search to one resource group. ``credential`` picks the sign-in:
    "default" (DefaultAzureCredential: environment, workload identity, managed identity,
    Azure CLI), "managed-identity" (with ``managed_identity_client_id`` for a user-assigned
    identity), "client-secret" (``tenant_id``, ``client_id``, ``client_secret``) or "cli".
    ``base_url`` and ``authority_host`` select a sovereign cloud; ``ca_bundle`` trusts a
    private CA for ``base_url``.
    """

    name = "azure"
    relative_names = True

    def __init__(
        self,
        subscription_id: str,
        *,
        credential: Any,
        resource_group: str | None = None,
        base_url: str | None = None,
        ca_bundle: str | None = None,
        ttl: int | str | None = None,
        timeout: float | str = 30,
    ) -> None:
        """Build the provider around an azure-core TokenCredential (see ``from_options``)."""
        self.subscription_id = subscription_id
        self.resource_group = resource_group
        self.ttl = None if ttl is None else parse_ttl(ttl)
        self._client = _AzureDnsClient(
            subscription_id, credential, base_url, ca_bundle, parse_seconds(timeout)
        )
        self._groups: dict[str, str] = {}

    @classmethod
    def from_options(cls, options: Mapping[str, str]) -> AzureDnsProvider:
        """Build the provider and its azure-identity credential from string options."""
        values = ProviderOptions(cls.name, options, _OPTIONS)
        subscription = values.get("subscription_id", os.environ.get("AZURE_SUBSCRIPTION_ID"))
        if not subscription:
            raise ConfigurationError(
                "The azure provider needs the subscription_id option "
                "(or O365DKIM_AZURE_SUBSCRIPTION_ID, or AZURE_SUBSCRIPTION_ID).",
                hint="Set it to the ID of the subscription that holds the DNS zone.",
            )
        return cls(
            subscription,
            credential=build_credential(values),
            resource_group=values.get("resource_group"),
            base_url=values.get("base_url"),
            ca_bundle=values.get("ca_bundle"),
            ttl=values.get("ttl"),
            timeout=values.get("timeout", "30") or "30",
        )

    def __repr__(self) -> str:
        return (
            f"AzureDnsProvider(subscription_id={self.subscription_id!r}, "
            f"resource_group={self.resource_group!r})"
        )

    def find_zone(self, host: str) -> str:
        """Return the public zone with the longest name that contains ``host``."""
        groups: dict[str, list[str]] = {}
        for zone in self._client.zones(self.resource_group):
            if str(getattr(zone, "zone_type", None) or "Public").lower() == "private":
                continue
            groups.setdefault(canonical_name(zone.name), []).append(_resource_group(zone.id))
        found = longest_zone(host, groups)
        if found is None:
            where = (
                f"resource group {self.resource_group}"
                if self.resource_group
                else (f"subscription {self.subscription_id}")
            )
            raise ZoneNotFoundError(
                f"No public Azure DNS zone in {where} contains {canonical_name(host)}.",
                hint="Check the domain, subscription_id and resource_group.",
            )
        if len(groups[found]) > 1:
            raise ConfigurationError(
                f"Several resource groups hold an Azure DNS zone {found}: "
                f"{', '.join(groups[found])}.",
                hint="Set resource_group to the one the domain is delegated to.",
            )
        self._groups[found] = groups[found][0]
        log.debug("azure: %s is in zone %s (resource group %s)", host, found, groups[found][0])
        return found

    def list_records(self, zone: str, host: str) -> list[ExistingRecord]:
        """Return every record at ``host``, read from the record sets of its parent name.

        The list filter matches names that end with ".SUFFIX", so the filter is the
        parent of the relative name and the exact name is picked out here.
        """
        name = canonical_name(host)
        relative = relative_name(name, zone)
        parent = relative.partition(".")[2] if "." in relative else None
        found: list[ExistingRecord] = []
        for record_set in self._client.record_sets(self._group(zone), zone, parent):
            if canonical_name(record_set.fqdn or "") == name:
                found.extend(_existing(name, record_set))
        return found

    def write_cname(self, zone: str, record: CnameRecord, remove: Sequence[ExistingRecord]) -> None:
        """Delete the record sets of ``remove``, then create the CNAME record set."""
        group = self._group(zone)
        relative = relative_name(record.host, zone)
        for rtype in sorted({item.rtype.upper() for item in remove}):
            self._client.delete(group, zone, relative, rtype)
        ttl = self.ttl if self.ttl is not None else record.ttl
        # NOTE: the deletes and the create are separate calls; a failed create leaves the
        # name empty until the command runs again.
        self._client.create_cname(group, zone, relative, record.target, ttl)

    def check_access(self, zone: str) -> AccessReport:
        """Find and read the zone, then report what the read-only check cannot cover."""
        report = super().check_access(zone)
        return AccessReport(
            report.provider,
            report.zone,
            (
                f"Azure accepted the credential for subscription {self.subscription_id}.",
                *report.checks,
            ),
            (
                "Write permission (Microsoft.Network/dnszones/CNAME/write, part of DNS Zone "
                "Contributor) is not checked, because that needs a write.",
            ),
        )

    def _group(self, zone: str) -> str:
        name = canonical_name(zone)
        if name not in self._groups:
            self.find_zone(name)
        if name not in self._groups:
            raise ZoneNotFoundError(f"No public Azure DNS zone is named {name}.")
        return self._groups[name]


def build_credential(values: ProviderOptions) -> Any:
    """Return the azure-identity credential that the options describe."""
    try:
        from azure import identity
    except ImportError as err:
        raise ConfigurationError(
            "The azure provider needs azure-identity, which is not installed.", hint=_INSTALL_HINT
        ) from err
    secret = values.get("client_secret")
    kind = values.get("credential") or ("client-secret" if secret else "default")
    authority = values.get("authority_host")
    extra: dict[str, Any] = {"authority": authority} if authority else {}
    if kind == "default":
        return identity.DefaultAzureCredential(
            managed_identity_client_id=values.get("managed_identity_client_id"), **extra
        )
    if kind == "managed-identity":
        return identity.ManagedIdentityCredential(
            client_id=values.get("managed_identity_client_id")
        )
    if kind == "client-secret":
        return identity.ClientSecretCredential(
            values.require("tenant_id", "Set the Entra ID tenant of the app registration."),
            values.require("client_id", "Set the application (client) ID."),
            values.require("client_secret", "Set the client secret, or keyring:NAME."),
            **extra,
        )
    if kind == "cli":
        return identity.AzureCliCredential()
    raise ConfigurationError(
        f"Invalid credential {kind!r} for the azure provider.",
        hint=f"Choose one of: {', '.join(CREDENTIAL_KINDS)}.",
    )


def _resource_group(resource_id: str) -> str:
    parts = resource_id.split("/")
    lowered = [part.lower() for part in parts]
    return parts[lowered.index("resourcegroups") + 1]


def _existing(name: str, record_set: Any) -> list[ExistingRecord]:
    rtype = str(record_set.type).rsplit("/", 1)[-1].upper()
    ttl = record_set.ttl
    if record_set.target_resource is not None and record_set.target_resource.id:
        alias = f"ALIAS {record_set.target_resource.id}"
        return [ExistingRecord(name, rtype, alias, ttl, {"alias": "true"})]
    return [ExistingRecord(name, rtype, value, ttl) for value in _values(rtype, record_set)]


def _values(rtype: str, rs: Any) -> list[str]:
    readers: dict[str, Callable[[], list[str]]] = {
        "CNAME": lambda: [rs.cname_record.cname] if rs.cname_record else [],
        "A": lambda: [item.ipv4_address for item in rs.a_records or []],
        "AAAA": lambda: [item.ipv6_address for item in rs.aaaa_records or []],
        "MX": lambda: [f"{item.preference} {item.exchange}" for item in rs.mx_records or []],
        "NS": lambda: [item.nsdname for item in rs.ns_records or []],
        "PTR": lambda: [item.ptrdname for item in rs.ptr_records or []],
        "SRV": lambda: [
            f"{item.priority} {item.weight} {item.port} {item.target}"
            for item in rs.srv_records or []
        ],
        "TXT": lambda: [
            " ".join(f'"{part}"' for part in item.value or []) for item in rs.txt_records or []
        ],
        "CAA": lambda: [f'{item.flags} {item.tag} "{item.value}"' for item in rs.caa_records or []],
    }
    reader = readers.get(rtype)
    return [str(value) for value in reader()] if reader else [f"({rtype} record set)"]


class _AzureDnsClient:
    """The only code that talks to Azure; turns azure-core errors into our errors."""

    def __init__(
        self,
        subscription_id: str,
        credential: Any,
        base_url: str | None,
        ca_bundle: str | None,
        timeout: float,
    ) -> None:
        try:
            import azure.core.exceptions
            from azure.mgmt.dns import DnsManagementClient, models
        except ImportError as err:
            raise ConfigurationError(
                "The azure provider needs azure-mgmt-dns, which is not installed.",
                hint=_INSTALL_HINT,
            ) from err
        self._errors = azure.core.exceptions
        self._models = models
        settings: dict[str, Any] = {
            "connection_timeout": timeout,
            "read_timeout": timeout,
            "retry_total": 3,
        }
        if base_url:
            settings["base_url"] = base_url
            settings["credential_scopes"] = [base_url.rstrip("/") + "/.default"]
        if ca_bundle:
            settings["connection_verify"] = ca_bundle
        self._client: Any = DnsManagementClient(credential, subscription_id, **settings)

    def __repr__(self) -> str:
        return "_AzureDnsClient()"

    def zones(self, resource_group: str | None) -> list[Any]:
        if resource_group:
            return self._call(
                "list zones",
                lambda: list(self._client.zones.list_by_resource_group(resource_group)),
            )
        return self._call("list zones", lambda: list(self._client.zones.list()))

    def record_sets(self, group: str, zone: str, suffix: str | None) -> list[Any]:
        return self._call(
            f"list record sets of {zone}",
            lambda: list(
                self._client.record_sets.list_by_dns_zone(group, zone, recordsetnamesuffix=suffix)
            ),
        )

    def delete(self, group: str, zone: str, relative: str, rtype: str) -> None:
        self._call(
            f"delete {relative} {rtype} in {zone}",
            lambda: self._client.record_sets.delete(group, zone, relative, rtype),
        )
        log.info("azure: deleted %s %s in zone %s", relative, rtype, zone)

    def create_cname(self, group: str, zone: str, relative: str, target: str, ttl: int) -> None:
        models = self._models
        record_set = models.RecordSet(ttl=ttl, cname_record=models.CnameRecord(cname=target))
        # If-None-Match "*" makes Azure refuse when someone created the set since the read.
        self._call(
            f"create {relative} CNAME in {zone}",
            lambda: self._client.record_sets.create_or_update(
                group, zone, relative, "CNAME", record_set, if_none_match="*"
            ),
        )
        log.info("azure: created %s CNAME %s in zone %s", relative, target, zone)

    def _call(self, action: str, send: Callable[[], _T]) -> _T:
        errors = self._errors
        log.debug("azure: %s", action)
        try:
            return send()
        except errors.ClientAuthenticationError as err:
            if type(err).__name__ == "CredentialUnavailableError":
                raise ConfigurationError(
                    f"No Azure credential is available to {action}: {_first_line(err)}",
                    hint="Set AZURE_CLIENT_ID, AZURE_TENANT_ID and AZURE_CLIENT_SECRET, run on "
                    "a host with a managed identity, or set the credential option.",
                ) from err
            if getattr(err, "status_code", None):
                raise _http_error(action, err) from err
            raise DnsProviderError(
                f"Azure sign-in failed to {action}: {_first_line(err)}",
                hint="Check the credential option and that the identity exists in the tenant.",
            ) from err
        except errors.HttpResponseError as err:
            raise _http_error(action, err) from err
        except errors.AzureError as err:
            raise DnsProviderError(
                f"Azure could not {action}: {_first_line(err)}",
                hint="Check the network path to Azure Resource Manager, or base_url.",
            ) from err


def _http_error(action: str, err: Any) -> Exception:
    status = getattr(err, "status_code", None)
    code = getattr(getattr(err, "error", None), "code", None) or "-"
    response = getattr(err, "response", None)
    request_id = response.headers.get("x-ms-request-id", "-") if response is not None else "-"
    detail = f"Azure could not {action}: HTTP {status} {code} (request {request_id})."
    if status == 412:
        return DnsConflictError(
            detail, hint="Run the command again to see the records that are there now."
        )
    if status == 409:
        return DnsConflictError(detail, hint="Remove the record in the way, or use --replace.")
    if status == 401:
        return DnsProviderError(
            detail,
            hint="Azure rejected the credential's token; check that the credential option "
            "signs in to the tenant of the subscription.",
        )
    if status == 403:
        return DnsProviderError(detail, hint=_ROLE_HINT)
    if status == 404:
        return ZoneNotFoundError(detail, hint="Check subscription_id, resource_group and zone.")
    return DnsProviderError(detail, hint="Check the zone in the Azure portal.")


def _first_line(err: Exception) -> str:
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
