"""The SQLite journal of a bulk run: every step of every row, before and after it happens.

Running the same command again reads the journal, and finished rows are not touched. A
row whose config creation started but was never confirmed is read before anything is
created. So an interrupted run (Ctrl-C, a crash, ``kill -9``) loses nothing and repeats
nothing.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from o365dkim.errors import ConfigurationError

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS steps (
    id INTEGER PRIMARY KEY,
    row_key TEXT NOT NULL,
    step TEXT NOT NULL,
    phase TEXT NOT NULL,
    at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS steps_by_row ON steps (row_key, step);
CREATE TABLE IF NOT EXISTS results (
    row_key TEXT PRIMARY KEY,
    result TEXT NOT NULL,
    report TEXT NOT NULL,
    at REAL NOT NULL
);
"""
#: Results after which a rerun leaves the row alone.
FINAL_RESULTS = frozenset({"enabled", "already_enabled"})


class Journal:
    """A thread-safe journal in one SQLite file (WAL mode, committed after every write)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as err:
            raise ConfigurationError(
                f"Cannot open the journal {path}: {err}.",
                hint="Give a writable path with --journal, or remove a damaged journal file.",
            ) from err
        self._lock = threading.Lock()
        self._closed = False

    def close(self) -> None:
        """Close the database; later writes (from steps still finishing) are dropped."""
        with self._lock:
            self._closed = True
            self._db.close()

    def record_step(self, row_key: str, step: str, phase: str) -> None:
        """Record that ``step`` of a row reached ``phase`` (start, done, rejected)."""
        with self._lock:
            if self._closed:
                log.debug("journal closed; not recording %s %s of %s", step, phase, row_key)
                return
            self._db.execute(
                "INSERT INTO steps (row_key, step, phase, at) VALUES (?, ?, ?, ?)",
                (row_key, step, phase, time.time()),
            )

    def record_result(self, row_key: str, report: dict[str, Any]) -> None:
        """Store a row's latest result and report, replacing an earlier one."""
        with self._lock:
            if self._closed:
                log.debug("journal closed; not recording the result of %s", row_key)
                return
            self._db.execute(
                "INSERT OR REPLACE INTO results (row_key, result, report, at) VALUES (?, ?, ?, ?)",
                (row_key, str(report.get("result")), json.dumps(report), time.time()),
            )

    def final_report(self, row_key: str) -> dict[str, Any] | None:
        """Return the stored report when the row finished (enabled or already enabled)."""
        with self._lock:
            found = self._db.execute(
                "SELECT result, report FROM results WHERE row_key = ?", (row_key,)
            ).fetchone()
        if found is None or found[0] not in FINAL_RESULTS:
            return None
        report: dict[str, Any] = json.loads(found[1])
        return report

    def unconfirmed(self, row_key: str, step: str) -> bool:
        """Return True when ``step`` started at some point and never recorded an outcome."""
        with self._lock:
            phases = [
                phase
                for (phase,) in self._db.execute(
                    "SELECT phase FROM steps WHERE row_key = ? AND step = ? ORDER BY id",
                    (row_key, step),
                )
            ]
        return bool(phases) and phases[-1] == "start"

    def step_counts(self) -> dict[tuple[str, str], int]:
        """Return how often each (step, phase) was recorded, for tests and reports."""
        with self._lock:
            rows = self._db.execute("SELECT step, phase, COUNT(*) FROM steps GROUP BY step, phase")
            return {(step, phase): count for step, phase, count in rows}
