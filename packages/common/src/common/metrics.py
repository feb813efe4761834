"""Prometheus metrics every service records, and those a service records itself.

Recorded by `common` for every service (the first by `common.middleware`):
- `http_server_request_duration_seconds{method, route, status}`: a histogram per route template
  (`/api/v1/things/{thing_id}`, never the raw path, so the label sets stay bounded); its
  `_count` is the request rate, and `status=~"5.."` the errors;
- `db_pool_connections{pool, state}` (`in_use`, `idle`), `db_pool_capacity{pool}`,
  `db_pool_waiting{pool}` (requests waiting for a connection) and `db_pool_timeouts_total{pool}`,
  for the transactions' pool (`write`) and the reads' pool (`read`).

Recorded by the code that knows (the objects below are the API):
- `LOGIN_FAILURES.labels(reason=...).inc()`, `LOGIN_THROTTLED.labels(scope=...).inc()` and
  `COUNTERS_PRUNED.labels(table=...).inc(n)`;
- `OUTBOX_BACKLOG.labels(outbox=...).set(n)` and `CONSUMER_LAG.labels(consumer=...).set(n)`,
  for the events' relay and consumers;
- `REVOCATIONS_PRUNED.labels(table=...).inc(n)`: rows of `revoked_subjects` and
  `erased_subjects` deleted once no token they could refuse is still valid.

Several worker processes: with `PROMETHEUS_MULTIPROC_DIR` set (`common.serve` sets it for
`--workers` above 1), prometheus_client keeps every process's values in files there and the
endpoint adds them up; it must be set before this module is imported.
"""

import os

from prometheus_client import Counter, Gauge, Histogram

from common.settings import MULTIPROCESS_DIR_ENV

# Seconds: the boundaries OpenTelemetry's HTTP conventions advise (FastAPI's own telemetry too).
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
# Methods outside this set are counted as `_OTHER`: a client chooses the method, not the labels.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# The route of a request no route matched (404, or refused before routing: 413, 431).
UNMATCHED = "unmatched"

REQUEST_DURATION = Histogram(
    "http_server_request_duration_seconds",
    "Time to answer an HTTP request, by method, route template and status",
    ["method", "route", "status"],
    buckets=DURATION_BUCKETS,
)
POOL_CONNECTIONS = Gauge(
    "db_pool_connections",
    "Connections of the database pool, by state: in_use (checked out) or idle",
    ["pool", "state"],
    multiprocess_mode="livesum",
)
POOL_CAPACITY = Gauge(
    "db_pool_capacity",
    "Connections the pool may hold: its size plus its overflow",
    ["pool"],
    multiprocess_mode="livesum",
)
POOL_WAITING = Gauge(
    "db_pool_waiting",
    "Requests waiting for a connection of the pool",
    ["pool"],
    multiprocess_mode="livesum",
)
POOL_TIMEOUTS = Counter(
    "db_pool_timeouts",
    "Requests that gave up waiting for a connection (answered 503)",
    ["pool"],
)
LOGIN_FAILURES = Counter(
    "auth_login_failures",
    "Logins refused: invalid_credentials (unknown email or wrong password), deactivated",
    ["reason"],
)
LOGIN_THROTTLED = Counter(
    "auth_login_throttled",
    "Password checks (logins, password changes, erasures) refused before any hash, by what was "
    "throttled: account, client, or locked (an account locked until an administrator unlocks it)",
    ["scope"],
)
SERVICE_CALLS = Counter(
    "service_calls",
    "Calls to other services (common.service_client), by target and outcome: answered (any "
    "status below 500), failed (no answer or a server error, after retries), refused_open (the "
    "breaker was open)",
    ["target", "outcome"],
)
SERVICE_CALL_DURATION = Histogram(
    "service_call_duration_seconds",
    "Time of a call to another service, its retries included",
    ["target"],
    buckets=DURATION_BUCKETS,
)
COUNTERS_PRUNED = Counter(
    "auth_counters_pruned",
    "Throttling counters deleted once their window ended, by table (login_failures, sign_ups)",
    ["table"],
)
OUTBOX_BACKLOG = Gauge(
    "outbox_backlog_events",
    "Events committed to the outbox and not yet published",
    ["outbox"],
    multiprocess_mode="mostrecent",
)
CONSUMER_LAG = Gauge(
    "events_consumer_lag_messages",
    "Messages of a stream not yet applied by this service's consumer",
    ["consumer"],
    multiprocess_mode="mostrecent",
)
REVOCATIONS_PRUNED = Counter(
    "revocations_pruned",
    "Revoked and erased subjects forgotten once no token they could refuse is still valid",
    ["table"],
)


def multiprocess() -> bool:
    return bool(os.environ.get(MULTIPROCESS_DIR_ENV))
