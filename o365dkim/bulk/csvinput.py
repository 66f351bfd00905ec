"""Reading the bulk CSV the way spreadsheets write it.

Spreadsheet exports vary: a UTF-8 byte order mark, semicolons instead of commas (Excel in
many European locales), CRLF line ends, blank lines, padding around cells, upper case and
a final dot in domains. All of these are accepted. A missing header or ``domain`` column
stops the run before any work; an invalid row is marked and never stops the others.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from o365dkim.domains import normalize_domain, require_custom_domain
from o365dkim.errors import InvalidInputError

KNOWN_COLUMNS = ("domain", "tenant", "profile", "dns_provider", "zone", "key_size")
WILDCARD = "*"
_DELIMITERS = (",", ";", "\t")
_KEY_SIZES = ("1024", "2048")


@dataclass
class BulkRow:
    """One data row of the CSV, normalised, with its problem if it has one."""

    line: int
    domain: str
    tenant: str | None = None
    profile: str | None = None
    dns_provider: str | None = None
    zone: str | None = None
    key_size: int = 2048
    #: Every input column as given (trimmed), known and unknown, for the results file.
    cells: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    #: Line of the first row with the same tenant and domain.
    duplicate_of: int | None = None
    #: True for a row made from a ``domain=*`` row (it shares that row's line).
    expanded: bool = False

    @property
    def key(self) -> str:
        """Return the journal key: tenant and domain."""
        return f"{self.tenant or ''}|{self.domain}"

    @property
    def wildcard(self) -> bool:
        """Return True for a ``domain=*`` row (every accepted custom domain of the tenant)."""
        return self.domain == WILDCARD


@dataclass
class BulkInput:
    """The parsed file: its header and rows."""

    header: list[str]
    rows: list[BulkRow]
    delimiter: str


def read_bulk_csv(
    path: Path, *, delimiter: str | None = None, default_tenant: str | None = None
) -> BulkInput:
    """Read and check a bulk CSV, raising InvalidInputError when the file cannot be used."""
    text = _decode(path)
    lines = _records(text, delimiter or _detect_delimiter(_first_content_line(text)))
    if not lines:
        raise InvalidInputError(
            f"Invalid CSV {path}: it has no header and no rows. "
            f"The first line must name the columns, such as {','.join(KNOWN_COLUMNS)}."
        )
    chosen = delimiter or _detect_delimiter(_first_content_line(text))
    header = _header(path, lines[0][1], chosen)

    rows = [_row(number, header, values, default_tenant) for number, values in lines[1:]]
    _mark_duplicates(rows)
    return BulkInput(header, rows, chosen)


def _first_content_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            return line
    return ""


def _records(text: str, delimiter: str) -> list[tuple[int, list[str]]]:
    """Return (first line number, cells) of each record, without blank and comment lines.

    The csv module reads the whole text, so a quoted cell may span lines (Alt+Enter in
    Excel) and the line numbers that messages quote stay right.
    """
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    records = []
    previous_end = 0
    for cells in reader:
        start, previous_end = previous_end + 1, reader.line_num
        if not any(cell.strip() for cell in cells) or cells[0].lstrip().startswith("#"):
            continue
        records.append((start, cells))
    return records


def _header(path: Path, cells: Sequence[str], delimiter: str) -> list[str]:
    header = [cell.strip().lower() for cell in cells]
    while header and header[-1] == "":
        header.pop()  # spreadsheets add empty columns at the end
    if "" in header:
        position = header.index("") + 1
        raise InvalidInputError(
            f"Invalid CSV {path}: column {position} of the header has no name. "
            f"Expected columns: {', '.join(KNOWN_COLUMNS)}."
        )
    _check_header(path, header, delimiter)
    return header


def _decode(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as err:
        raise InvalidInputError(f"Cannot read {path}: {err.strerror}.") from err
    if data.startswith(b"PK\x03\x04"):
        raise InvalidInputError(
            f"Invalid CSV {path}: it is a zip file, such as an Excel workbook (.xlsx). "
            "Save it as 'CSV UTF-8' from the spreadsheet."
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise InvalidInputError(
            f"Invalid CSV {path}: it is not UTF-8 (byte {err.start}). "
            "Save it as 'CSV UTF-8' from the spreadsheet."
        ) from err


def _detect_delimiter(header_line: str) -> str:
    counts = {candidate: header_line.count(candidate) for candidate in _DELIMITERS}
    best = max(counts, key=lambda candidate: counts[candidate])
    return best if counts[best] else ","


def _check_header(path: Path, header: Sequence[str], delimiter: str) -> None:
    expected = ", ".join(KNOWN_COLUMNS)
    if "domain" in header:
        if len(set(header)) != len(header):
            raise InvalidInputError(
                f"Invalid CSV {path}: a column name appears twice in the header "
                f"({', '.join(header)})."
            )
        return
    if len(header) == 1:
        raise InvalidInputError(
            f"Invalid CSV {path}: the header has one column '{header[0]}' and no 'domain' column. "
            f"Expected columns: {expected}. If the file uses another delimiter than "
            f"'{delimiter}', give it with --delimiter."
        )
    raise InvalidInputError(
        f"Invalid CSV {path}: the first line must be a header with a 'domain' column; found "
        f"'{','.join(header)}'. Expected columns: {expected}."
    )


def _row(
    line: int, header: Sequence[str], values: Sequence[str], default_tenant: str | None
) -> BulkRow:
    cells = {name: (values[i].strip() if i < len(values) else "") for i, name in enumerate(header)}
    row = BulkRow(line=line, domain=cells.get("domain", ""), cells=cells)
    extra = [value for value in values[len(header) :] if value.strip()]
    if extra:
        row.error = (
            f"Invalid row: it has cells beyond the {len(header)} columns of the header "
            f"({', '.join(extra[:3])})."
        )
        return row
    row.tenant = cells.get("tenant") or default_tenant or None
    row.profile = cells.get("profile") or None
    row.dns_provider = cells.get("dns_provider") or None
    row.zone = cells.get("zone") or None
    try:
        _normalise(row, cells)
    except InvalidInputError as err:
        row.error = str(err)
    return row


def _normalise(row: BulkRow, cells: dict[str, str]) -> None:
    if row.domain != WILDCARD:
        row.domain = normalize_domain(row.domain)
        require_custom_domain(row.domain)
    elif not row.tenant:
        raise InvalidInputError(
            "Invalid row: domain=* needs a tenant in the row or a default tenant."
        )
    if row.tenant:
        from o365dkim.auth import validate_tenant

        row.tenant = validate_tenant(row.tenant)
    if row.zone:
        row.zone = normalize_domain(row.zone)
    size = cells.get("key_size") or "2048"
    if size not in _KEY_SIZES:
        raise InvalidInputError(f"Invalid key_size '{size}': choose 1024 or 2048.")
    row.key_size = int(size)


def _mark_duplicates(rows: Sequence[BulkRow]) -> None:
    first: dict[str, int] = {}
    for row in rows:
        if row.error:
            continue
        if row.key in first:
            row.duplicate_of = first[row.key]
        else:
            first[row.key] = row.line
