"""Sign-in through MSAL for every mode an admin may choose, and the token cache.

App-only: certificate, client secret, federated token (workload identity federation) and
managed identity. A person: device code, or an interactive browser on this machine.
"""

from o365dkim.auth.confidential import (
    CertificateCredential,
    certificate_provider,
    client_secret_provider,
    federated_provider,
)
from o365dkim.auth.public import browser_available, browser_provider, device_code_provider
from o365dkim.auth.tokens import (
    EXCHANGE_PUBLIC_CLIENT_ID,
    AccessToken,
    MsalTokenProvider,
    TokenProvider,
    decode_claims,
    validate_tenant,
)

__all__ = [
    "EXCHANGE_PUBLIC_CLIENT_ID",
    "AccessToken",
    "CertificateCredential",
    "MsalTokenProvider",
    "TokenProvider",
    "browser_available",
    "browser_provider",
    "certificate_provider",
    "client_secret_provider",
    "decode_claims",
    "device_code_provider",
    "federated_provider",
    "validate_tenant",
]
