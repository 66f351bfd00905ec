"""Where a federated token (workload identity federation) comes from.

Entra ID exchanges a token issued by a trusted outside identity provider for an app token
when the app registration has a federated credential whose issuer, subject and audience
match it. Sources, first match wins:

1. a file: ``--federated-token-file``, or AZURE_FEDERATED_TOKEN_FILE as the Azure Workload
   Identity webhook sets it in Kubernetes pods. It is read again for every token request,
   because the kubelet rotates it.
2. the token itself, in the O365DKIM_FEDERATED_TOKEN environment variable.
3. GitHub Actions' OIDC provider, when the job has ``permissions: id-token: write`` and
   the runner has set ACTIONS_ID_TOKEN_REQUEST_URL and ACTIONS_ID_TOKEN_REQUEST_TOKEN.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import requests

from o365dkim.auth.tokens import first_line
from o365dkim.errors import AuthenticationError, ConfigurationError

log = logging.getLogger(__name__)

#: The audience Entra ID expects in federated tokens (the federated credential's default).
FEDERATION_AUDIENCE = "api://AzureADTokenExchange"
# Names of environment variables, not their values.
TOKEN_FILE_VARIABLE = "AZURE_FEDERATED_TOKEN_FILE"  # noqa: S105
TOKEN_VARIABLE = "O365DKIM_FEDERATED_TOKEN"  # noqa: S105
GITHUB_URL_VARIABLE = "ACTIONS_ID_TOKEN_REQUEST_URL"
GITHUB_TOKEN_VARIABLE = "ACTIONS_ID_TOKEN_REQUEST_TOKEN"  # noqa: S105
# A JWT is a few kilobytes; a bigger file is not a token.
_MAX_TOKEN_BYTES = 64 * 1024


@dataclass(frozen=True)
class FederatedTokenSource:
    """A callable that returns the current federated token, for MSAL's ``client_assertion``."""

    #: "file", "environment" or "github-actions".
    kind: str
    token_file: Path | None = None
    github_url: str | None = None
    session: requests.Session | None = None

    def __call__(self) -> str:
        if self.kind == "file":
            assert self.token_file is not None
            return _read_token_file(self.token_file)
        if self.kind == "github-actions":
            return self._request_github_token()
        return _non_empty(os.environ.get(TOKEN_VARIABLE, ""), TOKEN_VARIABLE)

    def describe(self) -> str:
        """Return where the token comes from, for logs (never the token)."""
        if self.kind == "file":
            return f"file {self.token_file}"
        if self.kind == "github-actions":
            return "GitHub Actions OIDC"
        return f"environment variable {TOKEN_VARIABLE}"

    def _request_github_token(self) -> str:
        # GitHub documents this request: GET the request URL with &audience=..., the request
        # token as bearer, and the ID token in the "value" field of the JSON response.
        assert self.github_url is not None and self.session is not None
        bearer = os.environ.get(GITHUB_TOKEN_VARIABLE, "")
        try:
            response = self.session.get(
                self.github_url,
                params={"audience": FEDERATION_AUDIENCE},
                headers={"Authorization": f"Bearer {bearer}"},
                timeout=(10, 30),
            )
            response.raise_for_status()
            value = response.json().get("value", "")
        except (requests.RequestException, ValueError, AttributeError) as err:
            raise AuthenticationError(
                f"Cannot get a federated token from GitHub Actions: {first_line(err)}",
                hint="Check that the job has 'permissions: id-token: write'.",
            ) from err
        return _non_empty(str(value), "the GitHub Actions OIDC response")


def find_token_source(
    token_file: Path | None,
    session: requests.Session,
    environ: Mapping[str, str] | None = None,
) -> FederatedTokenSource:
    """Return the first federated token source that is configured, or raise ConfigurationError."""
    env = os.environ if environ is None else environ
    path = token_file or (Path(env[TOKEN_FILE_VARIABLE]) if env.get(TOKEN_FILE_VARIABLE) else None)
    if path is not None:
        return FederatedTokenSource("file", token_file=path)
    if env.get(TOKEN_VARIABLE):
        return FederatedTokenSource("environment")
    if env.get(GITHUB_URL_VARIABLE) and env.get(GITHUB_TOKEN_VARIABLE):
        return FederatedTokenSource(
            "github-actions", github_url=env[GITHUB_URL_VARIABLE], session=session
        )
    raise ConfigurationError(
        "Federated sign-in needs a federated token and none was found.",
        hint=f"Give --federated-token-file (or {TOKEN_FILE_VARIABLE}), set {TOKEN_VARIABLE}, "
        "or run in a GitHub Actions job with 'permissions: id-token: write'.",
    )


def _read_token_file(path: Path) -> str:
    try:
        with path.open("rb") as handle:
            data = handle.read(_MAX_TOKEN_BYTES + 1)
    except OSError as err:
        raise ConfigurationError(
            f"Cannot read the federated token file {path}: {first_line(err)}"
        ) from err
    if len(data) > _MAX_TOKEN_BYTES:
        raise ConfigurationError(
            f"The federated token file {path} is larger than {_MAX_TOKEN_BYTES} bytes; "
            "it does not hold a token."
        )
    return _non_empty(data.decode("ascii", errors="replace"), f"the file {path}")


def _non_empty(value: str, where: str) -> str:
    token = value.strip()
    if not token:
        raise ConfigurationError(f"The federated token in {where} is empty.")
    return token
