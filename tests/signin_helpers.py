"""Test helpers for sign-in: an in-memory keyring, a loopback-only HTTP session, the
browser stand-in, and running the CLI on a pseudo-terminal as a person would."""

from __future__ import annotations

import os
import pty
import shlex
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import keyring.backend
import keyring.errors
import pytest
import requests
from requests.adapters import HTTPAdapter

from o365dkim.http import create_session

HERE = Path(__file__).resolve().parent
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")
#: Environment variables through which MSAL picks a managed identity endpoint.
MANAGED_IDENTITY_VARIABLES = (
    "IDENTITY_ENDPOINT",
    "IDENTITY_HEADER",
    "IDENTITY_SERVER_THUMBPRINT",
    "MSI_ENDPOINT",
    "MSI_SECRET",
    "IMDS_ENDPOINT",
    "AZURE_POD_IDENTITY_AUTHORITY_HOST",
)


class MemoryKeyring(keyring.backend.KeyringBackend):
    """A keyring backend held in a dict, so tests never touch the user's real keyring."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.entries: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if self.entries.pop((service, username), None) is None:
            raise keyring.errors.PasswordDeleteError("Password not found")


class LoopbackOnlyAdapter(HTTPAdapter):
    """Refuses, before any socket is opened, every request to a host that is not loopback."""

    def send(self, request: requests.PreparedRequest, *args: object, **kwargs: object):  # type: ignore[no-untyped-def, override]
        host = urlsplit(request.url or "").hostname or ""
        if host not in LOOPBACK_HOSTS:
            raise AssertionError(f"test code tried to reach {host}; only loopback is allowed")
        return super().send(request, *args, **kwargs)  # type: ignore[arg-type]


def loopback_only_session(ca_bundle: Path) -> requests.Session:
    """Return o365dkim's session for the sandbox CA, unable to reach anything but loopback."""
    session = create_session(ca_bundle=str(ca_bundle))
    session.mount("http://", LoopbackOnlyAdapter())
    session.mount("https://", LoopbackOnlyAdapter())
    return session


def forbid_metadata_address(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any connection to a link-local address (169.254.0.0/16, Azure's instance
    metadata service among them) fail in this process, whatever code attempts it."""
    original = socket.socket.connect

    def connect(sock: socket.socket, address: object) -> None:
        if isinstance(address, tuple) and str(address[0]).startswith("169.254."):
            raise AssertionError(f"connection to {address[0]} attempted")
        original(sock, address)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", connect)


def clear_managed_identity_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unset every variable that selects a managed identity endpoint."""
    for name in MANAGED_IDENTITY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@dataclass
class BrowserStandIn:
    """The BROWSER command running tests/browser_stand_in.py, and its step log."""

    command: str
    log: Path

    def steps(self) -> list[str]:
        """Return the steps the stand-in logged so far."""
        if not self.log.exists():
            return []
        return self.log.read_text(encoding="utf-8").splitlines()


def browser_stand_in(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, ca_bundle: Path
) -> BrowserStandIn:
    """Point BROWSER at the stand-in and make webbrowser read it again.

    webbrowser caches its list of browsers on first use; resetting that list (and
    restoring it after the test through monkeypatch) makes it honour the new BROWSER.
    """
    import webbrowser

    log = tmp_path / "browser.log"
    script = HERE / "browser_stand_in.py"
    command = f"{shlex.quote(sys.executable)} {shlex.quote(str(script))} %s"
    monkeypatch.setenv("BROWSER", command)
    monkeypatch.setenv("O365DKIM_TEST_BROWSER_CA", str(ca_bundle))
    monkeypatch.setenv("O365DKIM_TEST_BROWSER_LOG", str(log))
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(webbrowser, "_tryorder", None)
    monkeypatch.setattr(webbrowser, "_browsers", {})
    return BrowserStandIn(command, log)


@dataclass
class TerminalRun:
    """The result of a CLI run on a pseudo-terminal."""

    returncode: int
    stdout: str
    stderr: str


def run_cli_on_terminal(args: list[str], env: dict[str, str], timeout: float = 60) -> TerminalRun:
    """Run ``python -m o365dkim ARGS`` with a pseudo-terminal as stdin, as a person would.

    stdout and stderr are pipes, so their text is returned; only stdin is a terminal.
    """
    controller, terminal = pty.openpty()
    try:
        completed = subprocess.run(
            [sys.executable, "-m", "o365dkim", *args],
            stdin=terminal,
            capture_output=True,
            text=True,
            env={**os.environ, **env},
            timeout=timeout,
            check=False,
        )
    finally:
        os.close(terminal)
        os.close(controller)
    return TerminalRun(completed.returncode, completed.stdout, completed.stderr)
