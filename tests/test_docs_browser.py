"""Each service's /docs in a real headless Chromium, with every request off this machine refused.

Run with `make test-browser`; it needs Debian's chromium (`.ci/run` installs it). Screenshots go to
test-artifacts/ (git-ignored).
"""

import os
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.async_api import Browser, Route, async_playwright

from stack_runner import StackRunner
from stack_services import discover_services

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ZERO_WIDTH_SPACE = "\u200b"  # Swagger UI breaks long paths with it
METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: apt-get install chromium (or set CHROMIUM)"
    async with async_playwright() as playwright:
        # Debian's Chromium: Playwright never downloads a browser of its own here.
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            yield browser
        finally:
            await browser.close()


@pytest.mark.parametrize("name", [service.name for service in discover_services({})])
async def test_docs_render_offline_with_every_operation(
    running_stack: StackRunner, browser: Browser, name: str
) -> None:
    service = running_stack.service(name)
    schema = httpx.get(f"{service.base_url}/openapi.json").json()
    expected = sorted(
        f"{method.upper()} {path}"
        for path, operations in schema["paths"].items()
        for method in operations
        if method in METHODS
    )
    refused: list[str] = []

    async def loopback_only(route: Route) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            await route.continue_()
        else:
            refused.append(route.request.url)
            await route.abort()

    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    try:
        await page.route("**/*", loopback_only)
        await page.goto(f"{service.base_url}/docs")
        await page.locator(".opblock").first.wait_for(timeout=15_000)
        listed = sorted(
            f"{method.strip()} {path.replace(ZERO_WIDTH_SPACE, '').strip()}"
            for method, path in zip(
                await page.locator(".opblock .opblock-summary-method").all_inner_texts(),
                await page.locator(".opblock .opblock-summary-path").all_inner_texts(),
                strict=True,
            )
        )
        title = await page.locator(".information-container .title").inner_text()
        authorize = await page.locator(".auth-wrapper .authorize").count()
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=ARTIFACTS / f"docs-{name}.png", full_page=True)
    finally:
        await page.close()

    assert refused == []
    assert name in title
    assert listed == expected
    # The Authorize button comes with a security scheme (auth): required as soon as one exists.
    if schema.get("components", {}).get("securitySchemes"):
        assert authorize == 1
    else:
        assert authorize == 0
