"""The meta API over real HTTP (issue #16): an application's developer reads the integrations
made for it, with their tokens, and nothing of any other application's; keys are refused where
they do not belong; the database alone holds no usable token."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import make_url

from gateway.access.tokens import parse_bearer
from gateway.settings import Settings
from gateway.vault import generate_key
from tests.admin_factories import ADMIN_PATH, Orgs, graphql, make_admin_key, make_orgs_in
from tests.conftest import LiveServer, recorded_statements, run_db

META_PATH = "/meta/graphql"
REQUESTED = ["people:read", "organizations:read", "enrollments:read"]

INTEGRATIONS = """query($first: Int, $after: String, $filter: IntegrationFilter) {
  integrations(first: $first, after: $after, filter: $filter) {
    totalCount
    pageInfo { hasNextPage endCursor }
    nodes {
      id createdDate updatedDate scope targets status startDate accessToken
      permissions { slug }
      application { id name }
      source { id name status provider { name } team { name } }
      team { id } provider { application } entity { name type }
    }
  }
}"""


def _settings(url: str, **overrides: Any) -> Settings:
    # SQLite finds its key beside the file; PostgreSQL needs one set (as in production).
    key = None if url.startswith("sqlite") else generate_key()
    return Settings(database_url=url, secret_key=key, **overrides)


@pytest.fixture
def server(any_db_url: str) -> Iterator[LiveServer]:
    with LiveServer(_settings(any_db_url)) as running:
        yield running


@pytest.fixture
def orgs(any_db_url: str) -> Orgs:
    return run_db(any_db_url, make_orgs_in)


@pytest.fixture
def orgs_sqlite(db_url: str) -> Orgs:
    return run_db(db_url, make_orgs_in)


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


def create_application(admin: httpx.Client, name: str, permissions: list[str]) -> dict[str, Any]:
    data = ok(
        graphql(
            admin,
            """mutation($input: CreateApplicationInput!) {
                createApplication(input: $input) {
                    key application { id name permissions { slug } }
                }
            }""",
            {"input": {"name": name, "permissions": permissions}},
        )
    )
    created: dict[str, Any] = data["createApplication"]
    return created


def create_integration(admin: httpx.Client, **input: Any) -> httpx.Response:
    return graphql(
        admin,
        """mutation($input: CreateIntegrationInput!) {
            createIntegration(input: $input) {
                accessToken
                integration { id permissions { slug } application { id name } }
            }
        }""",
        {"input": input},
    )


def meta(
    server: LiveServer, key: str, query: str = INTEGRATIONS, **variables: Any
) -> httpx.Response:
    with server.client(key) as client:
        return graphql(client, query, variables, path=META_PATH)


def status_on(server: LiveServer, path: str, key: str | None) -> int:
    query = {"/graphql": "{ integration { id } }", ADMIN_PATH: "{ sources { id } }"}.get(
        path, "{ application { id } }"
    )
    with server.client(key) as client:
        return client.post(path, json={"query": query}).status_code


class Scenario:
    """Two applications, and one integration for the first made over the admin API."""

    def __init__(self, server: LiveServer, admin: httpx.Client, orgs: Orgs) -> None:
        self.server, self.admin, self.orgs = server, admin, orgs
        self.app = create_application(admin, "Gradebook", REQUESTED)
        self.other = create_application(admin, "Attendance", ["people:read"])
        self.key = self.app["key"]
        created = ok(
            create_integration(
                admin,
                sourceId=orgs.source,
                scope="ALL",
                applicationId=self.app["application"]["id"],
                deny=["enrollments:read"],
            )
        )["createIntegration"]
        self.integration = created["integration"]
        self.token: str = created["accessToken"]

    def recreate(self) -> str:
        """Destroy the integration and make it again; the new token."""
        ok(
            graphql(
                self.admin,
                "mutation($id: ID!) { destroyIntegration(id: $id) { id } }",
                {"id": self.integration["id"]},
            )
        )
        created = ok(
            create_integration(
                self.admin,
                sourceId=self.orgs.source,
                scope="ALL",
                applicationId=self.app["application"]["id"],
                permissions=["people:read", "organizations:read"],
            )
        )["createIntegration"]
        self.integration = created["integration"]
        self.token = created["accessToken"]
        return self.token


@pytest.fixture
def scenario(server: LiveServer, admin: httpx.Client, orgs: Orgs) -> Scenario:
    return Scenario(server, admin, orgs)


def test_an_integration_for_an_application_grants_what_it_requests_minus_the_denied(
    scenario: Scenario,
) -> None:
    assert [p["slug"] for p in scenario.app["application"]["permissions"]] == [
        "organizations:read",
        "people:read",
        "enrollments:read",
    ]
    assert scenario.integration["permissions"] == [
        {"slug": "organizations:read"},
        {"slug": "people:read"},
    ]
    assert scenario.integration["application"] == {
        "id": scenario.app["application"]["id"],
        "name": "Gradebook",
    }


@pytest.mark.parametrize(
    "input",
    [
        pytest.param({"permissions": ["people:read", "agents:read"]}, id="a superset"),
        pytest.param({"deny": ["agents:read"]}, id="denying one it does not request"),
    ],
)
def test_granting_what_the_application_does_not_request_is_refused(
    scenario: Scenario, input: dict[str, Any]
) -> None:
    response = create_integration(
        scenario.admin,
        sourceId=scenario.orgs.source,
        scope="ALL",
        applicationId=scenario.app["application"]["id"],
        **input,
    )
    body = response.json()
    assert body["data"] is None
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert (
        "permission agents:read is not one that application 'Gradebook' requests"
        in (error["message"])
    )
    listed = ok(meta(scenario.server, scenario.key))["integrations"]
    assert listed["totalCount"] == 1  # nothing half-written


def test_the_meta_api_lists_the_integration_with_a_token_that_works_on_graphql(
    scenario: Scenario,
) -> None:
    listed = ok(meta(scenario.server, scenario.key))["integrations"]
    assert listed["totalCount"] == 1
    assert listed["pageInfo"]["hasNextPage"] is False
    (node,) = listed["nodes"]
    assert node["id"] == scenario.integration["id"]
    assert node["accessToken"] == scenario.token
    assert [p["slug"] for p in node["permissions"]] == ["organizations:read", "people:read"]
    assert node["application"] == {"id": scenario.app["application"]["id"], "name": "Gradebook"}
    assert (node["scope"], node["status"], node["targets"], node["startDate"]) == (
        "ALL",
        "ACTIVE",
        [],
        None,
    )
    assert node["source"]["id"] == scenario.orgs.source
    assert node["source"]["name"] == "Springfield"
    assert node["entity"] == {"name": "Springfield", "type": "DISTRICT"}
    assert node["provider"] == {"application": "oneroster"}

    status, body = scenario.server.graphql(
        "{ integration { id } schools { totalCount } }", node["accessToken"]
    )
    assert status == 200, body
    assert body["data"]["integration"]["id"] == node["id"]
    assert body["data"]["schools"]["totalCount"] == 2

    me = ok(meta(scenario.server, scenario.key, "{ application { name permissions { slug } } }"))
    assert me["application"]["name"] == "Gradebook"


def test_another_applications_key_sees_none_of_it(scenario: Scenario) -> None:
    listed = ok(meta(scenario.server, scenario.other["key"]))["integrations"]
    assert listed == {
        "totalCount": 0,
        "pageInfo": {"hasNextPage": False, "endCursor": None},
        "nodes": [],
    }
    me = ok(meta(scenario.server, scenario.other["key"], "{ application { name } }"))
    assert me == {"application": {"name": "Attendance"}}


def test_each_credential_works_only_on_its_own_endpoint(
    scenario: Scenario, any_db_url: str
) -> None:
    admin_key = make_admin_key(any_db_url, "second").key
    expected = {
        ("/graphql", "token"): 200,
        ("/graphql", "application key"): 401,
        ("/graphql", "admin key"): 401,
        (ADMIN_PATH, "token"): 401,
        (ADMIN_PATH, "application key"): 401,
        (ADMIN_PATH, "admin key"): 200,
        (META_PATH, "token"): 401,
        (META_PATH, "application key"): 200,
        (META_PATH, "admin key"): 401,
        (META_PATH, "none"): 401,
    }
    credentials = {
        "token": scenario.token,
        "application key": scenario.key,
        "admin key": admin_key,
        "none": None,
    }
    seen = {
        (path, name): status_on(scenario.server, path, credentials[name]) for path, name in expected
    }
    assert seen == expected
    with scenario.server.client() as client:
        refused = client.post(META_PATH, json={"query": "{ application { id } }"})
    assert refused.headers["WWW-Authenticate"].startswith("Bearer ")
    assert refused.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


def test_a_credential_refused_on_another_endpoint_is_told_where_it_works(
    scenario: Scenario,
) -> None:
    """A developer who pastes the application key into /graphql (or a token into /meta/graphql)
    learns from the 401 which endpoint takes it."""
    messages = {}
    for path, key, query in [
        ("/graphql", scenario.key, "{ schools { nodes { id } } }"),
        (META_PATH, scenario.token, "{ application { id } }"),
        (ADMIN_PATH, scenario.key, "{ sources { id } }"),
    ]:
        with scenario.server.client(key) as client:
            response = client.post(path, json={"query": query})
        assert response.status_code == 401
        messages[path] = response.json()["errors"][0]["message"]
    assert "/meta/graphql" in messages["/graphql"], messages
    assert "/graphql" in messages[META_PATH], messages
    assert "/meta/graphql" in messages[ADMIN_PATH], messages


def test_destroy_and_recreate_gives_the_meta_api_the_new_token_and_the_old_gets_401(
    scenario: Scenario,
) -> None:
    old = scenario.token
    new = scenario.recreate()
    assert new != old
    (node,) = ok(meta(scenario.server, scenario.key))["integrations"]["nodes"]
    assert node["accessToken"] == new
    assert scenario.server.graphql("{ integration { id } }", old)[0] == 401
    assert scenario.server.graphql("{ integration { id } }", new)[0] == 200


def test_rotating_the_application_key_locks_out_the_old_key_on_the_next_request(
    scenario: Scenario,
) -> None:
    assert meta(scenario.server, scenario.key).status_code == 200
    rotated = ok(
        graphql(
            scenario.admin,
            "mutation($id: ID!) { rotateApplicationKey(id: $id) { key application { id } } }",
            {"id": scenario.app["application"]["id"]},
        )
    )["rotateApplicationKey"]
    assert rotated["key"] != scenario.key
    assert meta(scenario.server, scenario.key).status_code == 401
    (node,) = ok(meta(scenario.server, rotated["key"]))["integrations"]["nodes"]
    assert node["accessToken"] == scenario.token


def test_the_status_filter_and_pages(scenario: Scenario) -> None:
    second = ok(
        create_integration(
            scenario.admin,
            sourceId=scenario.orgs.source,
            scope="SELECTED",
            targets=[scenario.orgs.school],
            applicationId=scenario.app["application"]["id"],
            startDate="2999-01-01T00:00:00Z",
        )
    )["createIntegration"]
    ok(
        graphql(
            scenario.admin,
            "mutation($id: ID!) { disableIntegration(id: $id) { id } }",
            {"id": scenario.integration["id"]},
        )
    )

    def ids(**variables: Any) -> list[str]:
        listed = ok(meta(scenario.server, scenario.key, **variables))["integrations"]
        return [n["id"] for n in listed["nodes"]]

    first_id, second_id = scenario.integration["id"], second["integration"]["id"]
    assert ids(filter={"statuses": ["DISABLED"]}) == [first_id]
    assert ids(filter={"statuses": ["INACTIVE"]}) == [second_id]
    assert ids(filter={"statuses": ["ACTIVE"]}) == []
    assert sorted(ids(filter={"statuses": ["ACTIVE", "INACTIVE", "DISABLED"]})) == sorted(
        [first_id, second_id]
    )
    page = ok(meta(scenario.server, scenario.key, first=1))["integrations"]
    assert page["totalCount"] == 2
    assert page["pageInfo"]["hasNextPage"] is True
    rest = ok(meta(scenario.server, scenario.key, first=1, after=page["pageInfo"]["endCursor"]))
    assert [n["id"] for n in page["nodes"] + rest["integrations"]["nodes"]] == sorted(
        [first_id, second_id]
    )
    bad = meta(scenario.server, scenario.key, first=1, after="nonsense").json()
    assert bad["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    (inactive,) = [
        n
        for n in ok(meta(scenario.server, scenario.key))["integrations"]["nodes"]
        if n["id"] == second_id
    ]
    assert (inactive["scope"], inactive["targets"]) == ("SELECTED", [scenario.orgs.school])
    assert inactive["accessToken"] == second["accessToken"]


def test_destroying_the_application_keeps_its_integrations_without_one(
    scenario: Scenario,
) -> None:
    destroyed = ok(
        graphql(
            scenario.admin,
            """mutation($id: ID!) { destroyApplication(id: $id) {
                application { name } integrations { id application { id } } } }""",
            {"id": scenario.app["application"]["id"]},
        )
    )["destroyApplication"]
    assert destroyed == {
        "application": {"name": "Gradebook"},
        "integrations": [{"id": scenario.integration["id"], "application": None}],
    }
    assert meta(scenario.server, scenario.key).status_code == 401
    assert scenario.server.graphql("{ integration { id } }", scenario.token)[0] == 200


def test_the_meta_api_has_its_own_rate_limit_bucket_per_application(
    any_db_url: str, orgs: Orgs
) -> None:
    with LiveServer(_settings(any_db_url, rate_limit_burst=3, rate_limit_per_second=0.01)) as srv:
        with srv.client(make_admin_key(any_db_url).key) as admin:
            first = create_application(admin, "First", ["people:read"])["key"]
            second = create_application(admin, "Second", ["people:read"])["key"]
        statuses = [meta(srv, first, "{ application { id } }").status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        assert meta(srv, second, "{ application { id } }").status_code == 200


def test_graphiql_is_served_on_the_meta_api(server: LiveServer) -> None:
    with server.client() as client:
        page = client.get(META_PATH, headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    assert "meta API" in page.text
    assert "your application key" in page.text


def test_the_database_file_alone_holds_no_usable_token(db_url: str, orgs_sqlite: Orgs) -> None:
    with LiveServer(Settings(database_url=db_url)) as srv:
        with srv.client(make_admin_key(db_url).key) as admin:
            scenario = Scenario(srv, admin, orgs_sqlite)
            scenario.recreate()
            secrets = {scenario.token, scenario.key, scenario.other["key"]}
        database = Path(str(make_url(db_url).database))
        stored: set[str] = set()
        with sqlite3.connect(database) as conn:
            tables = [
                row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            ]
            for table in tables:
                for row in conn.execute(f'SELECT * FROM "{table}"'):  # names from the file itself
                    stored.update(v for v in row if isinstance(v, str) and len(v) >= 20)
        raw = b"".join(
            path.read_bytes()
            for path in database.parent.glob(database.name + "*")
            if path.suffix != ".key"
        )
        for secret in secrets:
            assert secret not in stored
            assert secret.encode() not in raw
        # Every stored value that could be sent as a credential is refused as one.
        candidates = sorted(v for v in stored if parse_bearer(f"Bearer {v}") == v)
        assert candidates  # the digests and ciphertexts at least
        for value in candidates:
            for path in ("/graphql", META_PATH):
                assert status_on(srv, path, value) == 401, (path, value)
        # The key file beside it is what makes the stored ciphertexts readable: only its owner.
        assert (database.parent / f"{database.name}.key").stat().st_mode & 0o077 == 0


def test_a_page_costs_the_same_few_statements_whatever_its_size(
    any_db_url: str, orgs: Orgs
) -> None:
    """Authentication, the application, the page, its permissions, its targets: never one
    statement per integration."""
    key = make_admin_key(any_db_url).key
    with LiveServer(_settings(any_db_url)) as srv, srv.client(key) as admin:
        app = create_application(admin, "Gradebook", REQUESTED)
        application_id = app["application"]["id"]

        def add(count: int) -> None:
            for _ in range(count):
                ok(
                    create_integration(
                        admin,
                        sourceId=orgs.source,
                        scope="SELECTED",
                        targets=[orgs.school, orgs.course],
                        applicationId=application_id,
                    )
                )

        def statements() -> int:
            with recorded_statements(srv) as seen:
                listed = ok(meta(srv, app["key"], first=1000))["integrations"]
            assert len(listed["nodes"]) == listed["totalCount"]
            assert all(n["accessToken"] for n in listed["nodes"])
            return len([s for s in seen if s.lstrip().upper().startswith("SELECT")])

        add(1)
        one = statements()
        add(9)
        assert statements() == one


def test_the_graph_apis_limits_hold_on_the_meta_api(scenario: Scenario) -> None:
    aliased = " ".join(f"a{i}: application {{ id }}" for i in range(31))
    too_many = meta(scenario.server, scenario.key, f"{{ {aliased} }}").json()
    assert too_many["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert "data" not in too_many or too_many["data"] is None
    assert "max_aliases" in too_many["errors"][0]["message"]
    # within the alias limit, the pages of one operation still add up to one page at most
    pages = " ".join(f"p{i}: integrations(first: 1000) {{ nodes {{ id }} }}" for i in range(30))
    refused = meta(scenario.server, scenario.key, f"{{ {pages} }}").json()
    assert refused["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"


def test_the_configured_limits_hold_on_the_meta_api(any_db_url: str, orgs: Orgs) -> None:
    """GATEWAY_MAX_* bound the meta API as they bound the Graph API, not only their defaults."""
    with LiveServer(_settings(any_db_url, max_aliases=2, max_depth=3)) as srv:
        with srv.client(make_admin_key(any_db_url).key) as admin:
            key = create_application(admin, "Limited", ["people:read"])["key"]
        two = " ".join(f"a{i}: application {{ id }}" for i in range(2))
        assert set(ok(meta(srv, key, f"{{ {two} }}"))) == {"a0", "a1"}
        three = " ".join(f"a{i}: application {{ id }}" for i in range(3))
        deep = "{ integrations { nodes { source { provider { name } } } } }"
        for query, setting in ((f"{{ {three} }}", "max_aliases"), (deep, "max_depth")):
            body = meta(srv, key, query).json()
            assert body["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX", body
            assert setting in body["errors"][0]["message"], body


def test_one_operation_lists_at_most_one_full_page_of_integrations(scenario: Scenario) -> None:
    """Every integration listed costs a decryption and a few dozen fields (about 1 s per 1,000
    here), done while the request holds a database connection: 30 aliased pages of 1,000 took
    30 s and kept /graphql requests of everyone else waiting that long. So the `first` of all
    `integrations` fields of an operation (100 when omitted) add up to at most 1,000."""
    halves = " ".join(f"p{i}: integrations(first: 500) {{ totalCount }}" for i in range(2))
    assert ok(meta(scenario.server, scenario.key, f"{{ {halves} }}"))["p1"]["totalCount"] == 1
    for too_many in (
        " ".join(f"p{i}: integrations(first: 500) {{ totalCount }}" for i in range(3)),
        " ".join(f"p{i}: integrations {{ nodes {{ id }} }}" for i in range(11)),
    ):
        response = meta(scenario.server, scenario.key, f"{{ {too_many} }}")
        body = response.json()
        assert body["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX", body
        assert "1,000" in body["errors"][0]["message"]
        assert not body.get("data"), body
