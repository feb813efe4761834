"""`make seed`: a few users and things in the `make up` stack, made through the public APIs.

Run it again and nothing is added: a user who exists is logged in, a thing they already have (by
name) is not made twice. The accounts are for trying the stack, never for anything shared.

    uv run python tools/seed_stack.py
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence

import httpx

from common.settings import API_PREFIX
from native_stack import Stack
from stack import choose_mode, run_up
from stack_services import StackError, discover_services, state_dir

PASSWORD = "correct horse battery staple"
# Each user's email and name, and the things they own.
PEOPLE: Mapping[tuple[str, str], Sequence[str]] = {
    ("ada@example.com", "Ada Lovelace"): ("Analytical engine", "Notes on the engine"),
    ("grace@example.com", "Grace Hopper"): ("Compiler", "Moth"),
    ("alan@example.com", "Alan Turing"): (),
}


def seed(users_url: str, things_url: str, *, client: httpx.Client) -> list[str]:
    """Make what is missing; one line per user saying what was done."""
    lines = []
    for (email, name), things in PEOPLE.items():
        signup = {"email": email, "full_name": name, "password": PASSWORD}
        created = client.post(f"{users_url}/users", json=signup)
        if created.status_code not in (201, 409):
            raise StackError(f"signing up {email}: {created.status_code} {created.text}")
        login = client.post(f"{users_url}/auth/login", json={"email": email, "password": PASSWORD})
        if login.status_code != 200:
            raise StackError(f"logging in {email} (password changed?): {login.text}")
        auth = {"Authorization": f"Bearer {login.json()['access_token']}"}
        listed = client.get(things_url, params={"limit": 100}, headers=auth).json()["items"]
        missing = [thing for thing in things if thing not in {t["name"] for t in listed}]
        for thing in missing:
            answer = client.post(things_url, json={"name": thing}, headers=auth)
            if answer.status_code != 201:
                raise StackError(f"creating {thing!r} for {email}: {answer.text}")
        account = "signed up" if created.status_code == 201 else "already there"
        lines.append(f"{email}: {account}; {len(missing)} of {len(things)} things made")
    return lines


def main() -> int:
    stack = Stack(state_dir(), discover_services())
    try:
        state = stack.state()
        if state is None or (state.mode == "native" and not stack.is_up()):
            run_up(stack, mode=choose_mode("auto"), attach=False)
            state = stack.state()
        assert state is not None
        ports = state.services
        users = f"http://127.0.0.1:{ports['users-svc']}{API_PREFIX}"
        things = f"http://127.0.0.1:{ports['things-svc']}{API_PREFIX}/things"
        with httpx.Client(timeout=30) as client:
            for line in seed(users, things, client=client):
                print(line)
    except StackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"every account's password: {PASSWORD!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
