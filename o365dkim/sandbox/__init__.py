"""A sandbox Exchange Online tenant for tests and ``--sandbox`` runs.

It is one HTTPS server on 127.0.0.1. It serves the Entra ID sign-in endpoints (OpenID
discovery, client credentials with a certificate, device code) and the Exchange admin API
(``InvokeCommand`` with the DKIM cmdlets). In-memory tenants behind it follow the behaviour
observed from the real service.
"""
