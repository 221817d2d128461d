"""The issue's end-to-end story over real HTTP: the admin API changes what /graphql serves,
from the very next request, and every step leaves an audit entry."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from gateway.settings import Settings
from tests.admin_factories import add_orgs, graphql, make_admin_key
from tests.conftest import LiveServer, run_db

SCHOOLS = "{ schools { nodes { id } } }"


@pytest.fixture
def server(any_db_url: str) -> Iterator[LiveServer]:
    with LiveServer(Settings(database_url=any_db_url)) as running:
        yield running


def admin_call(admin: httpx.Client, query: str, variables: dict[str, Any] | None = None) -> Any:
    body = graphql(admin, query, variables).json()
    assert "errors" not in body, body["errors"]
    return body["data"]


def graph(server: LiveServer, token: str, query: str = SCHOOLS) -> httpx.Response:
    with server.client(token) as client:
        return graphql(client, query, path="/graphql")


def school_ids(response: httpx.Response) -> list[str]:
    body = response.json()
    assert response.status_code == 200, body
    assert "errors" not in body, body["errors"]
    return sorted(node["id"] for node in body["data"]["schools"]["nodes"])


def test_create_use_update_disable_enable_destroy_recreate(
    server: LiveServer, any_db_url: str
) -> None:
    """On both engines: a change (scope and targets included) is what the next request sees."""
    db_url = any_db_url
    key = make_admin_key(db_url, "e2e")
    with server.client(key.key) as admin:
        source = admin_call(admin, 'mutation { createSource(input: {name: "Springfield"}) { id } }')
        source_id = source["createSource"]["id"]

        async def schools_in_source(engine: Any) -> Any:
            async with engine.begin() as conn:
                return await add_orgs(conn, source_id)

        orgs = run_db(db_url, schools_in_source)
        both = sorted([orgs.school, orgs.other_school])

        create = """mutation($input: CreateIntegrationInput!) {
            createIntegration(input: $input) { accessToken integration { id } } }"""
        created = admin_call(
            admin,
            create,
            {
                "input": {
                    "sourceId": source_id,
                    "scope": "ALL",
                    "permissions": ["organizations:read"],
                }
            },
        )["createIntegration"]
        token, integration_id = created["accessToken"], created["integration"]["id"]
        assert school_ids(graph(server, token)) == both

        update = f"""mutation($input: UpdateIntegrationInput!) {{
            updateIntegration(id: "{integration_id}", input: $input) {{ id }} }}"""
        admin_call(
            admin,
            update,
            {
                "input": {
                    "scope": "SELECTED",
                    "targets": [orgs.other_school],
                    "permissions": ["organizations:read", "people:read"],
                }
            },
        )
        assert school_ids(graph(server, token)) == [orgs.other_school]

        people = graph(server, token, "{ people { totalCount } }").json()
        assert people == {"data": {"people": {"totalCount": 0}}}

        admin_call(admin, update, {"input": {"permissions": ["people:read"]}})
        denied = graph(server, token).json()
        assert denied["data"] == {"schools": None}
        assert [
            (e["extensions"]["code"], e["extensions"]["permission"]) for e in denied["errors"]
        ] == [("FORBIDDEN", "organizations:read")]
        admin_call(admin, update, {"input": {"permissions": ["organizations:read"]}})
        assert school_ids(graph(server, token)) == [orgs.other_school]

        admin_call(admin, f'mutation {{ disableIntegration(id: "{integration_id}") {{ id }} }}')
        refused = graph(server, token)
        assert refused.status_code == 403
        (error,) = refused.json()["errors"]
        assert (error["extensions"]["code"], error["extensions"]["status"]) == (
            "INVALID_INTEGRATION_STATE",
            "DISABLED",
        )
        own = graph(server, token, "{ integration { id status } }").json()
        assert own["data"] == {"integration": {"id": integration_id, "status": "DISABLED"}}

        admin_call(admin, f'mutation {{ enableIntegration(id: "{integration_id}") {{ id }} }}')
        assert school_ids(graph(server, token)) == [orgs.other_school]

        admin_call(admin, f'mutation {{ destroyIntegration(id: "{integration_id}") {{ id }} }}')
        gone = graph(server, token)
        assert gone.status_code == 401
        assert gone.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"

        again = admin_call(
            admin,
            create,
            {
                "input": {
                    "sourceId": source_id,
                    "scope": "ALL",
                    "permissions": ["organizations:read"],
                }
            },
        )["createIntegration"]
        assert again["accessToken"] != token
        assert again["integration"]["id"] != integration_id
        assert school_ids(graph(server, again["accessToken"])) == both
        assert graph(server, token).status_code == 401

        log = admin_call(
            admin,
            "{ auditLog { entries { action subjectId adminKey { id name } } } }",
        )["auditLog"]["entries"]
        assert [(e["action"], e["subjectId"]) for e in reversed(log)] == [
            ("admin_key.create", key.id),
            ("source.create", source_id),
            ("integration.create", integration_id),
            ("integration.update", integration_id),
            ("integration.update", integration_id),
            ("integration.update", integration_id),
            ("integration.disable", integration_id),
            ("integration.enable", integration_id),
            ("integration.destroy", integration_id),
            ("integration.create", again["integration"]["id"]),
        ]
        assert {(e["adminKey"] or {}).get("name") for e in log[:-1]} == {"e2e"}
