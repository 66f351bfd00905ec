"""The cloudflare provider: Cloudflare's API v4 with an API token.

Record names in the API are complete names including the zone (Cloudflare appends the
zone to a name that does not end with it). Selector records are always created with
``"proxied": false``, because DNS queries for a proxied record return Cloudflare's
addresses instead of the CNAME. A zone that flattens every CNAME does the same.

This talks to the API with ``requests`` instead of the ``cloudflare`` SDK: the provider
needs six endpoints, and the SDK would add a large dependency whose major versions have
changed its interface.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import requests

from o365dkim.dns.options import ProviderOptions, parse_seconds, parse_ttl, zone_candidates
from o365dkim.dns.provider import DnsProvider
from o365dkim.dns.records import (
    AccessReport,
    CnameRecord,
    ExistingRecord,
    PublishResult,
    canonical_name,
)
from o365dkim.errors import (
    DnsConflictError,
    DnsProviderError,
    InvalidInputError,
    ZoneNotFoundError,
)
from o365dkim.http import create_session

log = logging.getLogger(__name__)

DEFAULT_API_URL = "https://api.cloudflare.com/client/v4"
_OPTIONS = ("api_token", "zone_id", "api_url", "ttl", "timeout", "ca_bundle")
# Cloudflare's TTL rule: 1 means automatic, else 60 to 86400 s (30 on Enterprise zones).
_AUTOMATIC_TTL = 1
_MIN_TTL, _MAX_TTL = 30, 86400
# Error codes Cloudflare returns when a record at the name is in the way.
_CONFLICT_CODES = {81053, 81054, 81057, 81058}
_PER_PAGE = 100
_COMMENT = "DKIM selector for Microsoft 365, set by o365dkim"
_PERMISSION_HINT = (
    "Check that the API token (api_token or O365DKIM_CLOUDFLARE_API_TOKEN) is active and "
    "has Zone / DNS / Edit on this zone, plus Zone / Zone / Read to find the zone by name "
    "(or set zone_id)."
)


class CloudflareProvider(DnsProvider):
    """Publishes records through Cloudflare's API v4.

    ``api_token`` is an API token (not the global API key). ``zone_id`` skips the zone
    lookup by name. ``ttl`` is 1 (automatic) or 30 to 86400 seconds and overrides
    ``CnameRecord.ttl``. ``api_url`` and ``ca_bundle`` point the provider at another
    endpoint, such as a test server; ``timeout`` is in seconds per request.
    """

    name = "cloudflare"
    relative_names = False

    def __init__(
        self,
        api_token: str,
        *,
        zone_id: str | None = None,
        api_url: str = DEFAULT_API_URL,
        ttl: int | str | None = None,
        timeout: float | str = 30,
        ca_bundle: str | None = None,
    ) -> None:
        self.ttl = None if ttl is None else _parse_cloudflare_ttl(ttl)
        self.timeout = parse_seconds(timeout)
        self.zone_id = zone_id
        self._client = _CloudflareClient(api_token, api_url, self.timeout, ca_bundle)
        self._zone_ids: dict[str, str] = {}
        self._flattening_checked: dict[str, tuple[str, ...]] = {}

    @classmethod
    def from_options(cls, options: Mapping[str, str]) -> CloudflareProvider:
        """Build the provider from string options, the environment or the keyring."""
        values = ProviderOptions(cls.name, options, _OPTIONS)
        return cls(
            values.require("api_token", "Create an API token with Zone / DNS / Edit."),
            zone_id=values.get("zone_id"),
            api_url=values.get("api_url", DEFAULT_API_URL) or DEFAULT_API_URL,
            ttl=values.get("ttl"),
            timeout=values.get("timeout", "30") or "30",
            ca_bundle=values.get("ca_bundle"),
        )

    def __repr__(self) -> str:
        return f"CloudflareProvider(api_url={self._client.base_url!r}, zone_id={self.zone_id!r})"

    def find_zone(self, host: str) -> str:
        """Return the zone that contains ``host``: the zone_id's zone, or the longest match."""
        if self.zone_id:
            return self._zone_of_id(host)
        for candidate in zone_candidates(host):
            found = self._client.zone_by_name(candidate)
            if found is not None:
                self._zone_ids[candidate] = str(found["id"])
                log.debug("cloudflare: %s is in zone %s (%s)", host, candidate, found["id"])
                return candidate
        raise ZoneNotFoundError(
            f"No Cloudflare zone that this API token can see contains {canonical_name(host)}.",
            hint="Check the domain, and that the token includes the zone (Zone / Zone / Read), "
            "or set zone_id.",
        )

    def list_records(self, zone: str, host: str) -> list[ExistingRecord]:
        """Return every record at ``host``, marking proxied and flattened ones."""
        return [_existing(item) for item in self._client.records(self._zone_id(zone), host)]

    def write_cname(self, zone: str, record: CnameRecord, remove: Sequence[ExistingRecord]) -> None:
        """Replace a lone CNAME in place; otherwise delete ``remove``, then create the CNAME."""
        zone_id = self._zone_id(zone)
        current = self._client.records(zone_id, record.host)
        doomed = [item for item in current if _existing(item) in remove]
        body = {
            "type": "CNAME",
            "name": record.host,
            "content": record.target,
            "ttl": self.ttl if self.ttl is not None else record.ttl,
            "proxied": False,
            "comment": _COMMENT,
        }
        if len(doomed) == 1 and doomed[0]["type"] == "CNAME":
            # One PATCH keeps the name served throughout, unlike delete then create.
            self._client.update_record(zone_id, str(doomed[0]["id"]), body)
            return
        for item in doomed:
            self._client.delete_record(zone_id, str(item["id"]))
        # NOTE: Cloudflare has no atomic delete-and-create here, so a failed create after
        # the deletes leaves the name empty; rerunning the command creates the record.
        self._client.create_record(zone_id, body)

    def publish(self, record: CnameRecord, *, replace: bool = False) -> PublishResult:
        """Publish like every provider, then warn when the zone flattens every CNAME."""
        result = super().publish(record, replace=replace)
        flattening = self.flattening_warnings(result.zone)
        if not flattening:
            return result
        return dataclasses.replace(result, warnings=result.warnings + flattening)

    def conflict_hint(self, record: CnameRecord, existing: Sequence[ExistingRecord]) -> str:
        """Name the Cloudflare switch to turn off when the record in the way is proxied."""
        if any(item.attributes.get("proxied") == "true" for item in existing):
            return (
                f"The record at {record.host} is proxied (orange cloud), so Cloudflare answers "
                "with its own addresses instead of the CNAME. Turn proxying off (DNS only) for "
                "it in the Cloudflare dashboard, or rerun with --replace to write an "
                "unproxied CNAME."
            )
        return super().conflict_hint(record, existing)

    def flattening_warnings(self, zone: str) -> tuple[str, ...]:
        """Return a warning when the zone flattens every CNAME; checked once per zone."""
        if zone not in self._flattening_checked:
            self._flattening_checked[zone] = self._read_flattening(zone)
        return self._flattening_checked[zone]

    def check_access(self, zone: str) -> AccessReport:
        """Check the token's status, then find and read the zone and its flattening setting."""
        status = self._client.token_status()
        if status != "active":
            raise DnsProviderError(
                f"Cloudflare reports the API token as {status}.", hint=_PERMISSION_HINT
            )
        report = super().check_access(zone)
        return AccessReport(
            report.provider,
            report.zone,
            ("Cloudflare reports the API token as active.", *report.checks),
            self.flattening_warnings(report.zone) + report.warnings,
        )

    def _read_flattening(self, zone: str) -> tuple[str, ...]:
        zone_id = self._zone_id(zone)
        try:
            flatten_all = self._client.flattens_all_cnames(zone_id)
        except DnsProviderError as err:
            log.warning("cloudflare: could not read the CNAME flattening of %s: %s", zone, err)
            return (
                f"The CNAME flattening setting of {zone} could not be read; make sure "
                "'CNAME flattening for all CNAME records' is off.",
            )
        if not flatten_all:
            return ()
        message = (
            f"The Cloudflare zone {zone} flattens all CNAME records, so DNS answers for the "
            "selector names carry addresses instead of the CNAMEs and DKIM checks fail. "
            "Turn 'CNAME flattening for all CNAME records' off in the zone's DNS settings."
        )
        log.warning("cloudflare: %s", message)
        return (message,)

    def _zone_of_id(self, host: str) -> str:
        assert self.zone_id
        zone = canonical_name(str(self._client.zone(self.zone_id)["name"]))
        name = canonical_name(host)
        if name != zone and not name.endswith("." + zone):
            raise ZoneNotFoundError(
                f"The Cloudflare zone {self.zone_id} is {zone}, which does not contain {name}.",
                hint="Remove zone_id, or set the ID of the zone that holds the domain.",
            )
        self._zone_ids[zone] = self.zone_id
        return zone

    def _zone_id(self, zone: str) -> str:
        name = canonical_name(zone)
        if name not in self._zone_ids:
            found = self._client.zone_by_name(name)
            if found is None:
                raise ZoneNotFoundError(f"No Cloudflare zone {name} is visible to this token.")
            self._zone_ids[name] = str(found["id"])
        return self._zone_ids[name]


def _existing(item: Mapping[str, Any]) -> ExistingRecord:
    attributes: dict[str, str] = {}
    if item.get("proxied"):
        attributes["proxied"] = "true"
    settings = item.get("settings") or {}
    if settings.get("flatten_cname"):
        attributes["flattened"] = "true"
    return ExistingRecord(
        canonical_name(str(item["name"])),
        str(item["type"]),
        str(item["content"]),
        item.get("ttl"),
        attributes,
    )


def _parse_cloudflare_ttl(value: int | str) -> int:
    ttl = parse_ttl(value)
    if ttl != _AUTOMATIC_TTL and not _MIN_TTL <= ttl <= _MAX_TTL:
        raise InvalidInputError(
            f"Invalid TTL {value!r} for Cloudflare: give 1 (automatic) or {_MIN_TTL} to "
            f"{_MAX_TTL} seconds (60 or more outside Enterprise plans)."
        )
    return ttl


class _CloudflareClient:
    """The only code that talks to Cloudflare; turns HTTP failures into our errors."""

    def __init__(self, api_token: str, api_url: str, timeout: float, ca_bundle: str | None):
        self.base_url = api_url.strip().rstrip("/")
        self._timeout = timeout
        self._session = create_session(ca_bundle=ca_bundle)
        self._session.headers["Authorization"] = f"Bearer {api_token}"

    def __repr__(self) -> str:
        # The session's headers hold the token, so only the URL is shown.
        return f"_CloudflareClient({self.base_url!r})"

    def token_status(self) -> str:
        return str(self._call("GET", "/user/tokens/verify")["result"]["status"])

    def zone(self, zone_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", f"/zones/{zone_id}")["result"]
        return result

    def zone_by_name(self, name: str) -> dict[str, Any] | None:
        zones = self._call("GET", "/zones", params={"name": name})["result"]
        return next((item for item in zones if canonical_name(item["name"]) == name), None)

    def records(self, zone_id: str, host: str) -> list[dict[str, Any]]:
        """Return every record named ``host``, following the pages of the listing."""
        found: list[dict[str, Any]] = []
        page, pages = 1, 1
        while page <= pages:
            body = self._call(
                "GET",
                f"/zones/{zone_id}/dns_records",
                params={"name.exact": canonical_name(host), "per_page": _PER_PAGE, "page": page},
            )
            found.extend(body["result"])
            pages = int((body.get("result_info") or {}).get("total_pages") or 1)
            page += 1
        return found

    def create_record(self, zone_id: str, body: dict[str, Any]) -> None:
        result = self._call("POST", f"/zones/{zone_id}/dns_records", json=body)["result"]
        log.info("cloudflare: created %s %s (%s)", body["name"], body["type"], result.get("id"))

    def update_record(self, zone_id: str, record_id: str, body: dict[str, Any]) -> None:
        self._call("PATCH", f"/zones/{zone_id}/dns_records/{record_id}", json=body)
        log.info("cloudflare: updated %s %s (%s)", body["name"], body["type"], record_id)

    def delete_record(self, zone_id: str, record_id: str) -> None:
        self._call("DELETE", f"/zones/{zone_id}/dns_records/{record_id}")
        log.info("cloudflare: deleted record %s", record_id)

    def flattens_all_cnames(self, zone_id: str) -> bool:
        """Return True when either the zone setting or the DNS setting flattens every CNAME.

        Cloudflare documents both: the older zone setting ``cname_flattening`` with the
        value ``flatten_all``, and ``flatten_all_cnames`` in the zone's DNS settings.
        """
        setting = self._call("GET", f"/zones/{zone_id}/settings/cname_flattening")["result"]
        if setting.get("value") == "flatten_all":
            return True
        dns_settings = self._call("GET", f"/zones/{zone_id}/dns_settings")["result"]
        return bool(dns_settings.get("flatten_all_cnames"))

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = self._session.request(
                method, self.base_url + path, timeout=self._timeout, **kwargs
            )
        except requests.RequestException as err:
            raise DnsProviderError(
                f"The Cloudflare API at {self.base_url} cannot be reached: {err}",
                hint="Check the network path to the API, or api_url.",
            ) from err
        log.debug(
            "cloudflare: %s %s -> %d (ray %s)",
            method,
            path,
            response.status_code,
            response.headers.get("cf-ray", "-"),
        )
        body = _json_body(response)
        if response.status_code >= 400 or not body.get("success", False):
            _raise_for(method, path, response.status_code, body)
        return body


def _json_body(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {"success": False, "errors": [{"code": 0, "message": response.text[:200]}]}
    return body if isinstance(body, dict) else {"success": False, "errors": []}


def _raise_for(method: str, path: str, status: int, body: dict[str, Any]) -> None:
    errors = body.get("errors") or []
    codes = {int(item.get("code", 0)) for item in errors if isinstance(item, dict)}
    text = "; ".join(
        f"{item.get('code')}: {item.get('message')}" for item in errors if isinstance(item, dict)
    )
    where = f"{method} {path}"
    if codes & _CONFLICT_CODES:
        raise DnsConflictError(
            f"Cloudflare rejected {where} because a record at the name is in the way ({text}).",
            hint="Run the command again to see the records that are there now.",
        )
    if status in (400, 401, 403) and (codes & {1000, 6003, 6111, 9109, 10000} or status != 400):
        raise DnsProviderError(
            f"Cloudflare rejected the API token for {where} "
            f"(HTTP {status}, {text or 'no detail'}).",
            hint=_PERMISSION_HINT,
        )
    if status == 429:
        raise DnsProviderError(
            f"Cloudflare rate-limited {where} (HTTP 429).",
            hint="Wait a few minutes, then run the command again.",
        )
    raise DnsProviderError(
        f"Cloudflare rejected {where} (HTTP {status}, {text or 'no detail'}).",
        hint="Check the zone and the record at the Cloudflare dashboard.",
    )
