"""A fake of the Cloudflare API v4 endpoints the cloudflare provider uses, over HTTPS.

Built from Cloudflare's published API reference (developers.cloudflare.com/api):

- ``GET /user/tokens/verify``: result ``{id, status}`` with status active, disabled or expired.
- ``GET /zones?name=`` and ``GET /zones/{zone_id}``.
- ``GET /zones/{zone_id}/dns_records`` with the filters name / name.exact / type / content,
  page and per_page; the list carries ``result_info``.
- ``POST /zones/{zone_id}/dns_records``: ``name`` is the complete name including the zone,
  ``ttl`` is 1 (automatic) or 30 to 86400; a CNAME cannot share its name with other records.
- ``PATCH`` and ``DELETE /zones/{zone_id}/dns_records/{dns_record_id}``.
- ``GET /zones/{zone_id}/settings/cname_flattening`` (value flatten_at_root or flatten_all)
  and ``GET /zones/{zone_id}/dns_settings`` (flatten_all_cnames).
- Every call needs ``Authorization: Bearer <token>``; responses use the envelope
  ``{success, errors: [{code, message}], messages, result}``.

NOTE: the error codes for a missing header (6003), an unknown token (10000 with HTTP 403)
and an existing record (81053, 81058) come from Cloudflare's documents and public error
reports, not from a live call. So does the empty zone list for a token without Zone Read. Like the real API, a record name that does not end with
the zone gets the zone appended.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from typing import Any

from https_fake import HttpsFake, Request, Response

from o365dkim.sandbox.ca import EphemeralCA

_RECORD_FIELDS = {"type", "name", "content", "ttl", "proxied", "comment", "tags", "settings"}
_LIST_PARAMS = {
    "name",
    "name.exact",
    "type",
    "content",
    "page",
    "per_page",
    "match",
    "order",
    "direction",
    "proxied",
}
_ZONE_PARAMS = {"name", "status", "page", "per_page", "match", "order", "direction"}
_PROXIABLE = {"A", "AAAA", "CNAME"}
_LABEL = re.compile(r"^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$", re.IGNORECASE)


@dataclass
class Token:
    """An API token: which zones it covers and whether it may edit DNS or read zones."""

    zones: set[str]
    dns_edit: bool = True
    zone_read: bool = True
    status: str = "active"


@dataclass
class FakeZone:
    id: str
    name: str
    cname_flattening: str = "flatten_at_root"
    flatten_all_cnames: bool = False
    records: dict[str, dict[str, Any]] = field(default_factory=dict)


def envelope(result: Any, **extra: Any) -> dict[str, Any]:
    return {"success": True, "errors": [], "messages": [], "result": result, **extra}


def failure(code: int, message: str) -> dict[str, Any]:
    return {"success": False, "errors": [{"code": code, "message": message}], "messages": []}


class CloudflareFake(HttpsFake):
    """Holds zones, records and tokens; ``add_record`` seeds records without the API."""

    def __init__(self, ca: EphemeralCA) -> None:
        super().__init__(ca)
        self.zones: dict[str, FakeZone] = {}
        self.tokens: dict[str, Token] = {}
        self._ids = (f"{n:032x}" for n in itertools.count(1))

    def add_zone(self, name: str) -> FakeZone:
        zone = FakeZone(next(self._ids), name)
        self.zones[zone.id] = zone
        return zone

    def add_token(self, token: str, zones: list[FakeZone], **rights: Any) -> None:
        self.tokens[token] = Token({zone.id for zone in zones}, **rights)

    def zone_named(self, name: str) -> FakeZone:
        return next(zone for zone in self.zones.values() if zone.name == name)

    def add_record(
        self, zone: FakeZone, name: str, rtype: str, content: str, **extra: Any
    ) -> dict[str, Any]:
        record = {
            "id": next(self._ids),
            "zone_id": zone.id,
            "zone_name": zone.name,
            "name": name.rstrip(".").lower(),
            "type": rtype,
            "content": content.rstrip(".") if rtype == "CNAME" else content,
            "proxiable": rtype in _PROXIABLE,
            "proxied": bool(extra.get("proxied", False)),
            "ttl": int(extra.get("ttl", 1)),
            "settings": dict(extra.get("settings") or {}),
            "meta": {},
            "comment": extra.get("comment"),
            "tags": list(extra.get("tags") or []),
            "created_on": "2025-01-01T00:00:00Z",
            "modified_on": "2025-01-01T00:00:00Z",
        }
        zone.records[record["id"]] = record
        return record

    def records_at(self, name: str) -> list[dict[str, Any]]:
        wanted = name.rstrip(".").lower()
        return [
            record
            for zone in self.zones.values()
            for record in zone.records.values()
            if record["name"] == wanted
        ]

    # -- request handling ----------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        token = self._token(request)
        if isinstance(token, Response):
            return token
        parts = request.path.removeprefix("/client/v4").strip("/").split("/")
        if parts == ["user", "tokens", "verify"] and request.method == "GET":
            return Response(200, envelope({"id": "f" * 32, "status": token.status}))
        if token.status != "active":
            return Response(403, failure(10000, "Authentication error"))
        if parts[0] != "zones":
            return self.reject(404, f"unknown path {request.path}", failure(7000, "No route"))
        return self._zones(request, token, parts[1:])

    def _token(self, request: Request) -> Token | Response:
        header = request.headers.get("authorization", "")
        if not header.startswith("Bearer "):
            return self.reject(
                400, "request without a Bearer token", failure(6003, "Invalid request headers")
            )
        token = self.tokens.get(header.removeprefix("Bearer "))
        if token is None:
            return Response(403, failure(10000, "Authentication error"))
        return token

    def _zones(self, request: Request, token: Token, parts: list[str]) -> Response:
        if not parts:
            return self._list_zones(request, token)
        zone = self.zones.get(parts[0])
        if zone is None or zone.id not in token.zones:
            return Response(403, failure(10000, "Authentication error"))
        rest = parts[1:]
        if not rest and request.method == "GET":
            return self._zone_read(token, self._zone_json(zone))
        if rest == ["settings", "cname_flattening"] and request.method == "GET":
            setting = {
                "id": "cname_flattening",
                "value": zone.cname_flattening,
                "editable": True,
                "modified_on": None,
            }
            return self._zone_read(token, setting)
        if rest == ["dns_settings"] and request.method == "GET":
            return self._zone_read(token, {"flatten_all_cnames": zone.flatten_all_cnames})
        if rest and rest[0] == "dns_records":
            return self._records(request, token, zone, rest[1:])
        return self.reject(
            405,
            f"{request.method} {request.path} is not an endpoint",
            failure(10405, "Method not allowed"),
        )

    def _zone_read(self, token: Token, result: Any) -> Response:
        if not token.zone_read:
            return Response(403, failure(10000, "Authentication error"))
        return Response(200, envelope(result))

    def _list_zones(self, request: Request, token: Token) -> Response:
        if request.method != "GET":
            return self.reject(
                405, f"{request.method} /zones", failure(10405, "Method not allowed")
            )
        unknown = set(request.query) - _ZONE_PARAMS
        if unknown:
            return self.reject(
                400, f"unknown /zones parameters {unknown}", failure(1001, "Invalid")
            )
        if not token.zone_read:
            return Response(200, envelope([], result_info=_info(0)))
        name = (request.query.get("name") or [None])[0]
        found = [
            self._zone_json(zone)
            for zone in self.zones.values()
            if zone.id in token.zones and (name is None or zone.name == name)
        ]
        return Response(200, envelope(found, result_info=_info(len(found))))

    def _zone_json(self, zone: FakeZone) -> dict[str, Any]:
        return {
            "id": zone.id,
            "name": zone.name,
            "status": "active",
            "paused": False,
            "type": "full",
        }

    def _records(self, request: Request, token: Token, zone: FakeZone, rest: list[str]) -> Response:
        if request.method == "GET" and not rest:
            return self._list_records(request, zone)
        if not token.dns_edit:
            return Response(403, failure(10000, "Authentication error"))
        if request.method == "POST" and not rest:
            return self._create(request, zone)
        if len(rest) == 1 and rest[0] in zone.records:
            if request.method == "DELETE":
                del zone.records[rest[0]]
                return Response(200, envelope({"id": rest[0]}))
            if request.method == "PATCH":
                return self._patch(request, zone, zone.records[rest[0]])
        if len(rest) == 1:
            return Response(404, failure(81044, "Record does not exist."))
        return self.reject(
            405, f"{request.method} {request.path}", failure(10405, "Method not allowed")
        )

    def _list_records(self, request: Request, zone: FakeZone) -> Response:
        unknown = set(request.query) - _LIST_PARAMS
        if unknown:
            return self.reject(
                400, f"unknown dns_records parameters {unknown}", failure(1001, "Invalid")
            )
        query = {key: values[0] for key, values in request.query.items()}
        name = query.get("name.exact") or query.get("name")
        found = [
            record
            for record in zone.records.values()
            if (name is None or record["name"] == name.lower())
            and ("type" not in query or record["type"] == query["type"])
        ]
        per_page = int(query.get("per_page", "100"))
        page = int(query.get("page", "1"))
        if not 5 <= per_page <= 5000000 or page < 1:
            return self.reject(400, f"invalid paging {per_page}/{page}", failure(1004, "Invalid"))
        chunk = found[(page - 1) * per_page : page * per_page]
        info = {
            "page": page,
            "per_page": per_page,
            "count": len(chunk),
            "total_count": len(found),
            "total_pages": max(1, -(-len(found) // per_page)),
        }
        return Response(200, envelope(chunk, result_info=info))

    def _create(self, request: Request, zone: FakeZone) -> Response:
        body = self._record_body(request, zone, required=True)
        if isinstance(body, Response):
            return body
        clash = self._clash(zone, body, ignore=None)
        if clash is not None:
            return clash
        extra = {
            key: value for key, value in body.items() if key not in ("name", "type", "content")
        }
        record = self.add_record(zone, body["name"], body["type"], body["content"], **extra)
        return Response(200, envelope(record))

    def _patch(self, request: Request, zone: FakeZone, record: dict[str, Any]) -> Response:
        body = self._record_body(request, zone, required=False)
        if isinstance(body, Response):
            return body
        merged = {**record, **body}
        clash = self._clash(zone, merged, ignore=record["id"])
        if clash is not None:
            return clash
        record.update(body)
        if record["type"] == "CNAME":
            record["content"] = record["content"].rstrip(".")
        return Response(200, envelope(record))

    def _record_body(
        self, request: Request, zone: FakeZone, *, required: bool
    ) -> dict[str, Any] | Response:
        if request.headers.get("content-type", "").split(";")[0] != "application/json":
            return self.reject(415, "record body is not JSON", failure(6007, "Malformed JSON"))
        try:
            body = request.json()
        except ValueError:
            return self.reject(
                400, "record body is not valid JSON", failure(6007, "Malformed JSON")
            )
        problem = _record_problem(body, required)
        if problem:
            return self.reject(400, problem, failure(9000, problem))
        if "name" in body:
            name = body["name"].rstrip(".").lower()
            if name != zone.name and not name.endswith("." + zone.name):
                name = f"{name}.{zone.name}"  # Cloudflare appends the zone, as documented.
            if any(not _LABEL.match(label) for label in name.split(".")) or len(name) > 255:
                return self.reject(
                    400, f"invalid record name {name!r}", failure(9005, "Invalid name")
                )
            body["name"] = name
        return body

    def _clash(self, zone: FakeZone, body: dict[str, Any], ignore: str | None) -> Response | None:
        for other in zone.records.values():
            if other["id"] == ignore or other["name"] != body["name"]:
                continue
            if other["type"] == body["type"] and other["content"] == body["content"].rstrip("."):
                return Response(400, failure(81058, "An identical record already exists."))
            if "CNAME" in (other["type"], body["type"]):
                return Response(
                    400,
                    failure(81053, "An A, AAAA, or CNAME record with that host already exists."),
                )
        return None


def _record_problem(body: Any, required: bool) -> str | None:
    if not isinstance(body, dict):
        return "record body is not a JSON object"
    unknown = set(body) - _RECORD_FIELDS
    if unknown:
        return f"unknown record fields {sorted(unknown)}"
    missing = {"type", "name", "content", "ttl"} - set(body)
    if required and missing:
        return f"missing record fields {sorted(missing)}"
    ttl = body.get("ttl", 1)
    if not isinstance(ttl, int) or isinstance(ttl, bool) or not (ttl == 1 or 30 <= ttl <= 86400):
        return "TTL must be between 30 and 86400 seconds, or 1 for Automatic."
    if "proxied" in body and not isinstance(body["proxied"], bool):
        return "proxied must be a boolean"
    if body.get("proxied") and body.get("type") not in _PROXIABLE:
        return "record type cannot be proxied"
    for key in ("type", "name", "content", "comment"):
        if key in body and body[key] is not None and not isinstance(body[key], str):
            return f"{key} must be a string"
    return None


def _info(count: int) -> dict[str, int]:
    return {"page": 1, "per_page": 20, "count": count, "total_count": count, "total_pages": 1}
