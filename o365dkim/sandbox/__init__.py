"""A sandbox Exchange Online tenant for tests and ``--sandbox`` runs.

It is an HTTPS server on 127.0.0.1 that plays both the Entra ID sign-in endpoints (OpenID
discovery, client credentials with a certificate, device code) and the Exchange admin API
(``InvokeCommand`` with the DKIM cmdlets), backed by in-memory tenants whose behaviour
follows what the real service has been observed to do.
"""
