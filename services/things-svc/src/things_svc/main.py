from common.app import create_app
from things_svc.settings import get_settings

app = create_app(get_settings(), domains="things_svc.domains")
