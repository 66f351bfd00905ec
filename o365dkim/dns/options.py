"""String options of DNS providers: names, environment fallbacks, keyring references, numbers.

Providers take their settings as strings (``--dns-option KEY=VALUE``, a profile, the
environment). An option missing from those falls back to ``O365DKIM_<PROVIDER>_<KEY>``,
and any value written as ``keyring:NAME`` is read from the system keyring, where
``o365dkim secret set NAME`` stores it.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterable, Mapping, Sequence

from o365dkim.errors import ConfigurationError, InvalidInputError

log = logging.getLogger(__name__)

KEYRING_PREFIX = "keyring:"
ENV_PREFIX = "O365DKIM_"
MAX_TTL = 2**31 - 1  # RFC 2181 section 8


class ProviderOptions:
    """The options of one provider after checking their names, with fallbacks applied on read.

    Values are never logged; ``repr`` shows only the option names.
    """

    def __init__(self, provider: str, options: Mapping[str, str], known: Sequence[str]) -> None:
        self.provider = provider
        self._values = normalize_options(provider, options, known)

    def __repr__(self) -> str:
        return f"ProviderOptions({self.provider!r}, names={sorted(self._values)!r})"

    def get(self, key: str, default: str | None = None) -> str | None:
        """Return the option, else its O365DKIM_<PROVIDER>_<KEY> variable, else ``default``.

        A ``keyring:NAME`` value is replaced by the secret stored under NAME.
        """
        value = self._values.get(key) or os.environ.get(env_name(self.provider, key)) or default
        if value is None:
            return None
        return resolve_keyring_reference(value, self.provider, key)

    def require(self, key: str, hint: str) -> str:
        """Return the option like ``get``, raising ConfigurationError when it has no value."""
        value = self.get(key)
        if not value:
            raise ConfigurationError(
                f"The {self.provider} provider needs the {key} option "
                f"(or {env_name(self.provider, key)}).",
                hint=hint,
            )
        return value


def normalize_options(
    provider: str, options: Mapping[str, str], known: Sequence[str]
) -> dict[str, str]:
    """Return the options with lower-case, underscore names; raise on names not in ``known``."""
    normalized = {option_key(key): value for key, value in options.items()}
    unknown = sorted(set(normalized) - set(known))
    if unknown:
        raise ConfigurationError(
            f"Unknown option(s) for the {provider} provider: {', '.join(unknown)}.",
            hint=f"Valid options: {', '.join(known)}.",
        )
    return normalized


def option_key(key: str) -> str:
    """Return an option name in its canonical form: "API-Key" becomes "api_key"."""
    return key.strip().replace("-", "_").lower()


def env_name(provider: str, key: str) -> str:
    """Return the environment variable that supplies ``key`` for ``provider``."""
    prefix = provider.replace(":", "_").replace("-", "_").upper()
    return f"{ENV_PREFIX}{prefix}_{option_key(key).upper()}"


def parse_option_pairs(pairs: Iterable[str] | None) -> dict[str, str]:
    """Turn ``KEY=VALUE`` strings (``--dns-option``) into a dict; the last of a key wins."""
    options: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            # The value may be a secret, so only the key part is shown.
            raise InvalidInputError(
                f"Invalid DNS provider option {key.strip() or '(empty)'!r}: expected KEY=VALUE.",
                hint="Write it as --dns-option api_url=https://dns.example.net:8081.",
            )
        options[option_key(key)] = value.strip()
    return options


def resolve_keyring_reference(value: str, provider: str, key: str) -> str:
    """Return ``value``, or the keyring secret it names when written as ``keyring:NAME``.

    The CLI resolves references in ``--dns-option`` values before it builds the
    provider. This function covers values from the environment and callers of the library.
    """
    if not value.startswith(KEYRING_PREFIX):
        return value
    from o365dkim.secret_store import resolve_reference

    secret = resolve_reference(value)
    assert secret is not None
    log.debug("%s: %s read from the keyring", provider, key)
    return secret


def parse_ttl(value: int | str, *, minimum: int = 0, maximum: int = MAX_TTL) -> int:
    """Return ``value`` as a TTL in seconds, raising InvalidInputError outside the range."""
    try:
        ttl = int(str(value).strip())
    except ValueError:
        ttl = minimum - 1
    if not minimum <= ttl <= maximum:
        raise InvalidInputError(
            f"Invalid TTL {value!r}: give a whole number of seconds from {minimum} to {maximum}."
        )
    return ttl


def parse_seconds(value: float | str, name: str = "timeout") -> float:
    """Return ``value`` as a positive, finite number of seconds."""
    try:
        seconds = float(str(value).strip())
    except ValueError:
        seconds = math.nan
    if not (seconds > 0 and math.isfinite(seconds)):
        raise InvalidInputError(f"Invalid {name} {value!r}: give a number of seconds above 0.")
    return seconds


def relative_name(host: str, zone: str) -> str:
    """Return ``host`` relative to ``zone`` ("@" for the apex), for APIs that take such names.

    Both names are absolute, compared without case and final dot.
    """
    host_name = host.strip().rstrip(".").lower()
    zone_name = zone.strip().rstrip(".").lower()
    if host_name == zone_name:
        return "@"
    if not host_name.endswith("." + zone_name):
        raise InvalidInputError(f"{host_name} is not inside the zone {zone_name}.")
    return host_name[: -len(zone_name) - 1]


def zone_candidates(host: str) -> list[str]:
    """Return ``host`` and its parents, longest first, without the top-level domain alone."""
    labels = host.strip().rstrip(".").lower().split(".")
    return [".".join(labels[start:]) for start in range(len(labels) - 1)]


def longest_zone(host: str, zones: Iterable[str]) -> str | None:
    """Return the zone in ``zones`` that contains ``host`` with the longest name, or None."""
    candidates = set(zone_candidates(host))
    found = [zone for zone in zones if zone.strip().rstrip(".").lower() in candidates]
    return max(found, key=len) if found else None
