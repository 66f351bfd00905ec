"""MSAL sign-in against the sandbox tenant's token endpoint over HTTPS."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from tenant_fixtures import SCOPE, TenantFactory

from o365dkim.auth import (
    EXCHANGE_PUBLIC_CLIENT_ID,
    CertificateCredential,
    certificate_provider,
    device_code_provider,
    validate_tenant,
)
from o365dkim.cli.logs import SecretFilter
from o365dkim.errors import AuthenticationError, ConfigurationError, InvalidInputError
from o365dkim.http import create_session
from o365dkim.sandbox.ca import make_client_certificate, write_pfx

DOMAIN = "contoso.com"


def test_certificate_pem_sign_in(make_tenant: TenantFactory) -> None:
    handle = make_tenant([DOMAIN])
    token = handle.token_provider().get_token()
    assert token.tenant_id == handle.tenant.tenant_id
    assert token.app_only is True
    assert handle.client_id.lower() in token.subject.lower()


def test_certificate_pfx_sign_in(make_tenant: TenantFactory, tmp_path: Path) -> None:
    handle = make_tenant([DOMAIN])
    pfx = write_pfx(tmp_path / "app.pfx", handle.key_pem, handle.cert_pem, "pfx-pass-1234")
    credential = CertificateCredential(handle.client_id, handle.tenant.tenant_id, pfx,
                                       "pfx-pass-1234")
    provider = certificate_provider(
        credential, authority_host=handle.server.base_url, scope=SCOPE,
        session=create_session(ca_bundle=str(handle.ca_bundle)),
    )
    assert provider.get_token().tenant_id == handle.tenant.tenant_id


def test_unregistered_certificate_rejected(make_tenant: TenantFactory, tmp_path: Path) -> None:
    handle = make_tenant([DOMAIN])
    key_pem, cert_pem = make_client_certificate("someone else")
    other = tmp_path / "other.pem"
    other.write_bytes(key_pem + cert_pem)
    credential = CertificateCredential(handle.client_id, handle.tenant.name, other)
    provider = certificate_provider(
        credential, authority_host=handle.server.base_url, scope=SCOPE,
        session=create_session(ca_bundle=str(handle.ca_bundle)),
    )
    with pytest.raises(AuthenticationError) as caught:
        provider.get_token()
    assert "Sign-in failed" in str(caught.value)
    assert "certificate" in str(caught.value)


def test_untrusted_ca_fails_tls(make_tenant: TenantFactory, tmp_path: Path) -> None:
    """The sandbox CA is trusted only where given; the system bundle does not know it."""
    handle = make_tenant([DOMAIN])
    other = make_tenant([DOMAIN])
    credential = CertificateCredential(handle.client_id, handle.tenant.name, handle.certificate)
    with pytest.raises(AuthenticationError, match="Cannot reach the sign-in service"):
        certificate_provider(
            credential, authority_host=handle.server.base_url, scope=SCOPE,
            session=create_session(ca_bundle=str(other.ca_bundle)),
        ).get_token()


def test_missing_certificate_file(tmp_path: Path) -> None:
    credential = CertificateCredential("id", "contoso.onmicrosoft.com", tmp_path / "none.pem")
    with pytest.raises(ConfigurationError, match="Certificate file not found"):
        credential.to_msal()


def test_pem_without_key_rejected(tmp_path: Path) -> None:
    _, cert_pem = make_client_certificate("no key")
    path = tmp_path / "cert-only.pem"
    path.write_bytes(cert_pem)
    with pytest.raises(ConfigurationError, match="both the private key and the certificate"):
        CertificateCredential("id", "contoso.onmicrosoft.com", path).to_msal()


def test_device_code_sign_in(make_tenant: TenantFactory) -> None:
    handle = make_tenant([DOMAIN])
    handle.server.faults.update(device_code_approval_seconds=0.5)
    shown: list[str] = []
    provider = device_code_provider(
        client_id=EXCHANGE_PUBLIC_CLIENT_ID, tenant=handle.tenant.name,
        authority_host=handle.server.base_url, scope=SCOPE,
        session=create_session(ca_bundle=str(handle.ca_bundle)), show_code=shown.append,
    )
    token = provider.get_token()
    assert token.app_only is False
    assert token.tenant_id == handle.tenant.tenant_id
    assert len(shown) == 1
    assert "code" in shown[0].lower()


def test_device_code_client_reused_from_cache(make_tenant: TenantFactory) -> None:
    handle = make_tenant([DOMAIN])
    handle.server.faults.update(device_code_approval_seconds=0.2)
    shown: list[str] = []
    provider = device_code_provider(
        client_id=EXCHANGE_PUBLIC_CLIENT_ID, tenant=handle.tenant.name,
        authority_host=handle.server.base_url, scope=SCOPE,
        session=create_session(ca_bundle=str(handle.ca_bundle)), show_code=shown.append,
    )
    provider.get_token()
    provider.get_token(force_refresh=True)
    assert len(shown) == 1


@pytest.mark.parametrize(
    "value", ["contoso.onmicrosoft.com", "CONTOSO.onmicrosoft.com",
              "8f1c7a52-2b8e-4d53-9b3c-0e6f5a4d2c11"],
)
def test_validate_tenant_accepts(value: str) -> None:
    assert validate_tenant(value) == value.lower()


@pytest.mark.parametrize("value", ["contoso.com", "not a tenant", "", "contoso.onmicrosoft.com;x"])
def test_validate_tenant_rejects(value: str) -> None:
    with pytest.raises(InvalidInputError, match="Invalid tenant"):
        validate_tenant(value)


def test_secret_filter_masks_values() -> None:
    record = logging.LogRecord("o365dkim", logging.INFO, __file__, 1,
                               "password is %s", ("hunter2-secret",), None)
    SecretFilter(["hunter2-secret"]).filter(record)
    assert record.getMessage() == "password is ***"


def test_encrypted_pem_without_password(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization

    key_pem, cert_pem = make_client_certificate("encrypted")
    key = serialization.load_pem_private_key(key_pem, None)
    encrypted = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pem-pass-1234"),
    )
    path = tmp_path / "enc.pem"
    path.write_bytes(encrypted + cert_pem)
    with pytest.raises(ConfigurationError, match="is encrypted") as caught:
        CertificateCredential("id", "contoso.onmicrosoft.com", path).to_msal()
    assert "O365DKIM_CERTIFICATE_PASSWORD" in str(caught.value)
    with pytest.raises(ConfigurationError, match="password is wrong"):
        CertificateCredential("id", "contoso.onmicrosoft.com", path, "nope").to_msal()
    assert CertificateCredential("id", "contoso.onmicrosoft.com", path, "pem-pass-1234").to_msal()


def test_pfx_without_password(make_tenant: TenantFactory, tmp_path: Path) -> None:
    handle = make_tenant([DOMAIN])
    pfx = write_pfx(tmp_path / "app.pfx", handle.key_pem, handle.cert_pem, "pfx-pass-1234")
    with pytest.raises(ConfigurationError, match="password is missing"):
        CertificateCredential(handle.client_id, handle.tenant.name, pfx).to_msal()


def test_client_id_must_be_guid(tmp_path: Path) -> None:
    from o365dkim.settings import Settings, resolve_auth_mode

    settings = Settings(client_id="not-a-guid", auth="device-code")
    with pytest.raises(InvalidInputError, match="Invalid client ID 'not-a-guid'"):
        resolve_auth_mode(settings)
