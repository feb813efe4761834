"""Hostile input on every endpoint of both services, then schemathesis on their OpenAPI schemas
with every check (`--checks all`: server errors, and every answer as the schema documents it:
status, content type, headers, body; schema-valid input accepted, invalid input refused; auth).

Every operation is read from the running service's own `/openapi.json`, so a new endpoint is
attacked without being listed here.
"""

import json
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ElementTree
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from common.testing.openapi import Operation, operations
from devstack.postgres import EmbeddedPostgres

from .conftest import PASSWORD, Report, Things, Users
from .users_stage import sign_up, users_processes

pytestmark = pytest.mark.reliability

FIELDS = ("name", "description", "email", "full_name", "password", "new_password")
NUL_BODY = dict.fromkeys(FIELDS, "a\x00b")
DEEP = 100_000


Attack = tuple[str, str, dict[str, str], bytes, bool]


def hostile_requests(operation: Operation, *, has_query: bool) -> list[Attack]:
    """(label, path, headers, body, must be 4xx) for each attack on `operation`.

    An attack must be refused when the operation reads what it breaks: its path parameters, its
    query, its JSON body; headers always. Otherwise (a body sent to `/health/live`) it must
    only not be a 5xx.
    """
    path = operation.url("00000000-0000-7000-8000-000000000000")
    as_json = {"Content-Type": "application/json"}
    body, params = operation.json_body, bool(operation.path_params)
    return [
        ("nul-body", path, as_json, json.dumps(NUL_BODY).encode(), body),
        ("nul-path", operation.url("%00"), as_json, b"{}", params),
        ("nul-query", f"{path}?limit=%00&offset=1%002", {}, b"", has_query),
        ("2**64-path", operation.url(2**64), as_json, b"{}", params),
        ("2**64-query", f"{path}?limit={2**64}&offset={-(2**64)}", {}, b"", has_query),
        ("2**64-body", path, as_json, json.dumps({"name": 2**64, "email": 2**64}).encode(), body),
        ("deep-json", path, as_json, b"[" * DEEP + b"]" * DEEP, body),
        ("deep-object", path, as_json, b'{"name": ' + b'{"a": ' * 5000 + b"1" + b"}" * 5001, body),
        ("invalid-utf8-body", path, as_json, b'{"name": "\xff\xfe\xc3", "email": "\xc0@x"}', body),
        ("invalid-utf8-path", operation.url("%FF%FE"), as_json, b"{}", params),
        (
            "wrong-type",
            path,
            {"Content-Type": "text/plain"},
            json.dumps({"name": "x"}).encode(),
            body,
        ),
        ("xml-type", path, {"Content-Type": "application/xml"}, b"<name>x</name>", body),
        ("form-type", path, {"Content-Type": "multipart/form-data; boundary=x"}, b"--x--", body),
        ("100kb-header", path, {"X-Padding": "a" * 100_000}, b"", True),
    ]


def with_query(schema: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (method, path)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if any(parameter["in"] == "query" for parameter in operation.get("parameters", []))
    }


async def attack(base_url: str, auth: dict[str, str]) -> tuple[Counter[str], list[str]]:
    statuses: Counter[str] = Counter()
    wrong = []
    async with aiohttp.ClientSession(base_url, headers=auth) as client:
        async with client.get("/openapi.json") as response:
            schema = await response.json()
        queried = with_query(schema)
        for operation in operations(schema):
            has_query = (operation.method, operation.path) in queried
            for label, path, headers, body, refused in hostile_requests(
                operation, has_query=has_query
            ):
                try:
                    async with client.request(
                        operation.method.upper(),
                        path,
                        headers=headers,
                        data=body or None,
                        skip_auto_headers=("Content-Type",),
                    ) as response:
                        status = response.status
                except aiohttp.ClientError as error:
                    wrong.append(f"{label} {operation}: no answer ({error})")
                    continue
                statuses[f"{status // 100}xx"] += 1
                if status >= 500 or (refused and not 400 <= status < 500):
                    wrong.append(f"{label} {operation}: {status}")
    return statuses, wrong


async def test_hostile_input_on_every_endpoint_is_refused_with_4xx(
    users: Users, things: Things, report: Report
) -> None:
    total: Counter[str] = Counter()
    failures = []
    for url in (users.process.url, things.url):
        statuses, wrong = await attack(url, users.headers)
        total.update(statuses)
        failures.extend(wrong)
    report(
        f"hostile input (NUL, 2**64, deep nesting, invalid UTF-8, wrong content type, 100 KB "
        f"header) on every endpoint of both services: {dict(sorted(total.items()))} (2xx only "
        f"where the operation ignores the input), {len(failures)} 5xx, unanswered or accepted"
    )
    assert failures == []


def schemathesis(
    schema_url: str, token: str, report_path: Path, *only: str
) -> subprocess.CompletedProcess[str]:
    """Every check, the fuzzing and stateful phases, on the operations `only` lists (filters)."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "run",
            schema_url,
            f"--header=Authorization: Bearer {token}",
            "--checks=all",
            # The coverage phase trips a CPython 3.11 ast bug inside hypothesis (SystemError).
            "--phases=examples,fuzzing,stateful",
            "--max-examples=25",
            "--seed=7",
            "--generation-database=none",
            "--request-timeout=10",
            "--workers=2",
            "--report=junit",
            f"--report-junit-path={report_path}",
            "--no-color",
            *only,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=report_path.parent,  # schemathesis keeps a cache folder where it runs
    )


def junit_counts(path: Path) -> tuple[int, list[str]]:
    root = ElementTree.parse(path).getroot()
    cases = list(root.iter("testcase"))
    failed = [
        f"{case.get('name')}: {(problem.get('message') or problem.text or '')[:300]}"
        for case in cases
        for problem in [*case.findall("failure"), *case.findall("error")]
    ]
    return len(cases), failed


@dataclass(frozen=True)
class Run:
    """One schemathesis run and what it found."""

    name: str
    result: subprocess.CompletedProcess[str]
    operations: int
    failed: list[str]
    seconds: float

    @classmethod
    def of(cls, name: str, schema_url: str, token: str, folder: Path, *only: str) -> "Run":
        folder.mkdir(parents=True, exist_ok=True)
        junit = folder / "junit.xml"
        started = time.monotonic()
        result = schemathesis(schema_url, token, junit, *only)
        operations, failed = junit_counts(junit)
        return cls(name, result, operations, failed, time.monotonic() - started)

    @property
    def cases(self) -> str:
        generated = re.search(r"(\d+) generated", self.result.stdout)
        return generated.group(1) if generated else "?"

    @property
    def warnings(self) -> list[str]:
        """Schemathesis's warnings (say, operations it could only get 401s from)."""
        return re.findall(r"^\s*⚠️\s*(.+)$", self.result.stdout, re.MULTILINE)

    def __str__(self) -> str:
        return (
            f"{self.name}: {self.operations} operations, {self.cases} cases, "
            f"{len(self.failed)} failures (exit {self.result.returncode}), {self.seconds:.0f} s; "
            f"warnings: {'; '.join(self.warnings) or 'none'}"
        )


# Operations that end the access of the token's own account: fuzzed in a run of their own, so
# that the rest of users-svc is not fuzzed by a caller already locked out.
ENDING_THE_CALLER = (
    "deactivate_me",
    "erase_me",
    "deactivate_user",
    "erase_user",
)


async def test_schemathesis_finds_nothing_on_users_svc(
    postgres: EmbeddedPostgres, workdir: Path, report: Report, tmp_path: Path
) -> None:
    # A users-svc of its own: the fuzzer signs up, locks out and erases accounts at will.
    async with users_processes(postgres, workdir, name="users_schemathesis") as (
        (users_svc,),
        database,
    ):
        schema = f"{users_svc.url}/openapi.json"

        async def admin_token(email: str) -> str:
            return await sign_up(users_svc.url, email, PASSWORD, admin=True, database=database)

        excluded = [f"--exclude-operation-id={op}" for op in ENDING_THE_CALLER]
        included = [f"--include-operation-id={op}" for op in ENDING_THE_CALLER]
        # Both accounts before the fuzzer runs: its own sign-ups use up the client's limit (429).
        admin, ending = await admin_token("admin@x.io"), await admin_token("ending@x.io")
        runs = [
            Run.of(
                "schemathesis --checks all users-svc (an administrator's token)",
                schema,
                admin,
                tmp_path / "rest",
                *excluded,
            ),
            Run.of(
                "schemathesis --checks all users-svc, the operations that end the caller's access",
                schema,
                ending,
                tmp_path / "ending",
                *included,
            ),
        ]
    for run in runs:
        report(str(run))
    for run in runs:
        assert run.failed == [], run.result.stdout[-5000:]
        assert run.result.returncode == 0, run.result.stdout[-5000:]


async def test_schemathesis_finds_nothing_on_things_svc(
    users: Users, things: Things, report: Report, tmp_path: Path
) -> None:
    run = Run.of(
        "schemathesis --checks all things-svc", f"{things.url}/openapi.json", users.token, tmp_path
    )
    report(str(run))
    assert run.failed == [], run.result.stdout[-5000:]
    assert run.result.returncode == 0, run.result.stdout[-5000:]
