"""App-only sign-in as an Azure managed identity (Automation, Functions, App Service, VMs).

MSAL's ManagedIdentityClient picks the endpoint from the environment (MSAL Python 1.39,
``msal/managed_identity.py``): IDENTITY_ENDPOINT with IDENTITY_HEADER selects the App
Service protocol that Azure Automation and Functions also use (IDENTITY_SERVER_THUMBPRINT
as well selects Service Fabric), MSI_ENDPOINT with MSI_SECRET selects Azure Machine
Learning, an Azure Arc agent selects Arc, and anything else falls back to the VM's instance
metadata service at 169.254.169.254.
"""

from __future__ import annotations

import logging
from typing import Any

import msal
import requests

from o365dkim.auth.tokens import MsalTokenProvider, first_line
from o365dkim.errors import AuthenticationError, ConfigurationError

log = logging.getLogger(__name__)

_HINT = (
    "Check that the identity is enabled on this Azure resource and, for a user-assigned "
    "identity, its client ID (--managed-identity-client-id)."
)
#: Names of MSAL's managed identity sources, for logs and messages.
_SOURCE_NAMES = {
    "SERVICE_FABRIC": "Service Fabric",
    "APP_SERVICE": "App Service protocol (Azure Automation, Functions, App Service)",
    "MACHINE_LEARNING": "Azure Machine Learning",
    "AZURE_ARC": "Azure Arc",
    "CLOUD_SHELL": "Cloud Shell",
    "DEFAULT_TO_VM": "instance metadata service (Azure VM)",
}


def managed_identity_source() -> str:
    """Return the name of the managed identity endpoint MSAL would use in this environment."""
    source = msal.managed_identity.get_managed_identity_source()
    for attribute, name in _SOURCE_NAMES.items():
        if source is getattr(msal.managed_identity, attribute, None):
            return name
    return "unknown"


def managed_identity_provider(
    *,
    resource: str,
    session: requests.Session,
    client_id: str | None = None,
    token_cache: msal.SerializableTokenCache | None = None,
    require_app_service: bool = False,
) -> MsalTokenProvider:
    """Return a provider that signs in as the system-assigned or a user-assigned identity.

    ``resource`` is the admin API's resource URI (no ``/.default``). ``client_id`` selects
    a user-assigned identity. ``require_app_service`` rejects every endpoint except the
    App Service protocol; sandbox runs set it so that nothing ever contacts the metadata
    address of a real Azure host.
    """
    source = managed_identity_source()
    if require_app_service and not source.startswith("App Service"):
        raise ConfigurationError(
            f"Managed identity against a sandbox needs IDENTITY_ENDPOINT and IDENTITY_HEADER; "
            f"this environment would use the {source}."
        )
    identity: dict[str, Any] = (
        msal.UserAssignedManagedIdentity(client_id=client_id)
        if client_id
        else msal.SystemAssignedManagedIdentity()
    )
    client = msal.ManagedIdentityClient(identity, http_client=session, token_cache=token_cache)
    kind = f"user-assigned {client_id}" if client_id else "system-assigned"
    log.debug("Managed identity: %s through the %s", kind, source)

    def acquire(force_refresh: bool) -> dict[str, Any]:
        # NOTE: ManagedIdentityClient has no way to skip its cache, so a forced refresh
        # returns the cached token until it is within five minutes of expiry.
        try:
            result = dict(client.acquire_token_for_client(resource=resource))
        except requests.RequestException as err:
            raise AuthenticationError(
                f"Cannot reach the managed identity endpoint ({source}): {first_line(err)}"
            ) from err
        except ValueError as err:
            # ManagedIdentityError and a response that is not JSON are both ValueErrors.
            raise AuthenticationError(
                f"Managed identity sign-in failed: {first_line(err)}", hint=_HINT
            ) from err
        if "access_token" not in result:
            lines = str(result.get("error_description") or result.get("error") or "").splitlines()
            raise AuthenticationError(
                f"Managed identity sign-in failed: {lines[0] if lines else 'no token returned'}",
                hint=_HINT,
            )
        return result

    return MsalTokenProvider(acquire, app_only=True)
