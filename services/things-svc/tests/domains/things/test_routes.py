import uuid
from typing import Any

from httpx import AsyncClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

PROBLEM = "application/problem+json"
THINGS = "/api/v1/things"
ALICE = str(uuid.uuid4())
BOB = str(uuid.uuid4())


def thing(owner: str = ALICE, **overrides: Any) -> dict[str, Any]:
    return {"owner_id": owner, "name": "Lamp", "description": "A green one", **overrides}


async def count_things(session: AsyncSession) -> int:
    return int(await session.scalar(text("SELECT count(*) FROM things")) or 0)


async def test_create_thing(client: AsyncClient, db_session: AsyncSession) -> None:
    response = await client.post(THINGS, json=thing())

    assert response.status_code == 201
    body = response.json()
    assert body["owner_id"] == ALICE
    assert (body["name"], body["description"]) == ("Lamp", "A green one")
    row = (await db_session.execute(text("SELECT id, owner_id, name FROM things"))).one()
    assert (str(row.id), str(row.owner_id), row.name) == (body["id"], ALICE, "Lamp")


async def test_get_thing(client: AsyncClient) -> None:
    created = (await client.post(THINGS, json=thing())).json()

    response = await client.get(f"{THINGS}/{created['id']}")

    assert response.status_code == 200
    assert response.json() == created


async def test_unknown_thing_is_404(client: AsyncClient) -> None:
    response = await client.get(f"{THINGS}/{uuid.uuid4()}")

    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["detail"] == "No thing with this id."


async def test_invalid_creations_are_422_and_write_nothing(
    client: AsyncClient, db_session: AsyncSession
) -> None:
    invalid = [
        thing(owner="not-a-uuid"),
        thing(name=""),
        thing(name="x" * 201),
        thing(id=str(uuid.uuid4())),
        thing(created_at="2020-01-01T00:00:00Z"),
        {"name": "No owner"},
    ]
    for body in invalid:
        response = await client.post(THINGS, json=body)
        assert response.status_code == 422, body
        assert response.headers["content-type"] == PROBLEM

    assert await count_things(db_session) == 0


async def test_list_filters_by_owner_and_paginates(client: AsyncClient) -> None:
    for i in range(3):
        await client.post(THINGS, json=thing(name=f"alice-{i}"))
    await client.post(THINGS, json=thing(owner=BOB, name="bob-0"))

    first = (await client.get(THINGS, params={"owner_id": ALICE, "limit": 2})).json()
    rest = (await client.get(THINGS, params={"owner_id": ALICE, "limit": 2, "offset": 2})).json()
    everyone = (await client.get(THINGS)).json()

    assert [t["name"] for t in first["items"]] == ["alice-0", "alice-1"]
    assert [t["name"] for t in rest["items"]] == ["alice-2"]
    assert [t["name"] for t in everyone["items"]] == ["alice-0", "alice-1", "alice-2", "bob-0"]


async def test_list_limit_is_capped(client: AsyncClient) -> None:
    assert (await client.get(THINGS, params={"limit": 1000})).status_code == 422
    assert (await client.get(THINGS, params={"limit": 0})).status_code == 422
    assert (await client.get(THINGS, params={"owner_id": "nobody"})).status_code == 422


async def test_update_renames_and_clears_description(client: AsyncClient) -> None:
    created = (await client.post(THINGS, json=thing())).json()

    renamed = await client.patch(f"{THINGS}/{created['id']}", json={"name": "Desk lamp"})
    cleared = await client.patch(f"{THINGS}/{created['id']}", json={"description": None})

    assert renamed.status_code == 200
    assert renamed.json()["name"] == "Desk lamp"
    assert renamed.json()["description"] == "A green one"
    assert cleared.json()["description"] is None
    assert cleared.json()["name"] == "Desk lamp"


async def test_update_rejects_null_name_and_protected_fields(
    client: AsyncClient, db_session: AsyncSession
) -> None:
    created = (await client.post(THINGS, json=thing())).json()

    for body in ({"name": None}, {"owner_id": BOB}, {"id": str(uuid.uuid4())}):
        response = await client.patch(f"{THINGS}/{created['id']}", json=body)
        assert response.status_code == 422, body

    row = (await db_session.execute(text("SELECT owner_id, name FROM things"))).one()
    assert (str(row.owner_id), row.name) == (ALICE, "Lamp")


async def test_update_unknown_thing_is_404(client: AsyncClient) -> None:
    response = await client.patch(f"{THINGS}/{uuid.uuid4()}", json={"name": "Ghost"})

    assert response.status_code == 404


async def test_delete_thing(client: AsyncClient, db_session: AsyncSession) -> None:
    created = (await client.post(THINGS, json=thing())).json()

    response = await client.delete(f"{THINGS}/{created['id']}")

    assert response.status_code == 204
    assert await count_things(db_session) == 0
    assert (await client.delete(f"{THINGS}/{created['id']}")).status_code == 404
