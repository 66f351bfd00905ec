"""The cmdlets the sandbox tenant runs, with the rules and texts Exchange Online shows.

Each handler takes the tenant, the bound parameters and a list for warnings, and returns
the rows of the ``value`` array or raises CmdletFailure.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from o365dkim.dns.records import canonical_name, names_equal
from o365dkim.sandbox.binding import (
    BoundParameters,
    already_exists_failure,
    not_found_failure,
    validation_failure,
)
from o365dkim.sandbox.signing_config import (
    KEY_SIZES,
    SELECTORS,
    STATUS_CNAME_MISSING,
    STATUS_VALID,
    SigningConfig,
    format_time,
)

if TYPE_CHECKING:
    from o365dkim.sandbox.tenant import SandboxTenant

log = logging.getLogger(__name__)

Rows = list[dict[str, Any]]
Handler = Callable[["SandboxTenant", BoundParameters, list[str]], Rows]

# New-DkimSigningConfig uses 1024 bits when KeySize is not given (documented default).
DEFAULT_KEY_SIZE = 1024
_ROTATABLE_STATUSES = (STATUS_VALID, STATUS_CNAME_MISSING)


@dataclass(frozen=True)
class CmdletSpec:
    """A cmdlet's accepted parameter names and its handler."""

    parameters: tuple[str, ...]
    handler: Handler


def get_dkim_signing_config(
    tenant: SandboxTenant, params: BoundParameters, warnings: list[str]
) -> Rows:
    """Return the config of Identity, or every config when Identity matches nothing."""
    identity = params.text("Identity")
    visible = tenant.visible_configs()
    if identity is not None:
        matches = [config for config in visible if names_equal(config.domain, identity)]
        if matches:
            visible = matches
        elif not tenant.unknown_identity_returns_all:
            raise not_found_failure(identity, tenant.not_found_status)
    return [tenant.render_row(config) for config in visible]


def new_dkim_signing_config(
    tenant: SandboxTenant, params: BoundParameters, warnings: list[str]
) -> Rows:
    """Create a config for an accepted domain that has none, and return its row."""
    domain = canonical_name(params.text("DomainName", required=True) or "")
    enabled = params.boolean("Enabled")
    key_size = params.choice("KeySize", KEY_SIZES) or DEFAULT_KEY_SIZE
    if domain not in tenant.accepted_domain_names():
        raise validation_failure(
            f"Invalid domain name specified {domain}. Please specify tenant name or valid "
            "accepted domain."
        )
    if tenant.config(domain) is not None:
        raise already_exists_failure(domain)

    config = tenant.create_config(domain, key_size)
    config.replication_reads_left = tenant.replication_reads
    config.keyless_reads_left = tenant.keyless_reads
    if enabled:
        # NOTE: reports show New with -Enabled $true failing when the CNAMEs are missing.
        # Whether the config stays is not known; the sandbox keeps it, disabled.
        tenant.enable_signing(config)
    return [tenant.render_row(config, count_read=False)]


def set_dkim_signing_config(
    tenant: SandboxTenant, params: BoundParameters, warnings: list[str]
) -> Rows:
    """Turn signing on (after Exchange's own CNAME check) or off; returns no rows."""
    config = tenant.find_config(params.text("Identity", required=True) or "")
    enabled = params.boolean("Enabled")
    if enabled is None or enabled == config.enabled:
        warnings.append(
            f"The command completed successfully but no settings of '{config.domain}' "
            "have been modified."
        )
        return []

    if enabled:
        tenant.enable_signing(config)
    else:
        config.enabled = False
    log.info("Sandbox: DKIM signing for %s is now %s", config.domain, "on" if enabled else "off")
    return []


def rotate_dkim_signing_config(
    tenant: SandboxTenant, params: BoundParameters, warnings: list[str]
) -> Rows:
    """Give the inactive selector a new key that signs after RotateOnDate; returns no rows."""
    config = tenant.find_config(params.text("Identity", required=True) or "")
    key_size = params.choice("KeySize", KEY_SIZES)
    now = tenant.clock()
    # NOTE: the rule (enabled, Status Valid or CnameMissing, no rotation pending) is
    # documented; the two error texts below are written here, not recorded ones.
    if not config.enabled or config.status not in _ROTATABLE_STATUSES:
        raise validation_failure(
            f"The DKIM signing config for '{config.domain}' can't be rotated because it is not "
            f"enabled or its status is {config.status}. Enable it first."
        )
    if config.rotation_pending(now):
        raise validation_failure(
            f"A key rotation for '{config.domain}' is already pending until "
            f"{format_time(config.rotate_on_date)}. Rotate again after that time."
        )

    rotated = config.rotate(now, key_size)
    tenant.publish_selector_key(config, rotated)
    log.info(
        "Sandbox: rotated %s of %s, signing from %s",
        rotated,
        config.domain,
        format_time(config.rotate_on_date),
    )
    return []


def get_accepted_domain(
    tenant: SandboxTenant, params: BoundParameters, warnings: list[str]
) -> Rows:
    """Return the accepted domains, or the one named by Identity."""
    identity = params.text("Identity")
    domains = tenant.accepted_domain_names()
    if identity is not None:
        domains = [domain for domain in domains if names_equal(domain, identity)]
        if not domains:
            raise not_found_failure(identity, tenant.not_found_status)
    return [_accepted_domain_row(domain, tenant.initial_domain) for domain in domains]


def cname_missing_text(config: SigningConfig) -> str:
    """Return the enable error text; it names hosts relative to the domain, as Exchange does."""
    parts = [
        "CNAME record does not exist for this config. Please publish the following two CNAME "
        f"records first. Domain Name : {config.domain}"
    ]
    for selector in SELECTORS:
        parts.append(
            f"Host Name : {selector}._domainkey Points to address or value: "
            f"{config.target_of(selector)}"
        )
    parts.append(
        "If you have already published the CNAME records, sync will take a few minutes to as "
        "many as 4 days based on DNS. Please return and retry this step later."
    )
    return " ".join(parts)


def _accepted_domain_row(domain: str, initial_domain: str) -> dict[str, Any]:
    initial = domain == initial_domain
    return {
        "Name": domain,
        "Identity": domain,
        "DomainName": domain,
        "DomainType": "Authoritative",
        "Default": initial,
        "InitialDomain": initial,
        "MatchSubDomains": False,
        "IsValid": True,
    }


#: Cmdlets by lower-case name, because PowerShell resolves names case-insensitively.
CMDLETS: dict[str, CmdletSpec] = {
    "get-dkimsigningconfig": CmdletSpec(("Identity",), get_dkim_signing_config),
    "new-dkimsigningconfig": CmdletSpec(
        ("DomainName", "Enabled", "KeySize"), new_dkim_signing_config
    ),
    "set-dkimsigningconfig": CmdletSpec(("Identity", "Enabled"), set_dkim_signing_config),
    "rotate-dkimsigningconfig": CmdletSpec(("Identity", "KeySize"), rotate_dkim_signing_config),
    "get-accepteddomain": CmdletSpec(("Identity",), get_accepted_domain),
}
