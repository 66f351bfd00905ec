"""Typed rows returned by the DKIM and accepted-domain cmdlets."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from o365dkim.dns.records import absolute_name, canonical_name


@dataclass(frozen=True)
class DkimConfig:
    """One row of Get-DkimSigningConfig for a domain."""

    domain: str
    enabled: bool
    status: str
    selector1_cname: str | None
    selector2_cname: str | None
    selector1_key_size: int | None
    selector2_key_size: int | None
    rotate_on_date: datetime | None = None
    key_creation_time: datetime | None = None
    selector_before_rotate: str | None = None
    selector_after_rotate: str | None = None
    last_checked: datetime | None = None

    @property
    def has_targets(self) -> bool:
        """Return True when both selector CNAME targets are filled (a usable config)."""
        return bool(self.selector1_cname) and bool(self.selector2_cname)

    @property
    def active_selector(self) -> str:
        """Return the selector that signs now: the one before RotateOnDate until that date."""
        now = datetime.now(tz=self.rotate_on_date.tzinfo) if self.rotate_on_date else None
        if self.rotate_on_date and now is not None and now >= self.rotate_on_date:
            return self.selector_after_rotate or "selector1"
        return self.selector_before_rotate or "selector1"

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> DkimConfig:
        """Build a config from an API row, ignoring the ``@odata`` annotation keys."""
        return cls(
            domain=canonical_name(str(row.get("Domain") or row.get("Name") or "")),
            enabled=_as_bool(row.get("Enabled")),
            status=str(row.get("Status") or ""),
            selector1_cname=_as_name(row.get("Selector1CNAME")),
            selector2_cname=_as_name(row.get("Selector2CNAME")),
            selector1_key_size=_as_int(row.get("Selector1KeySize")),
            selector2_key_size=_as_int(row.get("Selector2KeySize")),
            rotate_on_date=_as_datetime(row.get("RotateOnDate")),
            key_creation_time=_as_datetime(row.get("KeyCreationTime")),
            selector_before_rotate=_as_text(row.get("SelectorBeforeRotateOnDate")),
            selector_after_rotate=_as_text(row.get("SelectorAfterRotateOnDate")),
            last_checked=_as_datetime(row.get("LastChecked")),
        )


@dataclass(frozen=True)
class AcceptedDomain:
    """One row of Get-AcceptedDomain."""

    domain: str
    domain_type: str
    default: bool
    initial: bool

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> AcceptedDomain:
        """Build an accepted domain from an API row."""
        return cls(
            domain=canonical_name(str(row.get("DomainName") or row.get("Name") or "")),
            domain_type=str(row.get("DomainType") or ""),
            default=_as_bool(row.get("Default")),
            initial=_as_bool(row.get("InitialDomain")),
        )


def _as_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return bool(value)


def _as_text(value: Any) -> str | None:
    text = str(value).strip() if value is not None else ""
    return text or None


def _as_name(value: Any) -> str | None:
    text = _as_text(value)
    return absolute_name(text) if text else None


def _as_int(value: Any) -> int | None:
    if value in (None, ""):
        return None
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return None


def _as_datetime(value: Any) -> datetime | None:
    text = _as_text(value)
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
