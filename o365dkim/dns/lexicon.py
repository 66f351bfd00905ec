"""The ``lexicon:<name>`` providers: any DNS provider of dns-lexicon 3.x, through one bridge.

Install with ``pip install 'o365dkim[lexicon]'`` (dns-lexicon >= 3.17, < 4). Options
other than ``ttl`` go to the lexicon provider unchanged (for ``lexicon:powerdns``:
``auth_token``, ``pdns_server``...), and lexicon reads its own LEXICON_<PROVIDER>_<OPTION>
environment variables as well.

lexicon's ``Client`` guesses the zone with tldextract, which downloads the Public Suffix
List, or with the system resolver. This bridge finds the zone itself by asking the
provider for each parent of the name, so it builds the provider class the way ``Client``
does after that step. That uses ``lexicon._private.discovery``, which is why the
dependency stays below lexicon 4.
"""

from __future__ import annotations

import argparse
import functools
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, TypeVar

from o365dkim.dns.options import (
    option_key,
    parse_ttl,
    resolve_keyring_reference,
    zone_candidates,
)
from o365dkim.dns.provider import LEXICON_PREFIX, DnsProvider
from o365dkim.dns.records import CnameRecord, ExistingRecord, canonical_name
from o365dkim.errors import (
    ConfigurationError,
    DnsProviderError,
    UnknownProviderError,
    ZoneNotFoundError,
)

log = logging.getLogger(__name__)

_T = TypeVar("_T")
_NAME = re.compile(r"^[a-z0-9_]+$")
_INSTALL_HINT = "Install it with: pip install 'o365dkim[lexicon]'"
# HTTP statuses that mean the credentials are wrong, not that the zone is missing.
_AUTH_STATUSES = (401, 403)


class LexiconProvider(DnsProvider):
    """Publishes records through one dns-lexicon provider; see ``lexicon_provider_class``.

    The bridge gives lexicon full names and absolute targets with the final dot; each
    lexicon provider converts them to what its API takes. The read-back after writing
    catches a provider that stores them differently.
    """

    name: ClassVar[str] = "lexicon"
    #: The dns-lexicon provider module, such as "powerdns" or "cloudflare".
    lexicon_name: ClassVar[str] = ""
    relative_names = False

    def __init__(self, provider_options: Mapping[str, str], *, ttl: int | str | None = None):
        self.ttl = None if ttl is None else parse_ttl(ttl)
        self._client = _LexiconClient(self.lexicon_name, dict(provider_options), self.ttl)

    @classmethod
    def from_options(cls, options: Mapping[str, str]) -> LexiconProvider:
        """Build the bridge; ``ttl`` is ours, every other option belongs to lexicon."""
        values = {
            option_key(key): resolve_keyring_reference(value, cls.name, option_key(key))
            for key, value in options.items()
        }
        ttl = values.pop("ttl", None)
        return cls(values, ttl=ttl)

    def __repr__(self) -> str:
        return f"LexiconProvider({self.lexicon_name!r}, options={self._client.option_names!r})"

    def find_zone(self, host: str) -> str:
        """Return the longest parent of ``host`` that the lexicon provider accepts as a zone."""
        failures: list[str] = []
        for candidate in zone_candidates(host):
            reason = self._client.try_zone(candidate)
            if reason is None:
                log.debug("%s: %s is in zone %s", self.name, host, candidate)
                return candidate
            failures.append(f"{candidate}: {reason}")
        raise ZoneNotFoundError(
            f"The dns-lexicon provider {self.lexicon_name} found no zone containing "
            f"{canonical_name(host)} ({'; '.join(failures)}).",
            hint=f"Check the domain and the provider options ({self._client.option_list}).",
        )

    def list_records(self, zone: str, host: str) -> list[ExistingRecord]:
        """Return every record lexicon lists at ``host``."""
        name = canonical_name(host)
        return [
            ExistingRecord(name, str(item["type"]), str(item["content"]), item.get("ttl"))
            for item in self._client.records(zone, name)
        ]

    def write_cname(self, zone: str, record: CnameRecord, remove: Sequence[ExistingRecord]) -> None:
        """Delete the records of ``remove`` one by one, then create the CNAME."""
        for item in self._client.records(zone, record.host):
            existing = ExistingRecord(
                record.host, str(item["type"]), str(item["content"]), item.get("ttl")
            )
            if existing in remove:
                self._client.delete(zone, item)
        # NOTE: lexicon has no atomic replace, so a failed create after the deletes leaves
        # the name empty until the command runs again.
        self._client.create_cname(zone, record.host, record.target + ".")


@functools.cache
def lexicon_provider_class(lexicon_name: str) -> type[LexiconProvider]:
    """Return the provider class for ``lexicon:<lexicon_name>``, named after it."""
    if not _NAME.match(lexicon_name):
        raise UnknownProviderError(
            f"Invalid dns-lexicon provider name {lexicon_name!r}.",
            hint="Write it as lexicon:NAME with NAME as lexicon lists it, such as "
            "lexicon:cloudflare.",
        )
    attributes = {"name": f"{LEXICON_PREFIX}{lexicon_name}", "lexicon_name": lexicon_name}
    return type(f"Lexicon_{lexicon_name}_Provider", (LexiconProvider,), attributes)


def _absolute_cname_targets(provider_class: type[Any]) -> type[Any]:
    """Wrap lexicon's powerdns provider so CNAME targets outside the zone stay absolute.

    dns-lexicon 3.x's powerdns provider appends the zone to every CNAME target that does
    not end with it, even one with the final dot, and reads targets back the same way
    (AnalogJ/lexicon issue 862, still open at 3.25). PowerDNS itself always stores
    absolute targets, so a final dot is kept on write and dropped on read.
    """

    class AbsoluteTargets(provider_class):  # type: ignore[misc]
        def _clean_content(self, rtype: str, content: str) -> Any:
            if rtype == "CNAME" and content.endswith("."):
                return content
            return super()._clean_content(rtype, content)

        def _unclean_content(self, rtype: str, content: str) -> Any:
            if rtype == "CNAME":
                return content.rstrip(".")
            return super()._unclean_content(rtype, content)

    return AbsoluteTargets


#: Fixes for lexicon providers that store o365dkim's records wrongly, by provider name.
TARGET_FIXES: dict[str, Callable[[type[Any]], type[Any]]] = {"powerdns": _absolute_cname_targets}


class _LexiconClient:
    """The only code that calls dns-lexicon; turns its errors into ours.

    Lexicon providers raise bare exceptions as well as requests errors, so every call
    into lexicon is wrapped here.
    """

    def __init__(self, lexicon_name: str, options: dict[str, str], ttl: int | None) -> None:
        provider_class = _load_provider_class(lexicon_name)
        fix = TARGET_FIXES.get(lexicon_name)
        self._provider_class = fix(provider_class) if fix else provider_class
        self._name = lexicon_name
        self._options = options
        self._ttl = ttl
        self._sessions: dict[str, Any] = {}
        _check_option_names(lexicon_name, provider_class, options)

    @property
    def option_names(self) -> list[str]:
        return sorted(self._options)

    @property
    def option_list(self) -> str:
        return ", ".join(self.option_names) or "none given"

    def try_zone(self, zone: str) -> str | None:
        """Authenticate for ``zone``; return None on success, or why the provider refused it.

        Rejected credentials and unreachable servers raise instead, because no other
        zone would fare better.
        """
        import requests

        try:
            self._session(zone)
        except DnsProviderError as err:
            cause = err.__cause__
            if isinstance(cause, requests.HTTPError):
                status = cause.response.status_code if cause.response is not None else None
                if status in _AUTH_STATUSES:
                    raise
                return f"HTTP {status}"
            if isinstance(cause, requests.RequestException):
                raise
            return str(cause or err.message)
        return None

    def records(self, zone: str, name: str) -> list[dict[str, Any]]:
        provider = self._session(zone)
        found = self._call(f"list records at {name}", lambda: provider.list_records(None, name))
        return [item for item in found if _full_name(str(item.get("name", "")), zone) == name]

    def delete(self, zone: str, item: Mapping[str, Any]) -> None:
        provider = self._session(zone)
        self._call(
            f"delete {item.get('type')} at {item.get('name')}",
            lambda: provider.delete_record(
                item.get("id"), item.get("type"), item.get("name"), item.get("content")
            ),
        )
        log.info("%s: deleted %s %s", self._label, item.get("name"), item.get("type"))

    def create_cname(self, zone: str, host: str, target: str) -> None:
        provider = self._session(zone)
        self._call(f"create {host} CNAME", lambda: provider.create_record("CNAME", host, target))
        log.info("%s: created %s CNAME %s", self._label, host, target)

    @property
    def _label(self) -> str:
        return f"{LEXICON_PREFIX}{self._name}"

    def _session(self, zone: str) -> Any:
        """Return a lexicon provider authenticated for ``zone``, built once per zone."""
        if zone not in self._sessions:
            from lexicon.config import ConfigResolver

            settings: dict[str, Any] = {
                "provider_name": self._name,
                "domain": zone,
                self._name: dict(self._options),
            }
            if self._ttl is not None:
                settings["ttl"] = self._ttl
            config = ConfigResolver().with_dict(settings).with_env()  # type: ignore[no-untyped-call]
            provider = self._call("set up the provider", lambda: self._provider_class(config))
            self._call(f"authenticate for zone {zone}", provider.authenticate)
            self._sessions[zone] = provider
        return self._sessions[zone]

    def _call(self, action: str, send: Callable[[], _T]) -> _T:
        try:
            return send()
        except Exception as err:  # lexicon providers raise bare Exception, so all are caught
            raise self._error(action, err) from err

    def _error(self, action: str, err: Exception) -> DnsProviderError:
        import requests

        detail = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        status = None
        if isinstance(err, requests.HTTPError) and err.response is not None:
            status = err.response.status_code
        return DnsProviderError(
            f"The dns-lexicon provider {self._name} could not {action}: {detail}",
            hint=(
                f"Check the credentials in the provider options ({self.option_list}) and "
                "their permission on the zone."
                if status in _AUTH_STATUSES
                else f"Check the provider options ({self.option_list}) and that the DNS "
                "provider's API is reachable."
            ),
        )


def _load_provider_class(lexicon_name: str) -> type[Any]:
    try:
        from lexicon._private.discovery import find_providers, load_provider_module
    except ImportError as err:
        raise ConfigurationError(
            "The lexicon providers need dns-lexicon, which is not installed.",
            hint=_INSTALL_HINT,
        ) from err
    available = find_providers()
    if lexicon_name not in available:
        raise UnknownProviderError(
            f"dns-lexicon has no provider {lexicon_name!r}.",
            hint=f"Available: {', '.join(sorted(available))}.",
        )
    try:
        module = load_provider_module(lexicon_name)
    except ImportError as err:
        raise ConfigurationError(
            f"The dns-lexicon provider {lexicon_name} needs a package that is missing: {err}",
            hint=f"Install it with: pip install 'dns-lexicon[{lexicon_name}]'",
        ) from err
    provider_class: type[Any] = module.Provider
    return provider_class


def _check_option_names(lexicon_name: str, provider_class: Any, options: Mapping[str, str]) -> None:
    """Raise ConfigurationError for options the lexicon provider does not declare."""
    parser = argparse.ArgumentParser(add_help=False)
    provider_class.configure_parser(parser)
    known = sorted({action.dest for action in parser._actions})
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ConfigurationError(
            f"Unknown option(s) for lexicon:{lexicon_name}: {', '.join(unknown)}.",
            hint=f"Valid options: {', '.join([*known, 'ttl'])}.",
        )


def _full_name(name: str, zone: str) -> str:
    """Return a name lexicon listed, made absolute: providers return full or relative names."""
    name = canonical_name(name)
    zone = canonical_name(zone)
    if name in ("", "@"):
        return zone
    return name if name == zone or name.endswith("." + zone) else f"{name}.{zone}"
