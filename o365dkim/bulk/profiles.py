"""Named sign-in and DNS settings profiles, read from a TOML config file.

One CSV can span tenants and DNS providers: each row names a profile (or uses the
default one). Secrets are never stored in the file: a secret setting must be a reference,
``env:VARIABLE`` or ``keyring:NAME``.

Example ``config.toml``::

    [defaults]
    profile = "contoso"

    [profiles.contoso]
    tenant = "contoso.onmicrosoft.com"
    client_id = "00000000-0000-0000-0000-000000000000"
    certificate = "/secure/contoso.pem"
    certificate_password = "env:CONTOSO_PEM_PASSWORD"
    dns_provider = "rfc2136"

    [profiles.contoso.dns]
    server = "ns1.contoso.com"
    key_name = "o365dkim"
    key_secret = "keyring:contoso-tsig"
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from o365dkim.errors import ConfigurationError
from o365dkim.settings import Settings

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

ENV_PREFIX = "env:"
KEYRING_PREFIX = "keyring:"
#: Profile settings copied onto Settings as they are.
_PLAIN = ("tenant", "client_id", "auth", "cloud", "dns_provider", "managed_identity_client_id")
_PATHS = ("certificate", "federated_token_file")
_SECRETS = ("certificate_password", "client_secret")
_SECRET_WORDS = (
    "secret",
    "password",
    "token",
    "api_key",
    "apikey",
    "private_key",
    "credential",
    "account_info",
)
#: Every key a profile may hold besides its [dns] table.
PROFILE_KEYS = frozenset((*_PLAIN, *_PATHS, *_SECRETS))


@dataclass(frozen=True)
class Profile:
    """One named profile: sign-in settings and DNS provider options."""

    name: str
    values: dict[str, str] = field(default_factory=dict, repr=False)
    dns: dict[str, str] = field(default_factory=dict, repr=False)

    def apply(self, base: Settings) -> Settings:
        """Return ``base`` with this profile's settings, ``env:`` references resolved.

        ``keyring:NAME`` values stay as they are; the secret store resolves them later.
        """
        changes: dict[str, Any] = {}
        for key in _PLAIN:
            if key in self.values:
                changes[key] = self.values[key]
        for key in _PATHS:
            if key in self.values:
                changes[key] = Path(self.values[key]).expanduser()
        for key in _SECRETS:
            if key in self.values:
                changes[key] = _resolve_env(self.values[key], self.name, key)
        if self.dns:
            changes["dns_options"] = {
                key: _resolve_env(value, self.name, f"dns.{key}") for key, value in self.dns.items()
            }
        return dataclasses.replace(base, **changes)


@dataclass(frozen=True)
class ProfileConfig:
    """All profiles of a config file and the default profile's name."""

    profiles: dict[str, Profile] = field(default_factory=dict)
    default_profile: str | None = None
    default_tenant: str | None = None
    path: Path | None = None

    def get(self, name: str | None) -> Profile | None:
        """Return the profile called ``name`` (or the default), raising when it is unknown."""
        chosen = name or self.default_profile
        if chosen is None:
            return None
        if chosen not in self.profiles:
            known = ", ".join(sorted(self.profiles)) or "none"
            raise ConfigurationError(
                f"Unknown profile '{chosen}' (profiles in {self.path or 'no config file'}: "
                f"{known})."
            )
        return self.profiles[chosen]


def default_config_path() -> Path:
    """Return the per-user config file: $XDG_CONFIG_HOME/o365dkim/config.toml and the like."""
    if sys.platform == "win32":
        base = Path(os.environ.get("APPDATA", Path.home() / "AppData" / "Roaming"))
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "o365dkim" / "config.toml"


def load_profiles(path: Path | None = None) -> ProfileConfig:
    """Read profiles from ``path``, or from the per-user file when it exists."""
    explicit = path is not None
    chosen = path or Path(os.environ.get("O365DKIM_CONFIG") or default_config_path())
    if not chosen.exists():
        if explicit:
            raise ConfigurationError(f"Config file not found: {chosen}.")
        return ProfileConfig()
    try:
        data = tomllib.loads(chosen.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise ConfigurationError(f"Cannot read the config file {chosen}: {err}.") from err
    return _parse(data, chosen)


def _parse(data: Mapping[str, Any], path: Path) -> ProfileConfig:
    defaults = data.get("defaults", {})
    profiles_data = data.get("profiles", {})
    if not isinstance(defaults, dict) or not isinstance(profiles_data, dict):
        raise ConfigurationError(
            f"Invalid config file {path}: [defaults] and [profiles.*] must be tables."
        )
    profiles = {name: _profile(name, body, path) for name, body in profiles_data.items()}
    config = ProfileConfig(
        profiles,
        default_profile=_text(defaults.get("profile")),
        default_tenant=_text(defaults.get("tenant")),
        path=path,
    )
    config.get(config.default_profile)  # an unknown default profile is an error now, not per row
    return config


def _profile(name: str, body: Any, path: Path) -> Profile:
    if not isinstance(body, dict):
        raise ConfigurationError(f"Invalid config file {path}: [profiles.{name}] must be a table.")
    values = {key: str(value) for key, value in body.items() if key != "dns"}
    unknown = sorted(set(values) - PROFILE_KEYS)
    if unknown:
        raise ConfigurationError(
            f"Invalid config file {path}: profile '{name}' has unknown setting(s) "
            f"{', '.join(unknown)}. Known: {', '.join(sorted(PROFILE_KEYS))}."
        )
    dns = body.get("dns", {})
    if not isinstance(dns, dict):
        raise ConfigurationError(
            f"Invalid config file {path}: [profiles.{name}.dns] must be a table."
        )
    dns_values = {key: str(value) for key, value in dns.items()}
    for key, value in [*values.items(), *((f"dns.{k}", v) for k, v in dns_values.items())]:
        if _is_secret(key) and not value.startswith((ENV_PREFIX, KEYRING_PREFIX)):
            raise ConfigurationError(
                f"Invalid config file {path}: profile '{name}' has a plain-text secret in '{key}'.",
                hint="Write it as env:VARIABLE or keyring:NAME (see 'o365dkim secret set').",
            )
    return Profile(name, values, dns_values)


def _is_secret(key: str) -> bool:
    leaf = key.rsplit(".", 1)[-1].lower()
    return leaf in _SECRETS or any(word in leaf for word in _SECRET_WORDS)


def _resolve_env(value: str, profile: str, key: str) -> str:
    if not value.startswith(ENV_PREFIX):
        return value
    variable = value[len(ENV_PREFIX) :].strip()
    resolved = os.environ.get(variable)
    if not resolved:
        raise ConfigurationError(
            f"Profile '{profile}' reads '{key}' from the environment variable {variable}, "
            "which is not set."
        )
    return resolved


def _text(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None
