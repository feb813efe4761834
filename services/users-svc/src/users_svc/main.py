from common.app import create_app
from users_svc.settings import get_settings

app = create_app(get_settings(), domains="users_svc.domains")
