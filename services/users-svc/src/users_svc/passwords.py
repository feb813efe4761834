"""Password hashing: argon2id through pwdlib, in a worker thread, a bounded number at a time.

Passwords are NFKC-normalised before they are hashed or verified (NIST 800-63B, 5.1.1.2): the
same password typed on another keyboard, input method or operating system may arrive in another
Unicode form, and must still match. `is_common` checks a new password against the most used
ones: the first 10,000 of zxcvbn's password frequency list (MIT), in `common-passwords.txt`
(docs/auth.md says how to refresh it).

argon2 is slow and memory-hungry on purpose, so hashing is what a flood of logins or sign-ups
would exhaust: each process runs at most `password_hash_concurrency` hashes at once, and a
request that finds no turn within `password_hash_wait_seconds` is refused (503, Retry-After)
rather than queued without bound.
"""

import functools
import unicodedata
from collections.abc import Callable
from importlib import resources
from typing import Annotated, Self, TypeVar

import anyio
from anyio import to_thread
from fastapi import Depends, Request
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from common.errors import BusyError
from users_svc.settings import Settings

Result = TypeVar("Result")

COMMON_PASSWORDS = "common-passwords.txt"


def normalised(password: str) -> str:
    return unicodedata.normalize("NFKC", password)


@functools.cache
def _common_passwords() -> frozenset[str]:
    listed = resources.files("users_svc").joinpath(COMMON_PASSWORDS).read_text(encoding="utf-8")
    return frozenset(listed.splitlines())


def is_common(password: str) -> bool:
    """Whether the password, in any letter case, is one of the most used ones."""
    return normalised(password).casefold() in _common_passwords()


class PasswordHashingBusyError(BusyError):
    def __init__(self) -> None:
        super().__init__(
            "Too many passwords are being checked right now. Retry shortly.",
            retry_after_seconds=1,
        )


class PasswordHasher:
    def __init__(
        self, *, time_cost: int, memory_kib: int, concurrency: int, wait_seconds: float
    ) -> None:
        self._hash = PasswordHash((Argon2Hasher(time_cost=time_cost, memory_cost=memory_kib),))
        self._turns = anyio.CapacityLimiter(concurrency)
        # New passwords (sign-ups, changes) take at most half the turns: a flood of sign-ups
        # leaves logins, which only verify, turns of their own.
        self._new_password_turns = anyio.CapacityLimiter(max(1, concurrency // 2))
        self._wait_seconds = wait_seconds
        self._dummy: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        return cls(
            time_cost=settings.password_time_cost,
            memory_kib=settings.password_memory_kib,
            concurrency=settings.password_hash_concurrency,
            wait_seconds=settings.password_hash_wait_seconds,
        )

    async def hash(self, password: str) -> str:
        return await self._in_turn(self._hash.hash, normalised(password), new_password=True)

    async def verify_and_update(self, password: str, hashed: str) -> tuple[bool, str | None]:
        """Whether `password` matches, and a new hash when the stored one uses older costs or
        was made from the password before it was normalised."""
        typed = normalised(password)
        valid, updated = await self._in_turn(self._hash.verify_and_update, typed, hashed)
        if valid or typed == password:
            return valid, updated
        # A hash stored before passwords were normalised: its password as it was typed then.
        valid, _ = await self._in_turn(self._hash.verify_and_update, password, hashed)
        return valid, await self.hash(password) if valid else None

    async def verify_nothing(self, password: str) -> None:
        """Take as long as a verification, for a login whose email has no account: an unknown
        email and a wrong password must not be told apart by the time they take."""
        if self._dummy is None:
            self._dummy = await self.hash("not anybody's password")
        await self.verify_and_update(password, self._dummy)

    async def _in_turn(
        self, work: Callable[..., Result], *args: str, new_password: bool = False
    ) -> Result:
        limiters = (self._new_password_turns, self._turns) if new_password else (self._turns,)
        held: list[anyio.CapacityLimiter] = []
        try:
            with anyio.fail_after(self._wait_seconds):
                for limiter in limiters:
                    await limiter.acquire()
                    held.append(limiter)
            return await to_thread.run_sync(work, *args)
        except TimeoutError:
            raise PasswordHashingBusyError from None
        finally:
            for limiter in reversed(held):
                limiter.release()


async def password_hasher(request: Request) -> PasswordHasher:
    """The app's hasher, made by its lifespan (`users_svc.main`)."""
    hasher: PasswordHasher = request.state.password_hasher
    return hasher


PasswordHasherDep = Annotated[PasswordHasher, Depends(password_hasher)]
