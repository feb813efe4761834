"""Settings of a service that accepts access tokens: data only.

What a service makes of them (a `RemoteJwks`, users-svc's own key ring) is the service's choice,
made where it builds its app: settings hold no behaviour.
"""

from typing import ClassVar, Self

from pydantic import Field, model_validator

from common.settings import AppBaseSettings, SettingsError

# Development defaults: users-svc on its usual port. Production must name its own.
DEVELOPMENT_ISSUER = "http://127.0.0.1:8001"
# Where users-svc publishes its public keys: at the root of its origin (RFC 8615).
JWKS_PATH = "/.well-known/jwks.json"
DEVELOPMENT_JWKS_URL = f"{DEVELOPMENT_ISSUER}{JWKS_PATH}"
DEFAULT_AUDIENCE = "api"


class TokenSettings(AppBaseSettings):
    """Who issues the tokens a service accepts, and for whom."""

    required_in_production: ClassVar[tuple[str, ...]] = (
        "token_issuer",
        "token_audience",
    )

    token_issuer: str = Field(
        default=DEVELOPMENT_ISSUER,
        description="The `iss` access tokens must carry (users-svc's URL)",
    )
    token_audience: str = Field(
        default=DEFAULT_AUDIENCE, description="The `aud` access tokens must carry"
    )
    token_leeway_seconds: float = Field(
        default=30,
        ge=0,
        le=300,
        description="Clock skew tolerated on exp, nbf and iat between users-svc and this service",
    )
    token_cache_size: int = Field(
        default=4096,
        ge=0,
        le=1_000_000,
        description="Verified tokens remembered until they expire, each signature checked once "
        "(0: none)",
    )


class JwksSettings(TokenSettings):
    """A service that fetches users-svc's public keys (JWKS) over HTTP."""

    required_in_production: ClassVar[tuple[str, ...]] = ("jwks_url",)

    jwks_url: str = Field(
        default=DEVELOPMENT_JWKS_URL, description="users-svc's public keys (http:// or https://)"
    )
    jwks_cache_seconds: float = Field(
        default=300,
        gt=0,
        description="How long fetched keys are trusted: a key users-svc stops publishing stops "
        "verifying after at most this long",
    )
    jwks_refetch_interval_seconds: float = Field(
        default=10, gt=0, description="The shortest time between two fetches, whatever arrives"
    )
    jwks_timeout_seconds: float = Field(default=3, gt=0, description="Longest wait for the keys")
    # An hour rides out a users-svc restart or a bad deploy; beyond it, users-svc has been
    # unreachable for four access-token lifetimes, so what still verifies is a key it may have
    # withdrawn (a leaked one), shown by an attacker who keeps the JWKS out of reach.
    jwks_max_stale_seconds: float = Field(
        default=3600,
        gt=0,
        description="While the keys cannot be fetched, how long after their last fetch they "
        "still verify; past it, requests that need a token answer 503 with Retry-After (at "
        "least the cache lifetime above)",
    )

    @model_validator(mode="after")
    def _max_stale_covers_the_cache(self) -> Self:
        if self.jwks_max_stale_seconds < self.jwks_cache_seconds:
            raise SettingsError(
                f"{self._env_name('jwks_max_stale_seconds')} must be at least "
                f"{self._env_name('jwks_cache_seconds')}: keys are not fetched again before "
                "their cache lifetime ends"
            )
        return self
