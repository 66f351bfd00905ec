"""The route53 provider: Amazon Route 53 through boto3 (``pip install 'o365dkim[route53]'``).

Route 53 takes absolute names and applies one change batch atomically. A CREATE of a
record set that already exists fails the whole batch, so a record written by someone else
since the read stops the change. A change is PENDING until every Route 53 name server has
it, then INSYNC, and publish waits for INSYNC.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from o365dkim.dns.options import ProviderOptions, longest_zone, parse_seconds, parse_ttl
from o365dkim.dns.provider import DnsProvider
from o365dkim.dns.records import AccessReport, CnameRecord, ExistingRecord, canonical_name
from o365dkim.errors import (
    ConfigurationError,
    DnsConflictError,
    DnsProviderError,
    ZoneNotFoundError,
)

log = logging.getLogger(__name__)

_OPTIONS = (
    "hosted_zone_id", "endpoint_url", "region", "profile", "access_key_id",
    "secret_access_key", "session_token", "ttl", "timeout", "wait_timeout", "wait_interval",
)  # fmt: skip
_INSTALL_HINT = "Install it with: pip install 'o365dkim[route53]'"
_IAM_HINT = (
    "Check that the AWS identity may call route53:ListHostedZones, GetHostedZone, "
    "ListResourceRecordSets, ChangeResourceRecordSets and GetChange on the hosted zone."
)
_ESCAPE = re.compile(r"\\(\d{3})")
_COMMENT = "DKIM selector for Microsoft 365, set by o365dkim"


class Route53Provider(DnsProvider):
    """Publishes records in a public Route 53 hosted zone.

    Credentials come from ``access_key_id``/``secret_access_key`` (and ``session_token``)
    when given, else from boto3's own chain: the AWS_* environment variables, ``profile``
    or the shared config files, or the instance or task role. ``hosted_zone_id`` skips the
    zone lookup. ``endpoint_url`` replaces the Route 53 endpoint (tests, proxies).
    ``wait_timeout`` and ``wait_interval`` (seconds) bound the wait for INSYNC.
    """

    name = "route53"
    relative_names = False

    def __init__(
        self,
        *,
        hosted_zone_id: str | None = None,
        endpoint_url: str | None = None,
        region: str = "us-east-1",
        profile: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        session_token: str | None = None,
        ttl: int | str | None = None,
        timeout: float | str = 30,
        wait_timeout: float | str = 300,
        wait_interval: float | str = 5,
    ) -> None:
        self.ttl = None if ttl is None else parse_ttl(ttl)
        self.hosted_zone_id = _bare_zone_id(hosted_zone_id) if hosted_zone_id else None
        self.wait_timeout = parse_seconds(wait_timeout, "wait_timeout")
        self.wait_interval = parse_seconds(wait_interval, "wait_interval")
        self._client = _Route53Client(
            endpoint_url=endpoint_url,
            region=region,
            profile=profile,
            keys=(access_key_id, secret_access_key, session_token),
            timeout=parse_seconds(timeout),
        )
        self._zone_ids: dict[str, str] = {}

    @classmethod
    def from_options(cls, options: Mapping[str, str]) -> Route53Provider:
        """Build the provider from string options, the environment or the keyring."""
        values = ProviderOptions(cls.name, options, _OPTIONS)
        settings = {key: values.get(key) for key in _OPTIONS}
        return cls(**{key: value for key, value in settings.items() if value})

    def __repr__(self) -> str:
        return f"Route53Provider(hosted_zone_id={self.hosted_zone_id!r})"

    def find_zone(self, host: str) -> str:
        """Return the public hosted zone with the longest name that contains ``host``."""
        if self.hosted_zone_id:
            return self._zone_of_id(host)
        public: dict[str, list[str]] = {}
        for zone in self._client.hosted_zones():
            if zone.get("Config", {}).get("PrivateZone"):
                continue  # private zones are served only inside their VPCs
            public.setdefault(_name(zone["Name"]), []).append(_bare_zone_id(zone["Id"]))
        found = longest_zone(host, public)
        if found is None:
            raise ZoneNotFoundError(
                f"No public Route 53 hosted zone of this AWS account contains "
                f"{canonical_name(host)}.",
                hint="Check the domain and the account, or set hosted_zone_id.",
            )
        if len(public[found]) > 1:
            raise ConfigurationError(
                f"The AWS account has {len(public[found])} public hosted zones named {found}: "
                f"{', '.join(public[found])}.",
                hint="Set hosted_zone_id to the one the domain is delegated to.",
            )
        self._zone_ids[found] = public[found][0]
        log.debug("route53: %s is in zone %s (%s)", host, found, public[found][0])
        return found

    def list_records(self, zone: str, host: str) -> list[ExistingRecord]:
        """Return every record at ``host``; alias records show their target as "ALIAS name"."""
        name = canonical_name(host)
        return [
            item
            for rrset in self._client.record_sets(self._zone_id(zone), name)
            for item in _existing(rrset)
        ]

    def write_cname(self, zone: str, record: CnameRecord, remove: Sequence[ExistingRecord]) -> None:
        """Delete the record sets of ``remove`` and create the CNAME in one change batch."""
        zone_id = self._zone_id(zone)
        current = self._client.record_sets(zone_id, record.host)
        changes: list[dict[str, Any]] = [
            {"Action": "DELETE", "ResourceRecordSet": rrset}
            for rrset in current
            if any(item in remove for item in _existing(rrset))
        ]
        ttl = self.ttl if self.ttl is not None else record.ttl
        cname = {
            "Name": record.host + ".",
            "Type": "CNAME",
            "TTL": ttl,
            "ResourceRecords": [{"Value": record.target + "."}],
        }
        changes.append({"Action": "CREATE", "ResourceRecordSet": cname})
        change_id = self._client.change(zone_id, changes)
        status = wait_for_change(
            self._client.change_status,
            change_id,
            timeout=self.wait_timeout,
            interval=self.wait_interval,
        )
        if status != "INSYNC":
            log.warning(
                "route53: change %s is still %s after %g s; the propagation check will "
                "confirm the record at the name servers",
                change_id,
                status,
                self.wait_timeout,
            )

    def check_access(self, zone: str) -> AccessReport:
        """Find the zone and read records, then report what the check could not cover."""
        report = super().check_access(zone)
        return AccessReport(
            report.provider,
            report.zone,
            (f"AWS accepted the credentials ({self._client.identity}).", *report.checks),
            (
                "route53:ChangeResourceRecordSets and route53:GetChange are not checked, "
                "because that needs a write.",
            ),
        )

    def _zone_of_id(self, host: str) -> str:
        assert self.hosted_zone_id
        zone = self._client.hosted_zone(self.hosted_zone_id)
        name = _name(zone["Name"])
        if zone.get("Config", {}).get("PrivateZone"):
            raise ConfigurationError(
                f"The hosted zone {self.hosted_zone_id} ({name}) is private.",
                hint="Set hosted_zone_id to the public zone the domain is delegated to.",
            )
        if longest_zone(host, [name]) is None:
            raise ZoneNotFoundError(
                f"The hosted zone {self.hosted_zone_id} is {name}, which does not contain "
                f"{canonical_name(host)}.",
                hint="Remove hosted_zone_id, or set the ID of the zone that holds the domain.",
            )
        self._zone_ids[name] = self.hosted_zone_id
        return name

    def _zone_id(self, zone: str) -> str:
        name = canonical_name(zone)
        if name not in self._zone_ids:
            self.find_zone(name)
        if name not in self._zone_ids:
            raise ZoneNotFoundError(f"No public Route 53 hosted zone is named {name}.")
        return self._zone_ids[name]


def wait_for_change(
    get_status: Callable[[str], str],
    change_id: str,
    *,
    timeout: float,
    interval: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Poll ``get_status`` until the change is INSYNC or ``timeout`` seconds pass.

    Returns the last status seen. The first poll happens at once.
    """
    deadline = clock() + timeout
    while True:
        status = get_status(change_id)
        if status == "INSYNC":
            log.info("route53: change %s is INSYNC", change_id)
            return status
        remaining = deadline - clock()
        if remaining <= 0:
            return status
        log.info("route53: change %s is %s; checking again in %g s", change_id, status, interval)
        sleep(min(interval, remaining))


def _existing(rrset: Mapping[str, Any]) -> list[ExistingRecord]:
    name, rtype = _name(rrset["Name"]), str(rrset["Type"])
    attributes = {"set_identifier": str(rrset["SetIdentifier"])} if "SetIdentifier" in rrset else {}
    alias = rrset.get("AliasTarget")
    if alias:
        value = f"ALIAS {_name(alias['DNSName'])}"
        return [ExistingRecord(name, rtype, value, None, {**attributes, "alias": "true"})]
    ttl = rrset.get("TTL")
    return [
        ExistingRecord(name, rtype, str(item["Value"]), ttl, dict(attributes))
        for item in rrset.get("ResourceRecords", [])
    ]


def _name(value: str) -> str:
    """Return a Route 53 name without final dot and with its octal escapes (\\052) decoded."""
    return canonical_name(_ESCAPE.sub(lambda match: chr(int(match.group(1), 8)), value))


def _bare_zone_id(zone_id: str) -> str:
    return zone_id.strip().rsplit("/", 1)[-1]


class _Route53Client:
    """The only code that talks to Route 53; turns botocore errors into our errors."""

    def __init__(
        self,
        *,
        endpoint_url: str | None,
        region: str,
        profile: str | None,
        keys: tuple[str | None, str | None, str | None],
        timeout: float,
    ) -> None:
        try:
            import boto3
            import botocore.config
            import botocore.exceptions
        except ImportError as err:
            raise ConfigurationError(
                "The route53 provider needs boto3, which is not installed.", hint=_INSTALL_HINT
            ) from err
        self._errors = botocore.exceptions
        access_key, secret_key, session_token = keys
        try:
            session = boto3.session.Session(
                aws_access_key_id=access_key,
                aws_secret_access_key=secret_key,
                aws_session_token=session_token,
                profile_name=profile,
                region_name=region,
            )
        except botocore.exceptions.ProfileNotFound as err:
            raise ConfigurationError(
                f"The AWS profile {profile!r} is not in the AWS config files.",
                hint="Check the profile option or AWS_PROFILE.",
            ) from err
        config = botocore.config.Config(
            connect_timeout=timeout,
            read_timeout=timeout,
            retries={"mode": "standard", "max_attempts": 5},
        )
        self._client: Any = session.client("route53", endpoint_url=endpoint_url, config=config)
        self.identity = "keys from options" if access_key else "boto3 credential chain"

    def __repr__(self) -> str:
        return f"_Route53Client({self.identity!r})"

    def hosted_zones(self) -> Iterator[dict[str, Any]]:
        paginator = self._client.get_paginator("list_hosted_zones")
        pages = self._call("ListHostedZones", lambda: list(paginator.paginate()))
        for page in pages:
            yield from page.get("HostedZones", [])

    def hosted_zone(self, zone_id: str) -> dict[str, Any]:
        response = self._call("GetHostedZone", lambda: self._client.get_hosted_zone(Id=zone_id))
        zone: dict[str, Any] = response["HostedZone"]
        return zone

    def record_sets(self, zone_id: str, name: str) -> list[dict[str, Any]]:
        """Return the record sets named ``name``, following the listing while it stays there."""
        found: list[dict[str, Any]] = []
        start: dict[str, str] = {"StartRecordName": name + "."}
        while True:
            request = {"HostedZoneId": zone_id, "MaxItems": "100", **start}
            response = self._call(
                "ListResourceRecordSets",
                lambda: self._client.list_resource_record_sets(**request),  # noqa: B023
            )
            sets = response.get("ResourceRecordSets", [])
            matching = [rrset for rrset in sets if _name(rrset["Name"]) == name]
            found.extend(matching)
            if not response.get("IsTruncated") or len(matching) < len(sets):
                return found
            start = {
                "StartRecordName": response["NextRecordName"],
                "StartRecordType": response["NextRecordType"],
                **(
                    {"StartRecordIdentifier": response["NextRecordIdentifier"]}
                    if "NextRecordIdentifier" in response
                    else {}
                ),
            }

    def change(self, zone_id: str, changes: list[dict[str, Any]]) -> str:
        batch = {"Comment": _COMMENT, "Changes": changes}
        response = self._call(
            "ChangeResourceRecordSets",
            lambda: self._client.change_resource_record_sets(
                HostedZoneId=zone_id, ChangeBatch=batch
            ),
        )
        change_id = str(response["ChangeInfo"]["Id"])
        log.info("route53: change %s submitted to zone %s", change_id, zone_id)
        return change_id

    def change_status(self, change_id: str) -> str:
        response = self._call("GetChange", lambda: self._client.get_change(Id=change_id))
        return str(response["ChangeInfo"]["Status"])

    def _call(self, action: str, send: Callable[[], Any]) -> Any:
        errors = self._errors
        try:
            response = send()
        except errors.NoCredentialsError as err:
            raise ConfigurationError(
                "No AWS credentials were found for the route53 provider.",
                hint="Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, an instance "
                "role, or the access_key_id and secret_access_key options.",
            ) from err
        except errors.ClientError as err:
            raise _client_error(action, err) from err
        except errors.BotoCoreError as err:
            raise DnsProviderError(
                f"Route 53 {action} failed: {err}",
                hint="Check the network path to Route 53, or endpoint_url.",
            ) from err
        if isinstance(response, dict):
            request_id = response.get("ResponseMetadata", {}).get("RequestId", "-")
            log.debug("route53: %s done (request %s)", action, request_id)
        return response


def _client_error(action: str, err: Any) -> Exception:
    error = err.response.get("Error", {})
    code, message = str(error.get("Code", "")), str(error.get("Message", ""))
    request_id = err.response.get("ResponseMetadata", {}).get("RequestId", "-")
    detail = f"Route 53 {action} failed: {code}: {message} (request {request_id})"
    if code == "InvalidChangeBatch" and "already exists" in message:
        return DnsConflictError(
            detail, hint="Run the command again to see the records that are there now."
        )
    if code in ("NoSuchHostedZone", "HostedZoneNotFound"):
        return ZoneNotFoundError(detail, hint="Check hosted_zone_id and the AWS account.")
    if code in (
        "AccessDenied",
        "AccessDeniedException",
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "UnrecognizedClientException",
    ):
        return DnsProviderError(detail, hint=_IAM_HINT)
    return DnsProviderError(detail, hint="Check the change at the Route 53 console.")
