"""The one place HTTP sessions are made: User-Agent, TLS trust and timeouts."""

from __future__ import annotations

import requests

from o365dkim import __version__

#: (connect, read) seconds for every call. The admin API's own cmdlets end after 15 minutes,
#: but DKIM cmdlets return in seconds, so a stuck call is better retried than waited on.
DEFAULT_TIMEOUT = (10.0, 120.0)
USER_AGENT = f"o365dkim/{__version__}"


def create_session(*, ca_bundle: str | None = None) -> requests.Session:
    """Return a requests session for Microsoft (or sandbox) endpoints.

    With ``ca_bundle`` the session trusts only that file. ``trust_env`` is then turned
    off, because requests lets the REQUESTS_CA_BUNDLE environment variable override
    ``Session.verify``; TLS verification itself stays on either way.
    """
    session = requests.Session()
    session.headers["User-Agent"] = USER_AGENT
    if ca_bundle:
        session.verify = ca_bundle
        session.trust_env = False
    return session
