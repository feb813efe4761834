"""Access tokens for tests, signed with a test key the app under test trusts.

The `token_factory` fixture mints a token for any subject, with any claim or header overridden;
`forged_authorizations` gives every kind of bad `Authorization` header a service must refuse.
"""

import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization

from common.auth import (
    JWKS_PATH,
    REQUIRED_CLAIMS,
    SigningKey,
    TokenSettings,
    access_claims,
)

# How long the factory's tokens live: long enough for any test, short like a real one.
TEST_TOKEN_SECONDS = 300


@lru_cache(maxsize=1)
def signing_key_for_tests() -> SigningKey:
    """The test key of this process (made on first use, never written anywhere)."""
    return SigningKey.generate()


@lru_cache(maxsize=1)
def jwks_url_for_tests() -> str:
    """Where this process serves the test key's JWKS over HTTP, as users-svc serves its own: a
    service under test fetches it as in production (its `jwks_url`, `ServiceUnderTest.settings`).
    The server is a daemon thread of the test process, started on first use."""
    body = json.dumps({"keys": [signing_key_for_tests().public_jwk]}).encode()

    class Jwks(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            found = self.path == JWKS_PATH
            self.send_response(200 if found else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body) if found else 0))
            self.end_headers()
            if found:
                self.wfile.write(body)

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Jwks)
    threading.Thread(target=server.serve_forever, name="test-jwks", daemon=True).start()
    host, port = server.server_address[:2]
    return f"http://{host!s}:{port}{JWKS_PATH}"


class TokenFactory:
    """Mints access tokens the app under test accepts, unless told to break them."""

    def __init__(self, settings: TokenSettings, *, key: SigningKey | None = None) -> None:
        self.settings = settings
        self.key = key or signing_key_for_tests()

    def claims(self, subject: uuid.UUID | str, **overrides: Any) -> dict[str, Any]:
        claims = access_claims(
            subject,
            issuer=self.settings.token_issuer,
            audience=self.settings.token_audience,
            lifetime_seconds=TEST_TOKEN_SECONDS,
        )
        return {**claims, **overrides}

    def __call__(
        self,
        subject: uuid.UUID | str,
        *,
        claims: Mapping[str, Any] | None = None,
        headers: Mapping[str, Any] | None = None,
        drop: Iterable[str] = (),
        key: SigningKey | None = None,
    ) -> str:
        payload = self.claims(subject, **(claims or {}))
        for name in drop:
            payload.pop(name, None)
        return (key or self.key).sign(payload, headers=headers)

    def auth(self, subject: uuid.UUID | str, **kwargs: Any) -> dict[str, str]:
        """`Authorization` header for a valid token of `subject` (kwargs as for a call)."""
        return {"Authorization": f"Bearer {self(subject, **kwargs)}"}

    def service_auth(self, client_id: str, *, scopes: Iterable[str]) -> dict[str, str]:
        """`Authorization` header for a service's token (client credentials) with `scopes`."""
        claims = {"client_id": client_id, "scope": " ".join(sorted(scopes))}
        return self.auth(client_id, claims=claims)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unsigned(header: Mapping[str, Any], claims: Mapping[str, Any]) -> str:
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"


def forged_authorizations(
    factory: TokenFactory, subject: uuid.UUID | str
) -> dict[str, dict[str, str]]:
    """Every way a request can fail to prove who it is, by name: the headers to send."""
    leeway = int(factory.settings.token_leeway_seconds)
    now = int(time.time())
    valid = factory(subject)
    header_part, _, signature = valid.split(".")
    kid = factory.key.kid

    other_subject = factory.claims(uuid.uuid4(), jti=uuid.uuid4().hex)
    tampered_payload = f"{header_part}.{_b64(json.dumps(other_subject).encode())}.{signature}"
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]

    none_token = _unsigned({"alg": "none", "typ": "at+jwt", "kid": kid}, factory.claims(subject))
    public_pem = factory.key.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    hs_input = _unsigned({"alg": "HS256", "typ": "at+jwt", "kid": kid}, factory.claims(subject))
    hs_signature = _b64(hmac.new(public_pem, hs_input.encode(), hashlib.sha256).digest())

    tokens = {
        "garbage": "not-a-token",
        "expired beyond leeway": factory(
            subject, claims={"iat": now - 3600, "exp": now - leeway - 60}
        ),
        "not yet valid": factory(subject, claims={"nbf": now + leeway + 600}),
        "issued in the future": factory(subject, claims={"iat": now + leeway + 600}),
        "tampered payload": tampered_payload,
        "tampered signature": f"{header_part}.{valid.split('.')[1]}.{flipped}",
        "alg none": f"{none_token}.",
        "HS256 signed with the public key": f"{hs_input}.{hs_signature}",
        "wrong aud": factory(subject, claims={"aud": "another-api"}),
        "wrong iss": factory(subject, claims={"iss": "https://issuer.invalid"}),
        "unknown kid": factory(subject, key=SigningKey.generate()),
        "no kid": jwt.encode(
            factory.claims(subject),
            factory.key.private_key,
            algorithm="EdDSA",
            headers={"typ": "at+jwt"},
        ),
        "not an access token (typ JWT)": factory(subject, headers={"typ": "JWT"}),
        "subject not a user id": factory("admin"),
        # Every claim a verifier requires, removed in turn.
        **{f"missing {claim}": factory(subject, drop=[claim]) for claim in REQUIRED_CLAIMS},
    }
    return {
        "no header": {},
        "wrong scheme": {"Authorization": f"Token {valid}"},
        "empty bearer": {"Authorization": "Bearer "},
        **{name: {"Authorization": f"Bearer {token}"} for name, token in tokens.items()},
    }
