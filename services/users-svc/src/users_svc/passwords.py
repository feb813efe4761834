"""Password hashing: argon2id through pwdlib, run in a worker thread to keep the loop free."""

from functools import lru_cache
from typing import Annotated

from anyio import to_thread
from fastapi import Depends
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from users_svc.settings import SettingsDep


class PasswordHasher:
    def __init__(self, *, time_cost: int, memory_kib: int) -> None:
        self._hash = PasswordHash((Argon2Hasher(time_cost=time_cost, memory_cost=memory_kib),))
        self._dummy: str | None = None

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


@lru_cache(maxsize=4)
def _hasher(time_cost: int, memory_kib: int) -> PasswordHasher:
    return PasswordHasher(time_cost=time_cost, memory_kib=memory_kib)


async def get_password_hasher(settings: SettingsDep) -> PasswordHasher:
    return _hasher(settings.password_time_cost, settings.password_memory_kib)


PasswordHasherDep = Annotated[PasswordHasher, Depends(get_password_hasher)]
