"""`make bench`: the services against a raw asyncpg floor, in one run, on loopback.

It starts an embedded Postgres in a scratch folder, makes and migrates a pair of databases (users,
things) per target, seeds them identically, and runs three targets under uvicorn (one worker,
uvloop and httptools, no access log); the services as their images run them: `common.serve`
from an environment of their own with no dev tools and compiled bytecode (`.local/bench/`):

- floor: bench/floor.py, raw ASGI + asyncpg + orjson, same paths and JSON;
- services: things-svc and users-svc as shipped, with valid tokens (signed with a key users-svc
  trusts; things-svc fetches it from users-svc's JWKS);
- no token check: the same services with a verifier that accepts any token (bench/unchecked.py).

Rounds alternate endpoint by endpoint between the targets (a noisy host then shifts all of them
alike), with wrk (closed loop). Then open-loop runs at half of each endpoint's own maximum
(bench/openloop.py, alternating between floor and services) give the tail latency, under the
host's default scheduling and with the run's processes at real-time priority (bench/realtime.py).
Figures: requests/s, p50 and p99, ratio to the floor, server CPU per request, Postgres
transactions and new sessions per request (pg_stat_database), time to ready (median of several
starts) and RSS.

    uv run python bench/run.py --seconds 5 --rounds 2
"""

import argparse
import asyncio
import contextlib
import logging
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import psutil
import realtime
import uvloop
from alembic import command
from alembic.config import Config
from openloop import OpenLoopResult, http_request, open_loop
from uuid_utils.compat import uuid7

from common.auth import SigningKey, access_claims
from common.testing.postgres import EmbeddedPostgres, asyncpg_dsn, free_port, scratch_dir

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
ISSUER = "http://bench.users-svc"
AUDIENCE = "api"
# What users-svc issues at most: a token lives as long as a real one.
ACCESS_SECONDS = 900
# Never checked (the embedded server trusts loopback), but production refuses an empty password.
DB_PASSWORD = "bench-unchecked"
# An idle Postgres backend publishes its pending counters (pg_stat_database) within 10 s.
STATS_FLUSH_SECONDS = 11.0


@dataclass(frozen=True)
class Endpoint:
    name: str
    service: str  # "things" or "users": which database and which process answers it
    method: str
    path: str
    body: bytes = b""


@dataclass(eq=False)
class Server:
    name: str
    url: str
    process: psutil.Popen
    ready_times: list[float]  # seconds from start to the first 200 on /health/ready, per start
    rss_ready: int

    @property
    def ready_seconds(self) -> float:
        return statistics.median(self.ready_times)

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])


@dataclass
class Target:
    name: str
    key: str  # database name part
    servers: dict[str, Server] = field(default_factory=dict)  # by service

    def database(self, service: str) -> str:
        return f"bench_{self.key}_{service}"


@dataclass
class Measurement:
    endpoint: str
    target: str
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    cpu_seconds: float
    transactions: int | None = None
    sessions: int | None = None


@dataclass
class Seed:
    subject: uuid.UUID
    thing_id: uuid.UUID
    users: list[tuple[object, ...]]
    things: list[tuple[object, ...]]


def make_seed(*, users: int = 50, things_each: int = 500) -> Seed:
    """The same rows for every target, ids and timestamps included, so answers compare equal."""
    epoch = datetime(2026, 1, 1, tzinfo=UTC)
    ids = [uuid.UUID(str(uuid7())) for _ in range(users)]
    user_rows: list[tuple[object, ...]] = [
        (user_id, f"user{n}@bench.example", f"User {n}", "unused", True, False, epoch, epoch)
        for n, user_id in enumerate(ids)
    ]
    subject, other = ids[0], ids[1]
    thing_ids: list[uuid.UUID] = []
    thing_rows: list[tuple[object, ...]] = []
    for n in range(things_each):
        stamp = epoch + timedelta(seconds=n)
        for owner in (subject, other):
            thing_ids.append(uuid.UUID(str(uuid7())))
            thing_rows.append((thing_ids[-1], owner, f"thing {n}", f"about {n}", stamp, stamp))
    return Seed(subject=subject, thing_id=thing_ids[0], users=user_rows, things=thing_rows)


async def seed_databases(postgres: EmbeddedPostgres, target: Target, seed: Seed) -> None:
    for service, table, rows, columns in (
        ("users", "users", seed.users, USER_COLUMNS),
        ("things", "things", seed.things, THING_COLUMNS),
    ):
        dsn = asyncpg_dsn(postgres.url(database=target.database(service)))
        connection = await asyncpg.connect(dsn)
        try:
            await connection.copy_records_to_table(table, records=rows, columns=columns)
            await connection.execute(f"ANALYZE {table}")
        finally:
            await connection.close()


USER_COLUMNS = [
    "id", "email", "full_name", "hashed_password", "is_active", "is_superuser",
    "created_at", "updated_at",
]  # fmt: skip
THING_COLUMNS = ["id", "owner_id", "name", "description", "created_at", "updated_at"]


def migrate(postgres: EmbeddedPostgres, service: str, database: str) -> None:
    config = Config(toml_file=str(ROOT / f"services/{service}-svc/pyproject.toml"))
    url = postgres.url(database=database).render_as_string(hide_password=False)
    config.attributes["database_url"] = url
    command.upgrade(config, "head")


def production_python(service: str) -> str:
    """The Python of an environment like the service's image: `uv sync --no-dev --no-editable`."""
    uv = shutil.which("uv")
    if uv is None:
        sys.exit("uv is needed on PATH (`make bench` puts the one it installed there)")
    environment = ROOT / ".local" / "bench" / service
    options = ["--locked", "--no-dev", "--no-editable", "--compile-bytecode", "--quiet"]
    # uv rebuilds a local package only when its pyproject.toml changes: rebuild the workspace's
    # own ones every time, so the benchmark measures the code as it is.
    workspace = [f"--reinstall-package={name}" for name in ("common", service)]
    subprocess.run(
        [uv, "sync", *options, *workspace, "--package", service],
        cwd=ROOT,
        env={**os.environ, "UV_PROJECT_ENVIRONMENT": str(environment)},
        check=True,
    )
    return str(environment / "bin" / "python")


async def start_server(
    name: str,
    app: list[str],
    *,
    env: dict[str, str],
    folder: Path,
    python: str = sys.executable,
    starts: int = 1,
) -> Server:
    """Start `app` and wait until it is ready. With `starts` > 1 it is started, timed and stopped
    that many times less one first, and `ready_seconds` is the median of all the starts."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    # uvicorn's own command line, as the images run it (`common.serve` only changes the exit code).
    arguments = [python, "-m", "common.serve", *app, "--host", "127.0.0.1"]
    arguments += ["--port", str(port), "--no-access-log", "--log-level", "warning"]
    times: list[float] = []
    for start in range(starts):
        log = (folder / f"{name}.log").open("ab")
        started = time.perf_counter()
        process = psutil.Popen(
            arguments, cwd=folder, env={**os.environ, **env}, stdout=log, stderr=log
        )
        await wait_ready(name, url, process, folder=folder, started=started)
        times.append(time.perf_counter() - started)
        if start < starts - 1:
            process.terminate()
            process.wait(15)
    await asyncio.sleep(0.5)
    return Server(name, url, process, times, process.memory_info().rss)


async def wait_ready(
    name: str, url: str, process: psutil.Popen, *, folder: Path, started: float
) -> None:
    async with httpx.AsyncClient(timeout=5) as client:
        while True:
            try:
                if (await client.get(f"{url}/health/ready")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.perf_counter() - started > 60:
                tail = (folder / f"{name}.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{name} did not start:\n{tail}")
            await asyncio.sleep(0.01)


class Counters:
    """pg_stat_database deltas per measurement, read once the backends have published them."""

    def __init__(self, connection: asyncpg.Connection) -> None:
        self.connection = connection
        self.quiet_since: dict[str, float] = {}
        self.open: dict[str, tuple[Measurement, tuple[int, int]]] = {}

    async def read(self, database: str) -> tuple[int, int]:
        quiet = self.quiet_since.get(database)
        if quiet is not None:
            await asyncio.sleep(max(0.0, quiet + STATS_FLUSH_SECONDS - time.monotonic()))
        row = await self.connection.fetchrow(
            "SELECT xact_commit + xact_rollback, sessions FROM pg_stat_database WHERE datname = $1",
            database,
        )
        assert row is not None
        return int(row[0]), int(row[1])

    async def begin(self, database: str, measurement: Measurement | None) -> None:
        now = await self.read(database)
        self.close(database, now)
        if measurement is not None:
            self.open[database] = (measurement, now)

    def end(self, database: str) -> None:
        self.quiet_since[database] = time.monotonic()

    def close(self, database: str, now: tuple[int, int]) -> None:
        if database in self.open:
            measurement, before = self.open.pop(database)
            measurement.transactions = now[0] - before[0]
            measurement.sessions = now[1] - before[1]

    async def close_all(self) -> None:
        for database in list(self.open):
            self.close(database, await self.read(database))


def parse_duration_ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if match is None:
        raise ValueError(f"not a wrk duration: {text}")
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[match.group(2)]
    return float(match.group(1)) * scale


async def wrk(
    url: str, *, token: str, seconds: int, connections: int, script: Path | None
) -> tuple[float, float, float, int]:
    """requests/s, p50 ms, p99 ms, requests. Any error response or socket error fails the run."""
    arguments = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency"]
    arguments += ["-H", f"Authorization: Bearer {token}"]
    arguments += ["-s", str(script)] if script else []
    process = await asyncio.create_subprocess_exec(
        *arguments, url, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    output = (await process.communicate())[0].decode()
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    p50 = re.search(r"\s50%\s+(\S+)", output)
    p99 = re.search(r"\s99%\s+(\S+)", output)
    count = re.search(r"(\d+) requests in", output)
    failed = re.search(r"Non-2xx or 3xx responses|Socket errors", output)
    if process.returncode or not (rps and p50 and p99 and count) or failed:
        raise RuntimeError(f"wrk on {url} failed or saw errors:\n{output}")
    return (
        float(rps.group(1)),
        parse_duration_ms(p50.group(1)),
        parse_duration_ms(p99.group(1)),
        int(count.group(1)),
    )


def cpu_seconds(process: psutil.Popen) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def mint_token(key: SigningKey, subject: uuid.UUID) -> str:
    """A token users-svc would issue; one per run, since a long benchmark outlives one."""
    return key.sign(
        access_claims(subject, issuer=ISSUER, audience=AUDIENCE, lifetime_seconds=ACCESS_SECONDS)
    )


async def start_targets(
    postgres: EmbeddedPostgres,
    targets: list[Target],
    *,
    seed: Seed,
    folder: Path,
    pool: int,
    starts: int,
) -> SigningKey:
    key = SigningKey.generate()
    pythons = {service: production_python(f"{service}-svc") for service in ("users", "things")}

    async def start_service(target: Target, service: str, extra: dict[str, str]) -> Server:
        prefix = service.upper()
        url = postgres.url(database=target.database(service), password=DB_PASSWORD)
        env = {
            "ENVIRONMENT": "production",
            f"{prefix}_DATABASE_URL": url.render_as_string(hide_password=False),
            f"{prefix}_MIGRATIONS_DIR": str(ROOT / f"services/{service}-svc/alembic"),
            f"{prefix}_TOKEN_ISSUER": ISSUER,
            f"{prefix}_TOKEN_AUDIENCE": AUDIENCE,
            f"{prefix}_DB_POOL_SIZE": str(pool),
            "BENCH_SUBJECT": str(seed.subject),
            **{f"{prefix}_{name}": value for name, value in extra.items()},
        }
        if target.key == "svc":
            app = [f"{service}_svc.main:app"]
        else:  # the same app with a verifier that accepts any token
            app = [f"unchecked:{service}_app", "--factory", "--app-dir", str(BENCH)]
        return await start_server(
            f"{service}-svc ({target.name})",
            app,
            env=env,
            folder=folder,
            python=pythons[service],
            starts=starts,
        )

    for target in targets:
        if target.key == "floor":
            env = {
                "FLOOR_THINGS_DSN": asyncpg_dsn(postgres.url(database=target.database("things"))),
                "FLOOR_USERS_DSN": asyncpg_dsn(postgres.url(database=target.database("users"))),
                "FLOOR_SUBJECT": str(seed.subject),
                "FLOOR_POOL_SIZE": str(pool),
            }
            app = ["floor:app", "--app-dir", str(BENCH)]
            server = await start_server("floor", app, env=env, folder=folder, starts=starts)
            target.servers = {"things": server, "users": server}
            continue
        users = await start_service(target, "users", {"SIGNING_KEY": key.private_pem()})
        jwks = f"{users.url}/.well-known/jwks.json"
        things = await start_service(target, "things", {"JWKS_URL": jwks})
        target.servers = {"users": users, "things": things}
    return key


async def check_same_json(targets: list[Target], endpoints: list[Endpoint], token: str) -> None:
    """The floor must answer what the services answer, or its figures mean nothing."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    async with httpx.AsyncClient(timeout=10, headers=headers) as client:
        for endpoint in endpoints:
            answers = []
            for target in targets:
                url = target.servers[endpoint.service].url + endpoint.path
                response = await client.request(endpoint.method, url, content=endpoint.body)
                if response.status_code >= 300:
                    raise RuntimeError(f"{target.name} {endpoint.name}: {response.text}")
                body = response.json()
                # A new row differs in its id and timestamps: compare its shape, not its values.
                answers.append(sorted(body) if endpoint.method == "POST" else body)
            if any(answer != answers[0] for answer in answers):
                raise RuntimeError(f"{endpoint.name}: the targets answer differently: {answers}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=5, help="length of each wrk run")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of warm-up per run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--open-loop-seconds", type=float, default=4)
    parser.add_argument("--open-loop-rounds", type=int, default=3)
    parser.add_argument(
        "--starts", type=int, default=3, help="starts per process to time its readiness (median)"
    )
    parser.add_argument("--pool-size", type=int, default=10, help="*_DB_POOL_SIZE, and the floor's")
    parser.add_argument(
        "--only",
        action="append",
        metavar="TEXT",
        help="measure only the endpoints whose name contains TEXT (repeatable)",
    )
    parser.add_argument(
        "--skip-unchecked", action="store_true", help="leave out the 'no token check' target"
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: `apt-get install wrk` (make bench installs it)")
    # Migrations and httpx log every step at INFO; the benchmark prints what matters.
    logging.disable(logging.INFO)
    # uvloop (uvicorn's own loop, installed with it) keeps the open-loop generator's own
    # overhead small (its timers are too coarse for the schedule: openloop.py keeps its own).
    uvloop.run(bench(args))


async def bench(args: argparse.Namespace) -> None:
    started = time.monotonic()
    load_before = os.getloadavg()
    seed = make_seed()
    targets = [
        Target("floor", "floor"),
        Target("services", "svc"),
        Target("no token check", "nocheck"),
    ]
    endpoints = [
        Endpoint("GET /things/{id}", "things", "GET", f"/api/v1/things/{seed.thing_id}"),
        Endpoint("GET /things?limit=20", "things", "GET", "/api/v1/things?limit=20"),
        Endpoint("POST /things", "things", "POST", "/api/v1/things", b'{"name":"bench"}'),
        Endpoint("GET /users/me", "users", "GET", "/api/v1/users/me"),
    ]
    if args.skip_unchecked:
        targets = targets[:2]
    if args.only:
        endpoints = [e for e in endpoints if any(text in e.name for text in args.only)]
    with scratch_dir("bench-") as folder:
        postgres = EmbeddedPostgres(folder / "pgdata", log_file=folder / "postgres.log")
        postgres.start()
        try:
            admin = await asyncpg.connect(asyncpg_dsn(postgres.url()))
            # Every target's pools together exceed the default 100 connections.
            await admin.execute("ALTER SYSTEM SET max_connections = 300")
            await admin.close()
            postgres.stop()
            postgres.start()
            admin = await asyncpg.connect(asyncpg_dsn(postgres.url()))
            for target in targets:
                for service in ("users", "things"):
                    await admin.execute(f'CREATE DATABASE "{target.database(service)}"')
                    await asyncio.to_thread(migrate, postgres, service, target.database(service))
                await seed_databases(postgres, target, seed)
            print(
                f"Postgres ready, databases migrated and seeded ({time.monotonic() - started:.0f}s)"
            )
            try:
                await measure(args, postgres, admin, targets, endpoints, seed, folder)
            finally:
                for target in targets:
                    for server in set(target.servers.values()):
                        server.process.terminate()
                        server.process.wait(15)
                await admin.close()
        finally:
            postgres.stop()
    load_after = os.getloadavg()
    print(
        f"\nload average (1 min) {load_before[0]:.2f} before, {load_after[0]:.2f} after; "
        f"{os.cpu_count()} CPUs; {time.monotonic() - started:.0f}s in all"
    )


async def measure(
    args: argparse.Namespace,
    postgres: EmbeddedPostgres,
    admin: asyncpg.Connection,
    targets: list[Target],
    endpoints: list[Endpoint],
    seed: Seed,
    folder: Path,
) -> None:
    key = await start_targets(
        postgres, targets, seed=seed, folder=folder, pool=args.pool_size, starts=args.starts
    )
    await check_same_json(targets, endpoints, mint_token(key, seed.subject))
    post_script = folder / "post.lua"
    post_script.write_text(
        'wrk.method = "POST"\nwrk.body = \'{"name":"bench"}\'\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
    )

    def script(endpoint: Endpoint) -> Path | None:
        return post_script if endpoint.method == "POST" else None

    counters = Counters(admin)
    print(f"warm-up: {args.warmup:g}s per endpoint and target")
    for endpoint in endpoints:
        for target in targets:
            url = target.servers[endpoint.service].url + endpoint.path
            await wrk(
                url,
                token=mint_token(key, seed.subject),
                seconds=args.warmup,
                connections=args.connections,
                script=script(endpoint),
            )
            counters.end(target.database(endpoint.service))

    results: list[Measurement] = []
    print(f"wrk: 1 thread, {args.connections} connections, {args.seconds:g}s per run, loopback")
    for number in range(1, args.rounds + 1):
        for endpoint in endpoints:
            for target in targets:
                server = target.servers[endpoint.service]
                database = target.database(endpoint.service)
                cpu_before = cpu_seconds(server.process)
                measurement = Measurement(endpoint.name, target.name, 0, 0, 0, 0, 0)
                await counters.begin(database, measurement)
                cpu_before = cpu_seconds(server.process)
                rps, p50, p99, count = await wrk(
                    server.url + endpoint.path,
                    token=mint_token(key, seed.subject),
                    seconds=args.seconds,
                    connections=args.connections,
                    script=script(endpoint),
                )
                measurement.cpu_seconds = cpu_seconds(server.process) - cpu_before
                counters.end(database)
                measurement.rps, measurement.p50_ms, measurement.p99_ms = rps, p50, p99
                measurement.requests = count
                results.append(measurement)
                print(
                    f"  round {number}  {endpoint.name:<20} {target.name:<15} "
                    f"{rps:>8.0f} req/s  p50 {p50:6.2f} ms  p99 {p99:6.2f} ms",
                    flush=True,
                )
    await counters.close_all()
    print_table(results, endpoints, targets)

    await tail_latency(
        args, postgres, targets[:2], endpoints, results, mint_token(key, seed.subject)
    )

    print(f"\nProcesses (uvicorn, one worker; ready: median of {args.starts} starts, and range):")
    print(
        f"  {'process':<28} {'ready s':>8} {'range':>11} {'RSS ready MiB':>14} "
        f"{'RSS after MiB':>14}"
    )
    servers = {server.name: server for target in targets for server in target.servers.values()}
    for server in servers.values():
        fastest, slowest = min(server.ready_times), max(server.ready_times)
        print(
            f"  {server.name:<28} {server.ready_seconds:>8.2f} {fastest:>5.2f}-{slowest:<5.2f} "
            f"{server.rss_ready / 2**20:>14.1f} {server.process.memory_info().rss / 2**20:>14.1f}"
        )


async def tail_latency(
    args: argparse.Namespace,
    postgres: EmbeddedPostgres,
    targets: list[Target],
    endpoints: list[Endpoint],
    results: list[Measurement],
    token: str,
) -> None:
    """Open-loop runs at half each endpoint's own maximum, alternating between the targets, each
    under the host's default scheduling and (where this process may) at real-time priority."""
    schedulings = [False, True] if realtime.allowed() else [False]
    runs: dict[tuple[bool, str, str], list[OpenLoopResult]] = {}
    maxima = {
        (endpoint.name, target.name): statistics.mean(
            m.rps for m in results if m.endpoint == endpoint.name and m.target == target.name
        )
        for endpoint in endpoints
        for target in targets
    }
    for endpoint in endpoints:
        for _ in range(args.open_loop_rounds):
            for target in targets:
                server = target.servers[endpoint.service]
                for isolated in schedulings:
                    pids = [os.getpid(), server.process.pid, *postgres_pids(postgres)]
                    scheduling = realtime.realtime(pids) if isolated else contextlib.nullcontext()
                    with scheduling:
                        result = await open_loop_run(
                            server,
                            endpoint,
                            token,
                            rate=maxima[endpoint.name, target.name] / 2,
                            seconds=args.open_loop_seconds,
                            connections=args.connections,
                        )
                    runs.setdefault((isolated, endpoint.name, target.name), []).append(result)

    print(
        f"\nTail latency, open loop at half each endpoint's own maximum ({args.connections} "
        f"connections, {args.open_loop_seconds:g}s, {args.open_loop_rounds} alternating rounds; "
        "medians, p99/p50 with its range; 'late' is how late the generator woke to send, the "
        "worst round's p99)"
    )
    titles = {
        False: "with the host's default scheduling (what this machine gives):",
        True: "with generator, server and Postgres at real-time priority (the host's scheduler "
        "left out, bench/realtime.py):",
    }
    for isolated in schedulings:
        print(f"  {titles[isolated]}")
        print(
            f"  {'endpoint':<20} {'target':<15} {'rate/s':>8} {'p50 ms':>8} {'p99 ms':>8} "
            f"{'p99/p50':>8} {'range':>11} {'late ms':>8}"
        )
        for endpoint in endpoints:
            for target in targets:
                print_tail(endpoint.name, target.name, runs[isolated, endpoint.name, target.name])
    if len(schedulings) == 1:
        print("  (not at real-time priority: that needs root or CAP_SYS_NICE, on Linux)")


def postgres_pids(postgres: EmbeddedPostgres) -> list[int]:
    """The postmaster and every process it started: the backends, the WAL writer and the like."""
    postmaster = postgres.pid()
    if postmaster is None:
        raise RuntimeError("the benchmark's Postgres is not running")
    return [postmaster, *(child.pid for child in psutil.Process(postmaster).children())]


async def open_loop_run(
    server: Server,
    endpoint: Endpoint,
    token: str,
    *,
    rate: float,
    seconds: float,
    connections: int,
) -> OpenLoopResult:
    headers = {"Authorization": f"Bearer {token}"}
    if endpoint.body:
        headers["Content-Type"] = "application/json"
    request = http_request(
        endpoint.method, endpoint.path, host="127.0.0.1", headers=headers, body=endpoint.body
    )
    return await open_loop(
        "127.0.0.1", server.port, request, rate=rate, seconds=seconds, connections=connections
    )


def print_tail(endpoint: str, target: str, runs: list[OpenLoopResult]) -> None:
    ratios = sorted(run.p99_ms / run.p50_ms for run in runs)
    p50 = statistics.median(run.p50_ms for run in runs)
    late = max(run.late_p99_ms for run in runs)
    errors = sum(run.errors for run in runs)
    flag = "" if errors == 0 else f"  ({errors} errors)"
    print(
        f"  {endpoint:<20} {target:<15} {statistics.median(run.rate for run in runs):>8.0f} "
        f"{p50:>8.2f} {statistics.median(run.p99_ms for run in runs):>8.2f} "
        f"{statistics.median(ratios):>8.1f} {ratios[0]:>5.1f}-{ratios[-1]:<5.1f} {late:>8.2f}{flag}"
    )


def print_table(
    results: list[Measurement], endpoints: list[Endpoint], targets: list[Target]
) -> None:
    print(
        f"\n{'endpoint':<20} {'target':<15} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'ratio':>6} {'CPU µs/req':>10} {'xact/req':>8} {'new sessions':>12}"
    )
    for endpoint in endpoints:
        rows = [m for m in results if m.endpoint == endpoint.name]
        floor_by_round = [m.rps for m in rows if m.target == targets[0].name]
        for target in targets:
            mine = [m for m in rows if m.target == target.name]
            ratios = [m.rps / floor for m, floor in zip(mine, floor_by_round, strict=True)]
            requests = sum(m.requests for m in mine)
            cpu = sum(m.cpu_seconds for m in mine) / requests
            transactions = sum(m.transactions or 0 for m in mine) / requests
            sessions = sum(m.sessions or 0 for m in mine)
            print(
                f"{endpoint.name:<20} {target.name:<15} "
                f"{statistics.mean(m.rps for m in mine):>8.0f} "
                f"{statistics.mean(m.p50_ms for m in mine):>7.2f} "
                f"{statistics.mean(m.p99_ms for m in mine):>7.2f} "
                f"{statistics.mean(ratios):>6.2f} {cpu * 1e6:>10.0f} {transactions:>8.2f} "
                f"{sessions:>12}"
            )


if __name__ == "__main__":
    main()
