"""`python -m users_svc.admin --email ada@example.com`: create or promote an administrator.

No request can make an administrator: this command, run where users-svc runs (its database, its
settings), is the way. An account with the email is promoted; without one, an account is created
with a password asked twice at a terminal, or read from the first line of standard input
(`make admin EMAIL=...` runs it on the `make up` stack).
"""

import argparse
import asyncio
import getpass
import sys

from pydantic import ValidationError

from common.db import Database
from users_svc.domains.users import repository, service
from users_svc.passwords import PasswordHasher
from users_svc.settings import Settings, get_settings


def read_password() -> str:
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("Password for the new administrator: ")
    if getpass.getpass("Again: ") != first:
        sys.exit("error: the two passwords differ")
    return first


async def make_admin(settings: Settings, email: str) -> str:
    database = Database.from_settings(settings)
    hasher = PasswordHasher.from_settings(settings)
    try:
        async with database.read_sessionmaker() as session:
            exists = await repository.get_by_email(session, email) is not None
        password = None if exists else read_password()
        async with database.sessionmaker.begin() as session:
            user = await service.make_admin(session, email, password=password, hasher=hasher)
            user_id = user.id
    finally:
        await database.dispose()
    return f"{email}: {'promoted' if exists else 'created'}, administrator ({user_id})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--email", required=True)
    args = parser.parse_args(argv)
    try:
        print(asyncio.run(make_admin(get_settings(), args.email.strip().lower())))
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        print(f"error: {problems}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
