"""The one check a branch protection rule requires: it passes when every affected member passed.

    python3 tools/ci_gate.py --repository owner/name --base BASE_SHA --head HEAD_SHA

A member's workflow skipped by its path filter never reports, so requiring it would leave the pull
request waiting forever; requiring none lets a red one merge. This gate always runs: it works out
the affected members (tools/affected.py's rules, the same ones the path filters encode), then
polls the check runs of the pull request's head commit until each affected member's job has
finished. Standard library only, so it runs on the runner's Python with nothing installed.

`--check-runs FILE` judges once from a saved API answer instead of polling GitHub (exit 0 passed,
1 failed, 3 still pending): how it is tested offline.
"""

import argparse
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from affected import changed_files, git
from monorepo import Workspace

API = "https://api.github.com"
# A job that ended this way does not block a merge; anything else (failure, cancelled,
# timed_out, action_required, stale) does.
PASSING = frozenset({"success", "neutral", "skipped"})
EXIT_PENDING = 3


@dataclass
class Verdict:
    passed: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    pending: list[str] = field(default_factory=list)


def judge(check_runs: list[dict[str, Any]], members: list[str]) -> Verdict:
    """Each member's latest check run (a re-run replaces the earlier one), passed or not."""
    latest: dict[str, dict[str, Any]] = {}
    for check_run in check_runs:
        name = check_run["name"]
        if name in members and (name not in latest or check_run["id"] > latest[name]["id"]):
            latest[name] = check_run
    verdict = Verdict()
    for member in members:
        run = latest.get(member)
        if run is None or run["status"] != "completed":
            verdict.pending.append(member)
        elif run["conclusion"] in PASSING:
            verdict.passed.append(member)
        else:
            verdict.failed[member] = str(run["conclusion"])
    return verdict


def fetch_check_runs(repository: str, sha: str, *, token: str) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = []
    page = 1
    while True:
        request = urllib.request.Request(
            f"{API}/repos/{repository}/commits/{sha}/check-runs?per_page=100&page={page}",
            headers={
                "Accept": "application/vnd.github+json",
                "Authorization": f"Bearer {token}",
                "X-GitHub-Api-Version": "2022-11-28",
            },
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            body = json.load(response)
        runs.extend(body["check_runs"])
        if not body["check_runs"] or len(runs) >= body["total_count"]:
            return runs
        page += 1


def report(verdict: Verdict) -> None:
    for member in verdict.passed:
        print(f"  passed   {member}")
    for member, conclusion in verdict.failed.items():
        print(f"  {conclusion:<8} {member}")
    for member in verdict.pending:
        print(f"  waiting  {member}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repository", help="owner/name (GITHUB_REPOSITORY)")
    parser.add_argument("--base", required=True, help="the pull request's base commit")
    parser.add_argument("--head", required=True, help="the pull request's head commit")
    parser.add_argument("--check-runs", type=Path, help="judge once from this saved API answer")
    parser.add_argument("--timeout-minutes", type=float, default=50)
    parser.add_argument("--interval-seconds", type=float, default=20)
    args = parser.parse_args(argv)

    root = Path(git(Path.cwd(), "rev-parse", "--show-toplevel").strip())
    try:
        changed = changed_files(root, base=args.base, head=args.head)
    except subprocess.CalledProcessError as error:
        print(f"git failed: {error.stderr.strip()}", file=sys.stderr)
        return 2
    members = [member.name for member in Workspace.load(root).affected_by(changed)]
    if not members:
        print("No workspace member is affected by this change: nothing to wait for.")
        return 0
    print(f"Affected members: {', '.join(members)}")

    if args.check_runs is not None:
        verdict = judge(json.loads(args.check_runs.read_text())["check_runs"], members)
        report(verdict)
        return 1 if verdict.failed else EXIT_PENDING if verdict.pending else 0

    if not args.repository:
        parser.error("--repository is required unless --check-runs is given")
    token = os.environ["GH_TOKEN"]
    deadline = time.monotonic() + args.timeout_minutes * 60
    while True:
        try:
            verdict = judge(fetch_check_runs(args.repository, args.head, token=token), members)
        except (urllib.error.URLError, TimeoutError) as error:
            # A hiccup of the API is no verdict: keep polling until the deadline.
            print(f"GitHub API unavailable ({error}); retrying", file=sys.stderr)
            verdict = Verdict(pending=members)
        if verdict.failed:
            report(verdict)
            return 1
        if not verdict.pending:
            report(verdict)
            return 0
        if time.monotonic() > deadline:
            report(verdict)
            print("Timed out waiting for the workflows above.", file=sys.stderr)
            return 1
        time.sleep(args.interval_seconds)


if __name__ == "__main__":
    sys.exit(main())
