import pytest
from pydantic import ValidationError
from pydantic_settings import SettingsConfigDict

from common.auth import JwksSettings
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


def test_the_pooler_is_none_unless_pgbouncer_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SHOP_DB_POOLER", raising=False)
    assert ShopSettings().db_pooler is Pooler.NONE

    monkeypatch.setenv("SHOP_DB_POOLER", "pgbouncer")
    assert ShopSettings().db_pooler is Pooler.PGBOUNCER

    monkeypatch.setenv("SHOP_DB_POOLER", "pgpool")
    with pytest.raises(ValidationError, match="db_pooler"):
        ShopSettings()
