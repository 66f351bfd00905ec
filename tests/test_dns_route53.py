"""The route53 provider against moto's Route 53 in server mode on 127.0.0.1.

boto3 always gets the moto server as endpoint_url and dummy keys, the shared AWS config
files point at an empty folder, and the instance metadata lookup is off, so nothing here
reaches AWS.
"""

from __future__ import annotations

import logging
import os
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest
from provider_contract import TARGET, ProviderContract, Seed, Stored

from o365dkim.dns.provider import create_provider
from o365dkim.dns.records import CnameRecord
from o365dkim.dns.route53 import Route53Provider, wait_for_change
from o365dkim.errors import ConfigurationError, DnsProviderError, ZoneNotFoundError

ZONE = "r53.example"
ACCESS_KEY = "AKIAO365DKIMTESTKEY1"
SECRET_KEY = "o365dkim-dummy-secret-for-moto-only"


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Dummy keys and no shared config or metadata service, so boto3 never reaches AWS."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))


@pytest.fixture(scope="module")
def zones(moto_url: str) -> dict[str, str]:
    """One public zone, a private zone with the same name and a private subzone."""
    client = _client(moto_url)
    vpc = {"VPCRegion": "us-east-1", "VPCId": "vpc-12345678"}
    public = client.create_hosted_zone(Name=ZONE, CallerReference=uuid.uuid4().hex)
    client.create_hosted_zone(
        Name=ZONE,
        CallerReference=uuid.uuid4().hex,
        VPC=vpc,
        HostedZoneConfig={"PrivateZone": True, "Comment": "private"},
    )
    client.create_hosted_zone(
        Name=f"internal.{ZONE}",
        CallerReference=uuid.uuid4().hex,
        VPC=vpc,
        HostedZoneConfig={"PrivateZone": True, "Comment": "private"},
    )
    return {ZONE: public["HostedZone"]["Id"].rsplit("/", 1)[-1]}


def _client(moto_url: str) -> Any:
    return boto3.client(
        "route53",
        endpoint_url=moto_url,
        region_name="us-east-1",
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    )


def provider_for(moto_url: str, **overrides: str) -> Route53Provider:
    options = {"endpoint_url": moto_url, "wait_interval": "0.05", **overrides}
    provider = create_provider("route53", options)
    assert isinstance(provider, Route53Provider)
    return provider


def upsert(moto_url: str, zone_id: str, host: str, rtype: str, value: str) -> None:
    rrset = {"Name": host + ".", "Type": rtype, "TTL": 300, "ResourceRecords": [{"Value": value}]}
    _client(moto_url).change_resource_record_sets(
        HostedZoneId=zone_id,
        ChangeBatch={"Changes": [{"Action": "UPSERT", "ResourceRecordSet": rrset}]},
    )


def read_at(moto_url: str, zone_id: str, host: str) -> list[tuple[str, str]]:
    response = _client(moto_url).list_resource_record_sets(
        HostedZoneId=zone_id, StartRecordName=host + "."
    )
    return sorted(
        (rrset["Type"], item["Value"])
        for rrset in response["ResourceRecordSets"]
        if rrset["Name"].rstrip(".") == host
        for item in rrset.get("ResourceRecords", [])
    )


class TestRoute53Contract(ProviderContract):
    @pytest.fixture
    def provider(self, moto_url: str, zones: dict[str, str]) -> Route53Provider:
        return provider_for(moto_url)

    @pytest.fixture
    def zone(self) -> str:
        return ZONE

    @pytest.fixture
    def seed(self, moto_url: str, zones: dict[str, str]) -> Seed:
        return lambda host, rtype, value: upsert(moto_url, zones[ZONE], host, rtype, value)

    @pytest.fixture
    def stored(self, moto_url: str, zones: dict[str, str]) -> Stored:
        return lambda host: read_at(moto_url, zones[ZONE], host)


def test_route53_skips_private_zones(moto_url: str, zones: dict[str, str]) -> None:
    provider = provider_for(moto_url)

    assert provider.find_zone(f"selector1._domainkey.internal.{ZONE}") == ZONE


def test_route53_writes_in_public_zone(
    moto_url: str, zones: dict[str, str], unique_label: str
) -> None:
    host = f"selector1._domainkey.{unique_label}.{ZONE}"

    provider_for(moto_url, ttl="600").publish(CnameRecord(host, TARGET))

    assert read_at(moto_url, zones[ZONE], host) == [("CNAME", TARGET + ".")]


def test_route53_hosted_zone_id_option(moto_url: str, zones: dict[str, str]) -> None:
    provider = provider_for(moto_url, hosted_zone_id=f"/hostedzone/{zones[ZONE]}")

    assert provider.find_zone(f"selector1._domainkey.{ZONE}") == ZONE


def test_route53_private_zone_id_rejected(moto_url: str, zones: dict[str, str]) -> None:
    private = [
        zone["Id"]
        for zone in _client(moto_url).list_hosted_zones()["HostedZones"]
        if zone["Config"]["PrivateZone"] and zone["Name"] == ZONE + "."
    ]
    provider = provider_for(moto_url, hosted_zone_id=private[0])

    with pytest.raises(ConfigurationError) as caught:
        provider.find_zone(f"selector1._domainkey.{ZONE}")

    assert "is private" in str(caught.value)


def test_route53_duplicate_public_zones(moto_url: str, zones: dict[str, str]) -> None:
    client = _client(moto_url)
    for _ in range(2):
        client.create_hosted_zone(Name="twice.example", CallerReference=uuid.uuid4().hex)

    with pytest.raises(ConfigurationError) as caught:
        provider_for(moto_url).find_zone("selector1._domainkey.twice.example")

    assert "Set hosted_zone_id" in str(caught.value)


def test_route53_unknown_zone_id_hint(moto_url: str, zones: dict[str, str]) -> None:
    provider = provider_for(moto_url, hosted_zone_id="ZNOSUCHZONE0000")

    with pytest.raises(ZoneNotFoundError) as caught:
        provider.find_zone(f"selector1._domainkey.{ZONE}")

    assert "NoSuchHostedZone" in str(caught.value)


def test_route53_keys_from_options(
    moto_url: str, zones: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    provider = provider_for(moto_url, access_key_id=ACCESS_KEY, secret_access_key=SECRET_KEY)

    report = provider.check_access(ZONE)

    assert report.zone == ZONE
    assert "keys from options" in report.checks[0]


def test_route53_no_credentials_hint(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")

    with pytest.raises(ConfigurationError) as caught:
        provider_for(moto_url).find_zone(f"selector1._domainkey.{ZONE}")

    assert "No AWS credentials" in str(caught.value)


def test_route53_unknown_profile_rejected(moto_url: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        provider_for(moto_url, profile="no-such-profile")

    assert "no-such-profile" in str(caught.value)


def test_route53_secret_absent_from_logs(
    moto_url: str,
    zones: dict[str, str],
    unique_label: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="o365dkim")
    provider = provider_for(moto_url, access_key_id=ACCESS_KEY, secret_access_key=SECRET_KEY)

    provider.publish(CnameRecord(f"selector1._domainkey.{unique_label}.{ZONE}", TARGET))

    assert SECRET_KEY not in caplog.text
    assert SECRET_KEY not in repr(vars(provider))


def test_route53_unreachable_endpoint_hint(zones: dict[str, str]) -> None:
    from dnsservers import free_port

    provider = provider_for(f"http://127.0.0.1:{free_port()}", timeout="1")

    with pytest.raises(DnsProviderError) as caught:
        provider.find_zone(f"selector1._domainkey.{ZONE}")

    assert "endpoint_url" in str(caught.value)


def test_wait_for_change_polls_until_insync() -> None:
    # moto reports INSYNC at once; Route 53 reports PENDING first, which this stands for.
    statuses = iter(["PENDING", "PENDING", "INSYNC"])
    sleeps: list[float] = []

    status = wait_for_change(
        lambda change_id: next(statuses), "C1", timeout=60, interval=2, sleep=sleeps.append
    )

    assert status == "INSYNC"
    assert sleeps == [2, 2]


def test_wait_for_change_gives_up() -> None:
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    status = wait_for_change(
        lambda change_id: "PENDING",
        "C1",
        timeout=5,
        interval=2,
        clock=lambda: now[0],
        sleep=sleep,
    )

    assert status == "PENDING"
    assert now[0] == 5
