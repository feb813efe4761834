"""The health endpoints' tests, the same for every service: a service's `tests/test_health.py`
imports them, and pytest runs them there against that service's app (the `client` fixture).
"""

from httpx import AsyncClient


async def test_live(client: AsyncClient) -> None:
    response = await client.get("/health/live")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_ready_when_migrated_to_head(client: AsyncClient) -> None:
    response = await client.get("/health/ready")

    assert response.status_code == 200
    assert response.json() == {"status": "ready"}
