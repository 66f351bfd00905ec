"""Domain validation: bad input is rejected with one line naming the value and the rule."""

import pytest

from o365dkim.domains import normalize_domain, selector_hosts
from o365dkim.errors import InvalidInputError


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("contoso.com", "contoso.com"),
        ("Contoso.COM", "contoso.com"),
        ("contoso.com.", "contoso.com"),
        ("marketing.contoso.co.uk", "marketing.contoso.co.uk"),
        ("bücher.example", "xn--bcher-kva.example"),
        ("xn--bcher-kva.example", "xn--bcher-kva.example"),
        ("a" * 63 + ".com", "a" * 63 + ".com"),
    ],
)
def test_normalize_domain_accepts(value: str, expected: str) -> None:
    assert normalize_domain(value) == expected


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("contoso .com", "spaces"),
        (" contoso.com", "spaces"),
        ("contoso.com;rm -rf /", "spaces"),
        ("contoso.com;whoami", "only letters, digits, hyphens and dots"),
        ("$(whoami).com", "only letters, digits, hyphens and dots"),
        ("contoso.com`", "only letters, digits, hyphens and dots"),
        ("contoso.com|calc", "only letters, digits, hyphens and dots"),
        ("contoso.com'; Remove-Item", "spaces"),
        ("$env:USERNAME.com", "only letters, digits, hyphens and dots"),
        ("a" * 64 + ".com", "over the limit of 63"),
        ("contoso..com", "empty label"),
        (".contoso.com", "empty label"),
        ("-contoso.com", "may not start or end with a hyphen"),
        ("$env:USERDNSDOMAIN", "'$', ':' is not allowed"),
        ("xn--zz.example", "not a valid IDNA A-label"),
        ("contoso.123", "all digits"),
        ("contoso.com\n", "line breaks"),
        ("contoso", "at least two labels"),
        ("contoso_mail.com", "only letters, digits, hyphens and dots"),
    ],
)
def test_normalize_domain_rejects(value: str, rule: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        normalize_domain(value)
    message = str(caught.value)
    assert rule in message
    assert "\n" not in message
    assert caught.value.exit_code == 2


def test_normalize_domain_rejects_long_name() -> None:
    name = ".".join(["a" * 60] * 5)
    with pytest.raises(InvalidInputError, match="over the limit of 253"):
        normalize_domain(name)


def test_selector_hosts_keeps_subdomain() -> None:
    assert selector_hosts("marketing.contoso.com") == (
        "selector1._domainkey.marketing.contoso.com",
        "selector2._domainkey.marketing.contoso.com",
    )
