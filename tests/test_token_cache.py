"""The token cache: kept between runs and shared by providers, owner-only when unencrypted,
one warning on fallback, and cleared by logout.

The encrypted backends (libsecret, Keychain, DPAPI) cannot run here, so tests that need
one pass a stand-in factory instead of msal-extensions' build_encrypted_persistence.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import stat
from pathlib import Path
from typing import Any

import msal_extensions
import pytest
from signin_helpers import clear_managed_identity_environment, forbid_metadata_address
from tenant_fixtures import TenantFactory, TenantHandle

from o365dkim.auth import tokens as token_module
from o365dkim.auth.cache import CACHE_FILE_NAME, open_token_cache
from o365dkim.auth.factory import open_sign_in
from o365dkim.errors import ConfigurationError
from o365dkim.settings import Settings

DOMAIN = "contoso.com"


class StandInEncryptedPersistence(msal_extensions.FilePersistence):  # type: ignore[misc]
    """A stand-in for an encrypted backend, which this machine lacks. It stores plain text."""

    is_encrypted = True


def missing_backend(location: str) -> Any:
    # What build_encrypted_persistence raises on Linux without PyGObject.
    raise ImportError("Unable to import module 'gi'")


@pytest.fixture(autouse=True)
def fresh_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(token_module, "_warned", set())


@pytest.fixture
def handle(make_tenant: TenantFactory) -> TenantHandle:
    tenant = make_tenant([DOMAIN])
    tenant.server.faults.update(device_code_approval_seconds=0.2)
    return tenant


def settings_for(handle: TenantHandle, cache: Path | str, **changes: Any) -> Settings:
    settings = Settings(
        tenant=handle.tenant.name,
        client_id=handle.client_id,
        auth="certificate",
        certificate=handle.certificate,
        authority_host=handle.server.base_url,
        api_base=handle.server.base_url,
        ca_bundle=str(handle.ca_bundle),
        token_cache=str(cache),
        token_cache_encryption="off",
    )
    return dataclasses.replace(settings, **changes)


def test_cache_reused_across_providers(handle: TenantHandle, tmp_path: Path) -> None:
    settings = settings_for(handle, tmp_path / "cache.json")
    first = open_sign_in(settings, lambda message: None).provider.get_token()
    second = open_sign_in(settings, lambda message: None).provider.get_token()
    assert handle.server.token_requests[handle.client_id.lower()] == 1
    assert first.from_cache is False
    assert second.from_cache is True
    assert second.token == first.token


def test_device_code_reused_across_providers(handle: TenantHandle, tmp_path: Path) -> None:
    settings = settings_for(handle, tmp_path / "cache.json", auth="device-code", client_id=None)
    shown: list[str] = []
    open_sign_in(settings, shown.append).provider.get_token()
    token = open_sign_in(settings, shown.append, interactive=False).provider.get_token()
    assert len(shown) == 1
    assert token.subject == f"admin@{handle.tenant.initial_domain}"
    assert token.from_cache is True


def test_managed_identity_reused_across_providers(
    handle: TenantHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clear_managed_identity_environment(monkeypatch)
    forbid_metadata_address(monkeypatch)
    identity = handle.server.assign_managed_identity(handle.tenant.tenant_id)
    for name, value in handle.server.managed_identity_environment().items():
        monkeypatch.setenv(name, value)
    settings = settings_for(handle, tmp_path / "cache.json", auth="managed-identity")
    open_sign_in(settings, lambda message: None).provider.get_token()
    open_sign_in(settings, lambda message: None).provider.get_token()
    assert handle.server.token_requests[identity.client_id.lower()] == 1


def test_disabled_cache_signs_in_again(handle: TenantHandle) -> None:
    settings = settings_for(handle, "none")
    store = open_sign_in(settings, lambda message: None).cache
    open_sign_in(settings, lambda message: None).provider.get_token()
    open_sign_in(settings, lambda message: None).provider.get_token()
    assert handle.server.token_requests[handle.client_id.lower()] == 2
    assert store.persistent is False
    assert store.location is None


def test_forced_refresh_skips_cached_token(handle: TenantHandle, tmp_path: Path) -> None:
    provider = open_sign_in(
        settings_for(handle, tmp_path / "c.json"), lambda message: None
    ).provider
    provider.get_token()
    provider.get_token(force_refresh=True)
    assert handle.server.token_requests[handle.client_id.lower()] == 2


def test_cache_file_owner_only(handle: TenantHandle, tmp_path: Path) -> None:
    path = tmp_path / "cache.json"
    open_sign_in(settings_for(handle, path), lambda message: None).provider.get_token()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "AccessToken" in json.loads(path.read_text())


def test_existing_file_narrowed_to_owner(tmp_path: Path) -> None:
    path = tmp_path / "cache.json"
    path.write_text("{}")
    path.chmod(0o644)
    open_token_cache(str(path), encryption="off")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_default_location_private_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    store = open_token_cache(None, encryption="off")
    assert store.location == tmp_path / "xdg" / "o365dkim" / CACHE_FILE_NAME
    assert stat.S_IMODE((tmp_path / "xdg" / "o365dkim").stat().st_mode) == 0o700


def test_relative_xdg_cache_ignored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")
    monkeypatch.setenv("HOME", str(tmp_path))
    store = open_token_cache(None, encryption="off")
    assert store.location == tmp_path / ".cache" / "o365dkim" / CACHE_FILE_NAME


def test_fallback_warns_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="o365dkim"):
        first = open_token_cache(str(tmp_path / "a.json"), encrypted_persistence=missing_backend)
        open_token_cache(str(tmp_path / "b.json"), encrypted_persistence=missing_backend)
    warnings = [r for r in caplog.records if "No encryption backend" in r.getMessage()]
    assert len(warnings) == 1
    assert "readable only by you" in warnings[0].getMessage()
    assert first.encrypted is False
    assert first.persistent is True


def test_required_encryption_fails(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as caught:
        open_token_cache(
            str(tmp_path / "c.json"), encryption="required", encrypted_persistence=missing_backend
        )
    assert "No encryption backend" in str(caught.value)
    assert "O365DKIM_TOKEN_CACHE_ENCRYPTION" in str(caught.value.hint)


def test_encrypted_backend_preferred(tmp_path: Path) -> None:
    store = open_token_cache(
        str(tmp_path / "c.bin"), encrypted_persistence=StandInEncryptedPersistence
    )
    assert store.encrypted is True


def test_invalid_encryption_mode_rejected(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="Invalid token cache encryption 'maybe'"):
        open_token_cache(str(tmp_path / "c.json"), encryption="maybe")


def test_clear_removes_accounts(handle: TenantHandle, tmp_path: Path) -> None:
    path = tmp_path / "cache.json"
    settings = settings_for(handle, path, auth="device-code", client_id=None)
    open_sign_in(settings, lambda message: None).provider.get_token()
    store = open_token_cache(str(path), encryption="off")
    removed = store.clear()
    assert removed.accounts == 1
    assert removed.refresh_tokens == 1
    assert store.summary().accounts == 0
    assert not path.exists()


def test_clear_encrypted_keeps_empty_cache(tmp_path: Path) -> None:
    path = tmp_path / "c.bin"
    path.write_text(json.dumps({"Account": {"a": {}}, "AccessToken": {"t": {}}}))
    store = open_token_cache(str(path), encrypted_persistence=StandInEncryptedPersistence)
    removed = store.clear()
    assert removed.accounts == 1
    assert removed.access_tokens == 1
    assert json.loads(path.read_text()) == {}


def test_sandbox_run_keeps_memory_cache(
    handle: TenantHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An authority override without O365DKIM_TOKEN_CACHE never writes the user's cache."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    settings = settings_for(handle, "unused", token_cache=None)
    sign_in = open_sign_in(settings, lambda message: None)
    sign_in.provider.get_token()
    assert sign_in.cache.persistent is False
    assert not (tmp_path / ".cache").exists()
