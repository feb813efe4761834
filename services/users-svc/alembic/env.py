from common.discovery import load_models
from common.migrations import run_migrations
from users_svc.database import Base
from users_svc.settings import get_settings

load_models("users_svc.domains")
run_migrations(database_url=get_settings().database_url, target_metadata=Base.metadata)
