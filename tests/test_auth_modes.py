"""Every --auth mode signs in through MSAL over HTTPS against the sandbox tenant and runs
one admin API call. The failures a tenant admin meets in each mode come back as errors
with a hint.

Nothing here is mocked except what cannot run on a test machine: the Azure host behind a
managed identity (the sandbox serves its endpoint), the platform that issues federated
tokens (a sandbox OIDC issuer signs them), and the person's browser (a script follows the
sign-in page with requests; see browser_stand_in.py).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from signin_helpers import (
    browser_stand_in,
    clear_managed_identity_environment,
    forbid_metadata_address,
)
from tenant_fixtures import TenantFactory, TenantHandle

from o365dkim.auth import tokens as token_module
from o365dkim.auth.factory import open_sign_in
from o365dkim.errors import AuthenticationError, ConfigurationError
from o365dkim.sandbox.entra_federation import OidcIssuer
from o365dkim.settings import Settings, build_exchange_client

DOMAIN = "contoso.com"
CLIENT_SECRET = "app-secret-Value-7f3a"
K8S_ISSUER = "https://kubernetes.sandbox.test/oidc"
K8S_SUBJECT = "system:serviceaccount:dkim:o365dkim"
GITHUB_SUBJECT = "repo:contoso/dns:ref:refs/heads/main"
FEDERATION_VARIABLES = (
    "AZURE_FEDERATED_TOKEN_FILE",
    "O365DKIM_FEDERATED_TOKEN",
    "ACTIONS_ID_TOKEN_REQUEST_URL",
    "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
)


@pytest.fixture
def handle(make_tenant: TenantFactory) -> TenantHandle:
    tenant = make_tenant([DOMAIN])
    tenant.server.faults.update(device_code_approval_seconds=0.2)
    return tenant


@pytest.fixture
def settings(handle: TenantHandle, private_token_cache: Path) -> Settings:
    """Settings pointed at the sandbox tenant, without a sign-in mode yet."""
    return Settings(
        tenant=handle.tenant.name,
        authority_host=handle.server.base_url,
        api_base=handle.server.base_url,
        ca_bundle=str(handle.ca_bundle),
        token_cache=str(private_token_cache),
        token_cache_encryption="off",
    )


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No outside sign-in variables, no metadata address, and warn_once reset per test."""
    clear_managed_identity_environment(monkeypatch)
    for name in FEDERATION_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    forbid_metadata_address(monkeypatch)
    monkeypatch.setattr(token_module, "_warned", set())
    yield


def admin_call(settings: Settings, **changes: object) -> list[str]:
    """Sign in with ``settings`` plus ``changes`` and list the tenant's accepted domains."""
    chosen = dataclasses.replace(settings, **changes)  # type: ignore[arg-type]
    sign_in = open_sign_in(chosen, lambda message: None)
    client = build_exchange_client(chosen, sign_in.provider)
    return [domain.domain for domain in client.list_accepted_domains()]


def k8s_issuer(handle: TenantHandle) -> OidcIssuer:
    issuer = OidcIssuer(K8S_ISSUER)
    handle.server.add_federated_credential(
        handle.tenant.tenant_id, handle.client_id, issuer, K8S_SUBJECT
    )
    return issuer


# ----- app-only modes ---------------------------------------------------------------------


def test_certificate_mode_calls_api(handle: TenantHandle, settings: Settings) -> None:
    domains = admin_call(
        settings, auth="certificate", client_id=handle.client_id, certificate=handle.certificate
    )
    assert DOMAIN in domains


def test_client_secret_mode_calls_api(handle: TenantHandle, settings: Settings) -> None:
    handle.server.add_client_secret(handle.tenant.tenant_id, handle.client_id, CLIENT_SECRET)
    domains = admin_call(
        settings, auth="client-secret", client_id=handle.client_id, client_secret=CLIENT_SECRET
    )
    assert DOMAIN in domains


def test_client_secret_warns_once(
    handle: TenantHandle, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    handle.server.add_client_secret(handle.tenant.tenant_id, handle.client_id, CLIENT_SECRET)
    chosen = dataclasses.replace(
        settings, auth="client-secret", client_id=handle.client_id, client_secret=CLIENT_SECRET
    )
    with caplog.at_level(logging.WARNING, logger="o365dkim"):
        open_sign_in(chosen, lambda message: None).provider.get_token()
        open_sign_in(chosen, lambda message: None).provider.get_token()
    warnings = [r for r in caplog.records if "client secret" in r.getMessage()]
    assert len(warnings) == 1
    assert "certificates" in warnings[0].getMessage()
    assert CLIENT_SECRET not in caplog.text


def test_wrong_client_secret_rejected(handle: TenantHandle, settings: Settings) -> None:
    handle.server.add_client_secret(handle.tenant.tenant_id, handle.client_id, CLIENT_SECRET)
    with pytest.raises(AuthenticationError) as caught:
        admin_call(
            settings, auth="client-secret", client_id=handle.client_id, client_secret="wrong-one"
        )
    assert "AADSTS7000215" in str(caught.value)
    assert "client secret" in str(caught.value.hint)


def test_federated_file_mode_calls_api(
    handle: TenantHandle, settings: Settings, tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(k8s_issuer(handle).issue(K8S_SUBJECT))
    domains = admin_call(
        settings, auth="federated", client_id=handle.client_id, federated_token_file=token_file
    )
    assert DOMAIN in domains


def test_federated_file_read_each_time(
    handle: TenantHandle, settings: Settings, tmp_path: Path
) -> None:
    """A rotated token file (as the kubelet rotates it) is read again for the next sign-in."""
    issuer = k8s_issuer(handle)
    token_file = tmp_path / "token"
    token_file.write_text(issuer.issue(K8S_SUBJECT, lifetime_seconds=-1000))
    chosen = dataclasses.replace(
        settings, auth="federated", client_id=handle.client_id, federated_token_file=token_file
    )
    provider = open_sign_in(chosen, lambda message: None).provider
    with pytest.raises(AuthenticationError, match="AADSTS700024"):
        provider.get_token()
    token_file.write_text(issuer.issue(K8S_SUBJECT))
    assert provider.get_token().app_only is True


def test_federated_environment_variable_token(
    handle: TenantHandle, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("O365DKIM_FEDERATED_TOKEN", k8s_issuer(handle).issue(K8S_SUBJECT))
    domains = admin_call(settings, auth="federated", client_id=handle.client_id)
    assert DOMAIN in domains


def test_federated_github_actions_token(
    handle: TenantHandle, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    github = handle.server.enable_github_actions(GITHUB_SUBJECT)
    handle.server.add_federated_credential(
        handle.tenant.tenant_id, handle.client_id, github.issuer, GITHUB_SUBJECT
    )
    monkeypatch.setenv("ACTIONS_ID_TOKEN_REQUEST_URL", handle.server.github_request_url())
    monkeypatch.setenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN", github.request_token)
    domains = admin_call(settings, auth="federated", client_id=handle.client_id)
    assert DOMAIN in domains
    assert github.requests == 1


def test_federated_wrong_subject_rejected(
    handle: TenantHandle, settings: Settings, tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(k8s_issuer(handle).issue("system:serviceaccount:other:intruder"))
    with pytest.raises(AuthenticationError) as caught:
        admin_call(
            settings, auth="federated", client_id=handle.client_id, federated_token_file=token_file
        )
    assert "AADSTS700213" in str(caught.value)
    assert "federated credential" in str(caught.value.hint)


def test_federated_untrusted_issuer_rejected(
    handle: TenantHandle, settings: Settings, tmp_path: Path
) -> None:
    k8s_issuer(handle)
    stranger = OidcIssuer("https://elsewhere.sandbox.test/")
    token_file = tmp_path / "token"
    token_file.write_text(stranger.issue(K8S_SUBJECT))
    with pytest.raises(AuthenticationError, match="AADSTS700211"):
        admin_call(
            settings, auth="federated", client_id=handle.client_id, federated_token_file=token_file
        )


def test_federated_without_token_source(handle: TenantHandle, settings: Settings) -> None:
    with pytest.raises(ConfigurationError, match="needs a federated token"):
        admin_call(settings, auth="federated", client_id=handle.client_id)


def test_federated_missing_file_named(
    handle: TenantHandle, settings: Settings, tmp_path: Path
) -> None:
    with pytest.raises(ConfigurationError, match="Cannot read the federated token file"):
        admin_call(
            settings,
            auth="federated",
            client_id=handle.client_id,
            federated_token_file=tmp_path / "missing",
        )


def test_managed_identity_system_calls_api(
    handle: TenantHandle, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    identity = handle.server.assign_managed_identity(handle.tenant.tenant_id)
    for name, value in handle.server.managed_identity_environment().items():
        monkeypatch.setenv(name, value)
    chosen = dataclasses.replace(settings, auth="managed-identity")
    token = open_sign_in(chosen, lambda message: None).provider.get_token()
    assert token.subject == identity.client_id
    assert DOMAIN in admin_call(chosen)


def test_managed_identity_user_assigned_selected(
    handle: TenantHandle, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    handle.server.assign_managed_identity(handle.tenant.tenant_id)
    chosen_identity = handle.server.assign_managed_identity(
        handle.tenant.tenant_id, user_assigned=True
    )
    for name, value in handle.server.managed_identity_environment().items():
        monkeypatch.setenv(name, value)
    chosen = dataclasses.replace(
        settings, auth="managed-identity", managed_identity_client_id=chosen_identity.client_id
    )
    token = open_sign_in(chosen, lambda message: None).provider.get_token()
    assert token.subject == chosen_identity.client_id


def test_managed_identity_wrong_header_rejected(
    handle: TenantHandle, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    handle.server.assign_managed_identity(handle.tenant.tenant_id)
    environment = handle.server.managed_identity_environment()
    monkeypatch.setenv("IDENTITY_ENDPOINT", environment["IDENTITY_ENDPOINT"])
    monkeypatch.setenv("IDENTITY_HEADER", "not-the-header")
    with pytest.raises(AuthenticationError) as caught:
        admin_call(settings, auth="managed-identity")
    assert "401" in str(caught.value)
    assert "identity is enabled" in str(caught.value.hint)


def test_managed_identity_unknown_client_rejected(
    handle: TenantHandle, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    handle.server.assign_managed_identity(handle.tenant.tenant_id)
    for name, value in handle.server.managed_identity_environment().items():
        monkeypatch.setenv(name, value)
    with pytest.raises(AuthenticationError, match="No managed identity found"):
        admin_call(
            settings,
            auth="managed-identity",
            managed_identity_client_id="00000000-0000-0000-0000-000000000001",
        )


def test_managed_identity_sandbox_needs_endpoint(settings: Settings) -> None:
    """Without IDENTITY_ENDPOINT, MSAL would use 169.254.169.254; a sandbox run refuses first."""
    with pytest.raises(ConfigurationError, match="IDENTITY_ENDPOINT"):
        admin_call(settings, auth="managed-identity")


# ----- a person -----------------------------------------------------------------------------


def test_device_code_mode_calls_api(handle: TenantHandle, settings: Settings) -> None:
    shown: list[str] = []
    chosen = dataclasses.replace(settings, auth="device-code")
    sign_in = open_sign_in(chosen, shown.append)
    client = build_exchange_client(chosen, sign_in.provider)
    assert DOMAIN in [domain.domain for domain in client.list_accepted_domains()]
    assert len(shown) == 1
    assert "enter the code" in shown[0]


def test_browser_mode_calls_api(
    handle: TenantHandle,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    browser = browser_stand_in(monkeypatch, tmp_path, handle.ca_bundle)
    shown: list[str] = []
    chosen = dataclasses.replace(settings, auth="browser")
    sign_in = open_sign_in(chosen, shown.append)
    token = sign_in.provider.get_token()
    assert token.app_only is False
    assert token.subject == f"admin@{handle.tenant.initial_domain}"
    assert browser.steps() == ["opened", "authorize 200", "redirect 200 True"]
    client = build_exchange_client(chosen, sign_in.provider)
    assert DOMAIN in [domain.domain for domain in client.list_accepted_domains()]


def test_browser_without_display_fails(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "BROWSER"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigurationError) as caught:
        open_sign_in(dataclasses.replace(settings, auth="browser"), lambda message: None)
    assert "no graphical display" in str(caught.value)
    assert "--auth device-code" in str(caught.value.hint)


@pytest.mark.parametrize("mode", ["device-code", "browser"])
def test_person_mode_silent_needs_cache(settings: Settings, mode: str) -> None:
    chosen = dataclasses.replace(settings, auth=mode)
    provider = open_sign_in(chosen, lambda message: None, interactive=False).provider
    with pytest.raises(AuthenticationError) as caught:
        provider.get_token()
    assert "No cached sign-in" in str(caught.value)
    assert "o365dkim login" in str(caught.value.hint)


# ----- every mode ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "mode", ["certificate", "client-secret", "federated", "managed-identity", "device-code"]
)
def test_mode_requests_cloud_scope(
    handle: TenantHandle,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    mode: str,
) -> None:
    """With --cloud gcc-high each mode asks for outlook.office365.us, which the sandbox's
    directory (worldwide Exchange only) rejects: proof that the cloud's scope is used."""
    handle.server.add_client_secret(handle.tenant.tenant_id, handle.client_id, CLIENT_SECRET)
    handle.server.assign_managed_identity(handle.tenant.tenant_id)
    for name, value in handle.server.managed_identity_environment().items():
        monkeypatch.setenv(name, value)
    token_file = tmp_path / "token"
    token_file.write_text(k8s_issuer(handle).issue(K8S_SUBJECT))
    chosen = dataclasses.replace(
        settings,
        auth=mode,
        cloud="gcc-high",
        client_id=None if mode == "device-code" else handle.client_id,
        certificate=handle.certificate,
        client_secret=CLIENT_SECRET,
        federated_token_file=token_file,
    )
    with pytest.raises(AuthenticationError) as caught:
        open_sign_in(chosen, lambda message: None).provider.get_token()
    assert "outlook.office365.us" in str(caught.value)


@pytest.mark.parametrize(
    ("mode", "missing"),
    [
        ("certificate", "--certificate"),
        ("client-secret", "--client-secret"),
        ("federated", "--client-id"),
    ],
)
def test_app_mode_names_missing_setting(settings: Settings, mode: str, missing: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        open_sign_in(dataclasses.replace(settings, auth=mode), lambda message: None)
    assert missing in str(caught.value)


def test_unknown_mode_rejected(settings: Settings) -> None:
    with pytest.raises(Exception, match="Invalid sign-in mode 'kerberos'"):
        open_sign_in(dataclasses.replace(settings, auth="kerberos"), lambda message: None)
