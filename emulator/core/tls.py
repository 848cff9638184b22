"""The emulator's own certificate authority, for the HTTPS a client sends through the HTTP port's CONNECT tunnel.

A client that reaches a served function's `https://` URL through the emulator as its proxy (curl with `https_proxy`)
checks the server's certificate; the emulator answers with a leaf certificate for the requested host, signed by a CA
it makes when first asked. The CA's certificate (never its key) is written to a PEM file that the client is told to
trust (curl's `CURL_CA_BUNDLE`); the keys live in memory only, so nothing outside this process can sign with them.

Certificates are dated by the wall clock, not the emulator's clock: the client checks them against its own time.

Assumption: what the certificates look like is ours (EC P-256, a day in the past to a year ahead); only that a
client accepts them matters, since Google's own front end certificates are not something a client of the emulator
can check against.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import ssl
import tempfile
import threading
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# A DNS name a leaf certificate may be made for: lower-case labels of letters, digits and hyphens (RFC 1123).
_HOSTNAME = re.compile(r"(?=.{1,253}\Z)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
_MAX_HOSTS = 1000  # leaf contexts kept; beyond this the cache starts again (hosts are the served ones: few)


def valid_hostname(host: str) -> bool:
    return bool(_HOSTNAME.fullmatch(host))


class Authority:
    """A CA made on first use, and one server-side TLS context per host, cached."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ca: tuple[ec.EllipticCurvePrivateKey, x509.Certificate] | None = None
        self._contexts: dict[str, ssl.SSLContext] = {}

    def _authority(self) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        if self._ca is None:
            key = ec.generate_private_key(ec.SECP256R1())
            name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Local Google Cloud emulator CA")])
            now = dt.datetime.now(dt.UTC)
            public = key.public_key()
            cert = (
                x509.CertificateBuilder()
                .subject_name(name)
                .issuer_name(name)
                .public_key(public)
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(days=1))
                .not_valid_after(now + dt.timedelta(days=365))
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
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
                .sign(key, hashes.SHA256())
            )
            self._ca = (key, cert)
        return self._ca

    def ca_pem(self) -> bytes:
        """The CA certificate, PEM: what a client trusts."""
        with self._lock:
            return self._authority()[1].public_bytes(serialization.Encoding.PEM)

    def write_ca(self, path: Path) -> Path:
        path.write_bytes(self.ca_pem())
        return path

    def context(self, host: str) -> ssl.SSLContext:
        """A server-side TLS context presenting a certificate for `host` (a DNS name); raises ValueError otherwise."""
        host = host.lower()
        if not valid_hostname(host):
            raise ValueError(f"not a DNS host name a certificate can be made for: {host[:80]!r}")
        with self._lock:
            cached = self._contexts.get(host)
            if cached is not None:
                return cached
            ca_key, ca_cert = self._authority()
            key, cert = self._leaf(host, ca_key, ca_cert)
            context = _server_context(key, cert)
            if len(self._contexts) >= _MAX_HOSTS:
                self._contexts.clear()
            self._contexts[host] = context
            return context

    @staticmethod
    def _leaf(
        host: str, ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate
    ) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        key = ec.generate_private_key(ec.SECP256R1())
        public = key.public_key()
        now = dt.datetime.now(dt.UTC)
        ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host[:64])]))
            .issuer_name(ca_cert.subject)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=365))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        return key, cert


def _server_context(key: ec.EllipticCurvePrivateKey, cert: x509.Certificate) -> ssl.SSLContext:
    """Python's ssl loads a key only from a file: written into a private (0700) folder, loaded, removed at once."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["http/1.1"])  # the tunnel speaks HTTP/1.1 only
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ) + cert.public_bytes(serialization.Encoding.PEM)
    with tempfile.TemporaryDirectory(prefix="emulator-tls-") as folder:
        path = Path(folder) / "leaf.pem"
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as file:
            file.write(pem)
        context.load_cert_chain(path)
    return context
