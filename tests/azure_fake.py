"""A fake of the Azure DNS REST API (Microsoft.Network/dnsZones, api-version 2018-05-01).

Built from the published reference (learn.microsoft.com/rest/api/dns):

- ``GET /subscriptions/{sub}/providers/Microsoft.Network/dnszones`` and the same under
  ``/resourceGroups/{rg}``: ``{"value": [zone]}``.
- ``GET .../dnsZones/{zone}/recordsets`` with ``$top`` and ``$recordsetnamesuffix``, which
  returns only record sets whose names end with ".<suffix>".
- ``GET``, ``PUT`` (Create Or Update, with If-Match / If-None-Match) and ``DELETE`` on
  ``.../dnsZones/{zone}/{recordType}/{relativeRecordSetName}``; the name is relative to
  the zone and the body is ``{"etag"?, "properties": {"TTL", "metadata"?, <records>}}``.
- Every call needs ``api-version=2018-05-01`` and ``Authorization: Bearer <token>``.
  Errors are ``{"error": {"code", "message"}}``.

NOTE: the status for a CNAME next to other record sets at one name (409 Conflict) is an
assumption from Azure DNS's documented rule that a CNAME set cannot coexist with others;
the reference does not give the status code.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from typing import Any

from https_fake import HttpsFake, Request, Response

from o365dkim.sandbox.ca import EphemeralCA

API_VERSION = "2018-05-01"
RECORD_TYPES = ("A", "AAAA", "CAA", "CNAME", "MX", "NS", "PTR", "SOA", "SRV", "TXT")
_PROPERTY_OF_TYPE = {
    "A": "ARecords",
    "AAAA": "AAAARecords",
    "CAA": "caaRecords",
    "CNAME": "CNAMERecord",
    "MX": "MXRecords",
    "NS": "NSRecords",
    "PTR": "PTRRecords",
    "SOA": "SOARecord",
    "SRV": "SRVRecords",
    "TXT": "TXTRecords",
}
_WRITABLE = {"TTL", "metadata", "targetResource", *_PROPERTY_OF_TYPE.values()}
_LABEL = re.compile(r"^(\*|[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)$", re.IGNORECASE)


@dataclass
class Identity:
    """A principal behind a bearer token and whether its role allows writes."""

    name: str
    can_write: bool


@dataclass
class FakeZone:
    name: str
    group: str
    zone_type: str = "Public"
    #: Record sets by (relative name in lower case, record type).
    sets: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)


def error(status: int, code: str, message: str) -> Response:
    return Response(status, {"error": {"code": code, "message": message}})


class AzureDnsFake(HttpsFake):
    """Holds zones and record sets of one subscription; ``put_set`` seeds without the API."""

    def __init__(self, ca: EphemeralCA, subscription: str) -> None:
        super().__init__(ca)
        self.subscription = subscription
        self.zones: list[FakeZone] = []
        self.tokens: dict[str, Identity] = {}
        self._etags = (f"etag-{n}" for n in itertools.count(1))

    def add_zone(self, name: str, group: str, zone_type: str = "Public") -> FakeZone:
        zone = FakeZone(name, group, zone_type)
        self.zones.append(zone)
        return zone

    def put_set(
        self, zone: FakeZone, relative: str, rtype: str, properties: dict[str, Any]
    ) -> None:
        zone.sets[(relative.lower(), rtype)] = self._record_set(zone, relative, rtype, properties)

    def sets_at(self, fqdn: str) -> list[dict[str, Any]]:
        wanted = fqdn.rstrip(".").lower() + "."
        return [
            record_set
            for zone in self.zones
            for record_set in zone.sets.values()
            if record_set["properties"]["fqdn"].lower() == wanted
        ]

    # -- request handling ----------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        if request.query.get("api-version") != [API_VERSION]:
            return self.reject(
                400,
                f"api-version {request.query.get('api-version')}",
                {"error": {"code": "InvalidApiVersionParameter", "message": "x"}},
            )
        header = request.headers.get("authorization", "")
        identity = (
            self.tokens.get(header.removeprefix("Bearer "))
            if header.startswith("Bearer ")
            else None
        )
        if not header.startswith("Bearer "):
            return self.reject(
                401,
                "request without a bearer token",
                {"error": {"code": "AuthenticationFailed", "message": "x"}},
            )
        if identity is None:
            return error(401, "InvalidAuthenticationToken", "The access token is invalid.")
        parts = request.path.strip("/").split("/")
        lowered = [part.lower() for part in parts]
        if lowered[:2] != ["subscriptions", self.subscription.lower()]:
            return error(
                404, "SubscriptionNotFound", f"The subscription {parts[1]} could not be found."
            )
        return self._route(request, identity, parts[2:], lowered[2:])

    def _route(
        self, request: Request, identity: Identity, parts: list[str], lowered: list[str]
    ) -> Response:
        if lowered == ["providers", "microsoft.network", "dnszones"] and request.method == "GET":
            return self._list_zones(request, None)
        if (
            len(lowered) < 5
            or lowered[0] != "resourcegroups"
            or lowered[2:4] != ["providers", "microsoft.network"]
            or lowered[4] != "dnszones"
        ):
            return self.reject(
                404, f"unknown path {request.path}", {"error": {"code": "NotFound", "message": "x"}}
            )
        group, rest = parts[1], parts[5:]
        if not rest and request.method == "GET":
            return self._list_zones(request, group)
        zone = next(
            (
                z
                for z in self.zones
                if z.group.lower() == group.lower() and z.name == rest[0].lower()
            ),
            None,
        )
        if zone is None:
            return error(
                404,
                "ResourceNotFound",
                f"The Resource 'Microsoft.Network/dnszones/{rest[0]}' under resource group "
                f"'{group}' was not found.",
            )
        if rest[1:] == ["recordsets"] and request.method == "GET":
            return self._list_sets(request, zone)
        if len(rest) == 3 and rest[1].upper() in RECORD_TYPES:
            return self._record_set_call(request, identity, zone, rest[1].upper(), rest[2])
        return self.reject(
            405,
            f"{request.method} {request.path}",
            {"error": {"code": "MethodNotAllowed", "message": "x"}},
        )

    def _list_zones(self, request: Request, group: str | None) -> Response:
        unknown = set(request.query) - {"api-version", "$top"}
        if unknown:
            return self.reject(
                400,
                f"unknown zone list parameters {unknown}",
                {"error": {"code": "BadRequest", "message": "x"}},
            )
        zones = [z for z in self.zones if group is None or z.group.lower() == group.lower()]
        return Response(200, {"value": [self._zone_json(zone) for zone in zones]})

    def _zone_json(self, zone: FakeZone) -> dict[str, Any]:
        return {
            "id": f"/subscriptions/{self.subscription}/resourceGroups/{zone.group}"
            f"/providers/Microsoft.Network/dnszones/{zone.name}",
            "name": zone.name,
            "type": "Microsoft.Network/dnszones",
            "location": "global",
            "etag": "zone-etag",
            "tags": {},
            "properties": {
                "maxNumberOfRecordSets": 10000,
                "numberOfRecordSets": len(zone.sets),
                "nameServers": ["ns1-01.azure-dns.com."],
                "zoneType": zone.zone_type,
            },
        }

    def _list_sets(self, request: Request, zone: FakeZone) -> Response:
        unknown = set(request.query) - {"api-version", "$top", "$recordsetnamesuffix"}
        if unknown:
            return self.reject(
                400,
                f"unknown recordsets parameters {unknown}",
                {"error": {"code": "BadRequest", "message": "x"}},
            )
        suffix = (request.query.get("$recordsetnamesuffix") or [None])[0]
        found = [
            record_set
            for (relative, _), record_set in sorted(zone.sets.items())
            if suffix is None or relative.endswith("." + suffix.lower())
        ]
        top = int((request.query.get("$top") or ["100"])[0])
        return Response(200, {"value": found[:top]})

    def _record_set_call(
        self, request: Request, identity: Identity, zone: FakeZone, rtype: str, relative: str
    ) -> Response:
        problem = _name_problem(relative, zone.name)
        if problem:
            return self.reject(400, problem, {"error": {"code": "BadRequest", "message": problem}})
        key = (relative.lower(), rtype)
        if request.method == "GET":
            if key not in zone.sets:
                return error(
                    404,
                    "NotFound",
                    f"The resource record '{relative}' does not exist in resource group "
                    f"'{zone.group}'.",
                )
            return Response(200, zone.sets[key])
        if not identity.can_write:
            verb = "delete" if request.method == "DELETE" else "write"
            action = f"Microsoft.Network/dnszones/{rtype}/{verb}"
            return error(
                403,
                "AuthorizationFailed",
                f"The client '{identity.name}' does not have authorization to perform action "
                f"'{action}'.",
            )
        if request.method == "DELETE":
            return Response(200 if zone.sets.pop(key, None) else 204)
        if request.method == "PUT":
            return self._put(request, zone, rtype, relative)
        return self.reject(
            405,
            f"{request.method} on a record set",
            {"error": {"code": "MethodNotAllowed", "message": "x"}},
        )

    def _put(self, request: Request, zone: FakeZone, rtype: str, relative: str) -> Response:
        if request.headers.get("content-type", "").split(";")[0] != "application/json":
            return self.reject(
                415,
                "record set body is not JSON",
                {"error": {"code": "UnsupportedMediaType", "message": "x"}},
            )
        body = request.json()
        problem = _body_problem(body, rtype)
        if problem:
            return self.reject(400, problem, {"error": {"code": "BadRequest", "message": problem}})
        key = (relative.lower(), rtype)
        if request.headers.get("if-none-match") == "*" and key in zone.sets:
            return error(412, "PreconditionFailed", "The Record set already exists.")
        others = [t for (name, t) in zone.sets if name == relative.lower() and t != rtype]
        if others and (rtype == "CNAME" or "CNAME" in others):
            return error(
                409, "Conflict", "A CNAME record set cannot share its name with other record sets."
            )
        created = key not in zone.sets
        self.put_set(zone, relative, rtype, body["properties"])
        return Response(201 if created else 200, zone.sets[key])

    def _record_set(
        self, zone: FakeZone, relative: str, rtype: str, properties: dict[str, Any]
    ) -> dict[str, Any]:
        fqdn = f"{zone.name}." if relative == "@" else f"{relative}.{zone.name}."
        return {
            "id": f"/subscriptions/{self.subscription}/resourceGroups/{zone.group}/providers"
            f"/Microsoft.Network/dnszones/{zone.name}/{rtype}/{relative}",
            "name": relative,
            "type": f"Microsoft.Network/dnszones/{rtype}",
            "etag": next(self._etags),
            "properties": {**properties, "fqdn": fqdn, "provisioningState": "Succeeded"},
        }


def _name_problem(relative: str, zone: str) -> str | None:
    if relative == "@":
        return None
    if relative.endswith(".") or not relative:
        return f"invalid record set name {relative!r}"
    labels = relative.split(".")
    if any(not _LABEL.match(label) for label in labels):
        return f"invalid record set name {relative!r}"
    if len(relative) + len(zone) + 1 > 253:
        return f"record set name {relative!r} is too long"
    return None


def _body_problem(body: Any, rtype: str) -> str | None:
    if not isinstance(body, dict) or set(body) - {"etag", "properties"}:
        return f"invalid record set body keys {sorted(body) if isinstance(body, dict) else body}"
    properties = body.get("properties")
    if not isinstance(properties, dict):
        return "record set body has no properties object"
    unknown = set(properties) - _WRITABLE
    if unknown:
        return f"unknown or read-only record set properties {sorted(unknown)}"
    ttl = properties.get("TTL")
    if not isinstance(ttl, int) or isinstance(ttl, bool) or not 0 <= ttl <= 2147483647:
        return f"invalid TTL {ttl!r}"
    wrong = {key for key in set(_PROPERTY_OF_TYPE.values()) & set(properties)} - {
        _PROPERTY_OF_TYPE[rtype]
    }
    if wrong:
        return f"a {rtype} record set cannot hold {sorted(wrong)}"
    if rtype == "CNAME":
        cname = (properties.get("CNAMERecord") or {}).get("cname")
        if not isinstance(cname, str) or not cname or set(properties["CNAMERecord"]) != {"cname"}:
            return "CNAMERecord must be {'cname': <name>}"
    return None
