"""Logins, refreshes and logouts: where a session starts, rotates and ends; and the throttling
of every password check and of sign-ups.

Every password check (a login, and the current password that a password change or an erasure
asks for) goes through `check_password`: the failure counters first, so a throttled client costs
no password hash, and a wrong password counted against the account and the client. The routes
run these in a `RecordingSessionDep`: what a refusal records (a failed check counted, a reused
token's session ended) is committed with the refusal.
"""

import asyncio
import hashlib
import hmac
import logging
import math
import secrets
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from common.auth import access_claims, service_claims
from common.background import stopping
from common.db import new_id
from common.errors import DomainError, ForbiddenError, TooManyRequestsError, UnauthorizedError
from common.metrics import COUNTERS_PRUNED, LOGIN_FAILURES, LOGIN_THROTTLED
from users_svc.domains.auth import repository
from users_svc.domains.auth.models import ACCOUNT, CLIENT
from users_svc.domains.auth.repository import CounterKey
from users_svc.domains.auth.schemas import Client, ServiceToken, TokenForm, Tokens
from users_svc.domains.users import repository as users
from users_svc.domains.users.models import LoginSession, User
from users_svc.passwords import PasswordHasher
from users_svc.settings import Settings
from users_svc.signing import KeyRing

logger = logging.getLogger(__name__)

# A refresh token is its session's id and 256 random bits: unguessable, and it names its session.
REFRESH_SECRET_BYTES = 32


class InvalidCredentialsError(UnauthorizedError):
    """The same answer for an unknown email and a wrong password."""

    detail = "Incorrect email or password."


class AccountDeactivatedError(ForbiddenError):
    detail = "This account is deactivated."


class TooManyLoginsError(TooManyRequestsError):
    """The same answer whether or not an account has the email."""

    detail = "Too many wrong passwords for this account or from this address. Retry later."


class AccountLockedError(DomainError):
    status_code = 423
    detail = (
        "This account is locked after too many wrong passwords in a row. "
        "An administrator can unlock it."
    )


class TooManySignUpsError(TooManyRequestsError):
    detail = "Too many sign-ups from this address. Retry later."


class InvalidRefreshTokenError(DomainError):
    status_code = 401

    # One answer for every reason: unknown, expired, ended, or reused.
    detail = "The refresh token is invalid, expired or revoked. Log in again."


class InvalidClientError(UnauthorizedError):
    """RFC 6749, 5.2 `invalid_client`: one answer for an unknown client and a wrong secret."""

    detail = "Client authentication failed: unknown client, or wrong secret."
    headers = {"WWW-Authenticate": "Basic"}  # noqa: RUF012 - never mutated


class InvalidScopeError(DomainError):
    """RFC 6749, 5.2 `invalid_scope`."""

    status_code = 400
    detail = "The client is not granted every scope it asked for."


async def log_in(
    session: AsyncSession,
    email: str,
    password: str,
    *,
    client: Client,
    hasher: PasswordHasher,
    keys: KeyRing,
    settings: Settings,
) -> Tokens:
    """A new session for the account with this email and password.

    Only someone who knows the password learns that an account is deactivated.
    """
    email = email.strip().lower()
    counters = _counter_keys(email, client)
    await _refuse_when_throttled(session, counters, settings)
    user = await users.get_by_email(session, email)
    if user is None:
        await hasher.verify_nothing(password)
        await _count_failure(session, counters, settings)
        raise InvalidCredentialsError
    if not await _password_matches(
        session, user, password, counters=counters, hasher=hasher, settings=settings
    ):
        raise InvalidCredentialsError
    if not user.is_active:
        LOGIN_FAILURES.labels("deactivated").inc()
        raise AccountDeactivatedError
    return await _start_session(session, user.id, client=client, keys=keys, settings=settings)


def grant_client_credentials(
    form: TokenForm, *, basic: tuple[str, str] | None, keys: KeyRing, settings: Settings
) -> ServiceToken:
    """An access token for a registered service (RFC 6749, 4.4), authenticated by HTTP Basic or
    by the form's `client_id` and `client_secret`, for the scopes it asks, among those granted
    to it in `USERS_SERVICE_CLIENTS`. Its secret is known here only by its SHA-256: a secret is
    256 random bits, so no slow hash is needed."""
    if basic is not None:
        client_id, secret = basic
    else:
        client_id = form.client_id if isinstance(form.client_id, str) else ""
        secret = form.client_secret if isinstance(form.client_secret, str) else ""
    registered = settings.service_clients.get(client_id)
    digest = hashlib.sha256(secret.encode()).hexdigest()
    if registered is None or not any(
        hmac.compare_digest(digest, known) for known in registered.secret_sha256
    ):
        logger.info("client credentials refused for client %r", client_id[:200])
        raise InvalidClientError
    scopes = frozenset(form.scope.split()) if isinstance(form.scope, str) else registered.scopes
    if not scopes <= registered.scopes:
        raise InvalidScopeError
    claims = service_claims(
        client_id,
        scopes=scopes,
        issuer=settings.token_issuer,
        audience=settings.token_audience,
        lifetime_seconds=settings.service_token_seconds,
    )
    return ServiceToken(
        access_token=keys.signer.sign(claims),
        expires_in=settings.service_token_seconds,
        scope=" ".join(sorted(scopes)),
    )


async def check_password(
    session: AsyncSession,
    user: User,
    password: str,
    *,
    client: Client,
    hasher: PasswordHasher,
    settings: Settings,
) -> bool:
    """Whether `password` is the account's, checked as a login checks it: refused (429) before
    any hash while the account or the client is throttled, and (423) while the account is
    locked; a wrong password counted against both."""
    counters = _counter_keys(user.email, client)
    await _refuse_when_throttled(session, counters, settings)
    return await _password_matches(
        session, user, password, counters=counters, hasher=hasher, settings=settings
    )


async def count_sign_up(session: AsyncSession, client: Client, *, settings: Settings) -> None:
    """Count a sign-up from this client; past the limit of its window, 429 with Retry-After."""
    key = _digest(client.address)
    limit = settings.sign_ups_per_client
    # Read first: a flood past the limit is refused without queueing on its counter's row lock.
    counter = await repository.live_sign_ups(session, key)
    if counter is None or counter.count < limit:
        counter = await repository.count_sign_up(
            session, key, window=timedelta(seconds=settings.sign_up_window_seconds)
        )
        if counter.count <= limit:
            return
    raise TooManySignUpsError(retry_after_seconds=max(1, math.ceil(counter.seconds_left)))


async def unlock(session: AsyncSession, user: User) -> None:
    """Let the account's password be checked again: its wrong passwords in a row and its
    account counter of the window are forgotten."""
    user.failed_password_checks = 0
    await repository.forget(session, (ACCOUNT, _digest(user.email)))
    await session.flush()


async def pruning_counters(
    sessionmaker: async_sessionmaker[AsyncSession], *, every_seconds: float
) -> None:
    """Delete the login-failure and sign-up counters whose window has ended, every
    `every_seconds`, until cancelled; an error (the database away) waits for the next turn."""
    while not stopping():
        await asyncio.sleep(every_seconds)
        try:
            async with sessionmaker() as session, session.begin():
                pruned = await repository.prune_ended(session)
        except Exception:
            logger.warning("pruning the throttling counters failed; retrying", exc_info=True)
            continue
        for table, rows in pruned.items():
            COUNTERS_PRUNED.labels(table).inc(rows)


async def refresh(
    session: AsyncSession, presented: str, *, keys: KeyRing, settings: Settings
) -> Tokens:
    """New tokens for the session the refresh token names; that token is then spent.

    The token it replaced, presented again, ends the whole session: a thief and the owner can
    no longer be told apart, so neither keeps it. A secret that was never the session's changes
    nothing.
    """
    login = await _session_of(session, presented)
    if login is None:
        raise InvalidRefreshTokenError
    now = datetime.now(UTC)
    digest = _digest(presented)
    if not hmac.compare_digest(login.token_hash, digest):
        if login.previous_token_hash is not None and hmac.compare_digest(
            login.previous_token_hash, digest
        ):
            # The session id is half of a refresh token: logs, read by more people than the
            # database, get the user alone.
            logger.warning("refresh token reused: a session of user %s ended", login.user_id)
            await users.end_session(session, login.id)
        # Any other secret is made up: knowing a session's id (shown in its owner's list of
        # sessions) must not be enough to end it.
        raise InvalidRefreshTokenError
    if login.expires_at <= now or await users.get_honoured(session, login.user_id) is None:
        await users.end_session(session, login.id)
        raise InvalidRefreshTokenError
    token = _new_refresh_token(login.id)
    login.previous_token_hash = login.token_hash
    login.token_hash = _digest(token)
    login.refreshed_at = now
    await session.flush()
    return _tokens(login, token, keys=keys, settings=settings, now=now)


async def log_out(session: AsyncSession, presented: str) -> None:
    """End the session of this refresh token; any other token changes nothing.

    The session id alone is not enough: it is shown in `GET /users/me/sessions`, so only the
    whole token, secret included, ends its session.
    """
    login = await _session_of(session, presented)
    if login is not None and hmac.compare_digest(login.token_hash, _digest(presented)):
        await users.end_session(session, login.id)


async def _start_session(
    session: AsyncSession, user_id: uuid.UUID, *, client: Client, keys: KeyRing, settings: Settings
) -> Tokens:
    now = datetime.now(UTC)
    login = LoginSession(
        id=new_id(),
        user_id=user_id,
        expires_at=now + timedelta(seconds=settings.refresh_token_seconds),
        user_agent=client.user_agent,
    )
    token = _new_refresh_token(login.id)
    login.token_hash = _digest(token)
    session.add(login)
    await session.flush()
    await users.end_sessions_past(session, user_id, keep=settings.sessions_per_account, now=now)
    return _tokens(login, token, keys=keys, settings=settings, now=now)


def _tokens(
    login: LoginSession, refresh_token: str, *, keys: KeyRing, settings: Settings, now: datetime
) -> Tokens:
    claims = access_claims(
        login.user_id,
        issuer=settings.token_issuer,
        audience=settings.token_audience,
        lifetime_seconds=settings.access_token_seconds,
    )
    return Tokens(
        access_token=keys.signer.sign(claims),
        expires_in=settings.access_token_seconds,
        refresh_token=refresh_token,
        refresh_expires_in=int((login.expires_at - now).total_seconds()),
    )


def _new_refresh_token(session_id: uuid.UUID) -> str:
    return f"{session_id.hex}.{secrets.token_urlsafe(REFRESH_SECRET_BYTES)}"


def _digest(value: str) -> bytes:
    # A plain SHA-256: the refresh token is 256 random bits, so no salt or slow hash is needed.
    return hashlib.sha256(value.encode()).digest()


async def _session_of(session: AsyncSession, presented: str) -> LoginSession | None:
    """The session a refresh token names, locked; None for a token that names none."""
    named, _, secret = presented.partition(".")
    try:
        session_id = uuid.UUID(hex=named)
    except ValueError:
        return None
    if not secret or named != session_id.hex:
        return None
    return await users.login_session_for_update(session, session_id)


def _counter_keys(email: str, client: Client) -> tuple[CounterKey, CounterKey]:
    return (ACCOUNT, _digest(email)), (CLIENT, _digest(client.address))


async def _refuse_when_throttled(
    session: AsyncSession, counters: tuple[CounterKey, CounterKey], settings: Settings
) -> None:
    limits = {
        ACCOUNT: settings.login_failures_per_account,
        CLIENT: settings.login_failures_per_client,
    }
    reached = [
        counter
        for counter in await repository.live_counters(session, counters)
        if counter.count >= limits[counter.scope]
    ]
    if reached:
        for counter in reached:
            LOGIN_THROTTLED.labels(counter.scope).inc()
        wait = max(counter.seconds_left for counter in reached)
        raise TooManyLoginsError(retry_after_seconds=max(1, math.ceil(wait)))


async def _password_matches(
    session: AsyncSession,
    user: User,
    password: str,
    *,
    counters: tuple[CounterKey, CounterKey],
    hasher: PasswordHasher,
    settings: Settings,
) -> bool:
    """Whether `password` is `user`'s, unless the account is locked (423); a wrong one is
    counted, a right one clears the account's counts."""
    if user.failed_password_checks >= settings.password_failures_before_lock:
        LOGIN_THROTTLED.labels("locked").inc()
        raise AccountLockedError
    valid, rehashed = await hasher.verify_and_update(password, user.hashed_password)
    if not valid:
        await users.count_wrong_password(session, user.id)
        await _count_failure(session, counters, settings)
        return False
    account, _ = counters
    await repository.forget(session, account)
    if user.failed_password_checks:
        user.failed_password_checks = 0
    if rehashed is not None:
        user.hashed_password = rehashed
    return True


async def _count_failure(
    session: AsyncSession, counters: tuple[CounterKey, CounterKey], settings: Settings
) -> None:
    LOGIN_FAILURES.labels("invalid_credentials").inc()
    await repository.count_failure(
        session, counters, window=timedelta(seconds=settings.login_window_seconds)
    )
