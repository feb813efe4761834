"""The floor: the benchmarked endpoints as raw ASGI + asyncpg + orjson, nothing else.

Same paths, same status codes and the same JSON as things-svc and users-svc, so the benchmark's
ratios say what the framework, the ORM and the checks cost. Run it under uvicorn like a service:

    FLOOR_THINGS_DSN=... FLOOR_USERS_DSN=... FLOOR_SUBJECT=<user id> FLOOR_API_PREFIX=/api/v1 \
        uv run uvicorn floor:app --app-dir bench

The token check is the cheapest equivalent: a request without `Authorization: Bearer ...` gets
401, and every caller is `FLOOR_SUBJECT` (no signature, no claims).
"""

import os
import uuid
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

import asyncpg
import orjson
from uuid_utils.compat import uuid7

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

THING_COLUMNS = "id, owner_id, name, description, created_at, updated_at"
USER_COLUMNS = "id, email, full_name, is_active, is_superuser, created_at, updated_at"
MAX_PAGE_SIZE = 100


class Floor:
    def __init__(self) -> None:
        self.things: asyncpg.Pool | None = None
        self.users: asyncpg.Pool | None = None
        self.subject = uuid.UUID(os.environ.get("FLOOR_SUBJECT", str(uuid.UUID(int=0))))
        # The services' prefix (common.settings.API_PREFIX), given by the benchmark.
        prefix = os.environ["FLOOR_API_PREFIX"]
        self.me, self.things_path = f"{prefix}/users/me", f"{prefix}/things"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        status, body = await self._route(scope, receive)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                size = int(os.environ.get("FLOOR_POOL_SIZE", "10"))
                # No reset query when a connection returns to the pool: nothing here leaves
                # session state behind, and the floor should pay for nothing it does not need.
                self.things = await asyncpg.create_pool(
                    os.environ["FLOOR_THINGS_DSN"], min_size=1, max_size=size, reset=_no_reset
                )
                self.users = await asyncpg.create_pool(
                    os.environ["FLOOR_USERS_DSN"], min_size=1, max_size=size, reset=_no_reset
                )
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                for pool in (self.things, self.users):
                    if pool is not None:
                        await pool.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _route(self, scope: Scope, receive: Receive) -> tuple[int, bytes]:
        assert self.things is not None
        assert self.users is not None
        method, path = scope["method"], scope["path"]
        if path == "/health/ready":
            await self.things.fetchval("SELECT 1")
            return 200, b'{"status":"ready"}'
        if not _has_bearer(scope):
            return 401, b'{"title":"Unauthorized","status":401}'
        if path == self.me and method == "GET":
            row = await self.users.fetchrow(
                f"SELECT {USER_COLUMNS} FROM users WHERE id = $1", self.subject
            )
            if row is None or not row["is_active"]:
                return 401, b'{"title":"Unauthorized","status":401}'
            return 200, _json(dict(row))
        if path == self.things_path and method == "GET":
            return await self._list_things(scope)
        if path == self.things_path and method == "POST":
            return await self._create_thing(receive)
        if path.startswith(f"{self.things_path}/") and method == "GET":
            try:
                thing_id = uuid.UUID(path.removeprefix(f"{self.things_path}/"))
            except ValueError:
                return 422, b'{"title":"Unprocessable Content","status":422}'
            row = await self.things.fetchrow(
                f"SELECT {THING_COLUMNS} FROM things WHERE id = $1 AND owner_id = $2",
                thing_id,
                self.subject,
            )
            if row is None:
                return 404, b'{"title":"Not Found","status":404}'
            return 200, _json(dict(row))
        return 404, b'{"title":"Not Found","status":404}'

    async def _list_things(self, scope: Scope) -> tuple[int, bytes]:
        assert self.things is not None
        query = parse_qs(scope["query_string"].decode("latin-1"))
        try:
            limit = int(query.get("limit", ["20"])[0])
            offset = int(query.get("offset", ["0"])[0])
        except ValueError:
            return 422, b'{"title":"Unprocessable Content","status":422}'
        if not (1 <= limit <= MAX_PAGE_SIZE and 0 <= offset <= 1_000_000):
            return 422, b'{"title":"Unprocessable Content","status":422}'
        rows = await self.things.fetch(
            f"SELECT {THING_COLUMNS} FROM things WHERE owner_id = $1 ORDER BY id "
            "LIMIT $2 OFFSET $3",
            self.subject,
            limit,
            offset,
        )
        return 200, _json({"items": [dict(row) for row in rows], "limit": limit, "offset": offset})

    async def _create_thing(self, receive: Receive) -> tuple[int, bytes]:
        assert self.things is not None
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            return 422, b'{"title":"Unprocessable Content","status":422}'
        if not _valid_thing(data):
            return 422, b'{"title":"Unprocessable Content","status":422}'
        thing_id = uuid7()
        description = data.get("description")
        row = await self.things.fetchrow(
            "INSERT INTO things (id, owner_id, name, description) VALUES ($1, $2, $3, $4) "
            "RETURNING created_at, updated_at",
            thing_id,
            self.subject,
            data["name"],
            description,
        )
        assert row is not None
        thing = {
            "id": thing_id,
            "owner_id": self.subject,
            "name": data["name"],
            "description": description,
            **dict(row),
        }
        return 201, _json(thing)


async def _no_reset(_: asyncpg.Connection) -> None:
    return None


def _has_bearer(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"authorization":
            return bool(value.startswith(b"Bearer ") and len(value) > len(b"Bearer "))
    return False


def _valid_thing(data: Any) -> bool:
    if not isinstance(data, dict) or not set(data) <= {"name", "description"}:
        return False
    name, description = data.get("name"), data.get("description")
    if not isinstance(name, str) or not 1 <= len(name) <= 200:
        return False
    return description is None or (isinstance(description, str) and len(description) <= 10_000)


def _json(value: Any) -> bytes:
    # OPT_UTC_Z writes UTC datetimes with "Z", as pydantic does.
    return orjson.dumps(value, default=str, option=orjson.OPT_UTC_Z)


app = Floor()
