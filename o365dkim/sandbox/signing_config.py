"""One domain's DKIM signing config in the sandbox tenant: keys, targets, rotation, rows."""

from __future__ import annotations

import base64
import datetime
import secrets
import string
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

SELECTORS = ("selector1", "selector2")
KEY_SIZES = (1024, 2048)
#: Status values that Get-DkimSigningConfig documents.
STATUS_VALID = "Valid"
STATUS_CNAME_MISSING = "CnameMissing"
#: A new key signs this long after Rotate-DkimSigningConfig (Microsoft documents about 4 days).
ROTATION_DELAY = datetime.timedelta(hours=96)
_SUFFIX_ALPHABET = string.ascii_lowercase + string.digits
_POOL_SIZE = 6
_POOL: dict[int, list[SelectorKey]] = {}
_POOL_NEXT: dict[int, int] = {}
_POOL_LOCK = threading.Lock()


@dataclass(frozen=True)
class SelectorKey:
    """A selector's RSA public key: its size in bits and its base64 DER SubjectPublicKeyInfo."""

    size: int
    public_key: str

    @classmethod
    def generate(cls, size: int) -> SelectorKey:
        """Return an RSA public key of ``size`` bits from a small rotating pool.

        The sandbox never signs mail, so keys only need to look real and to differ from
        the previous one (rotation checks that). Generating a 2048-bit key takes tens of
        milliseconds, which a run over a thousand domains would feel, so the first
        ``_POOL_SIZE`` keys of each size are generated and then handed out in turn.
        """
        with _POOL_LOCK:
            pool = _POOL.setdefault(size, [])
            counter = _POOL_NEXT.get(size, 0)
            _POOL_NEXT[size] = counter + 1
            if len(pool) >= _POOL_SIZE:
                return pool[counter % _POOL_SIZE]
        key = cls._fresh(size)
        with _POOL_LOCK:
            pool.append(key)
        return key

    @classmethod
    def _fresh(cls, size: int) -> SelectorKey:
        private_key = rsa.generate_private_key(public_exponent=65537, key_size=size)
        der = private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return cls(size=size, public_key=base64.b64encode(der).decode("ascii"))

    @property
    def txt_value(self) -> str:
        """The DKIM key record (RFC 6376 section 3.6.1) published behind the selector's target."""
        return f"v=DKIM1; k=rsa; p={self.public_key}"


def selector_targets(
    domain: str, prefix: str, letter: str, *, legacy: bool, suffix: str = ""
) -> tuple[str, str]:
    """Return the Selector1CNAME and Selector2CNAME values Exchange assigns to ``domain``.

    Domains added since May 2025 point at ``<prefix>.<letter>-v1.dkim.mail.microsoft``;
    older (legacy) domains point into the tenant's ``<prefix>.onmicrosoft.com`` zone. The
    prefix keeps its case, and ``suffix`` (some tenants get one) ends the first label.
    """
    dashed = domain.replace(".", "-")
    label_end = f"-{suffix}" if suffix else ""
    zone = f"{prefix}.onmicrosoft.com" if legacy else f"{prefix}.{letter}-v1.dkim.mail.microsoft"
    first, second = (f"{selector}-{dashed}{label_end}._domainkey.{zone}" for selector in SELECTORS)
    return first, second


def random_label_suffix() -> str:
    """Return a random four-character suffix like the ones seen on some tenants' targets."""
    return "".join(secrets.choice(_SUFFIX_ALPHABET) for _ in range(4))


def format_time(value: datetime.datetime | None) -> str | None:
    """Format a UTC time as the admin API does (ISO 8601 with a final Z), None staying None."""
    if value is None:
        return None
    return value.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(value: str | None) -> datetime.datetime | None:
    """Parse a time written by format_time."""
    if not value:
        return None
    return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))


@dataclass
class SigningConfig:
    """The stored state behind one Get-DkimSigningConfig row."""

    domain: str
    targets: tuple[str, str]
    keys: dict[str, SelectorKey]
    key_creation_time: datetime.datetime
    enabled: bool = False
    status: str = STATUS_CNAME_MISSING
    # A fresh config signs with selector1: its RotateOnDate is the creation time, and the
    # selector after that date is selector1.
    rotate_on_date: datetime.datetime | None = None
    selector_before_rotate: str = SELECTORS[1]
    selector_after_rotate: str = SELECTORS[0]
    last_checked: datetime.datetime | None = None
    is_default: bool = False
    #: Reads by Identity that still miss this config, as if it had not replicated yet.
    replication_reads_left: int = 0
    #: Get calls that still show the row without targets and keys; negative means always.
    keyless_reads_left: int = 0
    #: Selectors whose keys were sent to the DNS side, in order.
    published_selectors: list[str] = field(default_factory=list)
    guid: str = field(default_factory=lambda: str(uuid.uuid4()))

    def __post_init__(self) -> None:
        if self.rotate_on_date is None:
            self.rotate_on_date = self.key_creation_time

    @classmethod
    def create(
        cls,
        domain: str,
        targets: tuple[str, str],
        key_size: int,
        now: datetime.datetime,
    ) -> SigningConfig:
        """Create a config with fresh keys of ``key_size`` bits for both selectors."""
        keys = {selector: SelectorKey.generate(key_size) for selector in SELECTORS}
        return cls(domain=domain, targets=targets, keys=keys, key_creation_time=now)

    def active_selector(self, now: datetime.datetime) -> str:
        """Return the selector that signs at ``now``."""
        if self.rotate_on_date is not None and now < self.rotate_on_date:
            return self.selector_before_rotate
        return self.selector_after_rotate

    def rotation_pending(self, now: datetime.datetime) -> bool:
        """Return True while a rotated-in key waits for its RotateOnDate."""
        return self.rotate_on_date is not None and now < self.rotate_on_date

    def target_of(self, selector: str) -> str:
        """Return the CNAME target of ``selector``."""
        return self.targets[SELECTORS.index(selector)]

    def rotate(self, now: datetime.datetime, key_size: int | None) -> str:
        """Give the inactive selector a new key that signs from now + 96 hours.

        Returns the rotated selector. Without ``key_size`` the new key keeps the size of
        the active one.
        """
        active = self.active_selector(now)
        inactive = SELECTORS[1] if active == SELECTORS[0] else SELECTORS[0]
        size = key_size or self.keys[active].size
        self.keys[inactive] = SelectorKey.generate(size)
        self.key_creation_time = now
        self.rotate_on_date = now + ROTATION_DELAY
        self.selector_before_rotate = active
        self.selector_after_rotate = inactive
        return inactive

    def to_row(self, *, keyless: bool) -> dict[str, Any]:
        """Return the row Get-DkimSigningConfig shows, with the API's type annotations.

        ``keyless`` shows the state of a config whose keys are not ready yet: targets and
        keys empty, key sizes 0.
        """
        row: dict[str, Any] = {
            "Domain": self.domain,
            "Identity": self.domain,
            "Name": self.domain,
            "Id": self.domain,
            "Guid": self.guid,
            "Enabled": self.enabled,
            "Status": self.status,
        }
        for number, selector in enumerate(SELECTORS, start=1):
            key = self.keys[selector]
            row[f"Selector{number}CNAME"] = "" if keyless else self.target_of(selector)
            row[f"Selector{number}KeySize"] = 0 if keyless else key.size
            row[f"Selector{number}KeySize@odata.type"] = "#Decimal"
            row[f"Selector{number}PublicKey"] = "" if keyless else key.txt_value
        row.update(self._row_dates())
        row.update(
            {
                "Algorithm": "RsaSHA256",
                "HeaderCanonicalization": "Relaxed",
                "BodyCanonicalization": "Relaxed",
                "IsDefault": self.is_default,
                "IsValid": True,
                "ObjectState": "Unchanged",
            }
        )
        return row

    def _row_dates(self) -> dict[str, Any]:
        return {
            "KeyCreationTime": format_time(self.key_creation_time),
            "KeyCreationTime@odata.type": "#DateTime",
            "RotateOnDate": format_time(self.rotate_on_date),
            "RotateOnDate@odata.type": "#DateTime",
            "SelectorBeforeRotateOnDate": self.selector_before_rotate,
            "SelectorAfterRotateOnDate": self.selector_after_rotate,
            "LastChecked": format_time(self.last_checked),
            "LastChecked@odata.type": "#DateTime",
        }

    def to_dict(self) -> dict[str, Any]:
        """Return the config as plain JSON data, public keys included."""
        return {
            "domain": self.domain,
            "targets": list(self.targets),
            "keys": {
                name: {"size": k.size, "public_key": k.public_key} for name, k in self.keys.items()
            },
            "key_creation_time": format_time(self.key_creation_time),
            "enabled": self.enabled,
            "status": self.status,
            "rotate_on_date": format_time(self.rotate_on_date),
            "selector_before_rotate": self.selector_before_rotate,
            "selector_after_rotate": self.selector_after_rotate,
            "last_checked": format_time(self.last_checked),
            "is_default": self.is_default,
            "replication_reads_left": self.replication_reads_left,
            "keyless_reads_left": self.keyless_reads_left,
            "published_selectors": list(self.published_selectors),
            "guid": self.guid,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SigningConfig:
        """Rebuild a config written by to_dict."""
        created = parse_time(data["key_creation_time"])
        if created is None:
            raise ValueError(f"Sandbox config for {data['domain']!r} has no key_creation_time.")
        first, second = data["targets"]
        return cls(
            domain=data["domain"],
            targets=(first, second),
            keys={
                name: SelectorKey(int(k["size"]), k["public_key"])
                for name, k in data["keys"].items()
            },
            key_creation_time=created,
            enabled=bool(data["enabled"]),
            status=data["status"],
            rotate_on_date=parse_time(data.get("rotate_on_date")),
            selector_before_rotate=data["selector_before_rotate"],
            selector_after_rotate=data["selector_after_rotate"],
            last_checked=parse_time(data.get("last_checked")),
            is_default=bool(data.get("is_default", False)),
            replication_reads_left=int(data.get("replication_reads_left", 0)),
            keyless_reads_left=int(data.get("keyless_reads_left", 0)),
            published_selectors=list(data.get("published_selectors", ())),
            guid=data.get("guid") or str(uuid.uuid4()),
        )
