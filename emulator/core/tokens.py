"""Google-signed ID tokens, as the emulator's "Google" signs them: RS256 JWTs whose keys are published where
google.auth verifies them (`certs()` in the x509 form of https://www.googleapis.com/oauth2/v1/certs, `jwks()` in the
JWK form of https://www.googleapis.com/oauth2/v3/certs), so a client verifies them with google.oauth2.id_token exactly
as it verifies Google's (docs/google-behaviour.md, "Identity tokens").

Claims are those of a service account's Google ID token: iss https://accounts.google.com, aud, azp and sub (the
account's unique id), email, email_verified, iat, exp (one hour). `iat`/`exp` are wall-clock seconds because the
verifying library checks them against its own clock; the emulator's clock may be virtual.

The key pair is made when first needed (about 50 ms) and lives as long as the emulator.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import secrets
import threading
import time
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

ISSUER = "https://accounts.google.com"  # Google's ID tokens: iss is accounts.google.com (with or without https://)
ISSUERS = (ISSUER, "accounts.google.com")
LIFETIME_S = 3600  # Google's ID tokens expire an hour after they are issued
CLOCK_SKEW_S = 10  # tolerated difference between clocks when checking iat/exp (google.auth's default is 0)
MAX_TOKEN = 16 * 1024  # a longer "token" is refused before any decoding


class TokenError(ValueError):
    """A token that does not verify: the message says why (for the emulator's own logs, never sent back whole)."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise TokenError("a part is not base64url") from None


def unique_id(email: str) -> str:
    """A stable 21-digit number for an account, the shape of a service account's uniqueId (the token's `sub`)."""
    digest = hashlib.sha256(email.lower().encode()).digest()
    return "1" + str(int.from_bytes(digest[:9], "big")).rjust(20, "0")[:20]


class Signer:
    """The emulator's signing key: signs ID tokens and publishes their verification keys."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: rsa.RSAPrivateKey | None = None
        self._cert_pem = ""
        self.kid = secrets.token_hex(20)

    def _private(self) -> rsa.RSAPrivateKey:
        with self._lock:
            if self._key is None:
                key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
                name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "emulator.googleapis.com")])
                now = dt.datetime.now(dt.UTC)
                cert = (
                    x509.CertificateBuilder()
                    .subject_name(name)
                    .issuer_name(name)
                    .public_key(key.public_key())
                    .serial_number(x509.random_serial_number())
                    .not_valid_before(now - dt.timedelta(days=1))
                    .not_valid_after(now + dt.timedelta(days=3650))
                    .sign(key, hashes.SHA256())
                )
                self._cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
                self._key = key
            return self._key

    def sign(self, claims: dict[str, Any]) -> str:
        header = {"alg": "RS256", "kid": self.kid, "typ": "JWT"}
        signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
        signature = self._private().sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64(signature)}"

    def id_token(self, email: str, audience: str, *, include_email: bool = True) -> str:
        """A service account's ID token for `audience`. Without `include_email` (generateIdToken's includeEmail
        false) it carries no email claims, as Google's."""
        now = int(time.time())
        sub = unique_id(email)
        claims: dict[str, Any] = {"aud": audience, "azp": sub, "exp": now + LIFETIME_S, "iat": now}
        if include_email:
            claims |= {"email": email, "email_verified": True}
        claims |= {"iss": ISSUER, "sub": sub}
        return self.sign(claims)

    def verify(self, token: str, audiences: set[str] | None = None) -> dict[str, Any]:
        """The claims of a token this signer issued, unexpired, for one of `audiences` (any when None);
        TokenError naming what is wrong otherwise."""
        if len(token) > MAX_TOKEN:
            raise TokenError("token too long")
        parts = token.split(".")
        if len(parts) != 3:
            raise TokenError("not a JWT (three dot-separated parts)")
        try:
            header = json.loads(_unb64(parts[0]))
            claims = json.loads(_unb64(parts[1]))
        except (ValueError, UnicodeDecodeError):
            raise TokenError("header or claims are not JSON") from None
        if not isinstance(header, dict) or not isinstance(claims, dict):
            raise TokenError("header or claims are not JSON objects")
        if header.get("alg") != "RS256" or header.get("kid") != self.kid:
            raise TokenError("not signed by this emulator's key")
        try:
            self._private().public_key().verify(
                _unb64(parts[2]), f"{parts[0]}.{parts[1]}".encode(), padding.PKCS1v15(), hashes.SHA256()
            )
        except InvalidSignature:
            raise TokenError("bad signature") from None
        now = time.time()
        exp, iat = claims.get("exp"), claims.get("iat")
        if not isinstance(exp, int) or not isinstance(iat, int):
            raise TokenError("exp and iat must be whole seconds")
        if now > exp + CLOCK_SKEW_S:
            raise TokenError("token expired")
        if iat > now + CLOCK_SKEW_S:
            raise TokenError("token used before its issue time")
        if claims.get("iss") not in ISSUERS:
            raise TokenError("wrong issuer")
        if audiences is not None and claims.get("aud") not in audiences:
            raise TokenError("wrong audience")
        return claims

    def certs(self) -> dict[str, str]:
        """{kid: PEM certificate}: the v1 certs document google.oauth2.id_token.verify_token reads by default."""
        self._private()
        return {self.kid: self._cert_pem}

    def jwks(self) -> dict[str, Any]:
        """The same key as a JWK set (the v3 certs document)."""
        numbers = self._private().public_key().public_numbers()

        def b64int(value: int) -> str:
            return _b64(value.to_bytes((value.bit_length() + 7) // 8, "big"))

        key = {
            "kty": "RSA",
            "alg": "RS256",
            "use": "sig",
            "kid": self.kid,
            "n": b64int(numbers.n),
            "e": b64int(numbers.e),
        }
        return {"keys": [key]}
