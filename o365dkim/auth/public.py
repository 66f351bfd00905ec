"""Sign-in for a person (delegated): device code, or an interactive browser on this machine."""

from __future__ import annotations

import logging
import os
import sys
import webbrowser
from collections.abc import Callable
from typing import Any

import msal
import requests

from o365dkim.auth.tokens import MsalTokenProvider, authority_url, call_msal, first_line
from o365dkim.errors import AuthenticationError, ConfigurationError

log = logging.getLogger(__name__)

#: Seconds the browser sign-in waits for the redirect back to this machine.
BROWSER_TIMEOUT = 300


def device_code_provider(
    *,
    client_id: str,
    tenant: str | None,
    authority_host: str,
    scope: str,
    session: requests.Session,
    show_code: Callable[[str], None],
    token_cache: msal.SerializableTokenCache | None = None,
    interactive: bool = True,
) -> MsalTokenProvider:
    """Return a provider that signs a person in with the device code flow (MFA-compatible).

    A cached account is used silently first. With ``interactive=False`` a missing or
    expired sign-in raises AuthenticationError instead of showing a code.
    """
    app = _public_app(client_id, tenant, authority_host, session, token_cache)

    def acquire(force_refresh: bool) -> dict[str, Any]:
        cached = _silent(app, scope, force_refresh, authority_host)
        if cached is not None:
            return cached
        _require_interactive(interactive, "device-code")
        flow = call_msal(lambda: app.initiate_device_flow(scopes=[scope]), authority_host)
        if "user_code" not in flow:
            return flow
        show_code(str(flow["message"]))
        return call_msal(lambda: app.acquire_token_by_device_flow(flow), authority_host)

    return MsalTokenProvider(acquire, app_only=False)


def browser_provider(
    *,
    client_id: str,
    tenant: str | None,
    authority_host: str,
    scope: str,
    session: requests.Session,
    show_url: Callable[[str], None],
    before_browser: Callable[[], None] | None = None,
    token_cache: msal.SerializableTokenCache | None = None,
    interactive: bool = True,
    timeout: int = BROWSER_TIMEOUT,
) -> MsalTokenProvider:
    """Return a provider that signs a person in through a browser on this machine.

    MSAL listens on a loopback port (redirect URI ``http://localhost:PORT``), opens the
    sign-in page with the ``webbrowser`` module and exchanges the code with PKCE.
    ``before_browser`` runs just before the browser opens (it may raise to stop sign-in);
    ``show_url`` receives the sign-in URL when no browser opened. Raises
    ConfigurationError when no browser can open here (no display).
    """
    if interactive and not browser_available():
        raise ConfigurationError(
            "Browser sign-in needs a browser on this machine, and none can open here "
            "(no graphical display).",
            hint="Use --auth device-code to sign in from a browser on another device.",
        )
    app = _public_app(client_id, tenant, authority_host, session, token_cache)

    def acquire(force_refresh: bool) -> dict[str, Any]:
        cached = _silent(app, scope, force_refresh, authority_host)
        if cached is not None:
            return cached
        _require_interactive(interactive, "browser")
        return call_msal(
            lambda: app.acquire_token_interactive(
                scopes=[scope],
                timeout=timeout,
                auth_uri_callback=show_url,
                on_before_launching_ui=lambda **_: before_browser and before_browser(),
                prompt=msal.Prompt.SELECT_ACCOUNT,
            ),
            authority_host,
        )

    return MsalTokenProvider(acquire, app_only=False)


def browser_available() -> bool:
    """Return True when the ``webbrowser`` module can open a browser here.

    Windows and macOS always have one. Elsewhere a display (X11 or Wayland) is needed,
    because a text browser cannot complete Microsoft's sign-in page, unless the BROWSER
    variable names a browser command explicitly (as on WSL or over X forwarding).
    """
    if sys.platform not in ("win32", "darwin") and not os.environ.get("BROWSER"):
        if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            return False
    try:
        webbrowser.get()
    except webbrowser.Error:
        return False
    return True


def _public_app(
    client_id: str,
    tenant: str | None,
    authority_host: str,
    session: requests.Session,
    token_cache: msal.SerializableTokenCache | None,
) -> msal.PublicClientApplication:
    try:
        return msal.PublicClientApplication(
            client_id,
            authority=authority_url(authority_host, tenant or "organizations"),
            http_client=session,
            instance_discovery=False,
            token_cache=token_cache,
            timeout=30,
        )
    except (ValueError, requests.RequestException) as err:
        raise AuthenticationError(
            f"Sign-in setup failed for tenant {tenant or 'organizations'}: {first_line(err)}"
        ) from err


def _silent(
    app: msal.PublicClientApplication, scope: str, force_refresh: bool, authority_host: str
) -> dict[str, Any] | None:
    """Return a token for the first cached account (refreshing it if needed), or None."""
    accounts = app.get_accounts()
    if not accounts:
        return None
    result = call_msal(
        lambda: (
            app.acquire_token_silent([scope], account=accounts[0], force_refresh=force_refresh)
            or {}
        ),
        authority_host,
    )
    if "access_token" in result:
        return result
    log.info("The cached sign-in of %s cannot be renewed", accounts[0].get("username"))
    return None


def _require_interactive(interactive: bool, mode: str) -> None:
    if not interactive:
        raise AuthenticationError(
            f"No cached sign-in for --auth {mode} with these settings.",
            hint="Run 'o365dkim login' with the same --tenant, --client-id and --auth first.",
        )
