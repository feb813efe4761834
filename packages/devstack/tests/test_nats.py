"""The embedded NATS: JetStream on a free port, its streams kept across a restart, and found
again by another process through its pid file (`make down`)."""

from collections.abc import Iterator
from pathlib import Path

import nats
import pytest

from devstack.nats import EmbeddedNats, EmbeddedNatsError


@pytest.fixture
def server(tmp_path: Path) -> Iterator[EmbeddedNats]:
    embedded = EmbeddedNats(tmp_path / "nats")
    embedded.start()
    try:
        yield embedded
    finally:
        embedded.kill()


async def stored_messages(url: str) -> int:
    client = await nats.connect(url)
    try:
        info = await client.jetstream().stream_info("orders")
        return int(info.state.messages)
    finally:
        await client.close()


async def test_jetstream_keeps_a_stream_across_a_restart(server: EmbeddedNats) -> None:
    client = await nats.connect(server.url)
    js = client.jetstream()
    await js.add_stream(name="orders", subjects=["orders.>"])
    await js.publish("orders.placed", b"{}")
    await client.close()

    server.restart()

    assert await stored_messages(server.url) == 1


def test_another_process_finds_and_stops_the_server(server: EmbeddedNats) -> None:
    same_folder = EmbeddedNats(server.data_dir, port=server.port)
    assert same_folder.pid() == server.pid() is not None

    same_folder.stop()

    assert not server.is_running()


def test_a_taken_port_is_refused_with_a_reason(server: EmbeddedNats, tmp_path: Path) -> None:
    with pytest.raises(EmbeddedNatsError, match="already in use"):
        EmbeddedNats(tmp_path / "other", port=server.port).start()
