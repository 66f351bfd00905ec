"""The powerdns provider: the HTTP API of PowerDNS Authoritative (``/api/v1``).

The API takes absolute names with the final dot ("canonical" in its error messages) and
changes whole rrsets with one PATCH per zone, which it applies atomically.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

import requests

from o365dkim.dns.options import ProviderOptions, parse_seconds, parse_ttl, zone_candidates
from o365dkim.dns.provider import DnsProvider
from o365dkim.dns.records import AccessReport, CnameRecord, ExistingRecord, canonical_name
from o365dkim.errors import DnsConflictError, DnsProviderError, ZoneNotFoundError
from o365dkim.http import create_session

log = logging.getLogger(__name__)

_OPTIONS = ("api_url", "api_key", "server_id", "ttl", "timeout", "ca_bundle")
_KEY_HINT = "Check api_key (or O365DKIM_POWERDNS_API_KEY) against the api-key setting in pdns.conf."
_REACH_HINT = (
    "Check api_url, and that pdns.conf sets api=yes, webserver=yes, and a webserver-address "
    "and webserver-allow-from that let this host in."
)


class PowerDnsProvider(DnsProvider):
    """Publishes records through the PowerDNS Authoritative HTTP API.

    ``api_url`` is the webserver's URL, such as ``http://ns1.contoso.com:8081`` (``/api/v1``
    is added when missing). ``server_id`` defaults to the first server the API lists,
    which is "localhost" on a plain install. ``ttl`` in seconds overrides
    ``CnameRecord.ttl``. ``timeout`` is in seconds per request. ``ca_bundle`` is a PEM
    file to trust for an HTTPS front end with a private CA.
    """

    name = "powerdns"
    relative_names = False

    def __init__(
        self,
        api_url: str,
        api_key: str,
        *,
        server_id: str | None = None,
        ttl: int | str | None = None,
        timeout: float | str = 10,
        ca_bundle: str | None = None,
    ) -> None:
        self.ttl = None if ttl is None else parse_ttl(ttl)
        self.timeout = parse_seconds(timeout)
        self._client = _PowerDnsClient(api_url, api_key, server_id, self.timeout, ca_bundle)
        self._zone_ids: dict[str, str] = {}

    @classmethod
    def from_options(cls, options: Mapping[str, str]) -> PowerDnsProvider:
        """Build the provider from string options, the environment or the keyring."""
        values = ProviderOptions(cls.name, options, _OPTIONS)
        return cls(
            values.require(
                "api_url", "Set it to the PowerDNS webserver URL, such as http://127.0.0.1:8081."
            ),
            values.require("api_key", "Set it to the api-key from pdns.conf, or keyring:NAME."),
            server_id=values.get("server_id"),
            ttl=values.get("ttl"),
            timeout=values.get("timeout", "10") or "10",
            ca_bundle=values.get("ca_bundle"),
        )

    def __repr__(self) -> str:
        return f"PowerDnsProvider(api_url={self._client.base_url!r})"

    def find_zone(self, host: str) -> str:
        """Return the longest zone on the server that contains ``host``."""
        for candidate in zone_candidates(host):
            zone_id = self._client.zone_id(candidate)
            if zone_id is not None:
                self._zone_ids[candidate] = zone_id
                log.debug("powerdns: %s is in zone %s", host, candidate)
                return candidate
        raise ZoneNotFoundError(
            f"The PowerDNS server at {self._client.base_url} has no zone containing "
            f"{canonical_name(host)}.",
            hint="Check the domain, and server_id when the API serves several servers.",
        )

    def list_records(self, zone: str, host: str) -> list[ExistingRecord]:
        """Return every record at ``host``; disabled ones carry the attribute disabled=true."""
        name = canonical_name(host)
        found: list[ExistingRecord] = []
        for rrset in self._client.rrsets(self._zone_id(zone)):
            if canonical_name(str(rrset.get("name", ""))) != name:
                continue
            for item in rrset.get("records", []):
                disabled = {"disabled": "true"} if item.get("disabled") else {}
                found.append(
                    ExistingRecord(
                        name, str(rrset["type"]), str(item["content"]), rrset.get("ttl"), disabled
                    )
                )
        return found

    def write_cname(self, zone: str, record: CnameRecord, remove: Sequence[ExistingRecord]) -> None:
        """Send one PATCH that deletes the rrsets of ``remove`` and sets the CNAME."""
        owner = record.host + "."
        rrsets: list[dict[str, Any]] = [
            {"name": owner, "type": rtype, "changetype": "DELETE"}
            for rtype in sorted({item.rtype.upper() for item in remove} - {"CNAME"})
        ]
        rrsets.append(
            {
                "name": owner,
                "type": "CNAME",
                "ttl": self.ttl if self.ttl is not None else record.ttl,
                "changetype": "REPLACE",
                "records": [{"content": record.target + ".", "disabled": False}],
            }
        )
        self._client.patch_zone(self._zone_id(zone), zone, rrsets)

    def check_access(self, zone: str) -> AccessReport:
        """Check that the API accepts this key, then find and read the zone."""
        server = self._client.server()
        report = super().check_access(zone)
        answered = (
            f"The PowerDNS API at {self._client.base_url} accepted the API key "
            f"(server {server.get('id')}, version {server.get('version', 'unknown')})."
        )
        return AccessReport(
            report.provider,
            report.zone,
            (answered, *report.checks),
            ("The API key grants full access to the API; PowerDNS has no narrower scopes.",),
        )

    def _zone_id(self, zone: str) -> str:
        name = canonical_name(zone)
        if name not in self._zone_ids:
            zone_id = self._client.zone_id(name)
            if zone_id is None:
                raise ZoneNotFoundError(
                    f"The PowerDNS server at {self._client.base_url} has no zone {name}."
                )
            self._zone_ids[name] = zone_id
        return self._zone_ids[name]


class _PowerDnsClient:
    """The only code that talks to the PowerDNS API; turns HTTP failures into our errors."""

    def __init__(
        self,
        api_url: str,
        api_key: str,
        server_id: str | None,
        timeout: float,
        ca_bundle: str | None,
    ) -> None:
        base = api_url.strip().rstrip("/")
        self.base_url = base if base.endswith("/api/v1") else base + "/api/v1"
        self._server_id = server_id
        self._timeout = timeout
        self._session = create_session(ca_bundle=ca_bundle)
        self._session.headers["X-API-Key"] = api_key

    def __repr__(self) -> str:
        # The session's headers hold the API key, so only the URL is shown.
        return f"_PowerDnsClient({self.base_url!r})"

    def server(self) -> dict[str, Any]:
        """Return the server object of the configured or discovered server id."""
        result: dict[str, Any] = self._get(f"/servers/{quote(self.server_id(), safe='')}")
        return result

    def server_id(self) -> str:
        """Return the server id, asking the API for its first server the first time."""
        if self._server_id is None:
            servers = self._get("/servers")
            if not servers:
                raise DnsProviderError(f"The PowerDNS API at {self.base_url} lists no servers.")
            self._server_id = str(servers[0]["id"])
            log.debug("powerdns: using server %s", self._server_id)
        return self._server_id

    def zone_id(self, zone: str) -> str | None:
        """Return the API id of ``zone``, or None when the server does not have it."""
        zones = self._get(self._zones_path(), params={"zone": zone + "."})
        for item in zones:
            if canonical_name(str(item.get("name", ""))) == canonical_name(zone):
                return str(item["id"])
        return None

    def rrsets(self, zone_id: str) -> list[dict[str, Any]]:
        """Return every rrset of the zone, disabled records included.

        The ``rrset_name`` filter would fetch less, but PowerDNS 4.7.3 leaves disabled
        records out of filtered answers, and a disabled record still blocks a CNAME.
        NOTE: so each read transfers the whole zone, which is slow for very large zones.
        """
        zone = self._get(
            f"{self._zones_path()}/{quote(zone_id, safe='')}", params={"rrsets": "true"}
        )
        rrsets: list[dict[str, Any]] = zone.get("rrsets", [])
        return rrsets

    def patch_zone(self, zone_id: str, zone: str, rrsets: list[dict[str, Any]]) -> None:
        """Apply ``rrsets`` changes to the zone in one request."""
        path = f"{self._zones_path()}/{quote(zone_id, safe='')}"
        response = self._send("PATCH", path, json={"rrsets": rrsets})
        if response.status_code == 422 and "Conflicts with" in _error_text(response):
            raise DnsConflictError(
                f"PowerDNS rejected the change to zone {zone}: {_error_text(response)}",
                hint="Run the command again to see the records that are there now.",
            )
        self._check(response)
        log.info("powerdns: zone %s changed (%d rrset(s))", zone, len(rrsets))

    def _zones_path(self) -> str:
        return f"/servers/{quote(self.server_id(), safe='')}/zones"

    def _get(self, path: str, params: dict[str, str] | None = None) -> Any:
        response = self._send("GET", path, params=params)
        self._check(response)
        return response.json()

    def _send(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        url = self.base_url + path
        try:
            response = self._session.request(method, url, timeout=self._timeout, **kwargs)
        except requests.Timeout as err:
            raise DnsProviderError(
                f"The PowerDNS API at {self.base_url} did not answer within {self._timeout:g} s.",
                hint=_REACH_HINT,
            ) from err
        except requests.RequestException as err:
            raise DnsProviderError(
                f"The PowerDNS API at {self.base_url} cannot be reached: {err}",
                hint=_REACH_HINT,
            ) from err
        log.debug("powerdns: %s %s -> %d", method, path, response.status_code)
        return response

    def _check(self, response: requests.Response) -> None:
        status = response.status_code
        if status < 400:
            return
        if status in (401, 403):
            raise DnsProviderError(
                f"The PowerDNS API at {self.base_url} rejected the API key (HTTP {status}).",
                hint=_KEY_HINT,
            )
        if status == 404:
            raise DnsProviderError(
                f"The PowerDNS API at {self.base_url} has no {response.request.path_url}.",
                hint="Check api_url and server_id.",
            )
        raise DnsProviderError(
            f"The PowerDNS API at {self.base_url} returned HTTP {status}: {_error_text(response)}",
            hint="Check the PowerDNS log for the request.",
        )


def _error_text(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict) and "error" in body:
        return str(body["error"])
    return response.text[:200]
