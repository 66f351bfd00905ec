"""``o365dkim dns test`` and ``--dns-option`` against each provider's server or fake."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import dns.flags
import dns.message
import dns.query
import pytest
from azure_fake import AzureDnsFake, Identity
from cloudflare_fake import CloudflareFake
from dns.rdatatype import CNAME
from pdnsserver import PowerDnsServer
from test_dns_azure import StaticCredential
from typer.testing import CliRunner

from o365dkim.cli.commands import settings_from_args
from o365dkim.cli.main import app
from o365dkim.sandbox.ca import EphemeralCA

runner = CliRunner()
CF_TOKEN = "cli-cloudflare-token-0123456789"
AZ_TOKEN = "cli-azure-token-0123456789"
AZ_SUBSCRIPTION = "00000000-0000-4000-8000-0000000000c1"
R53_ZONE = "cli-r53.example"


def dns_test(provider: str, zone: str, *options: str, output: str = "text") -> Any:
    args = ["dns", "test", provider, "--zone", zone, "--output", output]
    for option in options:
        args += ["--dns-option", option]
    return runner.invoke(app, args, env={"NO_COLOR": "1"})


@pytest.fixture(scope="module")
def ca() -> EphemeralCA:
    return EphemeralCA("cli fakes CA")


@pytest.fixture
def cloudflare(ca: EphemeralCA, tmp_path: Path) -> Iterator[tuple[CloudflareFake, list[str]]]:
    fake = CloudflareFake(ca)
    fake.add_token(CF_TOKEN, [fake.add_zone("cli-cf.example")])
    with fake:
        options = [
            f"api_url={fake.base_url}/client/v4",
            f"ca_bundle={fake.write_ca_bundle(tmp_path)}",
        ]
        yield fake, options
    assert fake.violations == []


@pytest.fixture
def azure(ca: EphemeralCA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    # Entra ID cannot run here, so the CLI gets the tests' fixed-token credential.
    from o365dkim.dns import azure as azure_provider

    token = {"value": AZ_TOKEN}
    monkeypatch.setattr(
        azure_provider, "build_credential", lambda values: StaticCredential(token["value"])
    )
    fake = AzureDnsFake(ca, AZ_SUBSCRIPTION)
    fake.add_zone("cli-az.example", "dns-rg")
    fake.tokens[AZ_TOKEN] = Identity("cli", can_write=False)
    with fake:
        yield [
            f"subscription_id={AZ_SUBSCRIPTION}",
            f"base_url={fake.base_url}",
            f"ca_bundle={fake.write_ca_bundle(tmp_path)}",
        ]
    assert fake.violations == []


@pytest.fixture
def route53(moto_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[str]:
    """A public zone in moto, and an environment that keeps boto3 away from AWS."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAO365DKIMCLITEST1")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "o365dkim-cli-dummy-secret")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    client = boto3.client("route53", endpoint_url=moto_url, region_name="us-east-1")
    zones = client.list_hosted_zones()["HostedZones"]
    if not any(zone["Name"] == R53_ZONE + "." for zone in zones):
        client.create_hosted_zone(Name=R53_ZONE, CallerReference=uuid.uuid4().hex)
    return [f"endpoint_url={moto_url}"]


def test_dns_test_powerdns_passes(pdns_server: PowerDnsServer) -> None:
    result = dns_test(
        "powerdns",
        "pdns.example",
        f"api_url={pdns_server.api_url}",
        f"api_key={pdns_server.api_key}",
    )

    assert result.exit_code == 0, result.output
    assert "ok: The PowerDNS API" in result.output
    assert "can read the zone pdns.example" in result.output


def test_dns_test_powerdns_wrong_key(pdns_server: PowerDnsServer) -> None:
    wrong = "cli-wrong-powerdns-key"

    result = dns_test(
        "powerdns", "pdns.example", f"api_url={pdns_server.api_url}", f"api_key={wrong}"
    )

    assert result.exit_code == 1
    assert "rejected the API key" in result.output
    assert "api-key setting in pdns.conf" in result.output
    assert wrong not in result.output


def test_dns_test_lexicon_passes(pdns_server: PowerDnsServer) -> None:
    result = dns_test(
        "lexicon:powerdns",
        "lexicon.example",
        f"pdns_server={pdns_server.api_url}",
        f"auth_token={pdns_server.api_key}",
    )

    assert result.exit_code == 0, result.output
    assert "Found the zone lexicon.example" in result.output


def test_dns_test_lexicon_wrong_key(pdns_server: PowerDnsServer) -> None:
    result = dns_test(
        "lexicon:powerdns",
        "lexicon.example",
        f"pdns_server={pdns_server.api_url}",
        "auth_token=cli-wrong-lexicon-key",
    )

    assert result.exit_code == 1
    assert "401" in result.output
    assert "cli-wrong-lexicon-key" not in result.output


def test_dns_test_cloudflare_json(cloudflare: tuple[CloudflareFake, list[str]]) -> None:
    _, options = cloudflare

    result = dns_test(
        "cloudflare", "cli-cf.example", f"api_token={CF_TOKEN}", *options, output="json"
    )

    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["zone"] == "cli-cf.example"
    assert report["checks"][0] == "Cloudflare reports the API token as active."


def test_dns_test_cloudflare_flattening_warns(
    cloudflare: tuple[CloudflareFake, list[str]],
) -> None:
    fake, options = cloudflare
    fake.zone_named("cli-cf.example").cname_flattening = "flatten_all"

    result = dns_test("cloudflare", "cli-cf.example", f"api_token={CF_TOKEN}", *options)

    assert result.exit_code == 0, result.output
    assert "warning: The Cloudflare zone cli-cf.example flattens all CNAME" in result.output


def test_dns_test_cloudflare_wrong_token(cloudflare: tuple[CloudflareFake, list[str]]) -> None:
    _, options = cloudflare

    result = dns_test("cloudflare", "cli-cf.example", "api_token=cli-wrong-cf-token", *options)

    assert result.exit_code == 1
    assert "rejected the API token" in result.output
    assert "Zone / DNS / Edit" in result.output
    assert "cli-wrong-cf-token" not in result.output


def test_dns_test_cloudflare_token_from_keyring(
    cloudflare: tuple[CloudflareFake, list[str]], keyring_file: Any
) -> None:
    _, options = cloudflare
    keyring_file.set_password("o365dkim", "cli-cf", CF_TOKEN)

    result = dns_test("cloudflare", "cli-cf.example", "api_token=keyring:cli-cf", *options)

    assert result.exit_code == 0, result.output


def test_dns_test_route53_passes(route53: list[str]) -> None:
    result = dns_test("route53", R53_ZONE, *route53)

    assert result.exit_code == 0, result.output
    assert f"Found the zone {R53_ZONE}" in result.output
    assert "ChangeResourceRecordSets" in result.output


def test_dns_test_route53_no_credentials(
    route53: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")

    result = dns_test("route53", R53_ZONE, *route53)

    assert result.exit_code == 2
    assert "No AWS credentials" in result.output


def test_dns_test_azure_passes(azure: list[str]) -> None:
    result = dns_test("azure", "cli-az.example", *azure)

    assert result.exit_code == 0, result.output
    assert "Found the zone cli-az.example" in result.output
    assert "DNS Zone Contributor" in result.output


def test_dns_test_azure_wrong_token(azure: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from o365dkim.dns import azure as azure_provider

    monkeypatch.setattr(
        azure_provider, "build_credential", lambda values: StaticCredential("cli-wrong-az")
    )

    result = dns_test("azure", "cli-az.example", *azure)

    assert result.exit_code == 1
    assert "HTTP 401" in result.output
    assert "cli-wrong-az" not in result.output


def test_dns_test_rfc2136_from_environment(
    bind_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("O365DKIM_RFC2136_SERVER", bind_server.server)
    monkeypatch.setenv("O365DKIM_RFC2136_KEY_NAME", bind_server.tsig_key_name)
    monkeypatch.setenv("O365DKIM_RFC2136_KEY_SECRET", bind_server.tsig_secret)

    result = dns_test("rfc2136", "example.com")

    assert result.exit_code == 0, result.output
    assert "Write permission is not checked" in result.output


def test_dns_test_unknown_provider() -> None:
    result = dns_test("nosuchdns", "contoso.com")

    assert result.exit_code == 2
    assert "lexicon:NAME" in result.output


def test_dns_test_bad_option_pair() -> None:
    result = dns_test("powerdns", "contoso.com", "api_key")

    assert result.exit_code == 2
    assert "expected KEY=VALUE" in result.output


def test_dns_test_missing_option() -> None:
    result = dns_test("powerdns", "contoso.com", "api_url=http://127.0.0.1:1")

    assert result.exit_code == 2
    assert "O365DKIM_POWERDNS_API_KEY" in result.output


def test_dns_options_merged_into_settings() -> None:
    settings = settings_from_args(
        {"dns_provider": "powerdns", "dns_option": ["api-url=http://ns1:8081", "API_KEY=s3cr3t-k"]}
    )

    assert settings.dns_options == {"api_url": "http://ns1:8081", "api_key": "s3cr3t-k"}
    assert "s3cr3t-k" in settings.secrets()


def test_dns_options_keep_rfc2136_flags() -> None:
    settings = settings_from_args(
        {"dns_provider": "rfc2136", "rfc2136_server": "127.0.0.1:53", "dns_option": ["ttl=600"]}
    )

    assert settings.dns_options == {"server": "127.0.0.1:53", "ttl": "600"}


def test_dns_test_help_has_example() -> None:
    result = runner.invoke(app, ["dns", "test", "--help"], env={"NO_COLOR": "1"})

    assert result.exit_code == 0
    assert "Example: o365dkim dns test" in result.output


def test_enable_with_powerdns_options(
    pdns_server: PowerDnsServer, make_tenant: Any, unique_label: str
) -> None:
    """The whole enable path with a provider configured only through --dns-option."""
    domain = f"{unique_label}.pdns.example"
    server = f"127.0.0.1:{pdns_server.dns_port}"

    def lookup(host: str) -> str | None:
        query = dns.message.make_query(host, "CNAME")
        query.flags &= ~dns.flags.RD
        response = dns.query.udp(query, "127.0.0.1", port=pdns_server.dns_port, timeout=2)
        targets = [r[0].target.to_text() for r in response.answer if r.rdtype == CNAME]
        return targets[0].rstrip(".").lower() if targets else None

    handle = make_tenant([domain], cname_lookup=lookup)
    env = {
        **handle.cli_env(),
        "O365DKIM_NAMESERVERS": server,
        "O365DKIM_RESOLVERS": server,
        "O365DKIM_INTERVAL": "0.2",
        "O365DKIM_TIMEOUT": "30",
    }
    args = ["enable", domain, "--dns-provider", "powerdns", "--output", "json"]
    args += ["--dns-option", f"api_url={pdns_server.api_url}"]
    args += ["--dns-option", f"api_key={pdns_server.api_key}"]

    result = runner.invoke(app, args, env=env)

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["result"] == "enabled"
    assert pdns_server.api_key not in result.output
