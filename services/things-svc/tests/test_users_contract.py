"""Every call things-svc makes to users-svc, checked against users-svc's committed OpenAPI
document: what things-svc sends, what it reads, and what the tests' stand-in answers."""

import copy
import uuid
from pathlib import Path

import pytest
from users_provider import NO_SUCH_ACCOUNT, NOT_AUTHENTICATED, TOKEN_ANSWER, account_answer

from common.testing.contracts import Contract
from things_svc.users import LOOKUP_PATH, TOKEN_PATH, UserLookup, UserReference

USERS_SVC_DOCUMENT = Path(__file__).parents[2] / "users-svc" / "openapi.json"


@pytest.fixture
def contract() -> Contract:
    return Contract.read(USERS_SVC_DOCUMENT)


def lookup_problems(contract: Contract) -> list[str]:
    """Every way the lookup, as things-svc calls it and its tests' stand-in answers it, departs
    from the document."""
    example = account_answer(uuid.uuid4(), shareable=True)
    return [
        *contract.request_problems("post", LOOKUP_PATH, UserLookup(email="a@x.io").model_dump()),
        *contract.read_problems("post", LOOKUP_PATH, 200, UserReference),
        *contract.response_problems("post", LOOKUP_PATH, 200, example),
        *contract.response_problems("post", LOOKUP_PATH, 404, NO_SUCH_ACCOUNT),
        *contract.response_problems("post", LOOKUP_PATH, 401, NOT_AUTHENTICATED),
    ]


def test_the_lookup_is_called_as_users_svc_documents_it(contract: Contract) -> None:
    assert lookup_problems(contract) == []
    security = contract.operation("post", LOOKUP_PATH)["security"]
    assert security == [{"OAuth2PasswordBearer": ["users:lookup"]}]


def test_the_token_is_asked_as_users_svc_documents_it(contract: Contract) -> None:
    form = {"grant_type": "client_credentials", "scope": "users:lookup"}
    media = "application/x-www-form-urlencoded"

    assert contract.request_problems("post", TOKEN_PATH, form, media_type=media) == []
    assert contract.response_problems("post", TOKEN_PATH, 200, TOKEN_ANSWER) == []
    assert contract.response_problems("post", TOKEN_PATH, 401, NOT_AUTHENTICATED) == []


def test_a_breaking_change_of_the_lookup_fails_naming_the_field(contract: Contract) -> None:
    """users-svc renaming the field things-svc reads: this test suite is where it shows."""
    changed = copy.deepcopy(contract.document)
    reference = changed["components"]["schemas"]["UserReference"]
    reference["properties"]["can_share"] = reference["properties"].pop("shareable")
    reference["required"] = ["id", "can_share"]

    problems = lookup_problems(Contract(changed))

    assert "shareable: read by the consumer, not required in the answer" in problems
    assert any("'shareable' was unexpected" in p or "can_share" in p for p in problems)


def test_a_lookup_moved_elsewhere_fails() -> None:
    document = Contract.read(USERS_SVC_DOCUMENT).document
    moved = copy.deepcopy(document)
    moved["paths"]["/api/v1/users/find"] = moved["paths"].pop(LOOKUP_PATH)

    with pytest.raises(AssertionError, match="no POST /api/v1/users/lookup"):
        lookup_problems(Contract(moved))
