"""The emulator's ID tokens verify with google.auth exactly as Google's do, against the keys it publishes, and
nothing else verifies."""

from __future__ import annotations

import base64
import json
import time
from typing import Any, ClassVar

import pytest
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.x509 import load_pem_x509_certificate
from google.auth import exceptions as auth_exceptions
from google.auth.transport import Request
from google.auth.transport import Response as AuthResponse
from google.oauth2 import id_token

from emulator.core.tokens import MAX_TOKEN, Signer, TokenError, unique_id

AUDIENCE = "https://gemini-canary-abc-uc.a.run.app"
EMAIL = "workload@demo-project.iam.gserviceaccount.com"


class _Certs(Request):
    """A google.auth transport request that answers the certs URL with the signer's document."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        self.urls: list[str] = []

    def __call__(  # type: ignore[override]  # only what verify_token passes
        self, url: str, method: str = "GET", **_: Any
    ) -> AuthResponse:
        self.urls.append(url)
        doc = self.doc

        class _Reply(AuthResponse):
            status = 200
            headers: ClassVar[dict[str, str]] = {}
            data = json.dumps(doc).encode()

        return _Reply()


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer()


def test_google_auth_verifies_a_token_against_the_published_certs(signer: Signer) -> None:
    token = signer.id_token(EMAIL, AUDIENCE)
    request = _Certs(signer.certs())
    claims = id_token.verify_token(token, request, audience=AUDIENCE, certs_url="http://keys")
    assert claims["email"] == EMAIL
    assert claims["aud"] == AUDIENCE
    assert claims["sub"] == unique_id(EMAIL)
    assert claims["iss"] == "https://accounts.google.com"
    assert claims["exp"] - claims["iat"] == 3600
    assert signer.verify(token, {AUDIENCE})["email"] == EMAIL


def test_the_jwk_set_holds_the_certificate_key(signer: Signer) -> None:
    (key,) = signer.jwks()["keys"]
    public = load_pem_x509_certificate(signer.certs()[key["kid"]].encode()).public_key()
    assert isinstance(public, RSAPublicKey)
    numbers = public.public_numbers()
    n = int.from_bytes(base64.urlsafe_b64decode(key["n"] + "=" * (-len(key["n"]) % 4)), "big")
    assert (n, key["alg"], key["kty"], key["e"]) == (numbers.n, "RS256", "RSA", "AQAB")


def test_google_auth_refuses_another_audience_and_another_key(signer: Signer) -> None:
    token = signer.id_token(EMAIL, AUDIENCE)
    with pytest.raises(ValueError, match="audience"):
        id_token.verify_token(token, _Certs(signer.certs()), audience="https://other", certs_url="http://keys")
    other = Signer()
    with pytest.raises((ValueError, auth_exceptions.GoogleAuthError)):
        id_token.verify_token(token, _Certs(other.certs()), audience=AUDIENCE, certs_url="http://keys")


def test_without_email_the_token_carries_no_email_claims(signer: Signer) -> None:
    claims = signer.verify(signer.id_token(EMAIL, AUDIENCE, include_email=False))
    assert "email" not in claims
    assert "email_verified" not in claims
    assert claims["sub"] == unique_id(EMAIL)


@pytest.mark.parametrize(
    ("mangle", "reason"),
    [
        (lambda t: t + "x", "bad signature|base64"),
        (lambda t: "a.b", "three"),
        (lambda t: "x" * (MAX_TOKEN + 1), "too long"),
        (lambda t: "e30.e30." + t.split(".")[2], "signed by this emulator"),
        (lambda t: t.split(".")[0] + ".bm90IGpzb24." + t.split(".")[2], "JSON"),
    ],
)
def test_a_tampered_or_foreign_token_is_refused_naming_why(signer: Signer, mangle: Any, reason: str) -> None:
    with pytest.raises(TokenError, match=reason):
        signer.verify(mangle(signer.id_token(EMAIL, AUDIENCE)))


def test_a_token_for_another_audience_or_expired_is_refused(signer: Signer) -> None:
    with pytest.raises(TokenError, match="audience"):
        signer.verify(signer.id_token(EMAIL, AUDIENCE), {"https://elsewhere"})
    now = int(time.time())
    stale = signer.sign({"aud": AUDIENCE, "iss": "https://accounts.google.com", "iat": now - 7200, "exp": now - 3600})
    with pytest.raises(TokenError, match="expired"):
        signer.verify(stale)
    late = signer.sign({"aud": AUDIENCE, "iss": "https://accounts.google.com", "iat": now + 600, "exp": now + 4200})
    with pytest.raises(TokenError, match="before its issue"):
        signer.verify(late)
    foreign = signer.sign({"aud": AUDIENCE, "iss": "https://evil.example", "iat": now, "exp": now + 60})
    with pytest.raises(TokenError, match="issuer"):
        signer.verify(foreign)
