"""The results file of a bulk run (CSV or JSON by extension) and its safe cell values."""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from o365dkim.bulk.runner import RowOutcome
from o365dkim.errors import InvalidInputError

#: A spreadsheet runs a cell starting with one of these as a formula (CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
RESULT_COLUMNS = (
    "domain",
    "line",
    "result",
    "enabled",
    "status",
    "key_size_selector1",
    "key_size_selector2",
    "selector1_target",
    "selector1_published",
    "selector2_target",
    "selector2_published",
    "changes",
    "pending",
    "note",
    "error_type",
    "error_message",
)


def check_results_path(path: Path) -> None:
    """Raise InvalidInputError unless ``path`` ends in .csv or .json and its folder is writable."""
    if path.is_dir():
        raise InvalidInputError(f"Invalid --results {path}: it is a folder; give a file name.")
    if path.suffix.lower() not in (".csv", ".json"):
        raise InvalidInputError(f"Invalid --results {path}: the name must end in .csv or .json.")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir() or not os.access(folder, os.W_OK):
        raise InvalidInputError(f"Invalid --results {path}: the folder {folder} is not writable.")


def escape_cell(value: str) -> str:
    """Return ``value`` safe to open in a spreadsheet: a formula start gets a leading quote."""
    return f"'{value}" if value.startswith(_FORMULA_START) else value


def write_results(
    path: Path, header: Sequence[str], outcomes: Sequence[RowOutcome], *, delimiter: str = ","
) -> None:
    """Write one row per domain: the input columns, then the result fields.

    A CSV uses the input's delimiter, so a spreadsheet in a semicolon locale opens it as
    it opened the input.
    """
    partial = path.with_name(path.name + ".tmp")
    if path.suffix.lower() == ".json":
        partial.write_text(json.dumps([_json_row(o) for o in outcomes], indent=2), encoding="utf-8")
    else:
        _write_csv(partial, header, outcomes, delimiter)
    os.replace(partial, path)


def _json_row(outcome: RowOutcome) -> dict[str, Any]:
    return {**outcome.report, "line": outcome.row.line, "input": dict(outcome.row.cells)}


def _write_csv(
    path: Path, header: Sequence[str], outcomes: Sequence[RowOutcome], delimiter: str
) -> None:
    input_columns = list(header)
    # A result column whose name the input already uses gets a prefix instead of hiding it.
    result_columns = {
        name: name if name not in input_columns else f"o365dkim_{name}" for name in RESULT_COLUMNS
    }
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle, delimiter=delimiter)
        writer.writerow(input_columns + list(result_columns.values()))
        for outcome in outcomes:
            flat = _flatten(outcome)
            cells = [outcome.row.cells.get(name, "") for name in input_columns]
            cells += [flat.get(name, "") for name in result_columns]
            writer.writerow([escape_cell(str(value)) for value in cells])


def _flatten(outcome: RowOutcome) -> dict[str, str]:
    report = outcome.report
    selectors = report.get("selectors") or []
    sizes = report.get("key_size") or {}
    error = report.get("error") or {}
    flat = {
        "domain": str(report.get("domain") or outcome.row.domain),
        "line": str(outcome.row.line),
        "result": str(report.get("result", "")),
        "enabled": str(bool(report.get("enabled"))).lower(),
        "status": str(report.get("status") or ""),
        "key_size_selector1": str(sizes.get("selector1") or ""),
        "key_size_selector2": str(sizes.get("selector2") or ""),
        "changes": "; ".join(report.get("changes") or []),
        "pending": "; ".join(report.get("pending") or []),
        "note": str(report.get("note") or ""),
        "error_type": str(error.get("type") or ""),
        "error_message": str(error.get("message") or ""),
    }
    for index, selector in enumerate(selectors[:2], start=1):
        flat[f"selector{index}_target"] = str(selector.get("target") or "")
        flat[f"selector{index}_published"] = str(bool(selector.get("published"))).lower()
    return flat
