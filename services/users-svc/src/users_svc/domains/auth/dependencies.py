"""What the auth domain's endpoints take from the request beyond its body."""

import base64
import binascii
import ipaddress
from collections.abc import AsyncIterator
from typing import Annotated
from urllib.parse import unquote_plus

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from common.errors import DomainError
from common.session import database_of
from users_svc.domains.auth.schemas import USER_AGENT_LENGTH, Client

# One IPv6 subscriber usually holds a whole /64: counted as one client.
IPV6_CLIENT_PREFIX = 64


async def get_recording_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's one transaction, like `SessionDep`, except that it is also committed when
    the endpoint refuses the request with a `DomainError`.

    A refusal may be what must be recorded: a failed login's count, a reused refresh token's
    session ended. `SessionDep` would roll those back with the refusal. Any other error still
    rolls back; the commit still happens before the response is sent.
    """
    session = database_of(request).sessionmaker()
    try:
        try:
            yield session
        except DomainError:
            await session.commit()
            raise
        await session.commit()
    finally:
        await session.close()


RecordingSessionDep = Annotated[AsyncSession, Depends(get_recording_session, scope="function")]


async def client_of(request: Request) -> Client:
    """The client's address as the app sees it: the peer's, or, from a proxy listed in
    `TRUSTED_PROXIES`, the address that proxy forwards (common.app). An IPv4 client reaching a
    dual-stack listener (`::ffff:192.0.2.1`) is counted by its IPv4 address, not by the /64 every
    such client shares."""
    host = request.client.host if request.client else "unknown"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        key = host
    else:
        if isinstance(address, ipaddress.IPv6Address):
            address = address.ipv4_mapped or address
        key = (
            str(ipaddress.ip_network(f"{address}/{IPV6_CLIENT_PREFIX}", strict=False))
            if address.version == 6
            else str(address)
        )
    agent = request.headers.get("user-agent")
    return Client(
        address=key,
        user_agent=agent.replace("\x00", "")[:USER_AGENT_LENGTH] if agent else None,
    )


ClientDep = Annotated[Client, Depends(client_of)]


async def client_secret_basic(request: Request) -> tuple[str, str] | None:
    """A service's client id and secret from `Authorization: Basic` (RFC 6749, 2.3.1: each
    form-urlencoded, then joined by a colon), or None when the request has no such header. A
    header that cannot be read names no client: the grant refuses it as an unknown one."""
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return "", ""
    client_id, colon, secret = decoded.partition(":")
    if not colon:
        return "", ""
    return unquote_plus(client_id), unquote_plus(secret)


ClientSecretBasicDep = Annotated[tuple[str, str] | None, Depends(client_secret_basic)]
