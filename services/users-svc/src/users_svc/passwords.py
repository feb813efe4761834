"""Password hashing: argon2id through pwdlib, run in a worker thread to keep the loop free."""

from typing import Annotated, Self

from anyio import to_thread
from fastapi import Depends, Request
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from users_svc.settings import Settings


class PasswordHasher:
    def __init__(self, *, time_cost: int, memory_kib: int) -> None:
        self._hash = PasswordHash((Argon2Hasher(time_cost=time_cost, memory_cost=memory_kib),))
        self._dummy: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        return cls(time_cost=settings.password_time_cost, memory_kib=settings.password_memory_kib)

    async def hash(self, password: str) -> str:
        return await to_thread.run_sync(self._hash.hash, password)

    async def verify_and_update(self, password: str, hashed: str) -> tuple[bool, str | None]:
        """Whether `password` matches, and a new hash when the stored one uses older costs."""
        return await to_thread.run_sync(self._hash.verify_and_update, password, hashed)

    async def verify_nothing(self, password: str) -> None:
        """Take as long as a verification, for a login whose email has no account: an unknown
        email and a wrong password must not be told apart by the time they take."""
        if self._dummy is None:
            self._dummy = await self.hash("not anybody's password")
        await self.verify_and_update(password, self._dummy)


async def password_hasher(request: Request) -> PasswordHasher:
    """The app's hasher, made by its lifespan (`users_svc.main`)."""
    hasher: PasswordHasher = request.state.password_hasher
    return hasher


PasswordHasherDep = Annotated[PasswordHasher, Depends(password_hasher)]
