"""The admin API client against the sandbox tenant over real HTTPS, signed in through MSAL."""

from __future__ import annotations

import dataclasses
import logging
import re

import pytest
from tenant_fixtures import FAST_RETRIES, TenantFactory

from o365dkim.auth import AccessToken
from o365dkim.exchange.client import ExchangeClient
from o365dkim.exchange.errors import (
    AlreadyExistsError,
    CnameMissingError,
    DomainNotAcceptedError,
    ForbiddenError,
    NotFoundError,
    ThrottledError,
    TransientServiceError,
)
from o365dkim.exchange.retry import RetryPolicy
from o365dkim.http import create_session
from o365dkim.sandbox.tenant import ConfigState

DOMAIN = "contoso.com"


def recording_policy(waits: list[float], **limits: float) -> RetryPolicy:
    """Return the fast test policy with a sleep that records each wait instead of sleeping."""
    return dataclasses.replace(FAST_RETRIES, sleep=waits.append, **limits)  # type: ignore[arg-type]


def test_get_config_none_without_row(make_tenant: TenantFactory) -> None:
    client = make_tenant([DOMAIN]).client()
    assert client.get_dkim_config(DOMAIN) is None


def test_new_config_passes_structured_parameters(make_tenant: TenantFactory) -> None:
    handle = make_tenant([DOMAIN])
    handle.client().new_dkim_config(DOMAIN)
    call = handle.tenant.call_log[-1]
    assert call.cmdlet == "New-DkimSigningConfig"
    assert call.parameters == {"DomainName": DOMAIN, "Enabled": False, "KeySize": 2048}


def test_get_config_reads_typed_row(make_tenant: TenantFactory) -> None:
    handle = make_tenant([DOMAIN])
    client = handle.client()
    client.new_dkim_config(DOMAIN, key_size=1024)
    config = client.get_dkim_config(DOMAIN)
    assert config is not None
    assert config.domain == DOMAIN
    assert config.enabled is False
    assert config.status == "CnameMissing"
    assert config.selector1_key_size == 1024
    assert config.selector2_key_size == 1024
    assert config.has_targets
    assert config.selector1_cname == handle.tenant.config(DOMAIN).target_of("selector1")


def test_get_config_filters_other_domains(make_tenant: TenantFactory) -> None:
    handle = make_tenant([DOMAIN, "fabrikam.com"])
    handle.tenant.seed_config("fabrikam.com", ConfigState.DISABLED)
    # Identity matching nothing returns every config; only contoso.com's row counts.
    assert handle.client().get_dkim_config(DOMAIN) is None


def test_list_accepted_domains(make_tenant: TenantFactory) -> None:
    domains = make_tenant([DOMAIN]).client().list_accepted_domains()
    names = {item.domain for item in domains}
    assert names == {DOMAIN, "contoso.onmicrosoft.com"}
    assert [item.initial for item in domains if item.domain == DOMAIN] == [False]


def test_new_config_not_accepted_domain(make_tenant: TenantFactory) -> None:
    client = make_tenant([DOMAIN]).client()
    with pytest.raises(DomainNotAcceptedError) as caught:
        client.new_dkim_config("not-ours.com")
    assert caught.value.exception_type == "ValidationException"


def test_new_config_twice_already_exists(make_tenant: TenantFactory) -> None:
    client = make_tenant([DOMAIN]).client()
    client.new_dkim_config(DOMAIN)
    with pytest.raises(AlreadyExistsError):
        client.new_dkim_config(DOMAIN)


def test_enable_without_cnames_is_cname_missing(make_tenant: TenantFactory) -> None:
    handle = make_tenant([DOMAIN])
    client = handle.client()
    client.new_dkim_config(DOMAIN)
    with pytest.raises(CnameMissingError):
        client.set_dkim_enabled(DOMAIN, True)
    # A validation error is final: it is not retried.
    assert handle.cmdlets().count("Set-DkimSigningConfig") == 1


def test_enable_unknown_identity_not_found(make_tenant: TenantFactory) -> None:
    client = make_tenant([DOMAIN]).client()
    with pytest.raises(NotFoundError):
        client.set_dkim_enabled("fabrikam.com", True)


def test_enable_after_cnames_published(make_tenant: TenantFactory) -> None:
    published: dict[str, str] = {}
    handle = make_tenant([DOMAIN], cname_lookup=published.get)
    client = handle.client()
    client.new_dkim_config(DOMAIN)
    config = client.get_dkim_config(DOMAIN)
    assert config and config.selector1_cname and config.selector2_cname
    published[f"selector1._domainkey.{DOMAIN}"] = config.selector1_cname
    published[f"selector2._domainkey.{DOMAIN}"] = config.selector2_cname
    client.set_dkim_enabled(DOMAIN, True)
    final = client.get_dkim_config(DOMAIN)
    assert final is not None
    assert final.enabled is True
    assert final.status == "Valid"


def test_forbidden_names_permission_and_role(make_tenant: TenantFactory) -> None:
    handle = make_tenant([DOMAIN])
    handle.server.register_app(
        handle.tenant.tenant_id, handle.client_id, handle.cert_pem, has_exchange_role=False
    )
    with pytest.raises(ForbiddenError) as caught:
        handle.client().get_dkim_config(DOMAIN)
    message = str(caught.value)
    assert "Exchange.ManageAsApp" in message
    assert "Exchange Administrator" in message
    assert caught.value.status_code == 403


def test_throttling_honours_retry_after(make_tenant: TenantFactory) -> None:
    handle = make_tenant([DOMAIN])
    handle.server.faults.update(throttle_next=2, throttle_retry_after=3)
    waits: list[float] = []
    policy = recording_policy(waits, max_total_wait=10.0)
    assert handle.client(policy).get_dkim_config(DOMAIN) is None
    assert waits == [3.0, 3.0]


@pytest.mark.parametrize(
    "fault",
    ["unavailable_next", "gateway_timeout_next", "drop_next", "concurrency_message_next",
     "transient_exception_next"],
)
def test_transient_fault_is_retried(make_tenant: TenantFactory, fault: str) -> None:
    handle = make_tenant([DOMAIN])
    handle.server.faults.update(**{fault: 2})
    waits: list[float] = []
    assert handle.client(recording_policy(waits)).get_dkim_config(DOMAIN) is None
    assert len(waits) == 2


def test_backoff_doubles_between_attempts(make_tenant: TenantFactory) -> None:
    handle = make_tenant([DOMAIN])
    handle.server.faults.update(unavailable_next=3)
    waits: list[float] = []
    policy = recording_policy(waits, initial_wait=1.0, max_wait=60.0, max_total_wait=100.0)
    handle.client(policy).get_dkim_config(DOMAIN)
    assert waits == [1.0, 2.0, 4.0]


def test_throttle_storm_gives_up_bounded(make_tenant: TenantFactory) -> None:
    handle = make_tenant([DOMAIN])
    handle.server.faults.update(throttle_next=50, throttle_retry_after=4)
    waits: list[float] = []
    policy = recording_policy(waits, max_attempts=10, max_total_wait=10.0)
    with pytest.raises(ThrottledError) as caught:
        handle.client(policy).get_dkim_config(DOMAIN)
    assert caught.value.retry_after == 4.0
    assert sum(waits) <= 10.0
    assert len(waits) == 2


def test_unavailable_storm_raises_transient(make_tenant: TenantFactory) -> None:
    handle = make_tenant([DOMAIN])
    handle.server.faults.update(unavailable_next=50)
    waits: list[float] = []
    with pytest.raises(TransientServiceError):
        handle.client(recording_policy(waits)).get_dkim_config(DOMAIN)
    assert len(waits) == FAST_RETRIES.max_attempts - 1


def test_one_token_for_many_calls(make_tenant: TenantFactory) -> None:
    handle = make_tenant([DOMAIN])
    client = handle.client()
    for _ in range(3):
        client.get_dkim_config(DOMAIN)
    assert handle.server.token_requests[handle.client_id.lower()] == 1


def test_request_id_sent_and_logged(
    make_tenant: TenantFactory, caplog: pytest.LogCaptureFixture
) -> None:
    handle = make_tenant([DOMAIN])
    caplog.set_level(logging.DEBUG, logger="o365dkim")
    handle.client().get_dkim_config(DOMAIN)
    call = handle.tenant.call_log[-1]
    assert call.client_request_id
    assert f"client-request-id={call.client_request_id}" in caplog.text
    assert call.anchor_mailbox == (
        "APP:SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}@" + handle.tenant.tenant_id
    )


def test_token_never_logged(make_tenant: TenantFactory, caplog: pytest.LogCaptureFixture) -> None:
    handle = make_tenant([DOMAIN])
    caplog.set_level(logging.DEBUG)
    client = handle.client()
    client.get_dkim_config(DOMAIN)
    token = handle.providers[-1].get_token().token
    assert token not in caplog.text
    assert handle.key_pem.decode() not in caplog.text


def test_tenant_id_read_from_token(make_tenant: TenantFactory) -> None:
    handle = make_tenant([DOMAIN])
    assert handle.client().tenant_id == handle.tenant.tenant_id
    assert re.fullmatch(r"[0-9a-f-]{36}", handle.tenant.tenant_id)


class _StaleFirstToken:
    """Token provider whose cached token was revoked: the first call gets a bad token.

    A test double at our own interface; the refreshed token still comes from MSAL.
    """

    def __init__(self, real: object) -> None:
        self.real = real
        self.forced = 0

    def get_token(self, *, force_refresh: bool = False) -> AccessToken:
        token: AccessToken = self.real.get_token(force_refresh=force_refresh)  # type: ignore[attr-defined]
        if force_refresh:
            self.forced += 1
            return token
        return dataclasses.replace(token, token="not-a-valid-token")


def test_unauthorized_refreshes_token_once(make_tenant: TenantFactory) -> None:
    handle = make_tenant([DOMAIN])
    tokens = _StaleFirstToken(handle.token_provider())
    client = ExchangeClient(
        tokens, create_session(ca_bundle=str(handle.ca_bundle)),
        api_base=handle.server.base_url, retry_policy=FAST_RETRIES,
    )
    assert client.get_dkim_config(DOMAIN) is None
    assert tokens.forced == 1
