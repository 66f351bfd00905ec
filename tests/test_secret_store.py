"""Secrets in the keyring and keyring:NAME settings, with an in-memory keyring backend
(the user's real keyring is never touched) or keyring's own "no backend" stand-in."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import keyring
import keyring.backends.fail
import pytest
from signin_helpers import MemoryKeyring
from tenant_fixtures import TenantFactory

from o365dkim import secret_store
from o365dkim.auth.factory import open_sign_in
from o365dkim.sandbox.ca import write_pfx
from o365dkim.secret_store import SecretNotFoundError, SecretStoreError
from o365dkim.settings import Settings

PFX_PASSWORD = "pfx-Password-5521"


@pytest.fixture
def memory_keyring() -> Iterator[MemoryKeyring]:
    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)


@pytest.fixture
def no_keyring() -> Iterator[None]:
    previous = keyring.get_keyring()
    keyring.set_keyring(keyring.backends.fail.Keyring())
    yield
    keyring.set_keyring(previous)


def test_secret_set_get_delete(memory_keyring: MemoryKeyring) -> None:
    secret_store.set_secret("dns-key", "tsig-Secret-1")
    assert memory_keyring.entries[("o365dkim", "dns-key")] == "tsig-Secret-1"
    assert secret_store.get_secret("dns-key") == "tsig-Secret-1"
    secret_store.delete_secret("dns-key")
    assert memory_keyring.entries == {}


def test_missing_secret_names_command(memory_keyring: MemoryKeyring) -> None:
    with pytest.raises(SecretNotFoundError) as caught:
        secret_store.get_secret("absent")
    assert "No secret named absent" in str(caught.value)
    assert "o365dkim secret set absent" in str(caught.value.hint)


def test_delete_missing_secret_fails(memory_keyring: MemoryKeyring) -> None:
    with pytest.raises(SecretNotFoundError, match="nothing was deleted"):
        secret_store.delete_secret("absent")


def test_empty_value_rejected(memory_keyring: MemoryKeyring) -> None:
    with pytest.raises(SecretStoreError, match="empty"):
        secret_store.set_secret("dns-key", "")
    assert memory_keyring.entries == {}


@pytest.mark.parametrize("name", ["", "-leading", "has space", "semi;colon", "a" * 129])
def test_invalid_secret_name_rejected(name: str) -> None:
    with pytest.raises(SecretStoreError, match="Invalid secret name"):
        secret_store.validate_secret_name(name)


@pytest.mark.parametrize("action", ["set", "get", "delete"])
def test_no_backend_clear_message(no_keyring: None, action: str) -> None:
    calls = {
        "set": lambda: secret_store.set_secret("dns-key", "value-1234"),
        "get": lambda: secret_store.get_secret("dns-key"),
        "delete": lambda: secret_store.delete_secret("dns-key"),
    }
    with pytest.raises(SecretStoreError) as caught:
        calls[action]()
    assert str(caught.value).startswith("No keyring backend is available here")
    assert "PYTHON_KEYRING_BACKEND" in str(caught.value.hint)
    assert caught.value.exit_code == 2


def test_settings_references_resolved(memory_keyring: MemoryKeyring) -> None:
    secret_store.set_secret("pfx", PFX_PASSWORD)
    secret_store.set_secret("app", "client-Secret-77")
    secret_store.set_secret("tsig", "tsig-Secret-88")
    settings = Settings(
        certificate_password="keyring:pfx",
        client_secret="keyring:app",
        dns_options={"server": "ns1.contoso.com", "key_secret": "keyring:tsig"},
    )
    resolved = secret_store.resolve_settings_secrets(settings)
    assert resolved.certificate_password == PFX_PASSWORD
    assert resolved.client_secret == "client-Secret-77"
    assert resolved.dns_options == {"server": "ns1.contoso.com", "key_secret": "tsig-Secret-88"}
    assert set(resolved.secrets()) >= {PFX_PASSWORD, "client-Secret-77", "tsig-Secret-88"}


def test_plain_values_left_alone(no_keyring: None) -> None:
    """Settings without keyring: references never touch the keyring, even when it is missing."""
    settings = Settings(certificate_password="plain-Password", dns_options={"key_secret": "x"})
    resolved = secret_store.resolve_settings_secrets(settings)
    assert resolved.certificate_password == "plain-Password"
    assert resolved.resolved_secrets == []


def test_pfx_password_from_keyring_signs_in(
    memory_keyring: MemoryKeyring, make_tenant: TenantFactory, tmp_path: Path
) -> None:
    handle = make_tenant(["contoso.com"])
    pfx = write_pfx(tmp_path / "app.pfx", handle.key_pem, handle.cert_pem, PFX_PASSWORD)
    secret_store.set_secret("pfx", PFX_PASSWORD)
    settings = Settings(
        tenant=handle.tenant.name,
        client_id=handle.client_id,
        certificate=pfx,
        certificate_password="keyring:pfx",
        authority_host=handle.server.base_url,
        ca_bundle=str(handle.ca_bundle),
        token_cache="none",
    )
    resolved = secret_store.resolve_settings_secrets(settings)
    token = open_sign_in(resolved, lambda message: None).provider.get_token()
    assert token.tenant_id == handle.tenant.tenant_id
