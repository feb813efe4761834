"""`/docs` works with no internet access: every asset the page loads is served by the app itself."""

import re

from fastapi import FastAPI
from httpx import AsyncClient

from common.app import create_app
from common.settings import AppBaseSettings
from common.testing.plugin import open_client
from common.testing.service import ServiceUnderTest


async def test_docs_page_loads_only_local_assets(client: AsyncClient) -> None:
    response = await client.get("/docs")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert "http://" not in page
    assert "https://" not in page  # no CDN, no remote favicon
    assets = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert sorted(assets) == [
        "/docs/assets/favicon.png",
        "/docs/assets/swagger-ui-bundle.js",
        "/docs/assets/swagger-ui.css",
    ]
    for asset in assets:
        served = await client.get(asset)
        assert served.status_code == 200, asset
        assert len(served.content) > 1000, asset


async def test_docs_page_points_at_the_schema_and_the_oauth2_redirect(client: AsyncClient) -> None:
    page = (await client.get("/docs")).text

    assert "url: '/openapi.json'" in page
    assert (await client.get("/openapi.json")).status_code == 200
    redirect = await client.get("/docs/oauth2-redirect")
    assert redirect.status_code == 200
    assert "oauth2" in redirect.text


def test_docs_are_left_out_of_the_schema(app: FastAPI) -> None:
    assert not [path for path in app.openapi()["paths"] if path.startswith("/docs")]


async def test_no_docs_and_no_assets_when_docs_are_disabled(
    service: ServiceUnderTest, settings: AppBaseSettings
) -> None:
    hidden = create_app(
        settings.model_copy(update={"docs_enabled": False}), domains=service.domains
    )

    async with open_client(hidden) as client:
        for path in ("/docs", "/docs/assets/swagger-ui-bundle.js", "/openapi.json"):
            response = await client.get(path)
            assert response.status_code == 404, path
