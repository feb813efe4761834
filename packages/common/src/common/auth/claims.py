"""The claims of an access token, built in one place.

users-svc signs them, the tests' token factory and the benchmark mint them, and every verifier
requires `REQUIRED_CLAIMS`: a claim added here reaches all of them at once.
"""

import time
import uuid
from collections.abc import Iterable
from typing import Any

# Claims every access token carries and every verifier requires (RFC 9068 names them).
REQUIRED_CLAIMS: tuple[str, ...] = ("iss", "aud", "sub", "exp", "iat", "jti")


def access_claims(
    subject: uuid.UUID | str,
    *,
    issuer: str,
    audience: str,
    lifetime_seconds: int,
    now: int | None = None,
) -> dict[str, Any]:
    """The claims of a new access token for `subject`, valid `lifetime_seconds` from `now`."""
    issued_at = int(time.time()) if now is None else now
    return {
        "iss": issuer,
        "aud": audience,
        "sub": str(subject),
        "iat": issued_at,
        "exp": issued_at + lifetime_seconds,
        "jti": uuid.uuid4().hex,
    }


def service_claims(
    client_id: str,
    *,
    scopes: Iterable[str],
    issuer: str,
    audience: str,
    lifetime_seconds: int,
    now: int | None = None,
) -> dict[str, Any]:
    """The claims of an access token for a service, from the client credentials grant: no user
    is involved, so the subject is the client (RFC 9068 §2.2), with `client_id` and the granted
    `scope`, space-separated."""
    claims = access_claims(
        client_id, issuer=issuer, audience=audience, lifetime_seconds=lifetime_seconds, now=now
    )
    return {**claims, "client_id": client_id, "scope": " ".join(sorted(scopes))}
