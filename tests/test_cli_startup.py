"""Fast start: help, version and argument errors load no sign-in, HTTP, DNS or vendor code.

Runbooks call the CLI many times, so these paths import only typer (which may load rich to
format help) and the standard library. Each case runs in a fresh interpreter, because
this test process has imported everything already.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

#: Top-level packages that only a running command may import.
HEAVY = (
    "msal", "msal_extensions", "cryptography", "dns", "requests", "urllib3", "jwt",
    "keyring", "tenacity", "dotenv", "boto3", "botocore", "azure", "lexicon", "yaml",
)
#: Modules inside packages that --help may load, which must still wait for a command.
HEAVY_MODULES = (
    "rich.progress", "rich.live", "rich.status", "o365dkim.auth", "o365dkim.settings",
    "o365dkim.exchange", "o365dkim.sandbox", "o365dkim.workflow", "o365dkim.dns.provider",
)

PROBE = """
import json, sys
args, (heavy_roots, heavy_modules) = json.loads(sys.argv[1]), json.loads(sys.argv[2])
sys.argv = ["o365dkim", *args]
from o365dkim.cli.main import run
try:
    run()
except SystemExit as exit:
    code = exit.code
else:
    code = 0
loaded = sorted(
    name for name in sys.modules
    if name.split(".")[0] in heavy_roots
    or any(name == m or name.startswith(m + ".") for m in heavy_modules)
)
sys.__stdout__.write("\\n" + json.dumps({"code": code, "loaded": loaded}) + "\\n")
"""

CASES = [
    (["--help"], 0),
    (["--version"], 0),
    ([], 2),  # typer shows the help and exits 2 when no command is given
    (["enable", "--help"], 0),
    (["plan", "--help"], 0),
    (["enable"], 2),
    (["enable", "contoso.com", "--no-such-option"], 2),
    (["enable", "contoso.com", "--output", "xml"], 2),
    (["no-such-command"], 2),
]


def probe(args: list[str], cwd: Path) -> dict[str, object]:
    completed = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(args), json.dumps([HEAVY, HEAVY_MODULES])],
        capture_output=True, text=True, cwd=cwd, timeout=60, check=False,
    )
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(("args", "code"), CASES, ids=[" ".join(a) or "no-args" for a, _ in CASES])
def test_cli_start_imports_no_heavy(args: list[str], code: int, tmp_path: Path) -> None:
    result = probe(args, tmp_path)
    assert result["loaded"] == []
    assert (result["code"] or 0) == code
