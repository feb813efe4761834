"""Sharing: the owner shares a thing read-only with an account users-svc finds by email."""

import uuid
from collections.abc import Iterator

import pytest
from httpx import AsyncClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession
from users_provider import UsersProvider

from common.events import Event
from common.testing import TokenFactory
from things_svc.events import user_deleted

PROBLEM = "application/problem+json"
THINGS = "/api/v1/things"
SHARED = "/api/v1/shared-things"


class People:
    """An owner, the account it shares with, and a stranger: ids users-svc would give them."""

    def __init__(self, users_svc: UsersProvider, token_factory: TokenFactory) -> None:
        self.owner_id = uuid.uuid4()
        self.friend_id = users_svc.add("friend@example.com")
        self.stranger_id = uuid.uuid4()
        self.owner = token_factory.auth(self.owner_id)
        self.friend = token_factory.auth(self.friend_id)
        self.stranger = token_factory.auth(self.stranger_id)


@pytest.fixture
def people(users_svc: UsersProvider, token_factory: TokenFactory) -> Iterator[People]:
    yield People(users_svc, token_factory)
    users_svc.accounts.clear()


async def make_thing(client: AsyncClient, auth: dict[str, str]) -> str:
    response = await client.post(THINGS, json={"name": "Lamp"}, headers=auth)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def share(client: AsyncClient, thing_id: str, email: str, auth: dict[str, str]) -> int:
    response = await client.post(f"{THINGS}/{thing_id}/shares", json={"email": email}, headers=auth)
    return response.status_code


async def count_shares(session: AsyncSession) -> int:
    return int(await session.scalar(text("SELECT count(*) FROM shares")) or 0)


async def test_the_owner_shares_a_thing_and_the_friend_reads_it_only(
    client: AsyncClient, people: People
) -> None:
    thing_id = await make_thing(client, people.owner)

    shared = await client.post(
        f"{THINGS}/{thing_id}/shares", json={"email": "FRIEND@example.com"}, headers=people.owner
    )
    again = await share(client, thing_id, "friend@example.com", people.owner)

    assert shared.status_code == 201, shared.text
    assert shared.json()["user_id"] == str(people.friend_id)
    assert again == 201
    listed = (await client.get(SHARED, headers=people.friend)).json()["items"]
    assert [thing["id"] for thing in listed] == [thing_id]
    one = await client.get(f"{SHARED}/{thing_id}", headers=people.friend)
    assert (one.status_code, one.json()["name"]) == (200, "Lamp")
    shares = await client.get(f"{THINGS}/{thing_id}/shares", headers=people.owner)
    assert [s["user_id"] for s in shares.json()["items"]] == [str(people.friend_id)]


async def test_a_share_grants_reading_only(
    client: AsyncClient, db_session: AsyncSession, people: People
) -> None:
    thing_id = await make_thing(client, people.owner)
    assert await share(client, thing_id, "friend@example.com", people.owner) == 201
    url = f"{THINGS}/{thing_id}"

    refused = [
        await client.get(url, headers=people.friend),
        await client.patch(url, json={"name": "Mine"}, headers=people.friend),
        await client.delete(url, headers=people.friend),
        await client.get(f"{url}/shares", headers=people.friend),
        await client.post(f"{url}/shares", json={"email": "x@example.com"}, headers=people.friend),
        await client.delete(f"{url}/shares/{people.friend_id}", headers=people.friend),
        await client.get(f"{SHARED}/{thing_id}", headers=people.stranger),
    ]

    assert [response.status_code for response in refused] == [404] * len(refused)
    thing = await client.get(url, headers=people.owner)
    assert thing.json()["name"] == "Lamp"
    assert await count_shares(db_session) == 1


async def test_an_unknown_email_an_inactive_account_and_anothers_thing_answer_the_same_404(
    client: AsyncClient, db_session: AsyncSession, people: People, users_svc: UsersProvider
) -> None:
    users_svc.add("gone-quiet@example.com", shareable=False)
    mine = await make_thing(client, people.owner)
    theirs = await make_thing(client, people.stranger)

    answers = [
        await client.post(f"{THINGS}/{mine}/shares", json={"email": e}, headers=people.owner)
        for e in ("nobody@example.com", "gone-quiet@example.com")
    ]
    answers.append(
        await client.post(
            f"{THINGS}/{theirs}/shares", json={"email": "friend@example.com"}, headers=people.owner
        )
    )

    assert {answer.status_code for answer in answers} == {404}
    assert {answer.json()["detail"] for answer in answers} == {answers[0].json()["detail"]}
    assert await count_shares(db_session) == 0


async def test_unsharing_ends_the_friends_reading(client: AsyncClient, people: People) -> None:
    thing_id = await make_thing(client, people.owner)
    assert await share(client, thing_id, "friend@example.com", people.owner) == 201

    ended = await client.delete(
        f"{THINGS}/{thing_id}/shares/{people.friend_id}", headers=people.owner
    )
    again = await client.delete(
        f"{THINGS}/{thing_id}/shares/{people.friend_id}", headers=people.owner
    )

    assert (ended.status_code, again.status_code) == (204, 404)
    assert (await client.get(f"{SHARED}/{thing_id}", headers=people.friend)).status_code == 404


async def test_an_erased_user_takes_the_shares_they_were_given(
    client: AsyncClient, db_session: AsyncSession, people: People
) -> None:
    thing_id = await make_thing(client, people.owner)
    assert await share(client, thing_id, "friend@example.com", people.owner) == 201

    await user_deleted(db_session, Event(type="user.deleted", subject_id=people.friend_id))
    await db_session.flush()

    assert await count_shares(db_session) == 0
    assert (await client.get(f"{THINGS}/{thing_id}", headers=people.owner)).status_code == 200


async def test_while_users_svc_is_down_sharing_answers_503_and_reading_goes_on(
    client: AsyncClient, db_session: AsyncSession, people: People, users_svc: UsersProvider
) -> None:
    thing_id = await make_thing(client, people.owner)
    assert await share(client, thing_id, "friend@example.com", people.owner) == 201
    users_svc.stop()
    try:
        refused = await client.post(
            f"{THINGS}/{thing_id}/shares",
            json={"email": "friend@example.com"},
            headers=people.owner,
        )
        reading = await client.get(f"{SHARED}/{thing_id}", headers=people.friend)
    finally:
        users_svc.start()

    assert refused.status_code == 503
    assert refused.headers["content-type"] == PROBLEM
    assert int(refused.headers["retry-after"]) >= 1
    assert "users-svc" in refused.json()["detail"]
    assert reading.status_code == 200
    assert await count_shares(db_session) == 1
