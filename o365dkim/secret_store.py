"""Secrets kept in the system keyring, and settings that refer to them as ``keyring:NAME``.

Entries live under the keyring service ``o365dkim`` with NAME as the user name, so the
operating system's own tools (Keychain Access, Seahorse, Credential Manager) show them.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from typing import TYPE_CHECKING

import keyring
import keyring.errors

from o365dkim.errors import ConfigurationError

if TYPE_CHECKING:
    from o365dkim.settings import Settings

log = logging.getLogger(__name__)

SERVICE = "o365dkim"
REFERENCE_PREFIX = "keyring:"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_NO_BACKEND_HINT = (
    "Install and unlock a Secret Service keyring (GNOME Keyring or KWallet), or select an "
    "installed backend with PYTHON_KEYRING_BACKEND. Or give the value in its O365DKIM_* "
    "environment variable instead."
)


class SecretStoreError(ConfigurationError):
    """Raised when the keyring has no usable backend, or fails to read, write or delete."""


class SecretNotFoundError(SecretStoreError):
    """Raised when the keyring has no secret under the requested name."""


def validate_secret_name(name: str) -> str:
    """Return ``name`` if it is a valid secret name, else raise SecretStoreError."""
    if not _NAME.match(name):
        raise SecretStoreError(
            f"Invalid secret name '{name}': use 1 to 128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit."
        )
    return name


def backend_name() -> str:
    """Return the class name of the keyring backend in use, for messages."""
    return type(keyring.get_keyring()).__name__


def set_secret(name: str, value: str) -> None:
    """Store ``value`` under ``name``, replacing any earlier value."""
    validate_secret_name(name)
    if not value:
        raise SecretStoreError(f"The value of secret {name} is empty; nothing was stored.")
    try:
        keyring.set_password(SERVICE, name, value)
    except keyring.errors.KeyringError as err:
        raise _backend_error("store", name, err) from err
    log.info("Stored secret %s in the keyring (%s)", name, backend_name())


def get_secret(name: str) -> str:
    """Return the secret stored under ``name``, or raise SecretNotFoundError."""
    validate_secret_name(name)
    try:
        value = keyring.get_password(SERVICE, name)
    except keyring.errors.KeyringError as err:
        raise _backend_error("read", name, err) from err
    if value is None:
        raise SecretNotFoundError(
            f"No secret named {name} in the keyring ({backend_name()}).",
            hint=f"Store it with: o365dkim secret set {name}",
        )
    return value


def delete_secret(name: str) -> None:
    """Delete the secret stored under ``name``, or raise SecretNotFoundError."""
    validate_secret_name(name)
    try:
        keyring.delete_password(SERVICE, name)
    except keyring.errors.PasswordDeleteError as err:
        raise SecretNotFoundError(
            f"No secret named {name} in the keyring ({backend_name()}); nothing was deleted."
        ) from err
    except keyring.errors.KeyringError as err:
        raise _backend_error("delete", name, err) from err
    log.info("Deleted secret %s from the keyring", name)


def resolve_reference(value: str | None) -> str | None:
    """Return the keyring's value for ``keyring:NAME``, or ``value`` itself otherwise."""
    if value is None or not value.startswith(REFERENCE_PREFIX):
        return value
    return get_secret(value[len(REFERENCE_PREFIX) :].strip())


def resolve_settings_secrets(settings: Settings) -> Settings:
    """Return ``settings`` with every ``keyring:NAME`` value replaced by the secret.

    Checked: the certificate password, the client secret and every DNS provider option.
    The values read are added to ``resolved_secrets`` so that logging masks them too.
    """
    resolved: list[str] = []

    def resolve(value: str | None) -> str | None:
        secret = resolve_reference(value)
        if secret is not None and secret != value:
            resolved.append(secret)
        return secret

    dns_options = {key: resolve(value) or "" for key, value in settings.dns_options.items()}
    updated = dataclasses.replace(
        settings,
        certificate_password=resolve(settings.certificate_password),
        client_secret=resolve(settings.client_secret),
        dns_options=dns_options,
    )
    updated.resolved_secrets = [*settings.resolved_secrets, *resolved]
    return updated


def _backend_error(action: str, name: str, err: keyring.errors.KeyringError) -> SecretStoreError:
    done = {"store": "stored", "read": "read", "delete": "deleted"}[action]
    if isinstance(err, keyring.errors.NoKeyringError):
        return SecretStoreError(
            f"No keyring backend is available here, so secret {name} cannot be {done}.",
            hint=_NO_BACKEND_HINT,
        )
    return SecretStoreError(
        f"The keyring ({backend_name()}) failed to {action} secret {name}: "
        f"{str(err).strip() or type(err).__name__}.",
        hint=_NO_BACKEND_HINT,
    )
