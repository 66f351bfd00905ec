"""The MSAL token cache kept between runs: encrypted by msal-extensions, or an owner-only file.

msal-extensions encrypts with DPAPI on Windows, the Keychain on macOS and libsecret (Secret
Service) on Linux. Where that backend is missing, as on most servers and containers, the
cache falls back to a plain JSON file created with mode 0600, and one warning reports it.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msal
import msal_extensions

from o365dkim.auth.tokens import first_line, warn_once
from o365dkim.errors import ConfigurationError

log = logging.getLogger(__name__)

#: The value of O365DKIM_TOKEN_CACHE that keeps tokens in memory only.
CACHE_DISABLED = "none"
CACHE_FILE_NAME = "msal_token_cache.bin"
#: auto: encrypt where a backend exists, else an owner-only file; required: fail instead;
#: off: always the owner-only file.
ENCRYPTION_MODES = ("auto", "required", "off")

PersistenceFactory = Callable[[str], Any]


@dataclass(frozen=True)
class CacheSummary:
    """Counts of the accounts and tokens in a token cache (never the tokens themselves)."""

    accounts: int
    access_tokens: int
    refresh_tokens: int

    def to_dict(self) -> dict[str, int]:
        """Return the counts as JSON data."""
        return {
            "accounts": self.accounts,
            "access_tokens": self.access_tokens,
            "refresh_tokens": self.refresh_tokens,
        }


class TokenCacheStore:
    """An MSAL token cache, where it is kept, and whether it is encrypted at rest."""

    def __init__(
        self,
        cache: msal.SerializableTokenCache,
        *,
        location: Path | None,
        encrypted: bool,
        persistence: Any = None,
    ) -> None:
        #: The cache to hand to MSAL applications and ManagedIdentityClient.
        self.cache = cache
        #: The cache file (for encrypted backends, the file that signals changes); None
        #: when tokens are kept in memory only.
        self.location = location
        self.encrypted = encrypted
        self._persistence = persistence

    @property
    def persistent(self) -> bool:
        """True when tokens outlive the process."""
        return self._persistence is not None

    def summary(self) -> CacheSummary:
        """Return how many accounts and tokens the cache contains now."""
        return _summarize(self._load_state())

    def clear(self) -> CacheSummary:
        """Remove every cached account and token, and return what was removed."""
        removed = self.summary()
        self.cache.deserialize("{}")
        if self._persistence is None:
            return removed
        if self.encrypted:
            self._persistence.save("{}")
        elif self.location is not None:
            self.location.unlink(missing_ok=True)
        log.info("Removed %d accounts from the token cache", removed.accounts)
        return removed

    def _load_state(self) -> str:
        if self._persistence is None:
            return str(self.cache.serialize())
        try:
            return str(self._persistence.load())
        except msal_extensions.persistence.PersistenceNotFound:
            return "{}"


def default_cache_dir() -> Path:
    """Return the user's cache folder for o365dkim on this platform."""
    if sys.platform == "win32":
        local = os.environ.get("LOCALAPPDATA")
        base = Path(local) if local else Path.home() / "AppData" / "Local"
        return base / "o365dkim" / "Cache"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "o365dkim"
    # XDG Base Directory: a relative XDG_CACHE_HOME is invalid and must be ignored.
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base / "o365dkim"


def open_token_cache(
    location: str | None,
    *,
    encryption: str = "auto",
    encrypted_persistence: PersistenceFactory | None = None,
) -> TokenCacheStore:
    """Open the token cache at ``location`` (None: the default file; ``none``: memory only).

    ``encrypted_persistence`` builds the encrypted backend for a path; the default is
    msal-extensions' ``build_encrypted_persistence``. Raises ConfigurationError for an
    unknown ``encryption`` mode, or with ``required`` when no encryption backend works.
    """
    if encryption not in ENCRYPTION_MODES:
        raise ConfigurationError(
            f"Invalid token cache encryption '{encryption}': choose one of "
            f"{', '.join(ENCRYPTION_MODES)}."
        )
    if location and location.strip().lower() == CACHE_DISABLED:
        return TokenCacheStore(msal.SerializableTokenCache(), location=None, encrypted=False)

    path = Path(location).expanduser() if location else default_cache_dir() / CACHE_FILE_NAME
    _make_private_folder(path.parent, created_by_us=not location)
    persistence = None
    if encryption != "off":
        factory = encrypted_persistence or msal_extensions.build_encrypted_persistence
        persistence = _try_encrypted(factory, path, required=encryption == "required")
    if persistence is None:
        persistence = _owner_only_file(path)
    log.debug("Token cache at %s (encrypted: %s)", path, persistence.is_encrypted)
    return TokenCacheStore(
        msal_extensions.PersistedTokenCache(persistence),
        location=path,
        encrypted=bool(persistence.is_encrypted),
        persistence=persistence,
    )


def _try_encrypted(factory: PersistenceFactory, path: Path, *, required: bool) -> Any:
    """Return a working encrypted persistence, or None after one warning."""
    try:
        persistence = factory(str(path))
        # A trial load surfaces a locked or broken backend now rather than inside MSAL.
        persistence.load()
    except msal_extensions.persistence.PersistenceNotFound:
        return persistence
    except (ImportError, RuntimeError, ValueError, OSError) as err:
        reason = first_line(err)
        if required:
            raise ConfigurationError(
                f"No encryption backend for the token cache works here: {reason}",
                hint="Install and unlock a Secret Service keyring (GNOME Keyring, KWallet), "
                "or set O365DKIM_TOKEN_CACHE_ENCRYPTION=auto to allow an owner-only file.",
            ) from err
        warn_once(
            "token-cache-plaintext",
            "No encryption backend for the token cache (%s); keeping tokens unencrypted "
            "in %s, readable only by you",
            reason,
            path,
        )
        return None
    return persistence


def _owner_only_file(path: Path) -> Any:
    # msal-extensions creates the file with mode 0600; an existing file is narrowed too.
    if path.exists():
        os.chmod(path, 0o600)
    return msal_extensions.FilePersistence(str(path))


def _make_private_folder(folder: Path, *, created_by_us: bool) -> None:
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        if created_by_us:
            # The default folder is ours alone; a folder the user named keeps its mode.
            os.chmod(folder, 0o700)
    except OSError as err:
        raise ConfigurationError(
            f"Cannot create the token cache folder {folder}: {first_line(err)}",
            hint="Set O365DKIM_TOKEN_CACHE to a writable file path, or to 'none'.",
        ) from err


def _summarize(state: str) -> CacheSummary:
    try:
        data = json.loads(state) if state else {}
    except ValueError:
        data = {}
    if not isinstance(data, dict):
        data = {}

    def count(section: str) -> int:
        entries = data.get(section)
        return len(entries) if isinstance(entries, dict) else 0

    return CacheSummary(count("Account"), count("AccessToken"), count("RefreshToken"))
