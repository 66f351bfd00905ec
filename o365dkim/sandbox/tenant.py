"""The sandbox tenant: in-memory DKIM configs and accepted domains behind the cmdlets.

No HTTP here: the server turns requests into ``invoke`` calls and CmdletFailure into the
admin API's error envelope. Two injected hooks connect the tenant to DNS. ``cname_lookup``
is the tenant's own check of a selector host, as Exchange does before enabling signing.
``publish_key`` receives the TXT key record that must appear behind a selector target.
"""

from __future__ import annotations

import datetime
import enum
import logging
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from o365dkim.dns.records import canonical_name, names_equal
from o365dkim.sandbox.binding import (
    BoundParameters,
    CmdletFailure,
    not_found_failure,
    unknown_cmdlet_failure,
    validation_failure,
)
from o365dkim.sandbox.cmdlets import CMDLETS, DEFAULT_KEY_SIZE, cname_missing_text
from o365dkim.sandbox.signing_config import (
    SELECTORS,
    STATUS_CNAME_MISSING,
    STATUS_VALID,
    SigningConfig,
    random_label_suffix,
    selector_targets,
)

log = logging.getLogger(__name__)

CnameLookup = Callable[[str], "str | None"]
KeyPublisher = Callable[[str, str], None]
Clock = Callable[[], datetime.datetime]


def tenant_id_for(name: str) -> str:
    """Return a stable tenant GUID for a tenant name (UUID 5 in the DNS namespace).

    ``contoso`` and ``Contoso.onmicrosoft.com`` give the same GUID.
    """
    return str(uuid.uuid5(uuid.NAMESPACE_DNS, _initial_domain_of(name).lower()))


def utc_now() -> datetime.datetime:
    """Return the current time in UTC, the tenant's default clock."""
    return datetime.datetime.now(datetime.timezone.utc)


class ConfigState(str, enum.Enum):
    """The states a domain's config can be seeded in, matching what Get can show."""

    NONE = "none"  # no row for the domain
    KEYLESS = "keyless"  # a disabled row with empty Selector1CNAME and Selector2CNAME
    DISABLED = "disabled"  # a disabled row with both targets filled
    ENABLED = "enabled"  # signing on, Status Valid


@dataclass(frozen=True)
class CallRecord:
    """One admin API call as the tenant saw it."""

    cmdlet: str
    parameters: dict[str, Any]
    #: "ok", the short exception type of a failure, or the name of an injected fault.
    outcome: str
    status_code: int
    time: datetime.datetime
    client_request_id: str | None = None
    anchor_mailbox: str | None = None


@dataclass
class InvokeResult:
    """The rows a cmdlet returned and the warnings it wrote."""

    rows: list[dict[str, Any]]
    warnings: list[str] = field(default_factory=list)


class SandboxTenant:
    """A Microsoft 365 tenant with accepted domains and DKIM signing configs, in memory.

    Realism knobs (plain attributes, changeable at any time, read when New runs):

    - ``replication_reads``: a new config stays invisible to this many reads, as with
      replication lag. Every Get counts as a read, and so does a Set or Rotate naming it.
    - ``keyless_reads``: this many Get calls show a new config with empty targets and keys.
    - ``unknown_identity_returns_all``: Get with an Identity that matches nothing returns
      every config (True, as documented) or fails with ManagementObjectNotFoundException.
    - ``not_found_status``: the HTTP status of ManagementObjectNotFoundException (404 or 400).
    """

    def __init__(
        self,
        name: str,
        tenant_id: str,
        accepted_domains: Iterable[str],
        *,
        legacy_domains: Iterable[str] = (),
        dkim_letter: str = "r",
        random_suffix: bool = False,
        cname_lookup: CnameLookup | None = None,
        publish_key: KeyPublisher | None = None,
        clock: Clock | None = None,
    ) -> None:
        full_name = _initial_domain_of(name)
        self.name = full_name
        #: The first label of the initial domain, case kept: it appears in selector targets.
        self.prefix = full_name.split(".", 1)[0]
        self.initial_domain = full_name.lower()
        self.tenant_id = tenant_id.lower()
        self.accepted_domains = [canonical_name(domain) for domain in accepted_domains]
        self.legacy_domains = {canonical_name(domain) for domain in legacy_domains}
        self.dkim_letter = dkim_letter
        self.random_suffix = random_suffix
        self.cname_lookup: CnameLookup = cname_lookup or _no_cname
        self.publish_key: KeyPublisher = publish_key or _publish_nothing
        self.clock: Clock = clock or utc_now
        self.replication_reads = 0
        self.keyless_reads = 0
        self.unknown_identity_returns_all = True
        self.not_found_status = 404
        self.call_log: list[CallRecord] = []
        self._lock = threading.RLock()
        self._configs: dict[str, SigningConfig] = {}
        self._add_initial_domain_config()

    # ----- the cmdlet entry point -------------------------------------------------------

    def invoke(
        self,
        cmdlet: str,
        parameters: Mapping[str, Any],
        *,
        client_request_id: str | None = None,
        anchor_mailbox: str | None = None,
    ) -> list[dict[str, Any]]:
        """Run a cmdlet and return its rows, or raise CmdletFailure."""
        return self.invoke_with_warnings(
            cmdlet, parameters, client_request_id=client_request_id, anchor_mailbox=anchor_mailbox
        ).rows

    def invoke_with_warnings(
        self,
        cmdlet: str,
        parameters: Mapping[str, Any],
        *,
        client_request_id: str | None = None,
        anchor_mailbox: str | None = None,
    ) -> InvokeResult:
        """Run a cmdlet and return its rows and warnings, or raise CmdletFailure.

        Every call, failed or not, is appended to ``call_log``.
        """
        spec = CMDLETS.get(cmdlet.strip().lower())
        with self._lock:
            try:
                if spec is None:
                    raise unknown_cmdlet_failure(cmdlet)
                warnings: list[str] = []
                rows = spec.handler(self, BoundParameters(parameters, spec.parameters), warnings)
            except CmdletFailure as failure:
                log.debug("Sandbox %s: %s failed: %s", self.name, cmdlet, failure.short_type)
                self.record_call(
                    cmdlet,
                    parameters,
                    failure.short_type,
                    failure.status_code,
                    client_request_id=client_request_id,
                    anchor_mailbox=anchor_mailbox,
                )
                raise
            log.debug("Sandbox %s: %s returned %d rows", self.name, cmdlet, len(rows))
            self.record_call(
                cmdlet,
                parameters,
                "ok",
                200,
                client_request_id=client_request_id,
                anchor_mailbox=anchor_mailbox,
            )
            return InvokeResult(rows, warnings)

    def record_call(
        self,
        cmdlet: str,
        parameters: Mapping[str, Any],
        outcome: str,
        status_code: int,
        *,
        client_request_id: str | None = None,
        anchor_mailbox: str | None = None,
    ) -> None:
        """Append a call to ``call_log``; the server also records injected faults here."""
        record = CallRecord(
            cmdlet=cmdlet,
            parameters=dict(parameters),
            outcome=outcome,
            status_code=status_code,
            time=self.clock(),
            client_request_id=client_request_id,
            anchor_mailbox=anchor_mailbox,
        )
        with self._lock:
            self.call_log.append(record)

    # ----- steps the cmdlets use, called with the tenant's lock held by invoke -----------

    def find_config(self, identity: str) -> SigningConfig:
        """Return the config for ``identity`` or raise the not-found failure.

        This counts as a read, which replication lag may still miss.
        """
        config = self._configs.get(canonical_name(identity))
        if config is None or not self._replicated(config):
            raise not_found_failure(identity, self.not_found_status)
        return config

    def _replicated(self, config: SigningConfig) -> bool:
        if config.replication_reads_left > 0:
            config.replication_reads_left -= 1
            return False
        return True

    def visible_configs(self) -> list[SigningConfig]:
        """Return the configs a Get can see now; each replicating config counts one read."""
        return [config for config in self._configs.values() if self._replicated(config)]

    def render_row(self, config: SigningConfig, *, count_read: bool = True) -> dict[str, Any]:
        """Return the Get row of ``config``, keyless while its keyless reads last."""
        keyless = config.keyless_reads_left != 0
        if count_read and config.keyless_reads_left > 0:
            config.keyless_reads_left -= 1
        return config.to_row(keyless=keyless)

    def enable_signing(self, config: SigningConfig) -> None:
        """Check both selector CNAMEs through ``cname_lookup``, then turn signing on.

        A CNAME matches when it equals the target case-insensitively, ignoring a final dot.
        Raises the CNAME-missing ValidationException, leaving signing off, when either differs.
        """
        config.last_checked = self.clock()
        if config.domain == self.initial_domain:
            config.enabled = True
            return
        hosts = [f"{selector}._domainkey.{config.domain}" for selector in SELECTORS]
        found = [self.cname_lookup(host) for host in hosts]
        if all(
            value and names_equal(value, target)
            for value, target in zip(found, config.targets, strict=True)
        ):
            config.enabled = True
            config.status = STATUS_VALID
            return
        config.status = STATUS_CNAME_MISSING
        raise validation_failure(cname_missing_text(config))

    def create_config(self, domain: str, key_size: int, *, publish: bool = True) -> SigningConfig:
        """Create ``domain``'s config with new keys and publish the active selector's key."""
        suffix = random_label_suffix() if self.random_suffix else ""
        targets = selector_targets(
            domain,
            self.prefix,
            self.dkim_letter,
            legacy=domain in self.legacy_domains,
            suffix=suffix,
        )
        now = self.clock()
        config = SigningConfig.create(domain, targets, key_size, now)
        self._configs[domain] = config
        if publish:
            self.publish_selector_key(config, config.active_selector(now))
        log.info(
            "Sandbox %s: created DKIM config for %s, targets %s and %s", self.name, domain, *targets
        )
        return config

    def publish_selector_key(self, config: SigningConfig, selector: str) -> None:
        """Send ``selector``'s TXT key record to ``publish_key`` for its target."""
        if selector not in config.published_selectors:
            config.published_selectors.append(selector)
        self.publish_key(config.target_of(selector), config.keys[selector].txt_value)

    def accepted_domain_names(self) -> list[str]:
        """Return the accepted domains, the initial domain first."""
        return [
            self.initial_domain,
            *(d for d in self.accepted_domains if d != self.initial_domain),
        ]

    def _add_initial_domain_config(self) -> None:
        # Microsoft signs the initial domain with its own DNS, so nothing is published.
        targets = selector_targets(self.initial_domain, self.prefix, "", legacy=True)
        config = SigningConfig.create(self.initial_domain, targets, DEFAULT_KEY_SIZE, self.clock())
        config.enabled = True
        config.status = STATUS_VALID
        config.is_default = True
        self._configs[self.initial_domain] = config

    # ----- seeding and state ------------------------------------------------------------

    def seed_config(
        self,
        domain: str,
        state: ConfigState,
        *,
        key_size: int = 2048,
        keyless_reads: int = -1,
    ) -> None:
        """Put ``domain``'s config into ``state`` directly, without the enable check.

        ``keyless_reads`` applies to ConfigState.KEYLESS: the number of Get calls that show
        the row without targets (negative: every call). The domain must be accepted.
        """
        name = canonical_name(domain)
        if name not in self.accepted_domain_names():
            raise ValueError(f"Cannot seed {name!r}: it is not an accepted domain of {self.name}.")
        if name == self.initial_domain:
            raise ValueError(
                f"Cannot seed {name!r}: Microsoft manages the initial domain's config."
            )
        with self._lock:
            self._configs.pop(name, None)
            if state is ConfigState.NONE:
                return
            # A keyless config has no key to publish yet.
            config = self.create_config(name, key_size, publish=state is not ConfigState.KEYLESS)
            if state is ConfigState.KEYLESS:
                config.keyless_reads_left = keyless_reads
            elif state is ConfigState.ENABLED:
                config.enabled = True
                config.status = STATUS_VALID

    def config(self, domain: str) -> SigningConfig | None:
        """Return the stored config of ``domain``, or None, without counting a read."""
        with self._lock:
            return self._configs.get(canonical_name(domain))

    def republish_keys(self) -> None:
        """Send every key published so far to ``publish_key`` again, after a restore."""
        with self._lock:
            for config in self._configs.values():
                for selector in config.published_selectors:
                    self.publish_key(config.target_of(selector), config.keys[selector].txt_value)

    def to_dict(self) -> dict[str, Any]:
        """Return the tenant as JSON data (configs and key material, not the call log)."""
        with self._lock:
            return {
                "name": self.name,
                "tenant_id": self.tenant_id,
                "accepted_domains": list(self.accepted_domains),
                "legacy_domains": sorted(self.legacy_domains),
                "dkim_letter": self.dkim_letter,
                "random_suffix": self.random_suffix,
                "replication_reads": self.replication_reads,
                "keyless_reads": self.keyless_reads,
                "unknown_identity_returns_all": self.unknown_identity_returns_all,
                "not_found_status": self.not_found_status,
                "configs": [config.to_dict() for config in self._configs.values()],
            }

    @classmethod
    def from_dict(
        cls,
        data: Mapping[str, Any],
        *,
        cname_lookup: CnameLookup | None = None,
        publish_key: KeyPublisher | None = None,
        clock: Clock | None = None,
    ) -> SandboxTenant:
        """Rebuild a tenant written by to_dict; call republish_keys to refill the DNS side."""
        tenant = cls(
            data["name"],
            data["tenant_id"],
            data["accepted_domains"],
            legacy_domains=data.get("legacy_domains", ()),
            dkim_letter=data.get("dkim_letter", "r"),
            random_suffix=bool(data.get("random_suffix", False)),
            cname_lookup=cname_lookup,
            publish_key=publish_key,
            clock=clock,
        )
        tenant.replication_reads = int(data.get("replication_reads", 0))
        tenant.keyless_reads = int(data.get("keyless_reads", 0))
        tenant.unknown_identity_returns_all = bool(data.get("unknown_identity_returns_all", True))
        tenant.not_found_status = int(data.get("not_found_status", 404))
        configs = [SigningConfig.from_dict(item) for item in data.get("configs", ())]
        tenant._configs = {config.domain: config for config in configs}
        return tenant


def _initial_domain_of(name: str) -> str:
    """Return ``<prefix>.onmicrosoft.com`` for a tenant name given with or without it."""
    full_name = name.strip().rstrip(".")
    if not full_name.lower().endswith(".onmicrosoft.com"):
        full_name = f"{full_name}.onmicrosoft.com"
    return full_name


def _no_cname(host: str) -> str | None:
    return None


def _publish_nothing(target: str, value: str) -> None:
    return None
