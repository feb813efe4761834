from pathlib import Path

import pytest
from pydantic import ValidationError
from pydantic_settings import SettingsConfigDict

from common.auth import JwksSettings
from common.events import EventSettings
from common.settings import AppBaseSettings, Pooler, SettingsError


class ShopSettings(AppBaseSettings):
    model_config = SettingsConfigDict(env_prefix="SHOP_", env_file=None)

    service_name: str = "shop"
    database_url: str = "postgresql+asyncpg://shop:shop@127.0.0.1:5432/shop"


def test_development_is_the_default_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ENVIRONMENT", raising=False)

    settings = ShopSettings()

    assert settings.environment == "development"
    assert settings.docs_enabled is True


def test_environment_variable_picks_the_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVIRONMENT", "test")
    monkeypatch.setenv("SHOP_LOG_LEVEL", "DEBUG")

    settings = ShopSettings()

    assert settings.environment == "test"
    assert settings.log_level == "DEBUG"  # explicit values win over the profile


def test_production_refuses_the_default_database_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")

    with pytest.raises(ValidationError, match="SHOP_DATABASE_URL must be set explicitly"):
        ShopSettings()


@pytest.mark.parametrize("password", ["", "postgres", "change-me", "password"])
def test_production_refuses_placeholder_passwords(
    monkeypatch: pytest.MonkeyPatch, password: str
) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("SHOP_DATABASE_URL", f"postgresql+asyncpg://shop:{password}@db/shop")

    with pytest.raises(ValidationError, match="placeholder password"):
        ShopSettings()


def test_production_accepts_real_settings_and_hides_docs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("SHOP_DATABASE_URL", "postgresql+asyncpg://shop:Zq8-long-secret@db/shop")

    settings = ShopSettings()

    assert settings.is_production
    assert settings.docs_enabled is False


def test_unknown_environment_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVIRONMENT", "staging-ish")

    with pytest.raises(ValidationError, match="ENVIRONMENT"):
        ShopSettings()


def test_subclass_checks_join_the_production_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    class StrictShopSettings(ShopSettings):
        def production_problems(self) -> list[str]:
            return ["the shop is closed"]

    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("SHOP_DATABASE_URL", "postgresql+asyncpg://shop:Zq8-long-secret@db/shop")

    with pytest.raises(ValidationError, match="the shop is closed"):
        StrictShopSettings()


def test_settings_error_is_a_value_error() -> None:
    assert issubclass(SettingsError, ValueError)


class GatedShopSettings(JwksSettings):
    model_config = SettingsConfigDict(env_prefix="SHOP_", env_file=None)

    service_name: str = "shop"
    database_url: str = "postgresql+asyncpg://shop:shop@127.0.0.1:5432/shop"


def test_production_requires_the_token_issuer_audience_and_jwks_url(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("SHOP_DATABASE_URL", "postgresql+asyncpg://shop:s3cret-Pa55@db/shop")

    with pytest.raises(ValidationError) as refused:
        GatedShopSettings()
    for name in ("SHOP_TOKEN_ISSUER", "SHOP_TOKEN_AUDIENCE", "SHOP_JWKS_URL"):
        assert f"{name} must be set explicitly" in str(refused.value)

    monkeypatch.setenv("SHOP_TOKEN_ISSUER", "https://users.example.com")
    monkeypatch.setenv("SHOP_TOKEN_AUDIENCE", "https://api.example.com")
    monkeypatch.setenv("SHOP_JWKS_URL", "https://users.example.com/.well-known/jwks.json")
    assert GatedShopSettings().jwks_url.startswith("https://")


def test_a_plain_database_url_is_refused_with_the_name_to_use(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://shop:x@db/shop")

    with pytest.raises(ValidationError, match="reads its database from SHOP_DATABASE_URL"):
        ShopSettings()

    # Once the service's own variable is set, the other one is someone else's business.
    monkeypatch.setenv("SHOP_DATABASE_URL", "postgresql+asyncpg://shop:y@db/shop")
    assert ShopSettings().database_url.endswith("@db/shop")


def test_a_plain_database_url_in_the_env_file_is_refused_too(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    env_file = tmp_path / ".env"
    env_file.write_text("DATABASE_URL=postgresql+asyncpg://shop:x@db/shop\n")

    class FromFile(ShopSettings):
        model_config = SettingsConfigDict(env_file=env_file)

    with pytest.raises(ValidationError, match="SHOP_DATABASE_URL"):
        FromFile()


@pytest.mark.parametrize("scheme", ["postgres", "postgresql", "postgresql+asyncpg"])
def test_the_urls_a_managed_postgres_gives_are_read_with_the_asyncpg_driver(
    monkeypatch: pytest.MonkeyPatch, scheme: str
) -> None:
    monkeypatch.setenv("SHOP_DATABASE_URL", f"{scheme}://shop:s3cret@db.example.com:6543/shop")

    settings = ShopSettings()

    assert settings.database_url == "postgresql+asyncpg://shop:s3cret@db.example.com:6543/shop"


@pytest.mark.parametrize(
    ("url", "given"),
    [
        ("mysql://shop:s3cret@db/shop", "mysql://"),
        ("postgresql+psycopg://shop:s3cret@db/shop", "postgresql+psycopg://"),
        ("shop:s3cret@db/shop", "a value without a scheme"),
    ],
)
def test_any_other_scheme_is_refused_in_one_line_without_the_password(
    monkeypatch: pytest.MonkeyPatch, url: str, given: str
) -> None:
    monkeypatch.setenv("SHOP_DATABASE_URL", url)

    with pytest.raises(ValidationError) as refused:
        ShopSettings()

    (error,) = refused.value.errors()
    assert error["msg"] == (
        f"Value error, SHOP_DATABASE_URL is {given}: give a Postgres URL, "
        "postgresql+asyncpg://, postgresql:// or postgres://"
    )
    assert "s3cret" not in str(refused.value)


def test_debug_is_refused_in_production(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("SHOP_DATABASE_URL", "postgresql+asyncpg://shop:s3cret-Pa55@db/shop")
    monkeypatch.setenv("SHOP_DEBUG", "true")

    with pytest.raises(ValidationError, match="SHOP_DEBUG must be off in production"):
        ShopSettings()


def test_production_refuses_a_password_equal_to_the_user(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("SHOP_DATABASE_URL", "postgresql+asyncpg://shop:shop@db/shop")

    with pytest.raises(ValidationError, match="placeholder password"):
        ShopSettings()


@pytest.mark.parametrize(
    ("value", "origins"),
    [
        ("https://a.example, https://b.example", ["https://a.example", "https://b.example"]),
        ('["https://a.example"]', ["https://a.example"]),
        ("", []),
    ],
)
def test_cors_origins_read_as_a_list_or_json(
    monkeypatch: pytest.MonkeyPatch, value: str, origins: list[str]
) -> None:
    monkeypatch.setenv("SHOP_CORS_ORIGINS", value)

    assert ShopSettings().cors_origins == origins


def test_a_wildcard_origin_with_credentials_is_refused_at_startup(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SHOP_CORS_ORIGINS", "*")
    monkeypatch.setenv("SHOP_CORS_ALLOW_CREDENTIALS", "true")

    with pytest.raises(ValidationError, match="may not be \\* while SHOP_CORS_ALLOW_CREDENTIALS"):
        ShopSettings()


def test_the_pooler_is_none_unless_pgbouncer_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SHOP_DB_POOLER", raising=False)
    assert ShopSettings().db_pooler is Pooler.NONE

    monkeypatch.setenv("SHOP_DB_POOLER", "pgbouncer")
    assert ShopSettings().db_pooler is Pooler.PGBOUNCER

    monkeypatch.setenv("SHOP_DB_POOLER", "pgpool")
    with pytest.raises(ValidationError, match="db_pooler"):
        ShopSettings()


class EventfulShopSettings(JwksSettings, EventSettings):
    """Lists no production checks of its own: it inherits those of every class it builds on."""

    model_config = SettingsConfigDict(env_prefix="SHOP_", env_file=None)

    service_name: str = "shop"
    database_url: str = "postgresql+asyncpg://shop:shop@127.0.0.1:5432/shop"
    coupon_service_url: str = "http://127.0.0.1:9999"
    required_in_production = ("coupon_service_url",)


def test_a_settings_class_inherits_every_production_check(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")

    with pytest.raises(ValidationError) as refused:
        EventfulShopSettings()

    for name in (
        "SHOP_DATABASE_URL",
        "SHOP_TOKEN_ISSUER",
        "SHOP_TOKEN_AUDIENCE",
        "SHOP_JWKS_URL",
        "SHOP_NATS_URL",
        "SHOP_NATS_USER",
        "SHOP_NATS_PASSWORD",
        "SHOP_COUPON_SERVICE_URL",
    ):
        assert f"{name} must be set explicitly" in str(refused.value)


def test_a_read_replica_url_is_read_and_refused_like_the_database_url(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SHOP_READ_DATABASE_URL", "postgres://shop:pw@replica/shop")
    assert ShopSettings().read_database_url == "postgresql+asyncpg://shop:pw@replica/shop"

    monkeypatch.setenv("SHOP_READ_DATABASE_URL", "mysql://shop:pw@replica/shop")
    with pytest.raises(ValidationError, match="SHOP_READ_DATABASE_URL is mysql://"):
        ShopSettings()

    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("SHOP_DATABASE_URL", "postgresql+asyncpg://shop:s3cret-Pa55@db/shop")
    monkeypatch.setenv("SHOP_READ_DATABASE_URL", "postgresql+asyncpg://shop:postgres@replica/shop")
    with pytest.raises(
        ValidationError, match="SHOP_READ_DATABASE_URL uses an empty or placeholder"
    ):
        ShopSettings()


@pytest.mark.parametrize("value", ["10.244.0.0/16, 127.0.0.1", '["10.244.0.0/16", "127.0.0.1"]'])
def test_trusted_proxies_are_networks_read_without_prefix(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("TRUSTED_PROXIES", value)

    assert [str(network) for network in ShopSettings().trusted_proxies] == [
        "10.244.0.0/16",
        "127.0.0.1/32",
    ]


def test_no_proxy_is_trusted_by_default_and_a_wildcard_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("TRUSTED_PROXIES", raising=False)
    assert ShopSettings().trusted_proxies == []

    monkeypatch.setenv("TRUSTED_PROXIES", "*")
    with pytest.raises(ValidationError, match="not a valid IPv4 or IPv6 network"):
        ShopSettings()


def test_keys_may_not_be_trusted_for_less_than_their_cache_lifetime(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SHOP_JWKS_CACHE_SECONDS", "300")
    monkeypatch.setenv("SHOP_JWKS_MAX_STALE_SECONDS", "60")

    with pytest.raises(ValidationError, match="SHOP_JWKS_MAX_STALE_SECONDS must be at least"):
        GatedShopSettings()
