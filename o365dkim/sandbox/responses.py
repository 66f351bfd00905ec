"""The HTTP response the sandbox endpoints return to the request handler."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class SandboxResponse:
    """Status, headers and body of one response; ``drop`` closes the connection instead."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False


def json_response(
    status: int, payload: Any, headers: dict[str, str] | None = None
) -> SandboxResponse:
    """Return a JSON response with the content type Microsoft's endpoints send."""
    merged = {"Content-Type": "application/json; charset=utf-8", **(headers or {})}
    return SandboxResponse(status, json.dumps(payload).encode("utf-8"), merged)


def text_response(status: int, text: str, headers: dict[str, str] | None = None) -> SandboxResponse:
    """Return a plain-text response."""
    merged = {"Content-Type": "text/plain; charset=utf-8", **(headers or {})}
    return SandboxResponse(status, text.encode("utf-8"), merged)
