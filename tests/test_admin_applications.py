"""Applications in the admin API over real HTTP: create, list, show, update, rotate, destroy,
all audited; `Integration.application` is the application object; bad input is BAD_USER_INPUT."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from gateway import models
from gateway.admin import applications, service
from gateway.db import engine_for, write_transaction
from gateway.settings import Settings
from gateway.vault import generate_key
from tests.admin_factories import Orgs, graphql, make_admin_key, make_orgs_in
from tests.conftest import LiveServer, run_db

MISSING = "00000000-0000-4000-8000-000000000000"
APPLICATION = "id name description permissions { slug } integrations { id } createdDate"


def _settings(url: str) -> Settings:
    return Settings(
        database_url=url, secret_key=None if url.startswith("sqlite") else generate_key()
    )


@pytest.fixture
def server(any_db_url: str) -> Iterator[LiveServer]:
    with LiveServer(_settings(any_db_url)) as running:
        yield running


@pytest.fixture
def orgs(any_db_url: str) -> Orgs:
    return run_db(any_db_url, make_orgs_in)


@pytest.fixture
def admin(server: LiveServer, any_db_url: str) -> Iterator[httpx.Client]:
    with server.client(make_admin_key(any_db_url).key) as client:
        yield client


def ok(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert response.status_code == 200, body
    assert "errors" not in body, body["errors"]
    data: dict[str, Any] = body["data"]
    return data


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert body.get("data") is None, body
    (error,) = body["errors"]
    found: dict[str, Any] = error
    return found


CREATE = f"""mutation($input: CreateApplicationInput!) {{
    createApplication(input: $input) {{ key application {{ {APPLICATION} }} }} }}"""


def create(admin: httpx.Client, **input: Any) -> dict[str, Any]:
    created: dict[str, Any] = ok(graphql(admin, CREATE, {"input": input}))["createApplication"]
    return created


def test_the_whole_lifecycle_is_audited_with_the_admin_key(admin: httpx.Client, orgs: Orgs) -> None:
    created = create(
        admin,
        name="Gradebook",
        description="Grades from the SIS",
        permissions=["people:read", "enrollments:read"],
    )
    app = created["application"]
    assert app["permissions"] == [{"slug": "people:read"}, {"slug": "enrollments:read"}]
    assert app["description"] == "Grades from the SIS"
    assert len(created["key"]) >= 43
    listed = ok(graphql(admin, f"{{ applications {{ {APPLICATION} }} }}"))["applications"]
    assert listed == [app]
    integration = ok(
        graphql(
            admin,
            """mutation($input: CreateIntegrationInput!) { createIntegration(input: $input) {
                integration { id application { id name permissions { slug } } } } }""",
            {"input": {"sourceId": orgs.source, "scope": "ALL", "applicationId": app["id"]}},
        )
    )["createIntegration"]["integration"]
    assert integration["application"] == {
        "id": app["id"],
        "name": "Gradebook",
        "permissions": app["permissions"],
    }
    updated = ok(
        graphql(
            admin,
            f"""mutation($id: ID!, $input: UpdateApplicationInput!) {{
                updateApplication(id: $id, input: $input) {{ {APPLICATION} }} }}""",
            {"id": app["id"], "input": {"permissions": ["people:read"], "description": ""}},
        )
    )["updateApplication"]
    assert updated["permissions"] == [{"slug": "people:read"}]
    assert updated["description"] is None
    assert updated["integrations"] == [{"id": integration["id"]}]
    shown = ok(
        graphql(
            admin,
            "query($id: ID!) { application(id: $id) { integrations { permissions { slug } } } }",
            {"id": app["id"]},
        )
    )["application"]
    # The integration keeps what it was granted until an administrator changes it.
    assert shown["integrations"] == [
        {"permissions": [{"slug": "people:read"}, {"slug": "enrollments:read"}]}
    ]
    rotated = ok(
        graphql(
            admin,
            "mutation($id: ID!) { rotateApplicationKey(id: $id) { key } }",
            {"id": app["id"]},
        )
    )["rotateApplicationKey"]
    assert rotated["key"] != created["key"]
    ok(
        graphql(
            admin,
            "mutation($id: ID!) { destroyApplication(id: $id, withIntegrations: true) { "
            "integrations { id } } }",
            {"id": app["id"]},
        )
    )
    assert ok(graphql(admin, "{ applications { id } }")) == {"applications": []}
    log = ok(
        graphql(
            admin,
            "{ auditLog(first: 20) { entries { action subjectId adminKey { name } after } } }",
        )
    )["auditLog"]["entries"]
    about_app = [(e["action"], e["adminKey"]["name"]) for e in log if e["subjectId"] == app["id"]]
    assert about_app == [
        ("application.destroy", "ops"),
        ("application.rotate_key", "ops"),
        ("application.update", "ops"),
        ("application.create", "ops"),
    ]
    for entry in log:
        assert created["key"] not in str(entry["after"])
        assert rotated["key"] not in str(entry["after"])


@pytest.mark.parametrize(
    ("query", "variables", "message"),
    [
        pytest.param(CREATE, {"input": {"name": ""}}, "the application name is empty", id="empty"),
        pytest.param(
            CREATE,
            {"input": {"name": "G", "permissions": ["grades:read"]}},
            "unknown permission 'grades:read'",
            id="unknown permission",
        ),
        pytest.param(
            CREATE,
            {"input": {"name": "G", "description": "d" * 2001}},
            "at most 2,000 are allowed",
            id="long description",
        ),
        pytest.param(
            "mutation($id: ID!) { rotateApplicationKey(id: $id) { key } }",
            {"id": MISSING},
            f"application {MISSING} does not exist; the `applications` query lists them",
            id="unknown application",
        ),
        pytest.param(
            "mutation($id: ID!) { destroyApplication(id: $id) { application { id } } }",
            {"id": "gradebook"},
            "application 'gradebook' is not a UUID",
            id="not a UUID",
        ),
    ],
)
def test_bad_input_is_bad_user_input_and_writes_nothing(
    admin: httpx.Client, any_db_url: str, query: str, variables: dict[str, Any], message: str
) -> None:
    error = error_of(graphql(admin, query, variables))
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert message in error["message"]

    async def count(engine: Any) -> int:
        async with engine.connect() as conn:
            table = models.table_of(models.Application)
            return int(
                (await conn.execute(sa.select(sa.func.count()).select_from(table))).scalar_one()
            )

    assert run_db(any_db_url, count) == 0


def test_an_integration_without_an_application_has_none(admin: httpx.Client, orgs: Orgs) -> None:
    integration = ok(
        graphql(
            admin,
            """mutation($input: CreateIntegrationInput!) { createIntegration(input: $input) {
                integration { application { id } } } }""",
            {"input": {"sourceId": orgs.source, "scope": "ALL", "permissions": ["people:read"]}},
        )
    )["createIntegration"]["integration"]
    assert integration == {"application": None}


def test_a_grant_locks_the_application_until_it_commits(any_db_url: str, orgs: Orgs) -> None:
    """What a grant read of the application's request cannot change before the grant commits:
    an update that stops requesting a permission waits for it (on SQLite every write
    transaction waits for the one before; on PostgreSQL the row lock makes it wait)."""
    done: list[str] = []

    async def race(engine: Any) -> list[str]:
        async with write_transaction(engine) as conn:
            app = await applications.create_application(
                conn, "G", permissions=["people:read", "agents:read"]
            )
        app_id = app.application.id

        async def grant() -> str:
            async with write_transaction(engine) as conn:
                # The step of create_integration that reads the request (before any write).
                specs = await service._granted_to_application(
                    conn, app_id, service.resolve_permissions(["agents:read"]), ()
                )
                await asyncio.sleep(0.3)  # a slow grant: the update tries meanwhile
                done.append("grant")
            return ",".join(s.slug for s in specs)

        async def narrow() -> str:
            await asyncio.sleep(0.1)
            async with write_transaction(engine) as conn:
                after = await applications.update_application(
                    conn, app_id, applications.ApplicationChanges(permissions=["people:read"])
                )
            done.append("narrow")
            return ",".join(after.permissions)

        return list(await asyncio.gather(grant(), narrow()))

    async def runner() -> list[str]:
        async with engine_for(any_db_url) as engine:
            return await race(engine)

    assert asyncio.run(runner()) == ["agents:read", "people:read"]
    assert done == ["grant", "narrow"]


def test_without_a_secret_key_on_postgresql_a_grant_says_what_to_set(
    any_db_url: str, orgs: Orgs
) -> None:
    if any_db_url.startswith("sqlite"):
        pytest.skip("SQLite makes its key file beside the database")
    with (
        LiveServer(
            Settings(database_url=any_db_url, secret_key=None, secret_key_file=None)
        ) as server,
        server.client(make_admin_key(any_db_url).key) as admin,
    ):
        app = create(admin, name="G", permissions=["people:read"])["application"]
        error = error_of(
            graphql(
                admin,
                """mutation($input: CreateIntegrationInput!) {
                    createIntegration(input: $input) { accessToken } }""",
                {"input": {"sourceId": orgs.source, "scope": "ALL", "applicationId": app["id"]}},
            )
        )
        listed = ok(graphql(admin, "{ integrations { id } }"))
    assert error["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    assert "set GATEWAY_SECRET_KEY (or GATEWAY_SECRET_KEY_FILE)" in error["message"]
    assert listed == {"integrations": []}
