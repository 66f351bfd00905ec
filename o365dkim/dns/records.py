"""Record values shared by providers, the propagation check and the workflow."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


def canonical_name(name: str) -> str:
    """Return a DNS name lower-cased and without its final dot, for comparisons."""
    return name.strip().rstrip(".").lower()


def absolute_name(name: str) -> str:
    """Return a DNS name without surrounding spaces or its final dot, case kept."""
    return name.strip().rstrip(".")


def names_equal(first: str, second: str) -> bool:
    """Compare two DNS names case-insensitively, ignoring a final dot."""
    return canonical_name(first) == canonical_name(second)


@dataclass(frozen=True)
class CnameRecord:
    """A CNAME to publish: both names absolute, without the final dot.

    The host is lower-cased; the target keeps the case Exchange returned, because it is
    published exactly as given (DNS compares names case-insensitively either way).
    """

    host: str
    target: str
    ttl: int = 3600

    def __post_init__(self) -> None:
        object.__setattr__(self, "host", canonical_name(self.host))
        object.__setattr__(self, "target", absolute_name(self.target))

    def zone_file_line(self) -> str:
        """Return the record as a line for a BIND-style zone file, names absolute."""
        return f"{self.host}. {self.ttl} IN CNAME {self.target}."


@dataclass(frozen=True)
class ExistingRecord:
    """A record found at a name at the DNS provider."""

    name: str
    rtype: str
    value: str
    ttl: int | None = None
    # Provider-specific facts that matter for conflicts, such as {"proxied": "true"}.
    attributes: dict[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        """Return the record as one readable line for error messages."""
        extra = "".join(f" ({key}={value})" for key, value in sorted(self.attributes.items()))
        return f"{canonical_name(self.name)} {self.rtype} {self.value}{extra}"


class PublishAction(str, enum.Enum):
    """Action a provider took to make a CNAME exist."""

    CREATED = "created"
    UNCHANGED = "unchanged"
    REPLACED = "replaced"
    MANUAL = "manual"


class PlanAction(str, enum.Enum):
    """Planned action of publishing a CNAME, found without changing anything."""

    CREATE = "create"
    UNCHANGED = "unchanged"
    REPLACE = "replace"
    CONFLICT = "conflict"
    MANUAL = "manual"


@dataclass(frozen=True)
class PublishPlan:
    """The planned action for one selector name and the records found there."""

    host: str
    action: PlanAction
    existing: tuple[ExistingRecord, ...] = ()


@dataclass(frozen=True)
class PublishResult:
    """The outcome of publishing one CNAME."""

    record: CnameRecord
    action: PublishAction
    zone: str
    replaced: tuple[ExistingRecord, ...] = ()
    #: Problems that did not stop publishing, each one sentence with its fix.
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class AccessReport:
    """The outcome of a read-only check of a provider's credentials and permissions."""

    provider: str
    #: The zone at the provider that contains the name that was checked.
    zone: str
    #: Checks that passed, one sentence each.
    checks: tuple[str, ...]
    #: Checks that could not run or found a problem, one sentence each with its fix.
    warnings: tuple[str, ...] = ()
