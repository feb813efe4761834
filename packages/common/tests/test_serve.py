"""`python -m common.serve`: uvicorn's command line, exiting 0 after a graceful SIGTERM."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from devstack.processes import free_port

APP = """
async def app(scope, receive, send):
    while scope["type"] == "lifespan":
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        else:
            print("shutdown ran", flush=True)
            await send({"type": "lifespan.shutdown.complete"})
            return
"""


def wait_listening(port: int, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("the server never listened")


def test_sigterm_stops_gracefully_with_exit_status_0(tmp_path: Path) -> None:
    (tmp_path / "tiny_app.py").write_text(APP)
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "common.serve", "tiny_app:app", f"--port={port}"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_listening(port, process)
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 0
    assert "shutdown ran" in output


def test_several_workers_share_a_metrics_folder_emptied_of_an_earlier_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from common.serve import command_line, share_metrics_between_workers

    for name in ("PROMETHEUS_MULTIPROC_DIR", "WEB_CONCURRENCY"):
        # Set, then deleted: monkeypatch then removes what the code under test sets, afterwards.
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    share_metrics_between_workers(command_line(["x:app"]))
    assert "PROMETHEUS_MULTIPROC_DIR" not in os.environ  # one worker: its own registry

    monkeypatch.setenv("WEB_CONCURRENCY", "2")
    share_metrics_between_workers(command_line(["x:app"]))
    made = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    assert made.is_dir()
    made.rmdir()

    stale = tmp_path / "counter_123.db"
    stale.write_bytes(b"left by the last run")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    share_metrics_between_workers(command_line(["x:app", "--workers", "3"]))
    assert not stale.exists()


def test_a_refused_setting_ends_the_start_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "shop_app.py").write_text(
        "from pydantic_settings import SettingsConfigDict\n"
        "from common.settings import AppBaseSettings\n\n"
        "class Settings(AppBaseSettings):\n"
        "    model_config = SettingsConfigDict(env_prefix='SHOP_', env_file=None)\n"
        "    service_name: str = 'shop'\n"
        "    database_url: str = 'postgresql+asyncpg://shop:shop@127.0.0.1/shop'\n\n"
        "settings = Settings()\n"
        "app = None\n"
    )
    env = {**os.environ, "SHOP_DATABASE_URL": "mysql://shop:s3cret@db/shop"}
    env.pop("DATABASE_URL", None)

    result = subprocess.run(
        [sys.executable, "-m", "common.serve", "shop_app:app", f"--port={free_port()}"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 1
    assert result.stderr == (
        "error: SHOP_DATABASE_URL is mysql://: give a Postgres URL, postgresql+asyncpg://, "
        "postgresql:// or postgres://\n"
    )


def test_an_app_create_app_refuses_ends_the_start_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "notes_app.py").write_text(
        "from fastapi import APIRouter\n"
        "from pydantic_settings import SettingsConfigDict\n"
        "from common.app import create_app\n"
        "from common.events import Events\n"
        "from common.settings import AppBaseSettings\n\n"
        "class Settings(AppBaseSettings):\n"
        "    model_config = SettingsConfigDict(env_prefix='NOTES_', env_file=None)\n"
        "    service_name: str = 'notes'\n"
        "    database_url: str = 'postgresql+asyncpg://notes:notes@127.0.0.1/notes'\n\n"
        "app = create_app(Settings(), domains='notes_app', events=Events(relay=True))\n"
    )

    result = subprocess.run(
        [sys.executable, "-m", "common.serve", "notes_app:app", f"--port={free_port()}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 1
    assert result.stderr == "error: notes runs events: its settings must build on EventSettings\n"


def test_uvicorn_believes_no_forwarded_header_the_app_decides(tmp_path: Path) -> None:
    # Plain uvicorn takes X-Forwarded-For from loopback as the client's address: a local client
    # (or a proxy on the host passing the header through) would choose its own throttle key.
    (tmp_path / "echo_app.py").write_text(
        APP
        + """
    if scope["type"] == "http":
        body = scope["client"][0].encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})
"""
    )
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "common.serve", "echo_app:app", f"--port={port}"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_listening(port, process)
        seen = httpx.get(
            f"http://127.0.0.1:{port}/", headers={"X-Forwarded-For": "198.51.100.7"}
        ).text
    finally:
        process.terminate()
        process.communicate(timeout=30)
    assert seen == "127.0.0.1"


@pytest.mark.parametrize(
    ("arguments", "environment"),
    [
        (["--forwarded-allow-ips=*"], {}),
        (["--proxy-headers"], {}),
        ([], {"FORWARDED_ALLOW_IPS": "*"}),
    ],
)
def test_uvicorns_own_proxy_settings_stop_the_start_naming_trusted_proxies(
    tmp_path: Path, arguments: list[str], environment: dict[str, str]
) -> None:
    (tmp_path / "tiny_app.py").write_text(APP)

    result = subprocess.run(
        [sys.executable, "-m", "common.serve", "tiny_app:app", f"--port={free_port()}", *arguments],
        cwd=tmp_path,
        env={**os.environ, **environment},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 1
    assert "TRUSTED_PROXIES" in result.stderr
