"""Throwaway certificates: a CA and TLS server certificate for loopback, and app certificates.

Everything is generated in memory. Nothing here is meant to protect real data, but the
certificates are complete enough for strict TLS verification (key identifiers, key usage,
SAN with IP addresses), so clients keep verification on against the sandbox.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
import tempfile
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# Server certificates cover every name a client may use for a loopback server.
_LOOPBACK_NAMES: tuple[x509.GeneralName, ...] = (
    x509.DNSName("localhost"),
    x509.IPAddress(ipaddress.IPv4Address("127.0.0.1")),
    x509.IPAddress(ipaddress.IPv6Address("::1")),
)
_CA_VALIDITY = datetime.timedelta(days=30)
_CLIENT_VALIDITY = datetime.timedelta(days=365)
# Starting validity a little in the past keeps a client with a slightly slow clock happy.
_BACKDATE = datetime.timedelta(minutes=5)


class EphemeralCA:
    """A CA key and certificate held in memory, with one TLS server certificate for loopback."""

    def __init__(self, common_name: str = "o365dkim sandbox CA") -> None:
        now = datetime.datetime.now(datetime.timezone.utc)
        self._ca_key = ec.generate_private_key(ec.SECP256R1())
        self._ca_cert = _build_ca_certificate(self._ca_key, common_name, now)
        self._server_key = ec.generate_private_key(ec.SECP256R1())
        self._server_cert = _build_server_certificate(
            self._server_key, self._ca_key, self._ca_cert, now
        )

    @property
    def ca_pem(self) -> bytes:
        """The CA certificate in PEM form, the only certificate a client needs to trust."""
        return self._ca_cert.public_bytes(serialization.Encoding.PEM)

    @property
    def server_cert_pem(self) -> bytes:
        """The loopback server certificate in PEM form."""
        return self._server_cert.public_bytes(serialization.Encoding.PEM)

    def write_ca_bundle(self, path: str | os.PathLike[str]) -> Path:
        """Write the CA certificate to ``path`` as a PEM bundle and return the path."""
        target = Path(path)
        target.write_bytes(self.ca_pem)
        return target

    def server_ssl_context(self) -> ssl.SSLContext:
        """Return a TLS server context holding the loopback certificate and its key.

        The ssl module loads keys only from files, so the key and chain go to a private
        temporary directory (mode 0700, files 0600) that is removed as soon as they are loaded.
        """
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        key_pem = self._server_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        with tempfile.TemporaryDirectory(prefix="o365dkim-tls-") as folder:
            cert_path = _write_private(Path(folder) / "server.pem", self.server_cert_pem)
            key_path = _write_private(Path(folder) / "server.key", key_pem)
            context.load_cert_chain(cert_path, key_path)
        return context


def make_client_certificate(common_name: str) -> tuple[bytes, bytes]:
    """Generate a self-signed RSA 2048 certificate for an app registration.

    Returns ``(private_key_pem, cert_pem)``; the key is unencrypted PKCS#8. Entra ID accepts
    self-signed certificates for app credentials, so no CA is involved.
    """
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + _CLIENT_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return key_pem, cert.public_bytes(serialization.Encoding.PEM)


def write_pfx(
    path: str | os.PathLike[str], private_key_pem: bytes, cert_pem: bytes, password: str
) -> Path:
    """Write the key and certificate as a password-protected PKCS#12 (PFX) file, mode 0600."""
    key = serialization.load_pem_private_key(private_key_pem, password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("write_pfx expects an RSA private key, as app certificates use.")
    cert = x509.load_pem_x509_certificate(cert_pem)
    data = pkcs12.serialize_key_and_certificates(
        name=b"o365dkim",
        key=key,
        cert=cert,
        cas=None,
        encryption_algorithm=serialization.BestAvailableEncryption(password.encode("utf-8")),
    )
    return _write_private(Path(path), data)


def certificate_thumbprints(cert_pem: bytes) -> tuple[bytes, bytes]:
    """Return the SHA-1 and SHA-256 digests of a certificate's DER form.

    These are the values behind the ``x5t`` and ``x5t#S256`` JWT headers (RFC 7515 4.1.7-8).
    """
    cert = x509.load_pem_x509_certificate(cert_pem)
    # SHA-1 is what the x5t header is defined as; it identifies, it does not protect.
    return cert.fingerprint(hashes.SHA1()), cert.fingerprint(hashes.SHA256())  # noqa: S303


def _build_ca_certificate(
    key: ec.EllipticCurvePrivateKey, common_name: str, now: datetime.datetime
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    public_key = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + _CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .sign(key, hashes.SHA256())
    )


def _build_server_certificate(
    key: ec.EllipticCurvePrivateKey,
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    now: datetime.datetime,
) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + _CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=True,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(list(_LOOPBACK_NAMES)), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )


def _write_private(path: Path, data: bytes) -> Path:
    """Write ``data`` to a new or existing file readable only by its owner."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
    os.chmod(path, 0o600)
    return path
