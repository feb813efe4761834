import uuid
from typing import Any

from httpx import AsyncClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from common.testing import TokenFactory

PROBLEM = "application/problem+json"
URL = "/api/v1/shares"
ALICE = uuid.uuid4()
BOB = uuid.uuid4()


def share(**overrides: Any) -> dict[str, Any]:
    return {"name": "First", "description": "The first one", **overrides}


async def count_rows(session: AsyncSession) -> int:
    return int(await session.scalar(text("SELECT count(*) FROM shares")) or 0)


async def create(client: AsyncClient, auth: dict[str, str], **overrides: Any) -> dict[str, Any]:
    response = await client.post(URL, json=share(**overrides), headers=auth)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_the_token_subject_owns_a_new_share(
    client: AsyncClient, db_session: AsyncSession, token_factory: TokenFactory
) -> None:
    response = await client.post(URL, json=share(), headers=token_factory.auth(ALICE))

    assert response.status_code == 201
    body = response.json()
    assert body["owner_id"] == str(ALICE)
    assert (body["name"], body["description"]) == ("First", "The first one")
    row = (await db_session.execute(text("SELECT id, owner_id, name FROM shares"))).one()
    assert (str(row.id), row.owner_id, row.name) == (body["id"], ALICE, "First")


async def test_every_operation_needs_a_token(client: AsyncClient) -> None:
    some_id = uuid.uuid4()
    requests = [
        ("POST", URL),
        ("GET", URL),
        ("GET", f"{URL}/{some_id}"),
        ("PATCH", f"{URL}/{some_id}"),
        ("DELETE", f"{URL}/{some_id}"),
    ]
    for method, url in requests:
        response = await client.request(method, url, json=share())

        assert response.status_code == 401, (method, url)
        assert response.headers["content-type"] == PROBLEM
        assert response.headers["www-authenticate"].startswith("Bearer")


async def test_get_share(client: AsyncClient, token_factory: TokenFactory) -> None:
    alice = token_factory.auth(ALICE)
    created = await create(client, alice)

    response = await client.get(f"{URL}/{created['id']}", headers=alice)

    assert response.status_code == 200
    assert response.json() == created


async def test_unknown_share_is_404(client: AsyncClient, token_factory: TokenFactory) -> None:
    response = await client.get(f"{URL}/{uuid.uuid4()}", headers=token_factory.auth(ALICE))

    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["detail"] == "No share with this id."


async def test_another_users_share_is_404_and_unchanged(
    client: AsyncClient, db_session: AsyncSession, token_factory: TokenFactory
) -> None:
    created = await create(client, token_factory.auth(ALICE))
    bob = token_factory.auth(BOB)
    url = f"{URL}/{created['id']}"

    assert (await client.get(url, headers=bob)).status_code == 404
    assert (await client.patch(url, json={"name": "Taken"}, headers=bob)).status_code == 404
    assert (await client.delete(url, headers=bob)).status_code == 404
    assert await db_session.scalar(text("SELECT name FROM shares")) == "First"


async def test_invalid_creations_are_422_and_write_nothing(
    client: AsyncClient, db_session: AsyncSession, token_factory: TokenFactory
) -> None:
    invalid = [
        share(name=""),
        share(name="x" * 201),
        share(owner_id=str(BOB)),
        share(id=str(uuid.uuid4())),
        share(created_at="2020-01-01T00:00:00Z"),
        {"description": "No name"},
    ]
    for body in invalid:
        response = await client.post(URL, json=body, headers=token_factory.auth(ALICE))
        assert response.status_code == 422, body
        assert response.headers["content-type"] == PROBLEM

    assert await count_rows(db_session) == 0


async def test_list_shows_only_your_shares_and_paginates(
    client: AsyncClient, token_factory: TokenFactory
) -> None:
    alice, bob = token_factory.auth(ALICE), token_factory.auth(BOB)
    for i in range(3):
        await create(client, alice, name=f"alice-{i}")
    await create(client, bob, name="bob-0")

    first = (await client.get(URL, params={"limit": 2}, headers=alice)).json()
    rest = (await client.get(URL, params={"limit": 2, "offset": 2}, headers=alice)).json()
    bobs = (await client.get(URL, headers=bob)).json()
    # An owner filter in the query changes nothing: the token says whose shares these are.
    asked_for_bob = (await client.get(URL, params={"owner_id": str(BOB)}, headers=alice)).json()

    assert [row["name"] for row in first["items"]] == ["alice-0", "alice-1"]
    assert [row["name"] for row in rest["items"]] == ["alice-2"]
    assert [row["name"] for row in bobs["items"]] == ["bob-0"]
    assert [row["name"] for row in asked_for_bob["items"]] == ["alice-0", "alice-1", "alice-2"]


async def test_list_limit_is_capped(client: AsyncClient, token_factory: TokenFactory) -> None:
    alice = token_factory.auth(ALICE)

    assert (await client.get(URL, params={"limit": 1000}, headers=alice)).status_code == 422
    assert (await client.get(URL, params={"limit": 0}, headers=alice)).status_code == 422


async def test_update_renames_and_clears_description(
    client: AsyncClient, token_factory: TokenFactory
) -> None:
    alice = token_factory.auth(ALICE)
    created = await create(client, alice)
    url = f"{URL}/{created['id']}"

    renamed = await client.patch(url, json={"name": "Second"}, headers=alice)
    cleared = await client.patch(url, json={"description": None}, headers=alice)

    assert renamed.status_code == 200
    assert (renamed.json()["name"], renamed.json()["description"]) == ("Second", "The first one")
    assert (cleared.json()["name"], cleared.json()["description"]) == ("Second", None)


async def test_update_refuses_a_null_name_and_changes_nothing(
    client: AsyncClient, db_session: AsyncSession, token_factory: TokenFactory
) -> None:
    alice = token_factory.auth(ALICE)
    created = await create(client, alice)

    response = await client.patch(f"{URL}/{created['id']}", json={"name": None}, headers=alice)

    assert response.status_code == 422
    assert await db_session.scalar(text("SELECT name FROM shares")) == "First"


async def test_delete_share(
    client: AsyncClient, db_session: AsyncSession, token_factory: TokenFactory
) -> None:
    alice = token_factory.auth(ALICE)
    created = await create(client, alice)

    response = await client.delete(f"{URL}/{created['id']}", headers=alice)

    assert response.status_code == 204
    assert await count_rows(db_session) == 0
    assert (await client.delete(f"{URL}/{created['id']}", headers=alice)).status_code == 404
