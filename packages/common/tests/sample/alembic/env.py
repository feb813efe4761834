from sample_app.database import Base
from sample_app.settings import SampleSettings

from common.discovery import load_models
from common.migrations import run_migrations

load_models("sample_app.domains")
run_migrations(database_url=SampleSettings().database_url, target_metadata=Base.metadata)
