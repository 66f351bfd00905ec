"""Bulk input and output: spreadsheet CSVs (F17), profiles, the journal, the results file."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from o365dkim.bulk.csvinput import read_bulk_csv
from o365dkim.bulk.journal import Journal
from o365dkim.bulk.profiles import load_profiles
from o365dkim.bulk.results import escape_cell, write_results
from o365dkim.bulk.runner import RowOutcome
from o365dkim.errors import ConfigurationError, InvalidInputError
from o365dkim.settings import Settings

TENANT = "contoso.onmicrosoft.com"


def write(path: Path, text: str, *, bom: bool = False, crlf: bool = False) -> Path:
    data = text.replace("\n", "\r\n") if crlf else text
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + data.encode("utf-8"))
    return path


def test_csv_with_bom_is_read(tmp_path: Path) -> None:
    """F17: Excel's 'CSV UTF-8' starts with a byte order mark."""
    path = write(tmp_path / "in.csv", f"domain,tenant\ncontoso.com,{TENANT}\n", bom=True)
    data = read_bulk_csv(path)
    assert data.header == ["domain", "tenant"]
    assert data.rows[0].domain == "contoso.com"


def test_csv_semicolons_detected(tmp_path: Path) -> None:
    """F17: Excel in many European locales separates with semicolons."""
    path = write(tmp_path / "in.csv", f"domain;tenant\ncontoso.com;{TENANT}\n", crlf=True)
    data = read_bulk_csv(path)
    assert data.delimiter == ";"
    assert data.rows[0].tenant == TENANT


def test_csv_cell_normalised(tmp_path: Path) -> None:
    """F17: a padded, upper-case cell with a final dot."""
    path = write(tmp_path / "in.csv", f'domain,tenant\n" Contoso.com. ",{TENANT}\n')
    row = read_bulk_csv(path).rows[0]
    assert row.domain == "contoso.com"
    assert row.error is None


def test_csv_blank_and_comment_lines(tmp_path: Path) -> None:
    path = write(tmp_path / "in.csv", f"# customers\n\ndomain,tenant\n\n# paused\ncontoso.com,{TENANT}\n")
    rows = read_bulk_csv(path).rows
    assert [row.line for row in rows] == [6]


def test_csv_missing_header_names_columns(tmp_path: Path) -> None:
    path = write(tmp_path / "in.csv", f"contoso.com,{TENANT}\n")
    with pytest.raises(InvalidInputError) as caught:
        read_bulk_csv(path)
    assert "domain, tenant, profile, dns_provider, zone, key_size" in str(caught.value)


def test_csv_one_column_suggests_delimiter(tmp_path: Path) -> None:
    path = write(tmp_path / "in.csv", f"domain;tenant\ncontoso.com;{TENANT}\n")
    with pytest.raises(InvalidInputError, match="--delimiter"):
        read_bulk_csv(path, delimiter=",")


def test_csv_not_utf8_rejected(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_bytes("domain\nbücher.example\n".encode("latin-1"))
    with pytest.raises(InvalidInputError, match="not UTF-8"):
        read_bulk_csv(path)


def test_csv_invalid_row_kept(tmp_path: Path) -> None:
    path = write(tmp_path / "in.csv", f"domain,tenant,key_size\nbad domain,{TENANT},\n"
                 f"ok.com,{TENANT},4096\nfine.com,not-a-tenant,\nx.com,{TENANT},1024\n")
    rows = read_bulk_csv(path).rows
    assert "spaces" in (rows[0].error or "")
    assert "key_size '4096'" in (rows[1].error or "")
    assert "Invalid tenant" in (rows[2].error or "")
    assert rows[3].error is None
    assert rows[3].key_size == 1024


def test_csv_duplicates_marked(tmp_path: Path) -> None:
    path = write(tmp_path / "in.csv", f"domain,tenant\ncontoso.com,{TENANT}\nCONTOSO.com.,{TENANT}\n")
    rows = read_bulk_csv(path).rows
    assert rows[0].duplicate_of is None
    assert rows[1].duplicate_of == 2


def test_csv_unknown_columns_kept(tmp_path: Path) -> None:
    path = write(tmp_path / "in.csv", f"domain,tenant,ticket\ncontoso.com,{TENANT},T-1\n")
    assert read_bulk_csv(path).rows[0].cells["ticket"] == "T-1"


def test_csv_default_tenant_used(tmp_path: Path) -> None:
    path = write(tmp_path / "in.csv", "domain\ncontoso.com\n")
    assert read_bulk_csv(path, default_tenant=TENANT).rows[0].tenant == TENANT


def test_csv_wildcard_needs_tenant(tmp_path: Path) -> None:
    path = write(tmp_path / "in.csv", "domain\n*\n")
    assert "needs a tenant" in (read_bulk_csv(path).rows[0].error or "")


def test_profile_plain_secret_rejected(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[profiles.a]\ntenant = "a.onmicrosoft.com"\ncertificate_password = "hunter2"\n')
    with pytest.raises(ConfigurationError, match="plain-text secret"):
        load_profiles(config)


def test_profile_dns_secret_rejected(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[profiles.a]\n[profiles.a.dns]\nkey_secret = "abc"\n')
    with pytest.raises(ConfigurationError, match="dns.key_secret"):
        load_profiles(config)


def test_profile_env_reference_resolved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        '[defaults]\nprofile = "a"\n[profiles.a]\ntenant = "a.onmicrosoft.com"\n'
        'certificate_password = "env:A_PASSWORD"\n[profiles.a.dns]\nserver = "ns1.a.com"\n'
        'key_secret = "keyring:a-tsig"\n'
    )
    monkeypatch.setenv("A_PASSWORD", "s3cret-value")
    profiles = load_profiles(config)
    settings = profiles.get(None).apply(Settings())  # type: ignore[union-attr]
    assert settings.tenant == "a.onmicrosoft.com"
    assert settings.certificate_password == "s3cret-value"
    assert settings.dns_options == {"server": "ns1.a.com", "key_secret": "keyring:a-tsig"}


def test_profile_missing_env_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[profiles.a]\nclient_secret = "env:NOPE_NOT_SET"\n')
    monkeypatch.delenv("NOPE_NOT_SET", raising=False)
    with pytest.raises(ConfigurationError, match="NOPE_NOT_SET"):
        load_profiles(config).get("a").apply(Settings())  # type: ignore[union-attr]


def test_profile_unknown_name(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[profiles.a]\ntenant = "a.onmicrosoft.com"\n')
    with pytest.raises(ConfigurationError, match="Unknown profile 'b'"):
        load_profiles(config).get("b")


def test_profile_explicit_file_missing(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="not found"):
        load_profiles(tmp_path / "none.toml")


@pytest.mark.parametrize("value", ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\r=x"])
def test_escape_cell_formula(value: str) -> None:
    assert escape_cell(value) == "'" + value


def test_escape_cell_plain() -> None:
    assert escape_cell("contoso.com") == "contoso.com"


def test_results_csv_escapes_and_keeps_input(tmp_path: Path) -> None:
    path = write(tmp_path / "in.csv", f"domain,tenant,note\ncontoso.com,{TENANT},=HYPERLINK(1)\n")
    data = read_bulk_csv(path)
    report = {"domain": "contoso.com", "result": "failed", "selectors": [], "changes": [],
              "error": {"type": "X", "message": "-bad"}}
    out = tmp_path / "results.csv"
    write_results(out, data.header, [RowOutcome(data.rows[0], report)])
    with out.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows[0]["note"] == "'=HYPERLINK(1)"
    assert rows[0]["error_message"] == "'-bad"
    assert rows[0]["result"] == "failed"
    assert rows[0]["o365dkim_domain"] == "contoso.com"


def test_results_json_has_input(tmp_path: Path) -> None:
    path = write(tmp_path / "in.csv", f"domain,tenant\ncontoso.com,{TENANT}\n")
    data = read_bulk_csv(path)
    out = tmp_path / "results.json"
    write_results(out, data.header, [RowOutcome(data.rows[0], {"result": "enabled"})])
    rows = json.loads(out.read_text())
    assert rows[0]["input"] == {"domain": "contoso.com", "tenant": TENANT}
    assert rows[0]["line"] == 2


def test_journal_resume_facts(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.sqlite")
    journal.record_step("t|a.com", "create_config", "start")
    assert journal.unconfirmed("t|a.com", "create_config")
    journal.record_step("t|a.com", "create_config", "done")
    assert not journal.unconfirmed("t|a.com", "create_config")
    journal.record_result("t|a.com", {"result": "pending_dns"})
    assert journal.final_report("t|a.com") is None
    journal.record_result("t|a.com", {"result": "enabled"})
    journal.close()
    reopened = Journal(tmp_path / "j.sqlite")
    assert reopened.final_report("t|a.com") == {"result": "enabled"}


def test_csv_multiline_cell_kept(tmp_path: Path) -> None:
    path = write(tmp_path / "in.csv", f'domain,tenant,note\na.com,{TENANT},"line one\nline two"\n'
                 f"b.com,{TENANT},x\n")
    rows = read_bulk_csv(path).rows
    assert [row.domain for row in rows] == ["a.com", "b.com"]
    assert rows[0].cells["note"] == "line one\nline two"
    assert [row.line for row in rows] == [2, 4]


def test_csv_trailing_empty_columns(tmp_path: Path) -> None:
    path = write(tmp_path / "in.csv", f"domain;tenant;;\na.com;{TENANT};;\n")
    data = read_bulk_csv(path)
    assert data.header == ["domain", "tenant"]
    assert data.rows[0].error is None


def test_csv_extra_cells_invalid(tmp_path: Path) -> None:
    path = write(tmp_path / "in.csv", f"domain,tenant\na.com,{TENANT},surprise\n")
    assert "beyond the 2 columns" in (read_bulk_csv(path).rows[0].error or "")


def test_csv_workbook_rejected(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_bytes(b"PK\x03\x04rest-of-a-zip")
    with pytest.raises(InvalidInputError, match="Excel workbook"):
        read_bulk_csv(path)


def test_profile_unknown_key_rejected(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[profiles.a]\nclientid = "x"\n')
    with pytest.raises(ConfigurationError, match="unknown setting.*clientid"):
        load_profiles(config)


def test_profile_dns_private_key_rejected(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[profiles.a]\n[profiles.a.dns]\nprivate_key = "-----BEGIN"\n')
    with pytest.raises(ConfigurationError, match="plain-text secret in 'dns.private_key'"):
        load_profiles(config)
