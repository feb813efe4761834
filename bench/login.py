"""Login under the benchmark: `POST /auth/login` on the services' users-svc, closed loop with wrk,
argon2id at its production costs. Not compared with the floor: the hash is the work.

As many connections as users-svc hashes at once (`password_hash_concurrency`, 4 by default), so
that no login waits for a turn long enough to be refused (503): the figure is a login's own
latency, the hash and the session it starts, one account logging in again and again.
"""

import argparse
import json
from pathlib import Path

import httpx
from measure import WrkResult, wrk
from targets import Endpoint, Target

from common.settings import API_PREFIX

LOGIN = Endpoint("POST /auth/login", "users", "POST", "/auth/login")
EMAIL = "login@bench.example"
# Not a common password: users-svc refuses those at sign-up.
PASSWORD = "bench login, argon2id"
# A slow login on a busy host is a figure, not an error: only one that hangs fails the run.
LOGIN_TIMEOUT_SECONDS = 30


def wanted(args: argparse.Namespace) -> bool:
    return not args.only or any(text in LOGIN.name for text in args.only)


async def login_latency(args: argparse.Namespace, target: Target, folder: Path) -> WrkResult:
    users = target.servers[LOGIN.service].url + API_PREFIX
    credentials = {"email": EMAIL, "password": PASSWORD}
    async with httpx.AsyncClient(timeout=30) as client:
        signup = await client.post(f"{users}/users", json={**credentials, "full_name": "Bench"})
        if signup.status_code != 201:
            raise RuntimeError(f"login bench: sign-up answered {signup.status_code}: {signup.text}")
    script = folder / "login.lua"
    script.write_text(
        f'wrk.method = "POST"\nwrk.body = {json.dumps(json.dumps(credentials))}\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
    )
    if args.warmup:
        await login_run(users, script, args.warmup, args.login_connections)
    result = await login_run(users, script, args.seconds, args.login_connections)
    print(
        f"\nLogin ({LOGIN.name}, {target.name}' users-svc, argon2id at production costs; wrk: "
        f"{args.login_connections} connections, {args.seconds:g}s, loopback):\n"
        f"  {result.rps:.0f} req/s  p50 {result.p50_ms:.2f} ms  p99 {result.p99_ms:.2f} ms"
    )
    return result


async def login_run(users: str, script: Path, seconds: float, connections: int) -> WrkResult:
    # No access token is needed: wrk's Authorization header is ignored by the login route.
    return await wrk(
        f"{users}/auth/login",
        token="",
        seconds=seconds,
        connections=connections,
        script=script,
        timeout_seconds=LOGIN_TIMEOUT_SECONDS,
    )
