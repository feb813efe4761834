from pydantic_settings import SettingsConfigDict

from common.settings import AppBaseSettings


class SampleSettings(AppBaseSettings):
    model_config = SettingsConfigDict(env_prefix="SAMPLE_")

    service_name: str = "sample"
    database_url: str = "postgresql+asyncpg://sample:sample@127.0.0.1:5432/sample"
