"""`make bench`: the services, a freshly generated domain and the services with tracing on, against
a raw asyncpg floor, on loopback, in one run.

It starts an embedded Postgres in a scratch folder, makes, migrates and seeds identical databases
per target (bench/seed.py), and runs the targets (bench/targets.py) under uvicorn, one worker
each. Rounds alternate endpoint by endpoint between the targets (a noisy host then shifts all of
them alike), with wrk (closed loop). Then open-loop runs at half of each endpoint's own maximum
(bench/openloop.py) give the tail latency, under the host's default scheduling and with the run's
processes at real-time priority (bench/realtime.py).

Figures: requests/s, p50 and p99, ratio to the floor, server CPU per request, Postgres
transactions and new sessions per request (pg_stat_database), connections per process at idle
and under load, time to ready (median of several starts) and RSS. Then login's requests/s, p50
and p99 on the services' users-svc (bench/login.py), and sharing's, a call to users-svc per
request, with its ratio to POST /things (bench/shares.py).

    uv run python bench/run.py --seconds 5 --rounds 2
"""

import argparse
import asyncio
import hashlib
import json
import logging
import os
import shutil
import sys
import time
import uuid
from pathlib import Path

import asyncpg
import httpx
import login
import report
import shares
import tail
import uvloop
from measure import (
    Counters,
    Measurement,
    WrkResult,
    connections_to,
    cpu_seconds,
    peak_connections,
    wrk,
)
from seed import Seed, copy_rows, make_seed
from targets import (
    AUDIENCE,
    DB_PASSWORD,
    GENERATED_DOMAIN,
    ISSUER,
    ROOT,
    Endpoint,
    Target,
    floor_process,
    generated_copy,
    migrate,
    otlp_sink_process,
    production_python,
    service_process,
    start_server,
    traced_env,
)

from common.auth import JWKS_PATH, SigningKey, access_claims
from devstack import processes
from devstack.nats import EmbeddedNats
from devstack.postgres import EmbeddedPostgres, asyncpg_dsn, scratch_dir
from devstack.stopping import stopping_on_signals

ENDPOINTS = [
    Endpoint("GET /things/{id}", "things", "GET", "/{collection}/{thing_id}"),
    Endpoint("GET /things?limit=20", "things", "GET", "/{collection}?limit=20"),
    Endpoint("POST /things", "things", "POST", "/{collection}", b'{"name":"bench"}'),
    Endpoint("GET /users/me", "users", "GET", "/users/me"),
]


def mint_token(key: SigningKey, subject: uuid.UUID) -> str:
    """A token users-svc would issue; one per run, since a long benchmark outlives one."""
    return key.sign(access_claims(subject, issuer=ISSUER, audience=AUDIENCE, lifetime_seconds=900))


async def prepare_databases(postgres: EmbeddedPostgres, targets: list[Target], seed: Seed) -> None:
    """A database per target and service, migrated by the service's own code, then seeded."""
    admin = await asyncpg.connect(asyncpg_dsn(postgres.url()))
    try:
        for target in targets:
            for service in target.services:
                await admin.execute(f'CREATE DATABASE "{target.database(service)}"')
    finally:
        await admin.close()
    for target in targets:
        for service in target.services:
            url = postgres.url(database=target.database(service))
            if service in target.pythons:
                await asyncio.to_thread(
                    migrate,
                    target.pythons[service],
                    target.facts(service),
                    url.render_as_string(hide_password=False),
                )
            await copy_rows(
                asyncpg_dsn(url), target.collection if service == "things" else service, seed
            )


async def start_targets(
    postgres: EmbeddedPostgres,
    targets: list[Target],
    *,
    nats_url: str,
    seed: Seed,
    folder: Path,
    args: argparse.Namespace,
) -> SigningKey:
    """Every target's processes, ready; the key users-svc signs with. Each target's services
    relay and consume on a stream of their own, as production runs them (on a broker)."""
    key = SigningKey.generate()
    floor, services, generated, traced = targets
    # Where the traced target's spans go; kept with the floor's processes (stopped with them).
    sink = floor.servers["otlp-sink"] = await start_server(otlp_sink_process(folder), starts=1)
    floor.servers["things"] = floor.servers["users"] = await start_server(
        floor_process(
            things_dsn=asyncpg_dsn(postgres.url(database=floor.database("things"))),
            users_dsn=asyncpg_dsn(postgres.url(database=floor.database("users"))),
            subject=str(seed.subject),
            pool=args.pool_size,
            log_dir=folder,
        ),
        starts=args.starts,
    )
    for target in (services, generated, traced):
        for service in target.services:
            url = postgres.url(database=target.database(service), password=DB_PASSWORD)
            settings = {
                "database_url": url.render_as_string(hide_password=False),
                "token_issuer": ISSUER,
                "token_audience": AUDIENCE,
                "db_pool_size": str(args.pool_size),
                "db_read_pool_size": str(args.pool_size),
                "nats_url": nats_url,
                # Production connects as a NATS user; the benchmark's broker admits anyone.
                "nats_user": target.facts(service).name,
                "nats_password": "bench-not-a-placeholder",
                "events_stream": f"bench-{target.name}",
            }
            if service == "users":
                settings["signing_key"] = key.private_pem()
                # things-svc may look accounts up (bench/shares.py).
                digest = hashlib.sha256(shares.CLIENT_SECRET.encode()).hexdigest()
                settings["service_clients"] = json.dumps(
                    {"things-svc": {"secret_sha256": [digest], "scopes": ["users:lookup"]}}
                )
            else:
                users = traced if target is traced else services
                settings["jwks_url"] = users.servers["users"].url + JWKS_PATH
                # Sharing calls users-svc, with things-svc's own client secret.
                settings["users_url"] = users.servers["users"].url
                settings["client_secret"] = shares.CLIENT_SECRET
            process = service_process(
                target.facts(service),
                python=target.pythons[service],
                log_dir=folder,
                label=target.name,
                settings=settings,
                env=traced_env(sink.url) if target is traced else None,
            )
            target.servers[service] = await start_server(process, starts=args.starts)
    return key


async def check_same_json(targets: list[Target], seed: Seed, token: str) -> None:
    """The floor must answer what the services answer, or its figures mean nothing."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    async with httpx.AsyncClient(timeout=10, headers=headers) as client:
        for endpoint in ENDPOINTS:
            answers = []
            for target in (t for t in targets if endpoint.served_by(t)):
                url = endpoint.url(target, seed)
                response = await client.request(endpoint.method, url, content=endpoint.body)
                if response.status_code >= 300:
                    raise RuntimeError(f"{target.name} {endpoint.name}: {response.text}")
                body = response.json()
                # A new row differs in its id and timestamps: compare its shape, not its values.
                answers.append(sorted(body) if endpoint.method == "POST" else body)
            if any(answer != answers[0] for answer in answers):
                raise RuntimeError(f"{endpoint.name}: the targets answer differently: {answers}")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5, help="length of each wrk run")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds")
    parser.add_argument("--warmup", type=float, default=2, help="seconds of warm-up per run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--open-loop-seconds", type=float, default=4)
    parser.add_argument("--open-loop-rounds", type=int, default=3)
    parser.add_argument(
        "--starts", type=int, default=3, help="starts per process to time its readiness (median)"
    )
    parser.add_argument(
        "--pool-size", type=int, default=5, help="each pool's size, the floor's too"
    )
    parser.add_argument(
        "--login-connections",
        type=int,
        default=4,
        help="wrk connections for the login run (users-svc hashes 4 passwords at once)",
    )
    parser.add_argument(
        "--only",
        action="append",
        metavar="TEXT",
        help="measure only the endpoints whose name contains TEXT (repeatable)",
    )
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: `apt-get install wrk` (make bench installs it)")
    # Migrations and httpx log every step at INFO; the benchmark prints what matters.
    logging.disable(logging.INFO)
    # uvloop keeps the open-loop generator's own overhead small. SIGTERM stops it as Ctrl-C
    # does: every server it started is stopped, its scratch folder removed.
    with stopping_on_signals():
        uvloop.run(bench(args))


async def bench(args: argparse.Namespace) -> None:
    started = time.monotonic()
    load_before = os.getloadavg()
    endpoints = [e for e in ENDPOINTS if not args.only or any(t in e.name for t in args.only)]
    seed = make_seed()
    with scratch_dir("bench-") as folder:
        targets = make_targets(folder)
        postgres = EmbeddedPostgres(folder / "pgdata", log_file=folder / "postgres.log")
        try:
            await start_postgres(postgres)
            await prepare_databases(postgres, targets, seed)
            print(
                f"Postgres ready, databases migrated and seeded ({time.monotonic() - started:.0f}s)"
            )
            with processes.started(EmbeddedNats(folder / "nats")) as nats:
                try:
                    await measure(args, postgres, nats.url, targets, endpoints, seed, folder)
                finally:
                    for target in targets:
                        for server in set(target.servers.values()):
                            server.process.stop()
        finally:
            postgres.stop()
    load_after = os.getloadavg()
    print(
        f"\nload average (1 min) {load_before[0]:.2f} before, {load_after[0]:.2f} after; "
        f"{os.cpu_count()} CPUs; {time.monotonic() - started:.0f}s in all"
    )


def make_targets(folder: Path) -> list[Target]:
    """The floor; the services from this repository; things-svc with its generated domain from
    a scratch copy. Each service gets its production-like environment."""
    copy = generated_copy(folder)
    print(f"generated the domain {GENERATED_DOMAIN!r} in a copy of the repository")
    # users-svc first: things-svc fetches its keys from it.
    services = Target("services", "svc", "things", ("users", "things"))
    services.pythons = {
        service: production_python(ROOT, f"{service}-svc") for service in services.services
    }
    generated = Target("generated", "gen", GENERATED_DOMAIN, ("things",), root=copy)
    generated.pythons = {"things": production_python(copy, "things-svc")}
    # The same services and environments, tracing 10% of the requests (targets.traced_env).
    traced = Target("traced", "trc", "things", ("users", "things"), pythons=services.pythons)
    # The floor's databases get the services' schema, by the services' own migrations.
    floor = Target("floor", "floor", "things", ("things", "users"), pythons=services.pythons)
    return [floor, services, generated, traced]


async def start_postgres(postgres: EmbeddedPostgres) -> None:
    postgres.start()
    admin = await asyncpg.connect(asyncpg_dsn(postgres.url()))
    # Every target's pools together exceed the default 100 connections.
    await admin.execute("ALTER SYSTEM SET max_connections = 300")
    await admin.close()
    postgres.stop()
    postgres.start()


async def measure(
    args: argparse.Namespace,
    postgres: EmbeddedPostgres,
    nats_url: str,
    targets: list[Target],
    endpoints: list[Endpoint],
    seed: Seed,
    folder: Path,
) -> None:
    key = await start_targets(
        postgres, targets, nats_url=nats_url, seed=seed, folder=folder, args=args
    )
    await check_same_json(targets, seed, mint_token(key, seed.subject))
    post_script = folder / "post.lua"
    post_script.write_text(
        'wrk.method = "POST"\nwrk.body = \'{"name":"bench"}\'\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
    )
    admin = await asyncpg.connect(asyncpg_dsn(postgres.url()))
    try:
        runner = Runner(args, admin, key, seed, post_script)
        await runner.warm_up(targets, endpoints)
        idle = {
            (target.name, service): await connections_to(admin, target.database(service))
            for target in targets[1:]
            for service in target.servers
        }
        results = await runner.rounds(targets, endpoints)
    finally:
        await admin.close()
    report.print_throughput(results, [e.name for e in endpoints], targets)
    await tail.tail_latency(
        args, postgres, targets, endpoints, results, token=runner.token(), seed=seed
    )
    if login.wanted(args):
        await login.login_latency(args, targets[1], folder)
    if shares.wanted(args):
        await shares.share_latency(
            args, targets[1], seed, results, token=runner.token(), folder=folder
        )
    report.print_processes(targets, starts=args.starts)
    report.print_connections(idle, results, targets)


class Runner:
    """The closed-loop runs: warm-up, then alternating rounds."""

    def __init__(
        self,
        args: argparse.Namespace,
        admin: asyncpg.Connection,
        key: SigningKey,
        seed: Seed,
        post_script: Path,
    ) -> None:
        self.args = args
        self.admin = admin
        self.key = key
        self.seed = seed
        self.post_script = post_script
        self.counters = Counters(admin)

    def token(self) -> str:
        return mint_token(self.key, self.seed.subject)

    async def warm_up(self, targets: list[Target], endpoints: list[Endpoint]) -> None:
        print(f"warm-up: {self.args.warmup:g}s per endpoint and target")
        for endpoint in endpoints:
            for target in (t for t in targets if endpoint.served_by(t)):
                await self.wrk(endpoint, target, seconds=self.args.warmup)
                self.counters.end(target.database(endpoint.service))

    async def wrk(self, endpoint: Endpoint, target: Target, *, seconds: float) -> WrkResult:
        script = self.post_script if endpoint.method == "POST" else None
        return await wrk(
            endpoint.url(target, self.seed),
            token=self.token(),
            seconds=seconds,
            connections=self.args.connections,
            script=script,
        )

    async def rounds(self, targets: list[Target], endpoints: list[Endpoint]) -> list[Measurement]:
        results: list[Measurement] = []
        print(
            f"wrk: 1 thread, {self.args.connections} connections, {self.args.seconds:g}s per run, "
            "loopback"
        )
        for number in range(1, self.args.rounds + 1):
            for endpoint in endpoints:
                for target in (t for t in targets if endpoint.served_by(t)):
                    results.append(await self.measured(endpoint, target))
                    last = results[-1]
                    print(
                        f"  round {number}  {endpoint.name:<22} {target.name:<12} "
                        f"{last.rps:>8.0f} req/s  p50 {last.p50_ms:6.2f} ms  "
                        f"p99 {last.p99_ms:6.2f} ms",
                        flush=True,
                    )
        await self.counters.close_all()
        return results

    async def measured(self, endpoint: Endpoint, target: Target) -> Measurement:
        pid = target.servers[endpoint.service].process.pid
        database = target.database(endpoint.service)
        measurement = Measurement(endpoint.name, target.name, endpoint.service)
        await self.counters.begin(database, measurement)
        before = cpu_seconds(pid)
        async with peak_connections(self.admin, database, measurement):
            result = await self.wrk(endpoint, target, seconds=self.args.seconds)
        measurement.cpu_seconds = cpu_seconds(pid) - before
        self.counters.end(database)
        measurement.rps, measurement.p50_ms = result.rps, result.p50_ms
        measurement.p99_ms, measurement.requests = result.p99_ms, result.requests
        return measurement


if __name__ == "__main__":
    main()
