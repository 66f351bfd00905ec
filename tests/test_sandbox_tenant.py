"""Tests of the sandbox tenant: real HTTPS, real MSAL sign-in, the admin API contract.

The tenant's two DNS hooks (``cname_lookup`` and ``publish_key``) are served here by an
in-memory stand-in. Wiring them to the sandbox DNS server is tested with the workflow; these
tests only need to control the result of Exchange's own CNAME check.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import logging
import os
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import msal
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs12

from o365dkim.sandbox.ca import EphemeralCA, make_client_certificate, write_pfx
from o365dkim.sandbox.entra_federation import OidcIssuer
from o365dkim.sandbox.faults import Faults
from o365dkim.sandbox.server import SandboxServer
from o365dkim.sandbox.tenant import ConfigState, SandboxTenant, tenant_id_for

APP_ID = "6f1c2b0e-9d51-4f43-9a55-1a2b3c4d5e6f"
PUBLIC_CLIENT_ID = "fb78d390-0c51-40cd-8e17-fdbfab77341b"
EXCHANGE_SCOPE = "https://outlook.office365.com/.default"
GRAPH_SCOPE = "https://graph.microsoft.com/.default"
APP_ANCHOR = "APP:SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}@"


class FakeDns:
    """Stand-in for the DNS side of the tenant's hooks: CNAMEs to find, keys published."""

    def __init__(self) -> None:
        self.cnames: dict[str, str] = {}
        self.keys: dict[str, str] = {}

    def lookup(self, host: str) -> str | None:
        return self.cnames.get(host.lower())

    def publish(self, target: str, value: str) -> None:
        self.keys[target] = value


class MutableClock:
    def __init__(self) -> None:
        self.now = datetime.datetime.now(datetime.timezone.utc)

    def __call__(self) -> datetime.datetime:
        return self.now

    def advance(self, hours: float) -> None:
        self.now += datetime.timedelta(hours=hours)


class Api:
    """A thin InvokeCommand caller that shows the raw responses."""

    def __init__(
        self, server: SandboxServer, session: requests.Session, tenant_id: str, token: str
    ):
        self.server = server
        self.session = session
        self.tenant_id = tenant_id
        self.token = token

    def call(
        self,
        cmdlet: str,
        parameters: dict[str, Any] | None = None,
        *,
        tenant_id: str | None = None,
        headers: dict[str, str] | None = None,
        query: str = "",
        body: Any = None,
    ) -> requests.Response:
        url = self.server.admin_api_url(tenant_id or self.tenant_id) + query
        if body is None:
            body = {"CmdletInput": {"CmdletName": cmdlet, "Parameters": parameters or {}}}
        sent = {"Authorization": f"Bearer {self.token}", **(headers or {})}
        return self.session.post(url, json=body, headers=sent, timeout=10)

    def rows(self, cmdlet: str, parameters: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        response = self.call(cmdlet, parameters)
        assert response.status_code == 200, response.text
        rows: list[dict[str, Any]] = response.json()["value"]
        return rows


def error_detail(response: requests.Response) -> tuple[str, str, str]:
    """Return (error id, exception type, text) from details[0].message."""
    error_id, exception_type, text = response.json()["error"]["details"][0]["message"].split("|", 2)
    return error_id, exception_type, text


def claims_of(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


# ----- fixtures ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> EphemeralCA:
    return EphemeralCA()


@pytest.fixture(scope="module")
def ca_bundle(ca: EphemeralCA, tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(ca.write_ca_bundle(tmp_path_factory.mktemp("sandbox-ca") / "ca.pem"))


@pytest.fixture(scope="module")
def app_credential() -> tuple[bytes, bytes]:
    return make_client_certificate("o365dkim test app")


@pytest.fixture
def dns() -> FakeDns:
    return FakeDns()


@pytest.fixture
def clock() -> MutableClock:
    return MutableClock()


@pytest.fixture
def tenant(dns: FakeDns, clock: MutableClock) -> SandboxTenant:
    return SandboxTenant(
        "Contoso.onmicrosoft.com",
        tenant_id_for("contoso.onmicrosoft.com"),
        ["contoso.com", "fabrikam.com", "contoso-east.co.uk"],
        legacy_domains=["fabrikam.com"],
        cname_lookup=dns.lookup,
        publish_key=dns.publish,
        clock=clock,
    )


@pytest.fixture
def other_tenant() -> SandboxTenant:
    return SandboxTenant(
        "northwind.onmicrosoft.com", tenant_id_for("northwind.onmicrosoft.com"), ["northwind.com"]
    )


@pytest.fixture
def server(
    ca: EphemeralCA,
    tenant: SandboxTenant,
    other_tenant: SandboxTenant,
    app_credential: tuple[bytes, bytes],
) -> Iterator[SandboxServer]:
    faults = Faults(throttle_retry_after=1, device_code_approval_seconds=0)
    with SandboxServer(ca, [tenant, other_tenant], faults) as running:
        running.register_app(tenant.tenant_id, APP_ID, app_credential[1])
        running.register_app(other_tenant.tenant_id, APP_ID, app_credential[1])
        yield running


@pytest.fixture
def session(ca_bundle: str) -> Iterator[requests.Session]:
    http = requests.Session()
    http.verify = ca_bundle
    # This machine sets REQUESTS_CA_BUNDLE, which would otherwise override verify.
    http.trust_env = False
    yield http
    http.close()


def confidential_app(
    server: SandboxServer,
    session: requests.Session,
    authority_tenant: str,
    credential: dict[str, Any],
    client_id: str = APP_ID,
) -> msal.ConfidentialClientApplication:
    return msal.ConfidentialClientApplication(
        client_id,
        authority=server.authority(authority_tenant),
        client_credential=credential,
        http_client=session,
        instance_discovery=False,
    )


def pem_credential(key_pem: bytes, cert_pem: bytes) -> dict[str, str]:
    return {"private_key": key_pem.decode(), "public_certificate": cert_pem.decode()}


def app_token_for(
    server: SandboxServer,
    session: requests.Session,
    tenant_id: str,
    credential: tuple[bytes, bytes],
) -> str:
    app = confidential_app(server, session, tenant_id, pem_credential(*credential))
    result = app.acquire_token_for_client([EXCHANGE_SCOPE])
    assert "access_token" in result, result
    return str(result["access_token"])


@pytest.fixture
def api(
    server: SandboxServer,
    session: requests.Session,
    tenant: SandboxTenant,
    app_credential: tuple[bytes, bytes],
) -> Api:
    token = app_token_for(server, session, tenant.tenant_id, app_credential)
    return Api(server, session, tenant.tenant_id, token)


def device_code_token(
    server: SandboxServer, session: requests.Session, authority_tenant: str
) -> dict[str, Any]:
    app = msal.PublicClientApplication(
        PUBLIC_CLIENT_ID,
        authority=server.authority(authority_tenant),
        http_client=session,
        instance_discovery=False,
    )
    flow = app.initiate_device_flow(scopes=[EXCHANGE_SCOPE])
    assert "user_code" in flow, flow
    return dict(app.acquire_token_by_device_flow(flow))


def publish_cnames(dns: FakeDns, row: dict[str, Any], *, final_dot: bool = False) -> None:
    """Publish the two targets as the DNS side would, in upper case to test the comparison."""
    domain = row["Domain"]
    suffix = "." if final_dot else ""
    dns.cnames[f"selector1._domainkey.{domain}"] = row["Selector1CNAME"].upper() + suffix
    dns.cnames[f"selector2._domainkey.{domain}"] = row["Selector2CNAME"].upper() + suffix


# ----- certificates -----------------------------------------------------------------------


def test_server_certificate_covers_loopback(ca: EphemeralCA) -> None:
    cert = x509.load_pem_x509_certificate(ca.server_cert_pem)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    addresses = {str(address) for address in names.get_values_for_type(x509.IPAddress)}
    assert addresses == {"127.0.0.1", "::1"}
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]


def test_ssl_context_leaves_no_files(
    ca: EphemeralCA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A private temp folder keeps other processes' temporary files out of the check.
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    ca.server_ssl_context()
    assert list(tmp_path.iterdir()) == []


def test_pfx_written_owner_only(tmp_path: Path, app_credential: tuple[bytes, bytes]) -> None:
    path = write_pfx(
        tmp_path / "app.pfx", app_credential[0], app_credential[1], "sandbox-pfx-password"
    )
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    key, cert, _ = pkcs12.load_key_and_certificates(path.read_bytes(), b"sandbox-pfx-password")
    assert key is not None
    assert cert is not None


# ----- sign-in ----------------------------------------------------------------------------


def test_client_credentials_token_issued(
    server: SandboxServer,
    session: requests.Session,
    tenant: SandboxTenant,
    app_credential: tuple[bytes, bytes],
) -> None:
    app = confidential_app(
        server, session, "contoso.onmicrosoft.com", pem_credential(*app_credential)
    )
    result = app.acquire_token_for_client([EXCHANGE_SCOPE])
    claims = claims_of(result["access_token"])
    assert claims["aud"] == "https://outlook.office365.com"
    assert claims["tid"] == tenant.tenant_id
    assert claims["roles"] == ["Exchange.ManageAsApp"]
    assert claims["appid"] == APP_ID
    assert claims["exp"] - time.time() > 3000


def test_client_credentials_pfx_certificate(
    server: SandboxServer,
    session: requests.Session,
    tenant: SandboxTenant,
    app_credential: tuple[bytes, bytes],
    tmp_path: Path,
) -> None:
    path = write_pfx(
        tmp_path / "app.pfx", app_credential[0], app_credential[1], "sandbox-pfx-password"
    )
    credential = {"private_key_pfx_path": str(path), "passphrase": "sandbox-pfx-password"}
    result = confidential_app(
        server, session, tenant.tenant_id, credential
    ).acquire_token_for_client([EXCHANGE_SCOPE])
    assert "access_token" in result, result


def test_access_token_verifies_with_jwks(
    server: SandboxServer, session: requests.Session, api: Api, tenant: SandboxTenant
) -> None:
    discovery = session.get(
        f"{server.authority(tenant.tenant_id)}/v2.0/.well-known/openid-configuration", timeout=10
    ).json()
    keys = session.get(discovery["jwks_uri"], timeout=10).json()["keys"]
    key = jwt.PyJWK(keys[0]).key
    claims = jwt.decode(
        api.token, key, algorithms=["RS256"], audience="https://outlook.office365.com"
    )
    assert claims["tid"] == tenant.tenant_id


def test_assertion_wrong_key_rejected(
    server: SandboxServer,
    session: requests.Session,
    tenant: SandboxTenant,
    app_credential: tuple[bytes, bytes],
) -> None:
    other_key, _ = make_client_certificate("attacker")
    # The registered certificate is named in x5t#S256, but the assertion is signed by
    # another key.
    credential = pem_credential(other_key, app_credential[1])
    result = confidential_app(
        server, session, tenant.tenant_id, credential
    ).acquire_token_for_client([EXCHANGE_SCOPE])
    assert result["error"] == "invalid_client"
    assert result["error_description"].startswith("AADSTS700027")
    assert result["error_codes"] == [700027]


def test_assertion_unregistered_certificate_rejected(
    server: SandboxServer, session: requests.Session, tenant: SandboxTenant
) -> None:
    credential = pem_credential(*make_client_certificate("unregistered"))
    result = confidential_app(
        server, session, tenant.tenant_id, credential
    ).acquire_token_for_client([EXCHANGE_SCOPE])
    assert result["error"] == "invalid_client"
    assert result["error_codes"] == [700027]


def test_graph_scope_rejected(
    server: SandboxServer,
    session: requests.Session,
    tenant: SandboxTenant,
    app_credential: tuple[bytes, bytes],
) -> None:
    app = confidential_app(server, session, tenant.tenant_id, pem_credential(*app_credential))
    result = app.acquire_token_for_client([GRAPH_SCOPE])
    assert result["error"] == "invalid_resource"
    assert result["error_description"].startswith("AADSTS500011")
    assert "correlation_id" in result


def test_unknown_client_rejected(
    server: SandboxServer,
    session: requests.Session,
    tenant: SandboxTenant,
    app_credential: tuple[bytes, bytes],
) -> None:
    credential = pem_credential(*app_credential)
    app = confidential_app(
        server,
        session,
        tenant.tenant_id,
        credential,
        client_id="0" * 8 + "-0000-0000-0000-" + "0" * 12,
    )
    result = app.acquire_token_for_client([EXCHANGE_SCOPE])
    assert result["error"] == "unauthorized_client"
    assert result["error_codes"] == [700016]


def test_unknown_tenant_discovery_fails(server: SandboxServer, session: requests.Session) -> None:
    response = session.get(
        f"{server.authority('missing.onmicrosoft.com')}/v2.0/.well-known/openid-configuration",
        timeout=10,
    )
    assert response.status_code == 400
    assert response.json()["error_codes"] == [90002]
    with pytest.raises(ValueError, match="Unable to get authority configuration"):
        confidential_app(server, session, "missing.onmicrosoft.com", {"client_assertion": "x"})


def test_token_requests_counted_per_client(
    server: SandboxServer,
    session: requests.Session,
    tenant: SandboxTenant,
    app_credential: tuple[bytes, bytes],
) -> None:
    app = confidential_app(server, session, tenant.tenant_id, pem_credential(*app_credential))
    app.acquire_token_for_client([EXCHANGE_SCOPE])
    second = app.acquire_token_for_client([EXCHANGE_SCOPE])
    assert second["token_source"] == "cache"
    assert server.token_requests[APP_ID] == 1


def test_device_code_flow_signs_in(
    server: SandboxServer, session: requests.Session, tenant: SandboxTenant
) -> None:
    result = device_code_token(server, session, tenant.tenant_id)
    claims = claims_of(result["access_token"])
    assert claims["scp"] == "AdminApi.AccessAsUser.All"
    assert claims["upn"] == "admin@contoso.onmicrosoft.com"
    assert result["id_token_claims"]["tid"] == tenant.tenant_id
    assert result["id_token_claims"]["preferred_username"] == "admin@contoso.onmicrosoft.com"


def test_device_code_silent_uses_cache(
    server: SandboxServer, session: requests.Session, tenant: SandboxTenant
) -> None:
    app = msal.PublicClientApplication(
        PUBLIC_CLIENT_ID,
        authority=server.authority(tenant.tenant_id),
        http_client=session,
        instance_discovery=False,
    )
    app.acquire_token_by_device_flow(app.initiate_device_flow(scopes=[EXCHANGE_SCOPE]))
    accounts = app.get_accounts()
    assert [account["username"] for account in accounts] == ["admin@contoso.onmicrosoft.com"]
    silent = app.acquire_token_silent([EXCHANGE_SCOPE], account=accounts[0])
    assert silent["token_source"] == "cache"


def test_refresh_token_renews_access(
    server: SandboxServer, session: requests.Session, tenant: SandboxTenant
) -> None:
    # MSAL renews tokens that expire within five minutes, so a 60-second lifetime forces
    # the refresh token grant on the silent call.
    server.tokens.lifetime_seconds = 60
    app = msal.PublicClientApplication(
        PUBLIC_CLIENT_ID,
        authority=server.authority(tenant.tenant_id),
        http_client=session,
        instance_discovery=False,
    )
    app.acquire_token_by_device_flow(app.initiate_device_flow(scopes=[EXCHANGE_SCOPE]))
    before = server.token_requests[PUBLIC_CLIENT_ID]
    silent = app.acquire_token_silent([EXCHANGE_SCOPE], account=app.get_accounts()[0])
    assert silent["token_source"] == "identity_provider"
    assert server.token_requests[PUBLIC_CLIENT_ID] == before + 1


def test_device_code_pending_before_approval(
    server: SandboxServer, session: requests.Session, tenant: SandboxTenant
) -> None:
    server.faults.update(device_code_approval_seconds=None)
    base = server.authority(tenant.tenant_id)
    flow = session.post(
        f"{base}/oauth2/v2.0/devicecode",
        data={"client_id": PUBLIC_CLIENT_ID, "scope": f"{EXCHANGE_SCOPE} offline_access"},
        timeout=10,
    ).json()
    assert flow["interval"] == 1
    poll = session.post(
        f"{base}/oauth2/v2.0/token",
        data={
            "client_id": PUBLIC_CLIENT_ID,
            "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
            "device_code": flow["device_code"],
        },
        timeout=10,
    )
    assert poll.status_code == 400
    assert poll.json()["error"] == "authorization_pending"


def test_delegated_token_runs_cmdlet(
    server: SandboxServer, session: requests.Session, tenant: SandboxTenant
) -> None:
    token = device_code_token(server, session, "organizations")["access_token"]
    api = Api(server, session, tenant.tenant_id, token)
    rows = api.rows("Get-AcceptedDomain")
    assert "contoso.com" in [row["DomainName"] for row in rows]


def test_delegated_user_without_role_forbidden(
    server: SandboxServer, session: requests.Session, tenant: SandboxTenant
) -> None:
    server.register_user(tenant.tenant_id, "reader@contoso.com", has_exchange_role=False)
    token = device_code_token(server, session, tenant.tenant_id)["access_token"]
    response = Api(server, session, tenant.tenant_id, token).call("Get-AcceptedDomain")
    assert response.status_code == 403
    assert set(response.content) == {0}


# ----- admin API: happy paths -------------------------------------------------------------


def test_get_accepted_domain_lists_domains(api: Api) -> None:
    rows = api.rows("Get-AcceptedDomain")
    by_name = {row["DomainName"]: row for row in rows}
    assert set(by_name) == {
        "contoso.onmicrosoft.com",
        "contoso.com",
        "fabrikam.com",
        "contoso-east.co.uk",
    }
    assert by_name["contoso.onmicrosoft.com"]["InitialDomain"] is True
    assert by_name["contoso.com"]["InitialDomain"] is False


def test_initial_domain_config_present(api: Api) -> None:
    rows = api.rows("Get-DkimSigningConfig")
    assert [(row["Domain"], row["Enabled"], row["Status"]) for row in rows] == [
        ("contoso.onmicrosoft.com", True, "Valid")
    ]


def test_new_dkim_config_returns_row(api: Api) -> None:
    row = api.rows(
        "New-DkimSigningConfig", {"DomainName": "contoso.com", "Enabled": False, "KeySize": 2048}
    )[0]
    assert row["Enabled"] is False
    assert row["Status"] == "CnameMissing"
    assert (
        row["Selector1CNAME"] == "selector1-contoso-com._domainkey.Contoso.r-v1.dkim.mail.microsoft"
    )
    assert (
        row["Selector2CNAME"] == "selector2-contoso-com._domainkey.Contoso.r-v1.dkim.mail.microsoft"
    )
    assert row["Selector1KeySize"] == 2048
    assert row["Selector1KeySize@odata.type"] == "#Decimal"
    assert row["Selector1PublicKey"].startswith("v=DKIM1; k=rsa; p=MII")
    assert row["SelectorAfterRotateOnDate"] == "selector1"
    assert row["Algorithm"] == "RsaSHA256"


def test_new_dkim_default_key_size(api: Api) -> None:
    row = api.rows("New-DkimSigningConfig", {"DomainName": "contoso.com"})[0]
    assert (row["Selector1KeySize"], row["Selector2KeySize"]) == (1024, 1024)


def test_new_dkim_publishes_active_key(api: Api, dns: FakeDns) -> None:
    row = api.rows("New-DkimSigningConfig", {"DomainName": "contoso.com", "KeySize": 1024})[0]
    assert dns.keys == {row["Selector1CNAME"]: row["Selector1PublicKey"]}


def test_legacy_domain_target_format(api: Api) -> None:
    row = api.rows("New-DkimSigningConfig", {"DomainName": "fabrikam.com", "KeySize": 1024})[0]
    assert row["Selector1CNAME"] == "selector1-fabrikam-com._domainkey.Contoso.onmicrosoft.com"


def test_current_target_dashes_domain(api: Api) -> None:
    row = api.rows("New-DkimSigningConfig", {"DomainName": "Contoso-East.co.uk", "KeySize": 1024})[
        0
    ]
    assert row["Domain"] == "contoso-east.co.uk"
    assert (
        row["Selector2CNAME"]
        == "selector2-contoso-east-co-uk._domainkey.Contoso.r-v1.dkim.mail.microsoft"
    )


def test_random_suffix_target_format() -> None:
    tenant = SandboxTenant(
        "Tailspin.onmicrosoft.com",
        tenant_id_for("tailspin"),
        ["tailspin.com"],
        dkim_letter="b",
        random_suffix=True,
    )
    row = tenant.invoke("New-DkimSigningConfig", {"DomainName": "tailspin.com", "KeySize": 1024})[0]
    first_label, _, zone = row["Selector1CNAME"].partition(".")
    assert first_label.startswith("selector1-tailspin-com-")
    assert len(first_label) == len("selector1-tailspin-com-") + 4
    assert zone == "_domainkey.Tailspin.b-v1.dkim.mail.microsoft"


def test_get_identity_filters_one_row(api: Api) -> None:
    api.rows("New-DkimSigningConfig", {"DomainName": "contoso.com", "KeySize": 1024})
    rows = api.rows("Get-DkimSigningConfig", {"Identity": "CONTOSO.COM"})
    assert [row["Domain"] for row in rows] == ["contoso.com"]


def test_get_unmatched_identity_returns_all(api: Api) -> None:
    api.rows("New-DkimSigningConfig", {"DomainName": "contoso.com", "KeySize": 1024})
    rows = api.rows("Get-DkimSigningConfig", {"Identity": "fabrikam.com"})
    assert sorted(row["Domain"] for row in rows) == ["contoso.com", "contoso.onmicrosoft.com"]


def test_get_unmatched_identity_not_found_knob(api: Api, tenant: SandboxTenant) -> None:
    tenant.unknown_identity_returns_all = False
    response = api.call("Get-DkimSigningConfig", {"Identity": "fabrikam.com"})
    assert response.status_code == 404
    assert error_detail(response)[1].endswith("ManagementObjectNotFoundException")


def test_set_enabled_with_cnames_succeeds(api: Api, dns: FakeDns) -> None:
    row = api.rows("New-DkimSigningConfig", {"DomainName": "contoso.com", "KeySize": 1024})[0]
    publish_cnames(dns, row, final_dot=True)
    response = api.call("Set-DkimSigningConfig", {"Identity": "contoso.com", "Enabled": True})
    assert response.status_code == 200
    assert response.json()["value"] == []
    after = api.rows("Get-DkimSigningConfig", {"Identity": "contoso.com"})[0]
    assert (after["Enabled"], after["Status"]) == (True, "Valid")
    assert after["LastChecked"] is not None


def test_set_unchanged_returns_warning(api: Api) -> None:
    api.rows("New-DkimSigningConfig", {"DomainName": "contoso.com", "KeySize": 1024})
    response = api.call("Set-DkimSigningConfig", {"Identity": "contoso.com", "Enabled": False})
    assert response.status_code == 200
    assert "no settings" in response.json()["@adminapi.warnings"][0]


def test_select_trims_properties(api: Api) -> None:
    api.rows("New-DkimSigningConfig", {"DomainName": "contoso.com", "KeySize": 1024})
    response = api.call(
        "Get-DkimSigningConfig",
        {"Identity": "contoso.com"},
        query="?$select=Domain,Selector1KeySize",
    )
    assert response.json()["value"] == [
        {
            "Domain": "contoso.com",
            "Selector1KeySize": 1024,
            "Selector1KeySize@odata.type": "#Decimal",
        }
    ]


def test_success_envelope_shape(api: Api, tenant: SandboxTenant) -> None:
    payload = api.call("Get-AcceptedDomain").json()
    assert payload["@odata.context"].startswith(
        f"{api.server.base_url}/adminapi/beta/{tenant.tenant_id}/"
    )
    assert payload["@adminapi.warnings"] == []


def test_call_log_records_headers(api: Api, tenant: SandboxTenant) -> None:
    headers = {
        "client-request-id": "3f0b6a52-1111-4c1e-9e0a-5d6c7b8a9f00",
        "X-AnchorMailbox": APP_ANCHOR + tenant.tenant_id,
    }
    api.call("Get-AcceptedDomain", headers=headers)
    record = tenant.call_log[-1]
    assert record.cmdlet == "Get-AcceptedDomain"
    assert record.outcome == "ok"
    assert record.client_request_id == headers["client-request-id"]
    assert record.anchor_mailbox == headers["X-AnchorMailbox"]


# ----- admin API: errors ------------------------------------------------------------------


def test_new_dkim_not_accepted_domain(api: Api) -> None:
    response = api.call("New-DkimSigningConfig", {"DomainName": "example.org", "Enabled": False})
    error_id, exception_type, text = error_detail(response)
    assert response.status_code == 400
    assert exception_type.endswith(".ValidationException")
    assert text.startswith("Invalid domain name specified example.org.")
    assert text.endswith("Please specify tenant name or valid accepted domain.")
    assert error_id.startswith("Ex")


def test_new_dkim_existing_config_fails(api: Api) -> None:
    api.rows("New-DkimSigningConfig", {"DomainName": "contoso.com", "KeySize": 1024})
    response = api.call("New-DkimSigningConfig", {"DomainName": "contoso.com", "KeySize": 1024})
    _, exception_type, text = error_detail(response)
    assert response.status_code == 400
    assert exception_type.endswith(".ADObjectAlreadyExistsException")
    assert text == "The object 'contoso.com' already exists."


def test_set_enabled_without_cnames_fails(api: Api) -> None:
    row = api.rows("New-DkimSigningConfig", {"DomainName": "contoso.com", "KeySize": 1024})[0]
    response = api.call("Set-DkimSigningConfig", {"Identity": "contoso.com", "Enabled": True})
    _, exception_type, text = error_detail(response)
    assert response.status_code == 400
    assert exception_type.endswith(".ValidationException")
    assert text.startswith(
        "CNAME record does not exist for this config. Please publish the following two CNAME "
        "records first."
    )
    assert "Host Name : selector1._domainkey" in text
    assert row["Selector2CNAME"] in text
    internal = response.json()["error"]["innererror"]["internalexception"]
    assert internal["message"] == text


def test_set_enabled_wrong_cname_fails(api: Api, dns: FakeDns) -> None:
    row = api.rows("New-DkimSigningConfig", {"DomainName": "contoso.com", "KeySize": 1024})[0]
    publish_cnames(dns, row)
    # F3: a target built by hand in the legacy form is not what Exchange assigned.
    dns.cnames["selector2._domainkey.contoso.com"] = (
        "selector2-contoso-com._domainkey.contoso.onmicrosoft.com"
    )
    response = api.call("Set-DkimSigningConfig", {"Identity": "contoso.com", "Enabled": True})
    assert response.status_code == 400
    assert error_detail(response)[2].startswith("CNAME record does not exist")


def test_new_enabled_without_cnames_fails(api: Api) -> None:
    response = api.call(
        "New-DkimSigningConfig", {"DomainName": "contoso.com", "Enabled": True, "KeySize": 1024}
    )
    assert response.status_code == 400
    assert error_detail(response)[2].startswith("CNAME record does not exist")
    row = api.rows("Get-DkimSigningConfig", {"Identity": "contoso.com"})[0]
    assert (row["Domain"], row["Enabled"]) == ("contoso.com", False)


def test_set_unknown_identity_not_found(api: Api) -> None:
    response = api.call("Set-DkimSigningConfig", {"Identity": "contoso.com", "Enabled": True})
    _, exception_type, text = error_detail(response)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "NotFound"
    assert exception_type.endswith(".ManagementObjectNotFoundException")
    assert "'contoso.com'" in text


def test_not_found_status_knob(api: Api, tenant: SandboxTenant) -> None:
    tenant.not_found_status = 400
    response = api.call("Rotate-DkimSigningConfig", {"Identity": "contoso.com"})
    assert response.status_code == 400
    assert error_detail(response)[1].endswith("ManagementObjectNotFoundException")


def test_unknown_parameter_binding_error(api: Api) -> None:
    response = api.call("Get-DkimSigningConfig", {"Domain": "contoso.com"})
    _, exception_type, text = error_detail(response)
    assert response.status_code == 400
    assert exception_type.endswith("ParameterBindingException")
    assert text == "A parameter cannot be found that matches parameter name 'Domain'."


def test_key_size_outside_set_rejected(api: Api) -> None:
    response = api.call("New-DkimSigningConfig", {"DomainName": "contoso.com", "KeySize": 4096})
    assert response.status_code == 400
    assert 'does not belong to the set "1024,2048"' in error_detail(response)[2]


def test_enabled_string_rejected(api: Api) -> None:
    response = api.call("New-DkimSigningConfig", {"DomainName": "contoso.com", "Enabled": "false"})
    assert response.status_code == 400
    assert "Boolean parameters accept only Boolean values" in error_detail(response)[2]


def test_parameters_null_rejected(api: Api) -> None:
    response = api.call(
        "", body={"CmdletInput": {"CmdletName": "Get-AcceptedDomain", "Parameters": None}}
    )
    error_id, exception_type, _ = error_detail(response)
    assert response.status_code == 400
    assert exception_type == "System.ArgumentNullException"
    assert error_id == ""


def test_unknown_cmdlet_forbidden_nul_body(api: Api, tenant: SandboxTenant) -> None:
    response = api.call("Get-Mailbox")
    assert response.status_code == 403
    assert len(response.content) > 0
    assert set(response.content) == {0}
    assert tenant.call_log[-1].outcome == "CommandNotFoundException"


@pytest.mark.parametrize(
    ("roles", "has_exchange_role"),
    [((), True), (("Exchange.ManageAsApp",), False)],
    ids=["no-app-role", "no-directory-role"],
)
def test_app_without_rights_forbidden(
    server: SandboxServer,
    session: requests.Session,
    tenant: SandboxTenant,
    roles: tuple[str, ...],
    has_exchange_role: bool,
) -> None:
    key, cert = make_client_certificate("limited app")
    client_id = "7a7a7a7a-0000-4000-8000-000000000001"
    server.register_app(
        tenant.tenant_id, client_id, cert, roles=roles, has_exchange_role=has_exchange_role
    )
    app = confidential_app(server, session, tenant.tenant_id, pem_credential(key, cert), client_id)
    token = app.acquire_token_for_client([EXCHANGE_SCOPE])["access_token"]
    response = Api(server, session, tenant.tenant_id, token).call("Get-AcceptedDomain")
    assert response.status_code == 403
    assert set(response.content) == {0}


def test_token_other_tenant_unauthorized(api: Api, other_tenant: SandboxTenant) -> None:
    response = api.call("Get-AcceptedDomain", tenant_id=other_tenant.tenant_id)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "Unauthorized"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_missing_bearer_unauthorized(api: Api) -> None:
    api.token = ""
    response = api.call("Get-AcceptedDomain")
    assert response.status_code == 401


def test_forged_token_unauthorized(api: Api) -> None:
    claims = claims_of(api.token)
    api.token = jwt.encode(claims, make_client_certificate("forger")[0], algorithm="RS256")
    response = api.call("Get-AcceptedDomain")
    assert response.status_code == 401
    assert "invalid" in response.json()["error"]["message"]


# ----- rotation ---------------------------------------------------------------------------


def enabled_config(api: Api, dns: FakeDns, domain: str = "contoso.com") -> dict[str, Any]:
    row = api.rows("New-DkimSigningConfig", {"DomainName": domain, "KeySize": 1024})[0]
    publish_cnames(dns, row)
    api.rows("Set-DkimSigningConfig", {"Identity": domain, "Enabled": True})
    return row


def test_rotate_changes_inactive_selector(api: Api, dns: FakeDns, clock: MutableClock) -> None:
    before = enabled_config(api, dns)
    api.rows("Rotate-DkimSigningConfig", {"Identity": "contoso.com", "KeySize": 2048})
    after = api.rows("Get-DkimSigningConfig", {"Identity": "contoso.com"})[0]
    assert after["Selector1PublicKey"] == before["Selector1PublicKey"]
    assert after["Selector2KeySize"] == 2048
    assert (after["SelectorBeforeRotateOnDate"], after["SelectorAfterRotateOnDate"]) == (
        "selector1",
        "selector2",
    )
    rotate_on = datetime.datetime.fromisoformat(after["RotateOnDate"].replace("Z", "+00:00"))
    assert rotate_on - clock.now == datetime.timedelta(hours=96)
    assert dns.keys[after["Selector2CNAME"]] == after["Selector2PublicKey"]


def test_rotate_pending_rejected(api: Api, dns: FakeDns) -> None:
    enabled_config(api, dns)
    api.rows("Rotate-DkimSigningConfig", {"Identity": "contoso.com"})
    response = api.call("Rotate-DkimSigningConfig", {"Identity": "contoso.com"})
    assert response.status_code == 400
    assert error_detail(response)[1].endswith(".ValidationException")
    assert "pending" in error_detail(response)[2]


def test_rotate_twice_upgrades_both_selectors(api: Api, dns: FakeDns, clock: MutableClock) -> None:
    enabled_config(api, dns)
    api.rows("Rotate-DkimSigningConfig", {"Identity": "contoso.com", "KeySize": 2048})
    clock.advance(hours=97)
    api.rows("Rotate-DkimSigningConfig", {"Identity": "contoso.com", "KeySize": 2048})
    row = api.rows("Get-DkimSigningConfig", {"Identity": "contoso.com"})[0]
    assert (row["Selector1KeySize"], row["Selector2KeySize"]) == (2048, 2048)
    assert row["SelectorAfterRotateOnDate"] == "selector1"


def test_rotate_disabled_config_rejected(api: Api) -> None:
    api.rows("New-DkimSigningConfig", {"DomainName": "contoso.com", "KeySize": 1024})
    response = api.call("Rotate-DkimSigningConfig", {"Identity": "contoso.com"})
    assert response.status_code == 400
    assert error_detail(response)[1].endswith(".ValidationException")


# ----- realism knobs and seeding ----------------------------------------------------------


def test_replication_lag_hides_new_config(api: Api, tenant: SandboxTenant) -> None:
    tenant.replication_reads = 2
    api.rows("New-DkimSigningConfig", {"DomainName": "contoso.com", "KeySize": 1024})
    first = api.rows("Get-DkimSigningConfig", {"Identity": "contoso.com"})
    assert "contoso.com" not in [row["Domain"] for row in first]
    second = api.call("Set-DkimSigningConfig", {"Identity": "contoso.com", "Enabled": False})
    assert second.status_code == 404
    third = api.rows("Get-DkimSigningConfig", {"Identity": "contoso.com"})
    assert [row["Domain"] for row in third] == ["contoso.com"]


def test_keyless_reads_show_empty_targets(api: Api, tenant: SandboxTenant) -> None:
    tenant.keyless_reads = 1
    api.rows("New-DkimSigningConfig", {"DomainName": "contoso.com", "KeySize": 1024})
    first = api.rows("Get-DkimSigningConfig", {"Identity": "contoso.com"})[0]
    assert (first["Selector1CNAME"], first["Selector2CNAME"]) == ("", "")
    second = api.rows("Get-DkimSigningConfig", {"Identity": "contoso.com"})[0]
    assert second["Selector1CNAME"].startswith("selector1-contoso-com.")


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (ConfigState.NONE, None),
        (ConfigState.KEYLESS, (False, "", "")),
        (ConfigState.DISABLED, (False, "selector1-contoso-com", "selector2-contoso-com")),
        (ConfigState.ENABLED, (True, "selector1-contoso-com", "selector2-contoso-com")),
    ],
)
def test_seed_states_match_field_case(
    tenant: SandboxTenant, state: ConfigState, expected: tuple[bool, str, str] | None
) -> None:
    tenant.seed_config("contoso.com", state, key_size=1024)
    rows = tenant.invoke("Get-DkimSigningConfig", {"Identity": "contoso.com"})
    row = next((row for row in rows if row["Domain"] == "contoso.com"), None)
    if expected is None:
        assert row is None
        return
    assert row is not None
    labels = (
        row["Enabled"],
        row["Selector1CNAME"].split(".")[0],
        row["Selector2CNAME"].split(".")[0],
    )
    assert labels == expected


def test_seed_rejects_unaccepted_domain(tenant: SandboxTenant) -> None:
    with pytest.raises(ValueError, match="not an accepted domain"):
        tenant.seed_config("example.org", ConfigState.ENABLED)


def test_state_round_trip_preserves_configs(
    tenant: SandboxTenant, dns: FakeDns, clock: MutableClock
) -> None:
    tenant.seed_config("contoso.com", ConfigState.ENABLED, key_size=1024)
    tenant.seed_config("fabrikam.com", ConfigState.KEYLESS, key_size=1024)
    tenant.seed_config("contoso-east.co.uk", ConfigState.DISABLED, key_size=1024)
    tenant.invoke("Rotate-DkimSigningConfig", {"Identity": "contoso.com", "KeySize": 1024})
    tenant.replication_reads = 3

    restored_dns = FakeDns()
    data = json.loads(json.dumps(tenant.to_dict()))
    restored = SandboxTenant.from_dict(data, publish_key=restored_dns.publish, clock=clock)
    restored.republish_keys()

    def rows(target: SandboxTenant) -> list[dict[str, Any]]:
        return sorted(target.invoke("Get-DkimSigningConfig", {}), key=lambda row: row["Domain"])

    assert rows(restored) == rows(tenant)
    assert restored.tenant_id == tenant.tenant_id
    assert restored.replication_reads == 3
    assert restored_dns.keys == dns.keys


# ----- faults -----------------------------------------------------------------------------


def test_throttle_returns_retry_after(
    api: Api, server: SandboxServer, tenant: SandboxTenant
) -> None:
    server.faults.update(throttle_next=1, throttle_retry_after=7)
    throttled = api.call("Get-AcceptedDomain")
    assert throttled.status_code == 429
    assert throttled.headers["Retry-After"] == "7"
    assert tenant.call_log[-1].outcome == "throttled"
    assert api.call("Get-AcceptedDomain").status_code == 200


@pytest.mark.parametrize(
    ("setting", "status"),
    [("unavailable_next", 503), ("gateway_timeout_next", 504)],
)
def test_outage_faults_return_status(
    api: Api, server: SandboxServer, setting: str, status: int
) -> None:
    server.faults.update(**{setting: 2})
    assert api.call("Get-AcceptedDomain").status_code == status
    assert api.call("Get-AcceptedDomain").status_code == status
    assert api.call("Get-AcceptedDomain").status_code == 200


def test_drop_closes_connection(api: Api, server: SandboxServer, tenant: SandboxTenant) -> None:
    server.faults.update(drop_next=1)
    with pytest.raises(requests.ConnectionError):
        api.call("Get-AcceptedDomain")
    assert tenant.call_log[-1].outcome == "dropped"
    assert api.call("Get-AcceptedDomain").status_code == 200


def test_concurrency_message_plain_text(api: Api, server: SandboxServer) -> None:
    server.faults.update(concurrency_message_next=1)
    response = api.call("Get-AcceptedDomain")
    assert response.headers["Content-Type"].startswith("text/plain")
    assert "maximum number of concurrent requests per tenant" in response.text


def test_transient_exception_envelope(api: Api, server: SandboxServer) -> None:
    server.faults.update(transient_exception_next=1, transient_exception_status=500)
    response = api.call("Get-AcceptedDomain")
    assert response.status_code == 500
    assert error_detail(response)[1].endswith(".DCOverloadedException")


def test_latency_delays_call(api: Api, server: SandboxServer) -> None:
    server.faults.update(latency_seconds=0.2)
    started = time.monotonic()
    api.call("Get-AcceptedDomain")
    assert time.monotonic() - started >= 0.2


def test_tenant_faults_isolated(
    server: SandboxServer,
    session: requests.Session,
    api: Api,
    other_tenant: SandboxTenant,
    app_credential: tuple[bytes, bytes],
) -> None:
    server.faults_for(api.tenant_id).throttle_next = 1
    other = Api(
        server,
        session,
        other_tenant.tenant_id,
        app_token_for(server, session, other_tenant.tenant_id, app_credential),
    )
    assert other.call("Get-AcceptedDomain").status_code == 200
    assert api.call("Get-AcceptedDomain").status_code == 429


def test_faults_update_rejects_unknown() -> None:
    with pytest.raises(TypeError, match="throttle_nxt"):
        Faults().update(throttle_nxt=1)


def test_client_info_is_unpadded_base64(
    server: SandboxServer, session: requests.Session, tenant: SandboxTenant
) -> None:
    result = device_code_token(server, session, tenant.tenant_id)
    raw = result["client_info"]
    info = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    assert info["utid"] == tenant.tenant_id
    assert not raw.endswith("=")


def test_tenant_id_for_name_forms() -> None:
    assert tenant_id_for("contoso") == tenant_id_for("Contoso.onmicrosoft.com")
    assert tenant_id_for("contoso") != tenant_id_for("northwind")


class _Collector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def sandbox_messages() -> Iterator[list[str]]:
    """Collect the package's log messages at DEBUG, whatever logging set-up other tests left."""
    logger = logging.getLogger("o365dkim")
    collector = _Collector()
    old_level = logger.level
    logger.addHandler(collector)
    logger.setLevel(logging.DEBUG)
    yield collector.messages
    logger.removeHandler(collector)
    logger.setLevel(old_level)


def test_sandbox_logs_no_secrets(
    server: SandboxServer,
    session: requests.Session,
    tenant: SandboxTenant,
    app_credential: tuple[bytes, bytes],
    sandbox_messages: list[str],
) -> None:
    token = app_token_for(server, session, tenant.tenant_id, app_credential)
    Api(server, session, tenant.tenant_id, token).call("Get-AcceptedDomain")
    refresh_token = device_code_token(server, session, tenant.tenant_id)["refresh_token"]
    sandbox_text = "\n".join(sandbox_messages)
    assert "Sandbox sign-in" in sandbox_text
    assert token not in sandbox_text
    assert refresh_token not in sandbox_text
    assert app_credential[0].decode().splitlines()[1] not in sandbox_text


# ----- managed identity, federation, client secrets, authorization code -------------------
# Raw requests show the endpoints' contract; tests/test_auth_modes.py drives them with MSAL.

MSI_PARAMS = {"api-version": "2019-08-01", "resource": "https://outlook.office365.com"}
K8S_SUBJECT = "system:serviceaccount:dkim:o365dkim"
LOOPBACK_REDIRECT = "http://localhost:51234"


def msi_get(
    server: SandboxServer,
    session: requests.Session,
    params: dict[str, str],
    header: str | None = None,
) -> requests.Response:
    environment = server.managed_identity_environment()
    value = environment["IDENTITY_HEADER"] if header is None else header
    return session.get(
        environment["IDENTITY_ENDPOINT"],
        params=params,
        headers={"X-IDENTITY-HEADER": value, "Metadata": "true"},
        timeout=10,
    )


def app_token_request(
    server: SandboxServer, session: requests.Session, tenant_id: str, **fields: str
) -> requests.Response:
    form = {"client_id": APP_ID, "grant_type": "client_credentials", "scope": EXCHANGE_SCOPE}
    return session.post(
        f"{server.authority(tenant_id)}/oauth2/v2.0/token", data={**form, **fields}, timeout=10
    )


def federated_fields(assertion: str) -> dict[str, str]:
    return {
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion,
    }


def pkce_pair() -> tuple[str, str]:
    verifier = base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).decode().rstrip("=")


def authorize(
    server: SandboxServer, session: requests.Session, tenant_id: str, **changes: str
) -> requests.Response:
    params = {
        "client_id": PUBLIC_CLIENT_ID,
        "response_type": "code",
        "redirect_uri": LOOPBACK_REDIRECT,
        "scope": f"{EXCHANGE_SCOPE} offline_access openid profile",
        "state": "state-1",
        "nonce": "nonce-1",
        "code_challenge": pkce_pair()[1],
        "code_challenge_method": "S256",
    }
    params.update(changes)
    return session.get(
        f"{server.authority(tenant_id)}/oauth2/v2.0/authorize",
        params=params,
        allow_redirects=False,
        timeout=10,
    )


def redirect_query(response: requests.Response) -> dict[str, str]:
    location = response.headers["Location"]
    return {name: values[0] for name, values in parse_qs(urlsplit(location).query).items()}


def redeem_code(
    server: SandboxServer,
    session: requests.Session,
    tenant_id: str,
    code: str,
    verifier: str,
    redirect_uri: str = LOOPBACK_REDIRECT,
) -> requests.Response:
    form = {
        "client_id": PUBLIC_CLIENT_ID,
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "code_verifier": verifier,
        "scope": f"{EXCHANGE_SCOPE} offline_access openid profile",
    }
    return session.post(
        f"{server.authority(tenant_id)}/oauth2/v2.0/token", data=form, timeout=10
    )


def test_msi_token_for_system_identity(
    server: SandboxServer, session: requests.Session, tenant: SandboxTenant
) -> None:
    identity = server.assign_managed_identity(tenant.tenant_id)
    response = msi_get(server, session, MSI_PARAMS)
    assert response.status_code == 200
    body = response.json()
    claims = claims_of(body["access_token"])
    assert claims["appid"] == identity.client_id
    assert claims["roles"] == ["Exchange.ManageAsApp"]
    assert claims["tid"] == tenant.tenant_id
    assert int(body["expires_on"]) > time.time()
    assert server.token_requests[identity.client_id] == 1


def test_msi_token_runs_cmdlet(
    server: SandboxServer, session: requests.Session, tenant: SandboxTenant
) -> None:
    server.assign_managed_identity(tenant.tenant_id)
    token = msi_get(server, session, MSI_PARAMS).json()["access_token"]
    response = Api(server, session, tenant.tenant_id, token).call("Get-AcceptedDomain")
    assert response.status_code == 200


def test_msi_identity_without_role_forbidden(
    server: SandboxServer, session: requests.Session, tenant: SandboxTenant
) -> None:
    server.assign_managed_identity(tenant.tenant_id, has_exchange_role=False)
    token = msi_get(server, session, MSI_PARAMS).json()["access_token"]
    response = Api(server, session, tenant.tenant_id, token).call("Get-AcceptedDomain")
    assert response.status_code == 403


@pytest.mark.parametrize("header", ["", "wrong-header"])
def test_msi_header_checked(
    server: SandboxServer, session: requests.Session, tenant: SandboxTenant, header: str
) -> None:
    identity = server.assign_managed_identity(tenant.tenant_id)
    response = msi_get(server, session, MSI_PARAMS, header=header)
    assert response.status_code == 401
    assert response.json()["statusCode"] == 401
    assert server.token_requests[identity.client_id] == 0


def test_msi_graph_resource_rejected(
    server: SandboxServer, session: requests.Session, tenant: SandboxTenant
) -> None:
    server.assign_managed_identity(tenant.tenant_id)
    params = {**MSI_PARAMS, "resource": "https://graph.microsoft.com"}
    response = msi_get(server, session, params)
    assert response.status_code == 400
    assert "AADSTS500011" in response.json()["message"]


def test_msi_api_version_checked(
    server: SandboxServer, session: requests.Session, tenant: SandboxTenant
) -> None:
    server.assign_managed_identity(tenant.tenant_id)
    response = msi_get(server, session, {**MSI_PARAMS, "api-version": "2017-09-01"})
    assert response.status_code == 400


@pytest.mark.parametrize("selector", ["client_id", "object_id", "mi_res_id"])
def test_msi_user_assigned_selected(
    server: SandboxServer, session: requests.Session, tenant: SandboxTenant, selector: str
) -> None:
    server.assign_managed_identity(tenant.tenant_id)
    chosen = server.assign_managed_identity(tenant.tenant_id, user_assigned=True)
    value = {
        "client_id": chosen.client_id,
        "object_id": chosen.object_id,
        "mi_res_id": chosen.resource_id,
    }[selector]
    response = msi_get(server, session, {**MSI_PARAMS, selector: value})
    assert response.status_code == 200
    assert claims_of(response.json()["access_token"])["appid"] == chosen.client_id


def test_msi_unknown_identity_rejected(
    server: SandboxServer, session: requests.Session, tenant: SandboxTenant
) -> None:
    server.assign_managed_identity(tenant.tenant_id)
    response = msi_get(server, session, {**MSI_PARAMS, "client_id": "not-assigned"})
    assert response.status_code == 400
    assert "No managed identity found" in response.json()["message"]


def test_msi_without_identity_rejected(server: SandboxServer, session: requests.Session) -> None:
    response = msi_get(server, session, MSI_PARAMS)
    assert response.status_code == 400


def test_client_secret_issues_token(
    server: SandboxServer, session: requests.Session, tenant: SandboxTenant
) -> None:
    secret = "sandbox-Secret-1"
    server.add_client_secret(tenant.tenant_id, APP_ID, secret)
    response = app_token_request(server, session, tenant.tenant_id, client_secret=secret)
    assert response.status_code == 200
    assert claims_of(response.json()["access_token"])["appid"] == APP_ID


@pytest.mark.parametrize("registered", [True, False])
def test_wrong_client_secret_rejected(
    server: SandboxServer, session: requests.Session, tenant: SandboxTenant, registered: bool
) -> None:
    if registered:
        server.add_client_secret(tenant.tenant_id, APP_ID, "sandbox-Secret-1")
    response = app_token_request(server, session, tenant.tenant_id, client_secret="guess")
    assert response.status_code == 401
    assert response.json()["error_codes"] == [7000215]


def test_federated_assertion_issues_token(
    server: SandboxServer, session: requests.Session, tenant: SandboxTenant
) -> None:
    issuer = OidcIssuer("https://kubernetes.sandbox.test/oidc")
    server.add_federated_credential(tenant.tenant_id, APP_ID, issuer, K8S_SUBJECT)
    fields = federated_fields(issuer.issue(K8S_SUBJECT))
    response = app_token_request(server, session, tenant.tenant_id, **fields)
    assert response.status_code == 200
    assert claims_of(response.json()["access_token"])["roles"] == ["Exchange.ManageAsApp"]


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("unknown issuer", 700211),
        ("wrong audience", 700212),
        ("wrong subject", 700213),
        ("expired", 700024),
        ("forged signature", 50013),
    ],
)
def test_federated_assertion_rejected(
    server: SandboxServer, session: requests.Session, tenant: SandboxTenant, case: str, code: int
) -> None:
    issuer = OidcIssuer("https://kubernetes.sandbox.test/oidc")
    server.add_federated_credential(tenant.tenant_id, APP_ID, issuer, K8S_SUBJECT)
    assertion = {
        "unknown issuer": lambda: OidcIssuer("https://other.sandbox.test/").issue(K8S_SUBJECT),
        "wrong audience": lambda: issuer.issue(K8S_SUBJECT, "api://SomethingElse"),
        "wrong subject": lambda: issuer.issue("system:serviceaccount:other:pod"),
        "expired": lambda: issuer.issue(K8S_SUBJECT, issued_at=time.time() - 7200),
        # Same issuer URL, different key: a token an attacker signed for the right names.
        "forged signature": lambda: OidcIssuer(issuer.issuer).issue(K8S_SUBJECT),
    }[case]()
    response = app_token_request(server, session, tenant.tenant_id, **federated_fields(assertion))
    assert response.status_code == 401
    assert response.json()["error_codes"] == [code]


def test_github_idtoken_requires_request_token(
    server: SandboxServer, session: requests.Session
) -> None:
    github = server.enable_github_actions("repo:contoso/dns:ref:refs/heads/main")
    url = server.github_request_url()
    refused = session.get(url, params={"audience": "api://AzureADTokenExchange"}, timeout=10)
    granted = session.get(
        url,
        params={"audience": "api://AzureADTokenExchange"},
        headers={"Authorization": f"Bearer {github.request_token}"},
        timeout=10,
    )
    assert refused.status_code == 401
    assert granted.status_code == 200
    claims = claims_of(granted.json()["value"])
    assert claims["iss"] == "https://token.actions.githubusercontent.com"
    assert claims["aud"] == "api://AzureADTokenExchange"
    assert claims["sub"] == "repo:contoso/dns:ref:refs/heads/main"


def test_authorize_form_post_page(
    server: SandboxServer, session: requests.Session, tenant: SandboxTenant
) -> None:
    response = authorize(server, session, tenant.tenant_id, response_mode="form_post")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    assert f'action="{LOOPBACK_REDIRECT}"' in response.text
    assert 'name="code"' in response.text
    assert 'name="state" value="state-1"' in response.text


def test_authorize_query_redirect(
    server: SandboxServer, session: requests.Session, tenant: SandboxTenant
) -> None:
    response = authorize(server, session, tenant.tenant_id)
    assert response.status_code == 302
    assert response.headers["Location"].startswith(LOOPBACK_REDIRECT + "?")
    query = redirect_query(response)
    assert query["state"] == "state-1"
    assert query["code"]


@pytest.mark.parametrize(
    "redirect_uri", ["https://attacker.example/callback", "http://192.0.2.1:8080", "nonsense"]
)
def test_authorize_rejects_other_redirects(
    server: SandboxServer, session: requests.Session, tenant: SandboxTenant, redirect_uri: str
) -> None:
    response = authorize(server, session, tenant.tenant_id, redirect_uri=redirect_uri)
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert "AADSTS50011" in response.text


def test_authorize_unknown_client_shown(
    server: SandboxServer, session: requests.Session, tenant: SandboxTenant
) -> None:
    response = authorize(server, session, tenant.tenant_id, client_id=APP_ID)
    assert response.status_code == 400
    assert "AADSTS700016" in response.text


def test_authorize_requires_pkce(
    server: SandboxServer, session: requests.Session, tenant: SandboxTenant
) -> None:
    response = authorize(server, session, tenant.tenant_id, code_challenge="")
    query = redirect_query(response)
    assert query["error"] == "invalid_request"
    assert "code" not in query


def test_authcode_redeems_with_verifier(
    server: SandboxServer, session: requests.Session, tenant: SandboxTenant
) -> None:
    verifier, challenge = pkce_pair()
    code = redirect_query(authorize(server, session, tenant.tenant_id, code_challenge=challenge))
    response = redeem_code(server, session, tenant.tenant_id, code["code"], verifier)
    assert response.status_code == 200
    body = response.json()
    assert claims_of(body["access_token"])["scp"] == "AdminApi.AccessAsUser.All"
    assert claims_of(body["id_token"])["nonce"] == "nonce-1"
    assert body["refresh_token"]


def test_authcode_wrong_verifier_rejected(
    server: SandboxServer, session: requests.Session, tenant: SandboxTenant
) -> None:
    code = redirect_query(authorize(server, session, tenant.tenant_id))["code"]
    response = redeem_code(server, session, tenant.tenant_id, code, pkce_pair()[0])
    assert response.status_code == 400
    assert response.json()["error_codes"] == [501481]


def test_authcode_redeemed_once(
    server: SandboxServer, session: requests.Session, tenant: SandboxTenant
) -> None:
    verifier, challenge = pkce_pair()
    code = redirect_query(authorize(server, session, tenant.tenant_id, code_challenge=challenge))
    first = redeem_code(server, session, tenant.tenant_id, code["code"], verifier)
    second = redeem_code(server, session, tenant.tenant_id, code["code"], verifier)
    assert first.status_code == 200
    assert second.json()["error_codes"] == [54005]


def test_authcode_redirect_must_match(
    server: SandboxServer, session: requests.Session, tenant: SandboxTenant
) -> None:
    verifier, challenge = pkce_pair()
    code = redirect_query(authorize(server, session, tenant.tenant_id, code_challenge=challenge))
    response = redeem_code(
        server, session, tenant.tenant_id, code["code"], verifier, "http://localhost:9"
    )
    assert response.json()["error_codes"] == [70000]
