"""Sharing under the benchmark: `POST /things/{id}/shares` on the services' things-svc, closed loop
with wrk. Each request is one call from things-svc to users-svc (its account lookup, with
things-svc's own token, kept between calls), then a write: the price of a call between services.
Not served by the floor or the generated copy; its ratio is to `POST /things` on the same target,
the same write without the call.
"""

import argparse
import json
import statistics
from collections.abc import Sequence
from pathlib import Path

from measure import Measurement, WrkResult, wrk
from seed import Seed
from targets import Endpoint, Target

from common.settings import API_PREFIX

SHARE = Endpoint("POST /things/{id}/shares", "things", "POST", "/things/{thing_id}/shares")
# An account of the seed, not the subject: things are shared with someone else.
EMAIL = "user1@bench.example"
# things-svc's client secret at the benchmark's users-svc (bench/run.py registers its SHA-256).
CLIENT_SECRET = "bench-not-a-placeholder-client-secret"


def wanted(args: argparse.Namespace) -> bool:
    return not args.only or any(text in SHARE.name for text in args.only)


async def share_latency(
    args: argparse.Namespace,
    target: Target,
    seed: Seed,
    results: Sequence[Measurement],
    *,
    token: str,
    folder: Path,
) -> WrkResult:
    url = target.servers[SHARE.service].url + API_PREFIX + f"/things/{seed.thing_id}/shares"
    script = folder / "share.lua"
    script.write_text(
        f'wrk.method = "POST"\nwrk.body = {json.dumps(json.dumps({"email": EMAIL}))}\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
    )
    if args.warmup:
        await wrk(
            url, token=token, seconds=args.warmup, connections=args.connections, script=script
        )
    result = await wrk(
        url, token=token, seconds=args.seconds, connections=args.connections, script=script
    )
    writes = [m.rps for m in results if m.endpoint == "POST /things" and m.target == target.name]
    ratio = f"{result.rps / statistics.mean(writes):.2f}" if writes else "-"
    print(
        f"\nSharing ({SHARE.name}, {target.name}, one call to users-svc each; wrk: "
        f"{args.connections} connections, {args.seconds:g}s, loopback):\n"
        f"  {result.rps:.0f} req/s  p50 {result.p50_ms:.2f} ms  p99 {result.p99_ms:.2f} ms  "
        f"ratio to POST /things on {target.name}: {ratio}"
    )
    return result
