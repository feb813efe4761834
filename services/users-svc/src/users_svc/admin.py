"""`python -m users_svc.admin --email ada@example.com`: create or promote an administrator.

No request can make an administrator: this command, run where users-svc runs (its database, its
settings), is the way. Without an account with the email, one is created with a password asked
twice. An existing account is promoted only once its own password is typed: emails are never
verified, so anyone may have signed up with the address first. `--force` promotes it without
the password, with a warning printed and logged. A password is asked at a terminal, or read
from the first line of standard input (`make admin EMAIL=...` runs it on the `make up` stack).
"""

import argparse
import asyncio
import getpass
import logging
import sys

from pydantic import ValidationError

from common.db import Database
from common.errors import DomainError
from common.logs import configure_logging
from users_svc.domains.users import repository, service
from users_svc.passwords import PasswordHasher
from users_svc.settings import Settings, get_settings

# Named, not `__name__`: run with `python -m`, the module is `__main__`.
logger = logging.getLogger("users_svc.admin")


def read_password(prompt: str, *, twice: bool) -> str:
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass(prompt)
    if twice and getpass.getpass("Again: ") != first:
        sys.exit("error: the two passwords differ")
    return first


async def make_admin(settings: Settings, email: str, *, force: bool = False) -> str:
    database = Database.from_settings(settings)
    hasher = PasswordHasher.from_settings(settings)
    try:
        async with database.read_sessionmaker() as session:
            exists = await repository.get_by_email(session, email) is not None
        if not exists:
            password = read_password("Password for the new administrator: ", twice=True)
        elif force:
            password = None
        else:
            password = read_password(f"Password of {email}: ", twice=False)
        async with database.sessionmaker.begin() as session:
            user = await service.make_admin(
                session, email, password=password, hasher=hasher, force=force
            )
            user_id = user.id
    finally:
        await database.dispose()
    if exists and force:
        print(
            f"WARNING: {email} was promoted without its password (--force): whoever signed up"
            " with this email is now an administrator.",
            file=sys.stderr,
        )
        logger.warning("%s promoted to administrator without its password (--force)", email)
    return f"{email}: {'promoted' if exists else 'created'}, administrator ({user_id})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--email", required=True)
    parser.add_argument(
        "--force",
        action="store_true",
        help="promote an existing account without its password (printed and logged as a warning)",
    )
    args = parser.parse_args(argv)
    settings = get_settings()
    configure_logging(settings.effective_log_level, log_format=settings.log_format)
    email = args.email.strip().lower()
    try:
        print(asyncio.run(make_admin(settings, email, force=args.force)))
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        print(f"error: {problems}", file=sys.stderr)
        return 1
    except DomainError as exc:
        print(f"error: {email}: {exc.detail} Nothing changed.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
