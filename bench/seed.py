"""The rows every target serves: the same users and things, ids and timestamps included, so the
targets' answers compare equal and their figures compare fairly."""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
from uuid_utils.compat import uuid7

USER_COLUMNS = [
    "id", "email", "full_name", "hashed_password", "is_active", "is_superuser",
    "created_at", "updated_at",
]  # fmt: skip
THING_COLUMNS = ["id", "owner_id", "name", "description", "created_at", "updated_at"]


@dataclass(frozen=True)
class Seed:
    subject: uuid.UUID  # the user every request is made as
    thing_id: uuid.UUID  # one of the subject's things
    users: list[tuple[object, ...]]
    things: list[tuple[object, ...]]


def make_seed(*, users: int = 50, things_each: int = 500) -> Seed:
    epoch = datetime(2026, 1, 1, tzinfo=UTC)
    ids = [uuid.UUID(str(uuid7())) for _ in range(users)]
    user_rows: list[tuple[object, ...]] = [
        (user_id, f"user{n}@bench.example", f"User {n}", "unused", True, False, epoch, epoch)
        for n, user_id in enumerate(ids)
    ]
    subject, other = ids[0], ids[1]
    thing_rows: list[tuple[object, ...]] = []
    for n in range(things_each):
        stamp = epoch + timedelta(seconds=n)
        for owner in (subject, other):
            thing_id = uuid.UUID(str(uuid7()))
            thing_rows.append((thing_id, owner, f"thing {n}", f"about {n}", stamp, stamp))
    return Seed(
        subject=subject,
        thing_id=uuid.UUID(str(thing_rows[0][0])),
        users=user_rows,
        things=thing_rows,
    )


async def copy_rows(dsn: str, table: str, seed: Seed) -> None:
    """The seed's users (table `users`) or things (any other table, of the things' shape)."""
    rows, columns = (seed.users, USER_COLUMNS) if table == "users" else (seed.things, THING_COLUMNS)
    connection = await asyncpg.connect(dsn)
    try:
        await connection.copy_records_to_table(table, records=rows, columns=columns)
        await connection.execute(f"ANALYZE {table}")
    finally:
        await connection.close()
