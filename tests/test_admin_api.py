"""/admin/graphql over real HTTP: admin-key authentication, every mutation, errors, audit log."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from gateway.access.grant import Scope
from gateway.admin import records, service
from gateway.admin.errors import SOURCE_IS_FIXED
from gateway.admin.keys import revoke_admin_key
from gateway.settings import Settings
from tests.admin_factories import (
    ADMIN_PATH,
    Orgs,
    graphql,
    make_admin_key,
    make_orgs_in,
)
from tests.conftest import LiveServer, run_db
from tests.test_http import page_constant

MISSING = "00000000-0000-4000-8000-000000000000"

INTEGRATION_FIELDS = """
    id name scope targets status configuredStatus startDate
    permissions { slug } source { id name }
"""


@pytest.fixture
def server(db_url: str) -> Iterator[LiveServer]:
    with LiveServer(Settings(database_url=db_url)) as running:
        yield running


@pytest.fixture
def orgs(db_url: str) -> Orgs:
    return run_db(db_url, make_orgs_in)


@pytest.fixture
def admin(server: LiveServer, db_url: str) -> Iterator[httpx.Client]:
    key = make_admin_key(db_url)
    with server.client(key.key) as client:
        yield client


def ok(response: httpx.Response) -> dict[str, Any]:
    """The data of a successful response (fails the test with the errors otherwise)."""
    body = response.json()
    assert response.status_code == 200, body
    assert "errors" not in body, body["errors"]
    data: dict[str, Any] = body["data"]
    return data


def create_integration(admin: httpx.Client, **input: Any) -> dict[str, Any]:
    data = ok(
        graphql(
            admin,
            f"""mutation($input: CreateIntegrationInput!) {{
                createIntegration(input: $input) {{
                    accessToken integration {{ {INTEGRATION_FIELDS} }}
                }}
            }}""",
            {"input": input},
        )
    )
    created: dict[str, Any] = data["createIntegration"]
    return created


# ---------------------------------------------------------------- authentication


def _integration_token(db_url: str, orgs: Orgs) -> str:
    async def create(engine: Any) -> str:
        async with engine.begin() as conn:
            created = await service.create_integration(
                conn, source_id=orgs.source, scope=Scope.ALL, permissions=["people:read"]
            )
        return created.token

    return run_db(db_url, create)


@pytest.mark.parametrize(
    ("authorization", "error"),
    [
        pytest.param(None, None, id="no header"),
        pytest.param("Basic b3BzOnNlY3JldA==", None, id="another scheme"),
        pytest.param("Bearer", None, id="no token"),
        pytest.param("Bearer a b", None, id="two tokens"),
        pytest.param("Bearer not-a-key", "invalid_token", id="unknown key"),
        pytest.param("INTEGRATION", "invalid_token", id="an integration access token"),
    ],
)
def test_only_an_admin_key_is_let_in(
    server: LiveServer,
    db_url: str,
    orgs: Orgs,
    authorization: str | None,
    error: str | None,
) -> None:
    make_admin_key(db_url)
    if authorization == "INTEGRATION":
        authorization = f"Bearer {_integration_token(db_url, orgs)}"
    headers = {} if authorization is None else {"Authorization": authorization}
    with server.client() as client:
        response = client.post(ADMIN_PATH, json={"query": "{ sources { id } }"}, headers=headers)
    assert response.status_code == 401
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer ")
    assert ("invalid_token" in challenge) is (error is not None)
    assert response.headers["Content-Type"].startswith("application/json")
    (problem,) = response.json()["errors"]
    assert problem["extensions"] == {"code": "UNAUTHENTICATED"}
    assert "admin key" in problem["message"]


def test_a_revoked_admin_key_is_refused_at_once(server: LiveServer, db_url: str) -> None:
    key = make_admin_key(db_url)

    async def revoke(engine: Any) -> None:
        async with engine.begin() as conn:
            await revoke_admin_key(conn, key.id)

    with server.client(key.key) as client:
        assert graphql(client, "{ sources { id } }").status_code == 200
        run_db(db_url, revoke)
        response = graphql(client, "{ sources { id } }")
    assert response.status_code == 401
    assert response.json()["errors"][0]["extensions"] == {"code": "UNAUTHENTICATED"}


def test_an_admin_key_is_not_an_integration_token(server: LiveServer, db_url: str) -> None:
    key = make_admin_key(db_url)
    with server.client(key.key) as client:
        response = graphql(client, "{ integration { id } }", path="/graphql")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


def test_a_malformed_request_gets_a_json_error(admin: httpx.Client) -> None:
    response = admin.post(
        ADMIN_PATH, content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json() == {
        "errors": [
            {
                "message": "Unable to parse request body as JSON",
                "extensions": {"code": "BAD_USER_INPUT"},
            }
        ]
    }


def test_the_graphiql_page_needs_no_key(server: LiveServer) -> None:
    with server.client() as client:
        response = client.get(ADMIN_PATH, headers={"Accept": "text/html"})
    assert response.status_code == 200
    page = response.text
    assert "<title>Rostering gateway admin API · GraphiQL</title>" in page
    assert "shouldPersistHeaders: false" in page
    assert "shouldPersistHeaders: true" not in page
    assert page_constant(page, "DEFAULT_HEADERS") == (
        '{\n  "Authorization": "Bearer <your admin key>"\n}'
    )
    assert '{"Authorization": "Bearer <your admin key>"}' in page_constant(page, "DEFAULT_QUERY")


def test_a_browser_reloading_a_graphiql_link_gets_the_page_and_a_client_the_401(
    server: LiveServer,
) -> None:
    browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    params = {"query": "{ adminKey { name } }"}
    with server.client() as client:
        page = client.get(ADMIN_PATH, params=params, headers={"Accept": browser})
        refused = client.get(ADMIN_PATH, params=params, headers={"Accept": "application/json"})
    assert page.status_code == 200
    assert "<title>Rostering gateway admin API · GraphiQL</title>" in page.text
    assert refused.status_code == 401
    assert refused.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


def test_the_caller_sees_its_own_key(admin: httpx.Client, db_url: str) -> None:
    assert ok(graphql(admin, "{ adminKey { name } }")) == {"adminKey": {"name": "ops"}}


# ---------------------------------------------------------------- the lifecycle


def test_every_mutation_and_its_audit_entry(admin: httpx.Client, orgs: Orgs) -> None:
    key_id = ok(graphql(admin, "{ adminKey { id } }"))["adminKey"]["id"]
    source = ok(
        graphql(
            admin,
            """mutation { createSource(input: {name: "Ogdenville", providerName: "Canvas",
                providerApplication: "canvas", entityType: SCHOOL}) {
                id name status provider { name application } entity { type } } }""",
        )
    )["createSource"]
    assert {k: v for k, v in source.items() if k != "id"} == {
        "name": "Ogdenville",
        "status": "ACTIVE",
        "provider": {"name": "Canvas", "application": "canvas"},
        "entity": {"type": "SCHOOL"},
    }

    created = create_integration(
        admin,
        sourceId=orgs.source,
        scope="SELECTED",
        targets=[orgs.school],
        permissions=["people:read", "organizations:read"],
        name="Gradebook",
    )
    integration = created["integration"]
    integration_id = integration["id"]
    assert len(created["accessToken"]) >= 43
    assert integration == {
        "id": integration_id,
        "name": "Gradebook",
        "scope": "SELECTED",
        "targets": [orgs.school],
        "status": "ACTIVE",
        "configuredStatus": "ACTIVE",
        "startDate": None,
        "permissions": [{"slug": "organizations:read"}, {"slug": "people:read"}],
        "source": {"id": orgs.source, "name": "Springfield"},
    }

    update = f"""mutation($input: UpdateIntegrationInput!) {{
        updateIntegration(id: "{integration_id}", input: $input) {{ {INTEGRATION_FIELDS} }} }}"""
    updated = ok(
        graphql(
            admin,
            update,
            {"input": {"permissions": ["emails:read"], "targets": [orgs.course, orgs.class_]}},
        )
    )["updateIntegration"]
    assert updated["permissions"] == [{"slug": "emails:read"}]
    assert updated["targets"] == sorted([orgs.course, orgs.class_])
    scheduled = ok(
        graphql(admin, update, {"input": {"startDate": "2999-01-01T00:00:00Z", "scope": "ALL"}})
    )["updateIntegration"]
    assert (scheduled["scope"], scheduled["targets"], scheduled["status"]) == (
        "ALL",
        [],
        "INACTIVE",
    )
    assert scheduled["startDate"] == "2999-01-01T00:00:00+00:00"

    def lifecycle(name: str) -> dict[str, Any]:
        data = ok(
            graphql(
                admin,
                f'mutation {{ {name}(id: "{integration_id}") {{ status configuredStatus }} }}',
            )
        )
        result: dict[str, Any] = data[name]
        return result

    assert lifecycle("disableIntegration") == {"status": "DISABLED", "configuredStatus": "DISABLED"}
    assert lifecycle("enableIntegration") == {"status": "INACTIVE", "configuredStatus": "ACTIVE"}
    assert lifecycle("destroyIntegration") == {"status": "INACTIVE", "configuredStatus": "ACTIVE"}
    assert ok(graphql(admin, f'{{ integration(id: "{integration_id}") {{ id }} }}')) == {
        "integration": None
    }

    log = ok(
        graphql(
            admin,
            """{ auditLog { entries { action actor subjectType subjectId
                adminKey { id name } before after } } }""",
        )
    )["auditLog"]["entries"]
    assert [(e["action"], e["subjectId"]) for e in log] == [
        ("integration.destroy", integration_id),
        ("integration.enable", integration_id),
        ("integration.disable", integration_id),
        ("integration.update", integration_id),
        ("integration.update", integration_id),
        ("integration.create", integration_id),
        ("source.create", source["id"]),
        ("source.create", orgs.source),  # made by the test's factory, through the CLI's actor
        ("admin_key.create", key_id),
    ]
    by_api = log[:7]
    assert {(e["actor"], e["adminKey"]["id"], e["adminKey"]["name"]) for e in by_api} == {
        ("admin_api", key_id, "ops")
    }
    assert [(e["actor"], e["adminKey"]) for e in log[7:]] == [("cli", None), ("cli", None)]
    first_update = log[4]
    assert first_update["before"]["permissions"] == ["organizations:read", "people:read"]
    assert first_update["after"]["permissions"] == ["emails:read"]
    assert (log[0]["before"]["id"], log[0]["after"]) == (integration_id, None)
    assert log[5]["before"] is None


def test_lists_and_lookups(admin: httpx.Client, orgs: Orgs, db_url: str) -> None:
    other = run_db(db_url, lambda engine: make_orgs_in(engine, "Shelbyville"))
    mine = create_integration(admin, sourceId=orgs.source, scope="ALL")["integration"]["id"]
    theirs = create_integration(admin, sourceId=other.source, scope="ALL")["integration"]["id"]
    data = ok(
        graphql(
            admin,
            f"""{{
                all: integrations {{ id }}
                mine: integrations(sourceId: "{orgs.source}") {{ id }}
                one: integration(id: "{theirs}") {{ source {{ name }} }}
                none: integration(id: "{MISSING}") {{ id }}
                sources {{ name }}
                source(id: "{other.source}") {{ name team {{ name }} }}
                permissions {{ slug }}
            }}""",
        )
    )
    assert data["all"] == [{"id": mine}, {"id": theirs}]
    assert data["mine"] == [{"id": mine}]
    assert data["one"] == {"source": {"name": "Shelbyville"}}
    assert data["none"] is None
    assert data["sources"] == [{"name": "Springfield"}, {"name": "Shelbyville"}]
    assert data["source"] == {"name": "Shelbyville", "team": {"name": "Shelbyville"}}
    assert len(data["permissions"]) == 11


def test_targets_and_the_targets_of_an_integration_by_name(
    admin: httpx.Client, orgs: Orgs, db_url: str
) -> None:
    run_db(db_url, lambda engine: make_orgs_in(engine, "Shelbyville"))
    created = create_integration(
        admin, sourceId=orgs.source, scope="SELECTED", targets=[orgs.class_]
    )["integration"]["id"]
    data = ok(
        graphql(
            admin,
            f"""{{
                every: targets(sourceId: "{orgs.source}") {{ id kind name school }}
                classes: targets(sourceId: "{orgs.source}", kind: CLASS, search: "1a") {{ id }}
                nothing: targets(sourceId: "{orgs.source}", search: "Chemistry") {{ id }}
                integration(id: "{created}") {{ targets targetDetails {{ id kind name school }} }}
            }}""",
        )
    )
    algebra_1a = {
        "id": orgs.class_,
        "kind": "CLASS",
        "name": "Algebra 1A",
        "school": "Springfield High",
    }
    assert data["every"] == [
        {
            "id": orgs.other_school,
            "kind": "SCHOOL",
            "name": "Springfield Elementary",
            "school": None,
        },
        {"id": orgs.school, "kind": "SCHOOL", "name": "Springfield High", "school": None},
        {"id": orgs.course, "kind": "COURSE", "name": "Algebra", "school": "Springfield High"},
        algebra_1a,
    ]
    assert data["classes"] == [{"id": orgs.class_}]
    assert data["nothing"] == []
    assert data["integration"] == {"targets": [orgs.class_], "targetDetails": [algebra_1a]}

    unknown = graphql(admin, f'{{ targets(sourceId: "{MISSING}") {{ id }} }}').json()
    assert unknown["errors"][0]["message"] == (
        f"source {MISSING} does not exist; the `sources` query lists them"
    )


def test_destroy_source_takes_its_integrations_and_rows_with_it(
    admin: httpx.Client, server: LiveServer, orgs: Orgs, db_url: str
) -> None:
    other = run_db(db_url, lambda engine: make_orgs_in(engine, "Shelbyville"))
    doomed = create_integration(
        admin,
        sourceId=orgs.source,
        scope="SELECTED",
        targets=[orgs.school],
        permissions=["organizations:read"],
    )
    kept = create_integration(
        admin, sourceId=other.source, scope="ALL", permissions=["organizations:read"]
    )
    query = "{ schools { nodes { name } } }"
    assert server.graphql(query, doomed["accessToken"])[0] == 200
    shown = ok(
        graphql(admin, f'{{ source(id: "{orgs.source}") {{ counts {{ schools classes }} }} }}')
    )
    assert shown["source"] == {"counts": {"schools": 2, "classes": 1}}

    data = ok(
        graphql(
            admin,
            f"""mutation {{ destroySource(id: "{orgs.source}") {{
                source {{ id name counts {{ districts schools courses classes people }} }}
                integrations {{ id targetDetails {{ name }} source {{ name }} }}
            }} }}""",
        )
    )
    assert data["destroySource"] == {
        "source": {
            "id": orgs.source,
            "name": "Springfield",
            "counts": {"districts": 1, "schools": 2, "courses": 1, "classes": 1, "people": 0},
        },
        "integrations": [
            {
                "id": doomed["integration"]["id"],
                "targetDetails": [{"name": "Springfield High"}],
                "source": {"name": "Springfield"},
            }
        ],
    }
    status, body = server.graphql(query, doomed["accessToken"])
    assert (status, body["errors"][0]["extensions"]["code"]) == (401, "UNAUTHENTICATED")
    status, body = server.graphql(query, kept["accessToken"])
    assert status == 200
    assert sorted(n["name"] for n in body["data"]["schools"]["nodes"]) == [
        "Shelbyville Elementary",
        "Shelbyville High",
    ]
    after = ok(graphql(admin, f'{{ source(id: "{orgs.source}") {{ id }} sources {{ name }} }}'))
    assert after == {"source": None, "sources": [{"name": "Shelbyville"}]}
    log = ok(
        graphql(admin, "{ auditLog(first: 2) { entries { action subjectId adminKey { name } } } }")
    )
    assert log["auditLog"]["entries"] == [
        {"action": "source.destroy", "subjectId": orgs.source, "adminKey": {"name": "ops"}},
        {
            "action": "integration.destroy",
            "subjectId": doomed["integration"]["id"],
            "adminKey": {"name": "ops"},
        },
    ]

    again = graphql(
        admin, f'mutation {{ destroySource(id: "{orgs.source}") {{ source {{ id }} }} }}'
    )
    (error,) = again.json()["errors"]
    assert (
        error["message"] == f"source {orgs.source} does not exist; the `sources` query lists them"
    )
    assert error["extensions"]["code"] == "BAD_USER_INPUT"


def test_the_audit_log_pages_and_filters(admin: httpx.Client, orgs: Orgs) -> None:
    integration_id = create_integration(admin, sourceId=orgs.source, scope="ALL")["integration"][
        "id"
    ]
    for name in ("a", "b", "c"):
        ok(
            graphql(
                admin,
                f"""mutation {{
                    updateIntegration(id: "{integration_id}", input: {{name: "{name}"}}) {{ id }}
                }}""",
            )
        )
    query = """query($after: String, $id: ID) {
        auditLog(first: 2, after: $after, integrationId: $id, action: "integration.update") {
            entries { after } pageInfo { hasNextPage endCursor } } }"""
    names: list[str] = []
    after = None
    while True:
        page = ok(graphql(admin, query, {"after": after, "id": integration_id}))["auditLog"]
        names.extend(e["after"]["name"] for e in page["entries"])
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert names == ["c", "b", "a"]


# ---------------------------------------------------------------- errors

UPDATE = """mutation($id: ID!, $input: UpdateIntegrationInput!) {
    updateIntegration(id: $id, input: $input) { id } }"""


def _error_cases(
    o: Orgs, other: Orgs, integration: str
) -> dict[str, tuple[str, dict[str, Any], str]]:
    create = """mutation($input: CreateIntegrationInput!) {
        createIntegration(input: $input) { accessToken } }"""

    def creating(**input: Any) -> dict[str, Any]:
        return {"input": {"sourceId": o.source, "scope": "ALL", **input}}

    def updating(**input: Any) -> dict[str, Any]:
        return {"id": integration, "input": input}

    return {
        "unknown permission": (
            create,
            creating(permissions=["people:read", "grades:read"]),
            "unknown permission 'grades:read'",
        ),
        "name with a NUL": (create, creating(name="a\x00b"), "control character"),
        "source name taken": (
            "mutation($input: CreateSourceInput!) { createSource(input: $input) { id } }",
            {"input": {"name": " Springfield "}},
            "a source named 'Springfield' exists already",
        ),
        "overlong name": (create, creating(name="n" * 201), "at most 200 are allowed"),
        "application id not a UUID": (
            create,
            creating(applicationId="gradebook"),
            "application 'gradebook' is not a UUID",
        ),
        "unknown application": (
            create,
            creating(applicationId=MISSING),
            f"application {MISSING} does not exist",
        ),
        "deny without an application": (
            create,
            creating(permissions=["people:read"], deny=["people:read"]),
            "denying permissions needs an application",
        ),
        "target of another source": (
            create,
            creating(scope="SELECTED", targets=[other.course]),
            f"target {other.course} is not a school, course or class of source {o.source}",
        ),
        "target that is not a uuid": (
            create,
            creating(scope="SELECTED", targets=["room-101"]),
            "target 'room-101' is not a UUID",
        ),
        "selected without targets": (
            create,
            creating(scope="SELECTED"),
            "scope SELECTED needs at least one target",
        ),
        "all with targets": (
            create,
            creating(targets=[o.school]),
            "scope ALL takes no targets",
        ),
        "unknown source": (
            create,
            creating(sourceId=MISSING),
            f"source {MISSING} does not exist; the `sources` query lists them",
        ),
        "update: unknown permission": (
            UPDATE,
            updating(permissions=["people:write"]),
            "unknown permission 'people:write'",
        ),
        "update: target of another source": (
            UPDATE,
            updating(scope="SELECTED", targets=[other.school]),
            f"target {other.school} is not a school, course or class of source {o.source}",
        ),
        "update: selected without targets": (
            UPDATE,
            updating(scope="SELECTED"),
            "scope SELECTED needs at least one target",
        ),
        "update: all with targets": (
            UPDATE,
            updating(targets=[o.school]),
            "scope ALL takes no targets",
        ),
        "update: unknown integration": (
            UPDATE,
            {"id": MISSING, "input": {}},
            f"integration {MISSING} does not exist; the `integrations` query lists them",
        ),
        "update: a source in the input": (
            UPDATE,
            updating(sourceId=other.source),
            "Expected value of type 'UpdateIntegrationInput' not to include unknown field "
            f"'sourceId', found: {{'sourceId': '{other.source}'}}. {SOURCE_IS_FIXED}",
        ),
        "update: a source inline": (
            f"""mutation {{ updateIntegration(
                id: "{integration}", input: {{source: "{other.source}"}}) {{ id }} }}""",
            {},
            f"""not to include unknown field 'source', found: {{ source: "{other.source}" }}. """
            + SOURCE_IS_FIXED,
        ),
        "update: a source argument": (
            f"""mutation {{ updateIntegration(
                id: "{integration}", sourceId: "{other.source}", input: {{}}) {{ id }} }}""",
            {},
            f"Unknown argument 'sourceId' on field 'Mutation.updateIntegration'. {SOURCE_IS_FIXED}",
        ),
        "update: a start date that is not a date": (
            UPDATE,
            updating(startDate="next monday"),
            'Value cannot represent a DateTime: "next monday"',
        ),
        "destroy: not a uuid": (
            'mutation { destroyIntegration(id: "42") { id } }',
            {},
            "integration '42' is not a UUID",
        ),
        "audit: bad page size": (
            "{ auditLog(first: 0) { entries { id } } }",
            {},
            "page size 0 is not between 1 and 500",
        ),
    }


_NAMES_ONLY = Orgs(*"abcdef")  # placeholder ids, to list the case names at collection time


@pytest.mark.parametrize("case", list(_error_cases(_NAMES_ONLY, _NAMES_ONLY, "x")))
def test_errors_are_bad_user_input_naming_the_value(
    admin: httpx.Client, orgs: Orgs, db_url: str, case: str
) -> None:
    other = run_db(db_url, lambda engine: make_orgs_in(engine, "Shelbyville"))
    integration = create_integration(admin, sourceId=orgs.source, scope="ALL")["integration"]
    query, variables, message = _error_cases(orgs, other, integration["id"])[case]
    response = graphql(admin, query, variables)
    body = response.json()
    (error,) = body["errors"]
    assert message in error["message"]
    assert "gateway " not in error["message"], "an API caller is not told to run a command"
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert body.get("data") is None
    after = ok(
        graphql(admin, f'{{ integration(id: "{integration["id"]}") {{ {INTEGRATION_FIELDS} }} }}')
    )
    assert after["integration"] == integration
    assert ok(graphql(admin, "{ integrations { id } }"))["integrations"] == [
        {"id": integration["id"]}
    ]


@pytest.mark.parametrize(
    ("query", "variables", "message", "where"),
    [
        pytest.param(
            f"""mutation {{ updateIntegration(id: "{MISSING}",
                input: {{name: "x", startDate: "next monday"}}) {{ id }} }}""",
            {},
            "Argument 'input' has invalid value at .startDate: "
            'Value cannot represent a DateTime: "next monday".',
            {"argument": "input", "inputPath": ["input", "startDate"]},
            id="literal",
        ),
        pytest.param(
            f"""mutation {{ createIntegration(input: {{sourceId: "{MISSING}", scope: ALL,
                targets: ["{MISSING}", true]}}) {{ accessToken }} }}""",
            {},
            "Argument 'input' has invalid value at .targets[1]: ID cannot represent",
            {"argument": "input", "inputPath": ["input", "targets", 1]},
            id="literal in a list",
        ),
        pytest.param(
            f"""mutation($when: DateTime = "later") {{ createIntegration(input: {{
                sourceId: "{MISSING}", scope: ALL, startDate: $when}}) {{ accessToken }} }}""",
            {},
            "Default of variable '$when' has invalid value: "
            'Value cannot represent a DateTime: "later".',
            {"variable": "when", "inputPath": ["when"]},
            id="default of a variable",
        ),
        pytest.param(
            f"""mutation($when: DateTime) {{ createIntegration(input: {{sourceId: "{MISSING}",
                scope: ALL, startDate: $when}}) {{ accessToken }} }}""",
            {"when": "soon"},
            "Variable '$when' has invalid value: Value cannot represent a DateTime: \"soon\".",
            {"variable": "when", "inputPath": ["when"]},
            id="variable",
        ),
        pytest.param(
            f"""mutation($input: UpdateIntegrationInput!) {{
                updateIntegration(id: "{MISSING}", input: $input) {{ id }} }}""",
            {"input": {"name": "x", "startDate": "next monday"}},
            "Variable '$input' has invalid value at .startDate: "
            'Value cannot represent a DateTime: "next monday".',
            {"variable": "input", "inputPath": ["input", "startDate"]},
            id="field of a variable",
        ),
    ],
)
def test_a_bad_scalar_names_its_input_path(
    admin: httpx.Client,
    query: str,
    variables: dict[str, Any],
    message: str,
    where: dict[str, Any],
) -> None:
    body = graphql(admin, query, variables).json()
    (error,) = body["errors"]
    assert error["message"].startswith(message), error["message"]
    assert error["extensions"] == {"code": "BAD_USER_INPUT", **where}
    assert error["locations"], "the client can point at the value in its document"
    assert body.get("data") is None


def test_a_refused_admin_request_writes_no_plain_text_traceback(
    admin: httpx.Client, orgs: Orgs, caplog: pytest.LogCaptureFixture
) -> None:
    # Strawberry's own error log prints the document (which may hold names of people) and a
    # traceback as plain text; ours writes JSON lines, and client errors are no server errors.
    with caplog.at_level(logging.DEBUG):
        body = graphql(
            admin,
            "mutation($input: CreateIntegrationInput!) "
            "{ createIntegration(input: $input) { accessToken } }",
            {"input": {"sourceId": orgs.source, "scope": "SELECTED", "name": "Jane Doe's app"}},
        ).json()
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert [r for r in caplog.records if r.name.startswith("strawberry")] == []
    assert "Jane Doe" not in caplog.text


def test_a_name_with_half_a_surrogate_pair_is_bad_user_input(
    admin: httpx.Client, orgs: Orgs
) -> None:
    # JSON can escape a lone surrogate ("\ud800"); no database can store it.
    query = (
        "mutation($input: CreateIntegrationInput!) "
        "{ createIntegration(input: $input) { accessToken } }"
    )
    variables = {"input": {"sourceId": orgs.source, "scope": "ALL", "name": "\ud800x"}}
    body = json.dumps({"query": query, "variables": variables}).encode("ascii")
    response = admin.post(ADMIN_PATH, content=body, headers={"Content-Type": "application/json"})
    (error,) = response.json()["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "half of a surrogate pair" in error["message"]


def test_unexpected_errors_are_masked(admin: httpx.Client, monkeypatch: pytest.MonkeyPatch) -> None:
    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("password=hunter2")

    monkeypatch.setattr(records, "load_sources", broken)
    body = graphql(admin, "{ sources { id } }").json()
    (error,) = body["errors"]
    assert "hunter2" not in error["message"]
    assert error["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
