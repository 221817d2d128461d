"""The GraphiQL pages (gateway.graphiql) in a real browser with no internet: Debian's Chromium,
driven by Playwright, against a real server on loopback, every request off this machine aborted.

A person's steps: the page loads, the token (or the admin key) goes into the Headers pane, the
query runs, the result pane shows the data the API answers. Screenshots of each step are
written to $GATEWAY_TEST_SCREENSHOTS (`bash .ci/run` prints their paths), else to a temporary
folder. Skipped when no Chromium is installed, unless GATEWAY_TEST_REQUIRE_BROWSER is set (as
`.ci/run` does, after installing it): then a missing browser fails the run.
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page, Request, Route, sync_playwright
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway import graphiql
from gateway.access.grant import Scope
from gateway.admin import applications, records, service
from gateway.db import write_transaction
from gateway.settings import Settings
from gateway.vault import Vault
from tests.admin_factories import make_admin_key
from tests.conftest import LiveServer, run_db
from tests.factories import make_integration, make_source

CHROMIUM = os.environ.get("GATEWAY_TEST_CHROMIUM") or shutil.which("chromium")
REQUIRED = bool(os.environ.get("GATEWAY_TEST_REQUIRE_BROWSER"))
# As the machine's own check runs it: as root (no sandbox), no GPU, and none of Chromium's own
# background traffic (updates, sync, safe browsing), which a closed network refuses anyway.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Generous bounds on waiting for the page; a test never asserts how long anything took.
WAIT_MS = 30_000

pytestmark = pytest.mark.skipif(
    CHROMIUM is None and not REQUIRED,
    reason="no Chromium installed (`apt-get install chromium`; `bash .ci/run` installs it)",
)


@dataclass
class World:
    server: LiveServer
    token: str
    admin_key: str
    application_key: str
    application_token: str
    screenshots: Path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('browser') / 'gateway.db'}"

    async def build(engine: AsyncEngine) -> str:
        graph = await make_source(engine, 7, "Browser", people=20, enrollments=20)
        return await make_integration(engine, graph.source.id)

    token = run_db(url, build)
    admin_key = make_admin_key(url, "browser").key
    application_key, application_token = run_db(url, lambda engine: make_application(engine, url))
    folder = os.environ.get("GATEWAY_TEST_SCREENSHOTS")
    screenshots = Path(folder) if folder else tmp_path_factory.mktemp("screenshots")
    screenshots.mkdir(parents=True, exist_ok=True)
    with LiveServer(Settings(database_url=url, rate_limit_burst=100_000)) as server:
        yield World(server, token, admin_key, application_key, application_token, screenshots)


async def make_application(engine: AsyncEngine, url: str) -> tuple[str, str]:
    """An application with an integration made for it: its key and the integration's token."""
    async with write_transaction(engine) as conn:
        (source,) = await records.load_sources(conn)
        created = await applications.create_application(
            conn, "Browser app", permissions=["people:read"]
        )
        integration = await service.create_integration(
            conn,
            source_id=source.id,
            scope=Scope.ALL,
            permissions=(),
            application_id=created.application.id,
            vault=Vault.from_settings(Settings(database_url=url)),
        )
    return created.key, integration.token


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if CHROMIUM is None:
        pytest.fail("GATEWAY_TEST_REQUIRE_BROWSER is set but no Chromium is installed")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass
class Visit:
    """A page in a fresh browser context: what it asked for off this machine (aborted), the
    CSP violations and script errors it reported, and the GraphQL requests it sent."""

    page: Page
    blocked: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    posts: list[Request] = field(default_factory=list)

    def csp_violations(self) -> list[str]:
        found: list[str] = self.page.evaluate("window.cspViolations")
        return found


@pytest.fixture
def visit(browser: Browser) -> Iterator[Visit]:
    # Tall enough for the result pane to show the whole default answer in a screenshot.
    context = browser.new_context(viewport={"width": 1400, "height": 1500})
    page = context.new_page()
    seen = Visit(page)

    def only_loopback(route: Route) -> None:
        if is_loopback(route.request.url):
            route.continue_()
        else:
            seen.blocked.append(route.request.url)
            route.abort("blockedbyclient")

    context.route("**/*", only_loopback)
    page.on("pageerror", lambda error: seen.errors.append(str(error)))
    page.on(
        "request", lambda request: seen.posts.append(request) if request.method == "POST" else None
    )
    page.add_init_script(
        "window.cspViolations = [];"
        "document.addEventListener('securitypolicyviolation', (event) =>"
        " window.cspViolations.push(event.violatedDirective + ' ' + event.blockedURI));"
    )
    yield seen
    context.close()


def editor_text(page: Page, selector: str) -> str:
    """The text of the CodeMirror editor at `selector` (GraphiQL's editors are CodeMirror 5)."""
    text: str = page.locator(selector).evaluate("(element) => element.CodeMirror.getValue()")
    return text


HEADERS_EDITOR = 'section[aria-label="Headers"] .CodeMirror:visible'
RESULT_EDITOR = 'section[aria-label="Result Window"] .CodeMirror'


def run_in_graphiql(
    world: World, visit: Visit, path: str, credential: str, name: str
) -> dict[str, Any]:
    """Load the page at `path`, put `credential` in its Headers pane, run the default query and
    return what the result pane shows (parsed), taking a screenshot of each step."""
    page = visit.page
    page.goto(world.server.url + path)
    page.wait_for_selector(".graphiql-container", timeout=WAIT_MS)
    page.wait_for_selector(HEADERS_EDITOR, timeout=WAIT_MS)
    page.screenshot(path=world.screenshots / f"{name}-1-loaded.png")

    headers = json.dumps({"Authorization": f"Bearer {credential}"}, indent=2)
    page.locator(HEADERS_EDITOR).click()
    page.keyboard.press("Control+A")
    page.keyboard.insert_text(headers)
    assert editor_text(page, HEADERS_EDITOR) == headers
    page.screenshot(path=world.screenshots / f"{name}-2-headers.png")

    page.locator(".graphiql-execute-button").click()
    page.wait_for_function(
        f"() => document.querySelector({json.dumps(RESULT_EDITOR)}).CodeMirror.getValue()"
        ".includes('\"data\"')",
        timeout=WAIT_MS,
    )
    page.screenshot(path=world.screenshots / f"{name}-3-result.png")
    shown: dict[str, Any] = json.loads(editor_text(page, RESULT_EDITOR))

    # The query went to this page's own URL with the token from the Headers pane.
    (sent,) = [request for request in visit.posts if urlsplit(request.url).path == path][-1:]
    assert sent.headers["authorization"] == f"Bearer {credential}"
    return shown


def assert_offline_and_clean(visit: Visit) -> None:
    assert visit.blocked == []  # nothing was asked of any address off this machine
    assert visit.errors == []
    assert visit.csp_violations() == []


def test_graphiql_runs_a_query_with_the_token_from_the_headers_pane(
    world: World, visit: Visit
) -> None:
    shown = run_in_graphiql(world, visit, "/graphql", world.token, "graph")
    status, answered = world.server.graphql(graphiql.GRAPH_QUERY, world.token)
    assert status == 200
    assert answered["data"]["integration"]["status"] == "ACTIVE"
    assert answered["data"]["schools"]["nodes"]
    assert shown == answered  # the result pane shows exactly what the API answers

    # GraphiQL's dialogs insert a style of their own; the CSP allows it by its hash.
    visit.page.get_by_label("Open settings dialog").click()
    visit.page.get_by_role("dialog").wait_for(timeout=WAIT_MS)
    assert visit.page.locator("style").count() >= 2  # the page's own, and GraphiQL's
    visit.page.screenshot(path=world.screenshots / "graph-4-settings-dialog.png")
    assert_offline_and_clean(visit)


def test_the_admin_graphiql_runs_a_query_with_the_admin_key(world: World, visit: Visit) -> None:
    shown = run_in_graphiql(world, visit, "/admin/graphql", world.admin_key, "admin")
    with world.server.client(world.admin_key) as http:
        answered = http.post("/admin/graphql", json={"query": graphiql.ADMIN_QUERY}).json()
    assert answered["data"]["adminKey"] == {"name": "browser"}
    assert [source["name"] for source in answered["data"]["sources"]] == ["Browser"]
    assert shown == answered
    assert_offline_and_clean(visit)


def test_the_meta_graphiql_runs_a_query_with_the_application_key(
    world: World, visit: Visit
) -> None:
    shown = run_in_graphiql(world, visit, "/meta/graphql", world.application_key, "meta")
    with world.server.client(world.application_key) as http:
        answered = http.post("/meta/graphql", json={"query": graphiql.META_QUERY}).json()
    assert answered["data"]["application"]["name"] == "Browser app"
    (node,) = answered["data"]["integrations"]["nodes"]
    assert node["accessToken"] == world.application_token
    assert shown == answered
    assert_offline_and_clean(visit)


def test_a_bundle_that_does_not_load_is_reported_in_words(world: World, visit: Visit) -> None:
    page = visit.page
    page.route("**/graphiql.min.js", lambda route: route.abort("blockedbyclient"))
    page.goto(world.server.url + "/graphql")
    page.wait_for_selector("#graphiql.failed", timeout=WAIT_MS)
    page.screenshot(path=world.screenshots / "graph-5-bundle-blocked.png")
    text = page.inner_text("#graphiql")
    assert "GraphiQL could not start" in text
    assert "The browser could not load graphiql." in text
    assert f"{world.server.url}/graphiql/{graphiql.GRAPHIQL_JS.path}" in text
    assert "Loading" not in text
    assert visit.blocked == []
