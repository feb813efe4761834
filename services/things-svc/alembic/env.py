from common.discovery import load_models
from common.migrations import run_migrations
from things_svc.database import Base
from things_svc.settings import get_settings

load_models("things_svc.domains")
run_migrations(database_url=get_settings().database_url, target_metadata=Base.metadata)
