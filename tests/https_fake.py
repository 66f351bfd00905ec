"""A small HTTPS server on 127.0.0.1 for vendor API fakes, with TLS from EphemeralCA.

A fake subclasses HttpsFake and implements ``handle``. The fake returns the vendor's
error for each request the real API would reject, and records it in ``violations``. The
test fixture that owns the fake asserts the list is empty at the end, so a provider that
sends such a request fails its test even when it copes with the error response.
"""

from __future__ import annotations

import json
import ssl
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from o365dkim.sandbox.ca import EphemeralCA


@dataclass
class Request:
    """One request as the fake received it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8"))


@dataclass
class Response:
    """What the fake sends back: a status, a JSON body (or none) and extra headers."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


class HttpsFake:
    """Serves ``handle`` over HTTPS on a free port of 127.0.0.1 in a background thread."""

    def __init__(self, ca: EphemeralCA) -> None:
        self.ca = ca
        self.requests: list[Request] = []
        self.violations: list[str] = []
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        assert self._httpd is not None
        return f"https://127.0.0.1:{self._httpd.server_address[1]}"

    def write_ca_bundle(self, folder: Path) -> str:
        return str(self.ca.write_ca_bundle(folder / "fake-ca.pem"))

    def handle(self, request: Request) -> Response:
        raise NotImplementedError

    def reject(self, status: int, reason: str, body: Any) -> Response:
        """Record a request the real API would reject, and return the vendor's error."""
        self.violations.append(reason)
        return Response(status, body)

    def start(self) -> None:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes; without this each call waits ~40 ms.
            disable_nagle_algorithm = True

            def _serve(self) -> None:
                split = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                request = Request(
                    self.command,
                    unquote(split.path),
                    parse_qs(split.query, keep_blank_values=True),
                    {key.lower(): value for key, value in self.headers.items()},
                    self.rfile.read(length) if length else b"",
                )
                with fake._lock:
                    fake.requests.append(request)
                    response = fake.handle(request)
                payload = b"" if response.body is None else json.dumps(response.body).encode()
                self.send_response(response.status)
                for key, value in response.headers.items():
                    self.send_header(key, value)
                if response.body is not None:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

            def log_message(self, format: str, *args: Any) -> None:
                return

        httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context: ssl.SSLContext = self.ca.server_ssl_context()
        httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
        httpd.daemon_threads = True
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = self._thread = None

    def __enter__(self) -> HttpsFake:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
