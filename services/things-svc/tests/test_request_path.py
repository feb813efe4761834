"""The rooms of `common` one request walks through: few, each with one job (issue 28)."""

import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from httpx import AsyncClient

from common.testing import TokenFactory

# A GET of one thing with a bearer token, from the first byte to the last, passes through at
# most this many modules of `common` (the test plugin's own modules aside).
MOST_MODULES = 10


@contextmanager
def modules_called(prefix: str) -> Iterator[set[str]]:
    """The modules under `prefix` with a function called while the context lasts."""
    seen: set[str] = set()

    def profile(frame: FrameType, event: str, _: Any) -> None:
        if event == "call":
            name = frame.f_globals.get("__name__", "")
            if name == prefix or name.startswith(f"{prefix}."):
                seen.add(name)

    sys.setprofile(profile)
    try:
        yield seen
    finally:
        sys.setprofile(None)


async def test_a_get_by_id_passes_through_few_modules_of_common(
    client: AsyncClient, token_factory: TokenFactory
) -> None:
    auth = token_factory.auth(uuid.uuid4())
    created = await client.post("/api/v1/things", json={"name": "Lamp"}, headers=auth)
    assert created.status_code == 201
    url = f"/api/v1/things/{created.json()['id']}"
    assert (await client.get(url, headers=auth)).status_code == 200  # warm: keys, statements

    with modules_called("common") as modules:
        response = await client.get(url, headers=auth)

    assert response.status_code == 200
    passed = sorted(name for name in modules if not name.startswith("common.testing"))
    print(f"\n{len(passed)} modules of common: {', '.join(passed)}")
    assert len(passed) <= MOST_MODULES, passed
