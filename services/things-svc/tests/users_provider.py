"""users-svc as things-svc's tests meet it: its token endpoint and its account lookup, served on
a loopback port that a test can stop and start again. It answers only what users-svc's OpenAPI
document promises (`test_users_contract.py` checks each of its answers against the document).
"""

import base64
import socket
import threading
import time
import uuid
from typing import Any
from urllib.parse import parse_qs

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

CLIENT_ID = "things-svc"
CLIENT_SECRET = "things-svc-secret-of-the-tests"
ACCESS_TOKEN = "a-token-of-things-svc"
PROBLEM = "application/problem+json"

TOKEN_ANSWER = {
    "access_token": ACCESS_TOKEN,
    "token_type": "bearer",
    "expires_in": 300,
    "scope": "users:lookup",
}
NO_SUCH_ACCOUNT = {
    "type": "about:blank",
    "title": "Not Found",
    "status": 404,
    "detail": "No account has this email.",
}
NOT_AUTHENTICATED = {
    "type": "about:blank",
    "title": "Unauthorized",
    "status": 401,
    "detail": "Client authentication failed: unknown client, or wrong secret.",
}


def account_answer(user_id: uuid.UUID, *, shareable: bool) -> dict[str, Any]:
    return {"id": str(user_id), "shareable": shareable}


class UsersProvider:
    """The stand-in: accounts by email, the token it gives things-svc, the calls it answered."""

    def __init__(self) -> None:
        self.accounts: dict[str, dict[str, Any]] = {}
        self.token_requests = 0
        self.lookups = 0
        app = FastAPI()
        expected = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()

        @app.post("/api/v1/auth/token")
        async def token(request: Request) -> JSONResponse:
            self.token_requests += 1
            # Read as plain urlencoded text: things-svc's environment has no form parser.
            form = parse_qs((await request.body()).decode())
            authorization = request.headers.get("authorization")
            if authorization != f"Basic {expected}" or form.get("grant_type") != [
                "client_credentials"
            ]:
                return JSONResponse(NOT_AUTHENTICATED, status_code=401, media_type=PROBLEM)
            return JSONResponse(TOKEN_ANSWER)

        @app.post("/api/v1/users/lookup")
        async def lookup(request: Request) -> JSONResponse:
            self.lookups += 1
            if request.headers.get("authorization") != f"Bearer {ACCESS_TOKEN}":
                return JSONResponse(NOT_AUTHENTICATED, status_code=401, media_type=PROBLEM)
            email = str((await request.json())["email"]).lower()
            account = self.accounts.get(email)
            if account is None:
                return JSONResponse(NO_SUCH_ACCOUNT, status_code=404, media_type=PROBLEM)
            return JSONResponse(account)

        self.app = app
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def add(self, email: str, *, shareable: bool = True) -> uuid.UUID:
        user_id = uuid.uuid4()
        self.accounts[email.lower()] = account_answer(user_id, shareable=shareable)
        return user_id

    def start(self) -> None:
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, lifespan="off", log_level="warning"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            assert time.monotonic() < deadline, "the users-svc stand-in did not start"
            time.sleep(0.01)

    def stop(self) -> None:
        assert self._server is not None
        assert self._thread is not None
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._server = None

    @property
    def running(self) -> bool:
        return self._server is not None
