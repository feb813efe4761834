"""`make up OBSERVABILITY=1` natively: Debian's Prometheus scraping every service of the stack,
read through its HTTP API as a dashboard reads it."""

import time
from typing import Any

import httpx
import pytest

from stack_runner import StackRunner

pytestmark = pytest.mark.observability

REQUESTS = 20
LIVE = 'route="/health/live",status="200"'


def prometheus_api(runner: StackRunner, path: str, **params: str) -> Any:
    url = f"http://127.0.0.1:{runner.env['STACK_PROMETHEUS_PORT']}/api/v1/{path}"
    response = httpx.get(url, params=params, timeout=5)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "success", body
    return body["data"]


def wait_for(what: str, check: Any, timeout: float = 90) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.5)


def counted(runner: StackRunner, job: str) -> float:
    query = f'sum(http_server_request_duration_seconds_count{{job="{job}",{LIVE}}})'
    result = prometheus_api(runner, "query", query=query)["result"]
    return float(result[0]["value"][1]) if result else 0.0


def test_prometheus_scrapes_every_service_and_sees_the_requests_sent(
    stack_runner: StackRunner,
) -> None:
    result = stack_runner.run("up", "--mode", "native", "--observability")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"prometheus  http://127.0.0.1:{stack_runner.env['STACK_PROMETHEUS_PORT']}" in (
        result.stdout
    )

    def every_service_up() -> bool:
        targets = prometheus_api(stack_runner, "targets")["activeTargets"]
        healthy = {t["labels"]["job"] for t in targets if t["health"] == "up"}
        return healthy == set(stack_runner.services)

    wait_for("every service scraped", every_service_up)
    things = stack_runner.service("things-svc")
    before = counted(stack_runner, "things-svc")

    with httpx.Client(timeout=10) as client:
        for _ in range(REQUESTS):
            assert client.get(f"{things.base_url}/health/live").status_code == 200

    after = wait_for(
        "the requests counted", lambda: counted(stack_runner, "things-svc") >= before + REQUESTS
    )
    assert after
    assert "prometheus" in stack_runner.run("ps").stdout
    assert stack_runner.run("down").returncode == 0
    assert stack_runner.processes() == []
